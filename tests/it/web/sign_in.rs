//! Setting up the first admin, signing in and out, lock-outs and throttles,
//! session cookies, and the CSRF token on every state-changing form.

use super::{session_cookie, user_id};
use crate::{
    both_backends,
    common::{
        ADMIN_PASSWORD, Backend, TestApp, WriteLock, setup_code_in,
        web::{Browser, Page, between},
    },
};
use reqwest::{StatusCode, header};

async fn first_admin_is_created_once_with_the_setup_code(backend: Backend) {
    let (app, code) = TestApp::spawn_with_setup_code(backend).await;
    let b = Browser::new(&app);

    let bad = b.get("/setup?code=not-the-code").await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    assert!(bad.body.contains("setup link is invalid"), "{}", bad.body);

    let path = format!("/setup?code={code}");
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();

    // Without the CSRF token: refused, nothing created, the code still usable.
    let no_csrf = b
        .post(
            "/setup",
            &[
                ("code", &code),
                ("username", "root"),
                ("password", "a long password"),
                ("password_again", "a long password"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert!(no_csrf.body.contains("security token"));

    let differ = b
        .post(
            "/setup",
            &[
                ("csrf", &csrf),
                ("code", &code),
                ("username", "root"),
                ("password", "a long password"),
                ("password_again", "another password"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(differ.body.contains("passwords differ"));

    let bad_name = b
        .post(
            "/setup",
            &[
                ("csrf", &csrf),
                ("code", &code),
                ("username", "No Spaces"),
                ("password", "a long password"),
                ("password_again", "a long password"),
            ],
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_name.body.contains(
            r#"<p class="error" role="alert">username: must be 3–64 characters of lowercase letters"#
        ),
        "{}",
        bad_name.body
    );

    let ok = b
        .post(
            "/setup",
            &[
                ("csrf", &csrf),
                ("code", &code),
                ("username", "root"),
                ("password", "a long password"),
                ("password_again", "a long password"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("root (admin)"));
    assert!(home.body.contains("Tokens issued per day"));

    // The code is used up, for this browser and any other.
    assert_eq!(b.get(&path).await.status, StatusCode::FORBIDDEN);
    let other = Browser::new(&app);
    let csrf2 = other.get("/login").await.csrf();
    let again = other
        .post(
            "/setup",
            &[
                ("csrf", &csrf2),
                ("code", &code),
                ("username", "second"),
                ("password", "a long password"),
                ("password_again", "a long password"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert_eq!(other.login("second", "a long password").await.status, 401);
    // The new admin can sign in with the password chosen.
    let fresh = Browser::new(&app);
    assert_eq!(
        fresh.login("root", "a long password").await.status,
        StatusCode::SEE_OTHER
    );
}

async fn post_setup(b: &Browser, csrf: &str, code: &str, username: &str) -> StatusCode {
    let form = [
        ("csrf", csrf),
        ("code", code),
        ("username", username),
        ("password", "a long password"),
        ("password_again", "a long password"),
    ];
    b.post("/setup", &form).await.status
}

/// Two setups at once with two live codes (each instance behind a load
/// balancer prints its own) make one administrator, not two.
async fn two_setups_at_once_make_one_administrator(backend: Backend) {
    let (mut app, first) = TestApp::spawn_with_setup_code(backend).await;
    // A restart on a database still without an administrator prints a new
    // code; the first stays live too.
    app.restart(&[]);
    let second = setup_code_in(&app.log);
    assert_ne!(first, second);
    let (a, b) = (Browser::new(&app), Browser::new(&app));
    let csrf_a = a.get(&format!("/setup?code={first}")).await.csrf();
    let csrf_b = b.get(&format!("/setup?code={second}")).await.csrf();
    // Writes to the users' table wait (reads go on), so both setups get past
    // their check for an administrator before either inserts one: the race,
    // every time. (SQLite: both wait for the write lock.) On SQLite the
    // waiters cannot be seen, so `wait_for_waiters` only sleeps 2 s: there the
    // race is likely, not guaranteed (a setup that starts after the release
    // just runs second), and a pass does not prove both raced.
    let mut held = WriteLock::take_writes(&app, "principals").await;
    let release = async {
        held.wait_for_waiters(2).await;
        held.release().await;
    };
    let (a, b, ()) = tokio::join!(
        post_setup(&a, &csrf_a, &first, "first"),
        post_setup(&b, &csrf_b, &second, "second"),
        release
    );
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::FORBIDDEN]);
    let admins = app
        .scalar("SELECT count(*) FROM principals WHERE role = 'admin'")
        .await;
    assert_eq!(admins, 1);
}

async fn sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::new(&app);

    let anon = b.get("/tokens").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert_eq!(anon.location(), "/login?next=%2Ftokens");
    assert_eq!(b.get("/").await.location(), "/login");

    let wrong = b.login("alice", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("username or password is wrong"));
    assert!(wrong.body.contains(r#"value="alice""#));

    let first = b.login("alice", ADMIN_PASSWORD).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let cookie = session_cookie(&first);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "http public URL: no Secure flag"
    );
    let first_value = cookie
        .split(';')
        .next()
        .expect("value")
        .trim_start_matches("tessera_session=")
        .to_owned();
    assert_eq!(b.get("/tokens").await.status, StatusCode::OK);

    // Signing in again rotates the session id; the old one stops working.
    let second = b.login("alice", ADMIN_PASSWORD).await;
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    let second_value = session_cookie(&second)
        .split(';')
        .next()
        .expect("value")
        .trim_start_matches("tessera_session=")
        .to_owned();
    assert_ne!(first_value, second_value);
    let replay = |value: String| {
        let app_url = app.url("/tokens");
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client")
                .get(app_url)
                .header(header::COOKIE, format!("tessera_session={value}"))
                .send()
                .await
                .expect("GET")
                .status()
        }
    };
    assert_eq!(replay(first_value).await, StatusCode::SEE_OTHER);
    assert_eq!(replay(second_value.clone()).await, StatusCode::OK);

    // Sign-out needs the CSRF token, then ends the session on the server.
    let refused = b.post("/logout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(replay(second_value.clone()).await, StatusCode::OK);
    let confirm = b.get("/logout").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Sign out?"));
    let out = b.submit("/logout", "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login?notice=signed-out");
    assert!(
        b.get(out.location())
            .await
            .body
            .contains("You have signed out.")
    );
    assert_eq!(replay(second_value).await, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/tokens").await.status, StatusCode::SEE_OTHER);

    // The audit log has all of it.
    let admin = {
        app.create_user("boss", true);
        Browser::signed_in(&app, "boss").await
    };
    let audit = admin.get("/admin/audit?actor=alice").await;
    for action in ["session.login", "session.logout"] {
        assert!(
            audit.body.contains(&format!("<code>{action}</code>")),
            "{action} missing"
        );
    }
    let failed = admin.get("/admin/audit?action=session.login_failed").await;
    failed.expect(StatusCode::OK, "failed sign-ins");
    assert!(failed.body.contains("wrong password"), "{}", failed.body);
    // It names the account and links to its page.
    assert!(failed.body.contains("user “alice”"), "{}", failed.body);
    let link = between(&failed.body, r#"href="/admin/users/"#, "\"").expect("a link to the user");
    let user = admin.get(&format!("/admin/users/{link}")).await;
    user.expect(StatusCode::OK, "the account's page");
    assert!(user.body.contains("alice"), "{}", user.body);
}

async fn failed_sign_ins_lock_that_account_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("carol", false);
    app.create_user("boss", true);
    let b = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(b.login("carol", "wrong password!").await.status, 401);
    }
    let throttled = b.login("carol", ADMIN_PASSWORD).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.body.contains("Too many failed sign-ins"));
    // Another account is not affected by carol's failures.
    assert_eq!(b.login("boss", ADMIN_PASSWORD).await.status, 303);
}

/// A machine user has no password and cannot sign in.
async fn a_machine_user_cannot_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_machine("robot", &["profile"]);
    let robot = Browser::new(&app);
    assert_eq!(robot.login("robot", "").await.status, 400);
    assert_eq!(robot.login("robot", "anything at all").await.status, 401);
}

async fn a_disabled_user_cannot_sign_in_and_their_sessions_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_user("dave", false);
    let dave = Browser::signed_in(&app, "dave").await;
    let admin = Browser::signed_in(&app, "boss").await;
    let users = admin.get("/admin/users").await;
    let dave_id = user_id(&users, "dave");
    let res = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{dave_id}"),
            &[("op", "enabled"), ("enabled", "false")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(dave.get("/tokens").await.status, StatusCode::SEE_OTHER);
    let again = Browser::new(&app).login("dave", ADMIN_PASSWORD).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

/// A session's CSRF token is derived from its cookie under the master key:
/// the same on each of its pages, another session's differs, and the
/// database keeps none (a copy of it would let forged forms through).
async fn the_database_keeps_no_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    let csrf = b.get("/admin/scopes").await.csrf();
    assert_eq!(b.get("/tokens/new").await.csrf(), csrf, "one per session");
    let other = Browser::signed_in(&app, "boss").await;
    assert_ne!(other.get("/admin/scopes").await.csrf(), csrf);
    // SQLite drops the column; PostgreSQL keeps it for instances of the
    // build before during a rolling upgrade, empty for every new session.
    let kept = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name LIKE '%csrf%'"
        }
        Backend::Postgres => "SELECT COUNT(*) FROM sessions WHERE csrf_token <> ''",
    };
    assert_eq!(app.scalar(kept).await, 0, "a CSRF token in the database");
    let res = b
        .post("/admin/scopes", &[("csrf", &csrf), ("name", "orders:read")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}

async fn state_changing_forms_without_the_csrf_token_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "/tokens/new",
            &[("name", "x"), ("scopes", "profile"), ("lifetime", "30")],
        ),
        ("/admin/scopes", &[("name", "orders:read")]),
        ("/admin/machine-users/new", &[("username", "robot")]),
        (
            "/admin/users",
            &[
                ("username", "eve"),
                ("password", "long enough"),
                ("role", "admin"),
            ],
        ),
        ("/admin/keys/rotate", &[]),
    ];
    for (path, form) in cases {
        let missing = b.post(path, form).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN, "{path} without CSRF");
        assert!(missing.body.contains("security token"), "{path}");
        let mut wrong = vec![("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
        wrong.extend_from_slice(form);
        let res = b.post(path, &wrong).await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{path} with a wrong CSRF"
        );
    }
    // Nothing was created.
    let scopes = b.get("/admin/scopes").await;
    scopes.expect(StatusCode::OK, "scopes");
    assert!(!scopes.body.contains("<code>orders:read</code></td>"));
    let users = b.get("/admin/users").await;
    users.expect(StatusCode::OK, "users");
    assert!(!users.body.contains("eve"));
    assert!(b.get("/tokens").await.body.contains("No tokens here yet"));

    // The sign-in form needs its double-submit cookie.
    let fresh = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = fresh
        .post(app.url("/login"))
        .form(&[
            ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ("username", "boss"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// A form the browser says came from another origin is refused with a valid
/// token too: a sibling subdomain can plant the sign-in form's double-submit
/// cookie on plain http (login CSRF), but not the browser's `Sec-Fetch-Site`
/// or `Origin` (where browsers send no `Sec-Fetch-Site`, plain http to a
/// name, `Origin: null` is refused: our pages make browsers name their
/// origin). Requests that tell nothing keep working on the token alone.
async fn forms_from_another_origin_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let here = app.url("");
    let host = here.trim_start_matches("http://").trim_end_matches('/');
    let origin = format!("http://{host}");
    let page = Browser::new(&app).get("/login").await;
    assert_eq!(
        page.headers
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("same-origin"),
        "our own forms carry their Origin"
    );
    let sign_in = async |headers: &[(&str, &str)]| {
        let b = Browser::new(&app);
        let csrf = b.get("/login").await.csrf();
        let form = [
            ("csrf", csrf.as_str()),
            ("username", "boss"),
            ("password", ADMIN_PASSWORD),
        ];
        let res = b.post_with("/login", &form, headers).await;
        (res, b)
    };
    for refused in [
        &[("Sec-Fetch-Site", "same-site")][..],
        &[
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", origin.as_str()),
        ],
        &[("Origin", "http://evil.example")],
        &[("Origin", "https://tessera.example.evil")],
        &[("Origin", "null")],
    ] {
        let (res, b) = sign_in(refused).await;
        res.expect(StatusCode::FORBIDDEN, "a sign-in from elsewhere");
        assert!(res.body.contains("security token"), "{}", res.body);
        let after = b.get("/tokens").await;
        after.expect(StatusCode::SEE_OTHER, "not signed in");
        assert!(after.location().starts_with("/login"), "{refused:?}");
    }
    for allowed in [
        &[][..],
        &[("Sec-Fetch-Site", "same-origin"), ("Origin", "null")],
        &[("Origin", origin.as_str())],
        // The public URL's origin (the default), as behind a proxy that
        // rewrites `Host`.
        &[("Origin", "http://127.0.0.1:8080")],
    ] {
        let (res, _) = sign_in(allowed).await;
        res.expect(StatusCode::SEE_OTHER, "a sign-in from this origin");
        assert_eq!(res.location(), "/", "{allowed:?}");
    }

    // A signed-in form likewise, with its session's token.
    let b = Browser::signed_in(&app, "boss").await;
    let csrf = b.get("/admin/scopes").await.csrf();
    let add = |name: &'static str| [("csrf", csrf.clone()), ("name", name.to_owned())];
    let post = async |name: &'static str, headers: &[(&str, &str)]| {
        let form = add(name);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post_with("/admin/scopes", &form, headers).await
    };
    post("orders:read", &[("Sec-Fetch-Site", "cross-site")])
        .await
        .expect(StatusCode::FORBIDDEN, "a form from another site");
    post("orders:read", &[("Origin", "http://evil.example")])
        .await
        .expect(StatusCode::FORBIDDEN, "a form from another origin");
    let scopes = b.get("/admin/scopes").await;
    scopes.expect(StatusCode::OK, "scopes");
    assert!(
        !scopes.body.contains("<code>orders:read</code></td>"),
        "nothing was created"
    );
    post("orders:write", &[("Sec-Fetch-Site", "same-origin")])
        .await
        .expect(StatusCode::SEE_OTHER, "a form from this origin");
    let scopes = b.get("/admin/scopes").await;
    assert!(scopes.body.contains("<code>orders:write</code></td>"));
}

async fn failed_sign_ins_from_one_address_are_throttled_across_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("frank", false);
    let b = Browser::new(&app);
    // 20 failures from this address, spread over accounts that mostly do not exist.
    for i in 0..20 {
        let name = format!("nobody{}", i % 4);
        assert_eq!(b.login(&name, "guess guess").await.status, 401);
    }
    let res = b.login("frank", ADMIN_PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.body.contains("from this address"));
}

async fn cookies_are_secure_when_the_public_url_is_https(backend: Backend) {
    // (`HTTPS://…` stops start-up: the issuer only as a URL parser writes it.)
    let app = TestApp::spawn_with(
        backend,
        &[("TESSERA_PUBLIC_URL", "https://tessera.example")],
    )
    .await;
    app.create_user("alice", false);
    // No cookie store: one would (rightly) not send Secure cookies over http.
    let client = crate::common::client();
    let login = Browser::page(client.get(app.url("/login")).send().await.expect("GET")).await;
    let pre = login.headers[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(pre.contains("Secure"), "{pre}");
    let pre_value = pre.split(';').next().expect("value").to_owned();
    // This browser still holds a session cookie under the name used before
    // the `__Host-` prefix.
    let res = Browser::page(
        client
            .post(app.url("/login"))
            .header(header::COOKIE, format!("{pre_value}; tessera_session=old"))
            .form(&[
                ("csrf", login.csrf().as_str()),
                ("username", "alice"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    // `__Host-` names: a browser keeps them only from https, for Path=/ and
    // without Domain, so no sibling subdomain can plant one.
    assert!(pre.starts_with("__Host-tessera_csrf="), "{pre}");
    let cookie = res
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-tessera_session="))
        .unwrap_or_else(|| panic!("no __Host- session cookie: {:?}", res.headers))
        .to_owned();
    for flag in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let drops_old = |page: &Page| {
        page.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.starts_with("tessera_session=;") && v.contains("Max-Age=0"))
    };
    assert!(
        drops_old(&res),
        "the old name is dropped: {:?}",
        res.headers
    );
    let value = cookie.split(';').next().expect("value").to_owned();
    let tokens_with = |cookie: String| {
        let (client, url) = (&client, app.url("/tokens"));
        async move {
            client
                .get(url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .expect("GET")
                .status()
        }
    };
    assert_eq!(tokens_with(value.clone()).await, StatusCode::OK);
    // The same session under the unprefixed name, as a plain-http page or a
    // sibling domain could set it, is not taken.
    let unprefixed = value.trim_start_matches("__Host-").to_owned();
    assert_eq!(tokens_with(unprefixed).await, StatusCode::SEE_OTHER);
    // Nor is the sign-in form's CSRF value under the unprefixed name.
    let login = Browser::page(client.get(app.url("/login")).send().await.expect("GET")).await;
    let refused = client
        .post(app.url("/login"))
        .header(header::COOKIE, format!("tessera_csrf={}", login.csrf()))
        .form(&[
            ("csrf", login.csrf().as_str()),
            ("username", "alice"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Signing out removes the prefixed cookie.
    let signed_in = Browser::page(
        client
            .get(app.url("/logout"))
            .header(header::COOKIE, value.clone())
            .send()
            .await
            .expect("GET"),
    )
    .await;
    let value_again = value.clone();
    let out = Browser::page(
        client
            .post(app.url("/logout"))
            .header(header::COOKIE, format!("{value}; tessera_session=old"))
            .form(&[("csrf", signed_in.csrf().as_str())])
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert!(
        out.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.starts_with("__Host-tessera_session=;")),
        "{:?}",
        out.headers
    );
    assert!(drops_old(&out), "and the old name: {:?}", out.headers);
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        tokens_with(value_again).await,
        StatusCode::SEE_OTHER,
        "the session ended on the server"
    );
}

both_backends!(
    first_admin_is_created_once_with_the_setup_code,
    two_setups_at_once_make_one_administrator,
    sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session,
    failed_sign_ins_lock_that_account_only,
    a_machine_user_cannot_sign_in,
    a_disabled_user_cannot_sign_in_and_their_sessions_end,
    state_changing_forms_without_the_csrf_token_are_refused,
    the_database_keeps_no_csrf_token,
    forms_from_another_origin_are_refused,
    failed_sign_ins_from_one_address_are_throttled_across_accounts,
    cookies_are_secure_when_the_public_url_is_https,
);
