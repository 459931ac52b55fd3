//! The browser pages over HTTP, on both backends: sign-in, sessions, CSRF,
//! personal tokens, the admin console, escaping and error pages.

mod account_and_hints;
mod grace_choice;
mod keys_and_resources;
mod notices;
mod polish;
mod polish2;
mod reveal;
mod sso;
mod sso_refusals;
mod throttle;

use crate::{
    both_backends,
    common::{
        ADMIN_PASSWORD, Backend, TestApp,
        web::{Browser, Page, between},
    },
};
use reqwest::{StatusCode, header};

/// A user's id, read from the link of their row on /admin/users.
fn user_id(users: &Page, username: &str) -> String {
    let marker = format!("\">{username}</a>");
    let at = users.body.find(&marker).expect("user row");
    let before = &users.body[..at];
    let start = before.rfind("href=\"/admin/users/").expect("id") + "href=\"/admin/users/".len();
    before[start..].to_owned()
}

fn session_cookie(page: &Page) -> String {
    page.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tessera_session=") && !v.starts_with("tessera_session=;"))
        .unwrap_or_else(|| panic!("no session cookie set: {:?}", page.headers))
        .to_owned()
}

// ---------------------------------------------------------------- setup

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
    assert!(bad_name.body.contains("username"), "{}", bad_name.body);

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

// ---------------------------------------------------------------- sessions

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
    assert!(failed.body.contains("wrong password"), "{}", failed.body);
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

// ---------------------------------------------------------------- CSRF

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
    assert!(!scopes.body.contains("<td><code>orders:read</code>"));
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

// ---------------------------------------------------------------- tokens

async fn a_personal_token_is_shown_once_and_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;

    let form = b.get("/tokens/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"value="tokens:read""#));
    assert!(
        !form.body.contains(r#"value="admin:read""#),
        "a user is not offered admin scopes"
    );
    for days in ["7", "30", "60", "90", "365"] {
        assert!(
            form.body
                .contains(&format!(r#"name="lifetime" value="{days}""#))
        );
    }

    let csrf = form.csrf();
    let nonce = form.nonce("/tokens/new").expect("the form's nonce");
    let created = b
        .post(
            "/tokens/new",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("name", "laptop"),
                ("description", "for scripts"),
                ("scopes", "profile"),
                ("scopes", "tokens:read"),
                ("lifetime", "7"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let created = b.follow(&created).await;
    assert_eq!(
        created.headers.get(header::CACHE_CONTROL).expect("cache"),
        "no-store"
    );
    assert!(created.body.contains("shown only this once"));
    let secret = created.secret();
    let id = between(&created.body, r#"href="/tokens/"#, "\"").expect("link");
    assert_eq!(app.me_status(&secret).await, 200);

    // Never shown again: not in the list, the detail page or the audit log.
    let list = b.get("/tokens").await;
    list.expect(StatusCode::OK, "token list");
    assert!(list.body.contains("laptop"));
    assert!(list.body.contains("expires in 7 days"), "{}", list.body);
    assert!(list.body.contains("badge warn"), "expiry warning shown");
    let detail = b.get(&format!("/tokens/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("for scripts"));
    for page in [&list, &detail] {
        assert!(!page.body.contains(&secret));
    }
    let dashboard = b.get("/").await;
    dashboard.expect(StatusCode::OK, "dashboard");
    assert!(
        dashboard.body.contains("laptop"),
        "expiring soon on the dashboard"
    );
    assert!(
        !dashboard.body.contains("Tokens issued per day"),
        "no admin chart"
    );
}

async fn a_duplicate_token_name_is_refused_with_the_form_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    b.create_token("laptop", &["profile"]).await;
    let dup = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[
                ("name", "laptop"),
                ("scopes", "profile"),
                ("lifetime", "30"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(
        dup.body
            .contains("You already have an active token with this name")
    );
    assert!(!dup.body.contains("id=\"secret\""));
}

async fn regenerated_and_revoked_personal_tokens_stop_working_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (secret, id) = b.create_token("laptop", &["profile", "tokens:read"]).await;
    assert_eq!(app.me_status(&secret).await, 200);

    // Regenerate: a new secret once, the old one revoked at once.
    let confirm = b.get(&format!("/tokens/{id}/regenerate")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let regen = b
        .post(
            &format!("/tokens/{id}/regenerate"),
            &[
                ("csrf", &confirm.csrf()),
                (
                    "nonce",
                    &confirm
                        .nonce(&format!("/tokens/{id}/regenerate"))
                        .expect("nonce"),
                ),
            ],
        )
        .await;
    let regen = b.follow(&regen).await;
    assert_eq!(regen.status, StatusCode::OK, "{}", regen.body);
    let secret2 = regen.secret();
    let id2 = between(&regen.body, r#"href="/tokens/"#, "\"").expect("link");
    assert_ne!(secret, secret2);
    assert_eq!(app.me_status(&secret).await, 401);
    assert_eq!(app.me_status(&secret2).await, 200);

    // Revoke with a confirmation step.
    let confirm = b.get(&format!("/tokens/{id2}/revoke")).await;
    assert!(confirm.body.contains("Revoke token"));
    let revoked = b
        .post(
            &format!("/tokens/{id2}/revoke"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(app.me_status(&secret2).await, 401);
    let after = b.get(&format!("/tokens/{id2}")).await;
    assert!(after.body.contains("revoked"));
    let filtered = b.get("/tokens?status=revoked").await;
    // The regenerated one reads "replaced", the other "revoked".
    assert_eq!(filtered.body.matches("status revoked").count(), 1);
    assert_eq!(filtered.body.matches("status replaced").count(), 1);
    let active = b.get("/tokens?status=active").await;
    active.expect(StatusCode::OK, "active tokens");
    assert!(!active.body.contains("status revoked"));
    assert!(active.body.contains("No tokens match"));

    // A revoked token cannot be regenerated: a 409 page in words.
    let refused = b
        .submit(
            &format!("/tokens/{id2}/regenerate"),
            &format!("/tokens/{id2}/regenerate"),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("cannot be regenerated"));
}

async fn someone_elses_personal_token_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (_, id) = b.create_token("laptop", &["profile"]).await;
    // Regenerated (so `id` is revoked) and then revoked: not found either way.
    let regen = b
        .submit(
            &format!("/tokens/{id}/regenerate"),
            &format!("/tokens/{id}/regenerate"),
            &[],
        )
        .await;
    let regen = b.follow(&regen).await;
    assert_eq!(regen.status, StatusCode::OK, "{}", regen.body);
    let id2 = between(&regen.body, r#"href="/tokens/"#, "\"").expect("link");
    let revoked = b
        .submit(
            &format!("/tokens/{id2}/revoke"),
            &format!("/tokens/{id2}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);

    // Someone else's token is not found.
    app.create_user("mallory", false);
    let m = Browser::signed_in(&app, "mallory").await;
    assert_eq!(m.get(&format!("/tokens/{id}")).await.status, 404);
    // With a nonce of her own: the token is still not hers.
    let own = m.get("/tokens/new").await;
    let nonce = own.nonce("/tokens/new").expect("nonce");
    let steal = m
        .post(
            &format!("/tokens/{id2}/regenerate"),
            &[("csrf", &own.csrf()), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(steal.status, StatusCode::NOT_FOUND);
}

async fn token_names_are_escaped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", true);
    let b = Browser::signed_in(&app, "alice").await;
    let name = "<script>alert(1)</script>";
    let (_, id) = b.create_token(name, &["profile"]).await;
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    for path in [
        "/tokens".to_owned(),
        format!("/tokens/{id}"),
        format!("/tokens/{id}/revoke"),
        "/admin/tokens".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains(name), "{path} shows the name unescaped");
        assert!(
            page.body.contains(escaped) || page.body.contains("&lt;script&gt;"),
            "{path} does not show the escaped name:\n{}",
            page.body
        );
    }
}

async fn bad_input_gets_a_page_in_words_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    for (path, status) in [
        ("/tokens/not-a-uuid", 404),
        ("/tokens/00000000-0000-0000-0000-000000000000", 404),
        ("/tokens?status=bogus", 400),
        ("/tokens?page=%%%", 400),
        ("/tokens?page=0", 400),
        ("/admin/tokens?sort=bogus", 400),
        ("/admin/tokens?kind=bogus", 400),
        ("/admin/audit?since=yesterday", 400),
        // A signed year parses as a date, but PostgreSQL cannot go that far back.
        ("/admin/audit?since=-4800-01-01", 400),
        ("/admin/audit?until=-4800-01-01", 400),
        ("/admin/audit?since=0000-01-01", 400),
        ("/admin/audit?until=9999-12-31", 200),
        ("/admin/machine-users/nope", 404),
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status.as_u16(), status, "{path}: {}", page.body);
        assert!(page.body.contains("<h1>"), "{path} renders an HTML page");
    }
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("name", "t"), ("scopes", "profile"), ("lifetime", "400")],
            "must live at least 1 minute and at most 365 days",
        ),
        (
            &[("name", "t"), ("scopes", "profile"), ("lifetime", "soon")],
            "Choose one of the lifetimes",
        ),
        (
            &[
                ("name", "t"),
                ("scopes", "profile"),
                ("lifetime", "custom"),
                ("expires_on", "2001-01-01"),
            ],
            "must live at least 1 minute and at most 365 days",
        ),
        (
            &[("name", "t"), ("scopes", "profile"), ("lifetime", "custom")],
            "Choose a date",
        ),
        (
            &[("name", "t"), ("lifetime", "30")],
            "Choose at least one scope",
        ),
        (
            &[("name", "t"), ("scopes", "nope:nope"), ("lifetime", "30")],
            "Unknown scope",
        ),
        (
            &[("name", ""), ("scopes", "profile"), ("lifetime", "30")],
            "name",
        ),
    ];
    for (form, message) in cases {
        let res = b.submit("/tokens/new", "/tokens/new", form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert!(res.body.contains(message), "{form:?}: {}", res.body);
    }
    assert!(b.get("/tokens").await.body.contains("No tokens here yet"));
}

/// PostgreSQL refuses NUL in text, so a NUL in any field or filter must be
/// turned away at the form parser, not reach a query (a 500, or a hang).
async fn nul_characters_in_pages_and_forms_get_a_400_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    for path in [
        "/admin/tokens?q=a%00b",
        "/admin/tokens?owner=a%00b",
        "/admin/audit?actor=a%00b",
        "/admin/audit?action=a%00b",
        "/tokens?q=a%00b",
        "/setup?code=a%00b",
    ] {
        let page = b.get(path).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains("NUL character"), "{path}: {}", page.body);
    }
    let forms: &[(&str, &[(&str, &str)])] = &[
        (
            "/tokens/new",
            &[
                ("name", "t"),
                ("description", "a\u{0}b"),
                ("scopes", "profile"),
                ("lifetime", "30"),
            ],
        ),
        (
            "/tokens/new",
            &[
                ("name", "t"),
                ("scopes", "pro\u{0}file"),
                ("lifetime", "30"),
            ],
        ),
        (
            "/admin/machine-users/new",
            &[("username", "robot"), ("description", "a\u{0}b")],
        ),
        (
            "/admin/scopes",
            &[("name", "orders:read"), ("description", "a\u{0}b")],
        ),
    ];
    for (path, form) in forms {
        let res = b.submit(path, path, form).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{form:?}: {}",
            res.body
        );
        assert!(res.body.contains("NUL character"), "{form:?}: {}", res.body);
    }
    // Signing in with a NUL in the username: refused, not a 500.
    let anon = Browser::new(&app);
    let res = anon.login("bo\u{0}ss", ADMIN_PASSWORD).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    // Nothing was written, and the lists still load.
    assert!(b.get("/tokens").await.body.contains("No tokens here yet"));
    let scopes = b.get("/admin/scopes").await;
    scopes.expect(StatusCode::OK, "scopes");
    assert!(!scopes.body.contains("<td><code>orders:read</code>"));
    let machines = b.get("/admin/machine-users").await;
    machines.expect(StatusCode::OK, "machine users");
    assert!(!machines.body.contains("robot"));
    assert_eq!(b.get("/admin/audit").await.status, StatusCode::OK);
    assert_eq!(b.get("/admin/tokens?q=t").await.status, StatusCode::OK);
}

/// The machine-token form issues tokens for machine users only: posted with a
/// person's id, it must not mint a personal token that the admin then sees.
async fn the_machine_token_form_refuses_a_persons_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "boss").await;
    let users = b.get("/admin/users").await;
    for who in ["alice", "boss"] {
        let id = user_id(&users, who);
        let res = b
            .submit(
                "/admin/users",
                &format!("/admin/machine-users/{id}/tokens"),
                &[
                    ("name", "sneaky"),
                    ("scopes", "profile"),
                    ("lifetime", "30"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{who}: {}", res.body);
        assert!(
            !res.body.contains(r#"id="secret""#),
            "{who}: no secret shown"
        );
    }
    let all = b.get("/admin/tokens?q=sneaky").await;
    assert!(all.body.contains("No token matches."), "{}", all.body);
}

// ---------------------------------------------------------------- admin

async fn admin_pages_are_for_admins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let home = b.get("/").await;
    home.expect(StatusCode::OK, "home");
    assert!(!home.body.contains("/admin/users"), "no admin links");
    for path in [
        "/admin/machine-users",
        "/admin/machine-users/new",
        "/admin/users",
        "/admin/tokens",
        "/admin/scopes",
        "/admin/keys",
        "/admin/audit",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("administrators only"), "{path}");
    }
    let csrf = b.get("/tokens").await.csrf();
    for (path, form) in [
        ("/admin/scopes", vec![("name", "orders:read")]),
        (
            "/admin/users",
            vec![
                ("username", "eve"),
                ("password", "long enough"),
                ("role", "admin"),
            ],
        ),
        ("/admin/keys/rotate", vec![]),
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form);
        assert_eq!(b.post(path, &fields).await.status, StatusCode::FORBIDDEN);
    }
}

/// Every admin route, with ids that exist nowhere: the caller is checked
/// (signed in, admin, then the form's CSRF token) before anything is read.
const ADMIN_GETS: &[&str] = &[
    "/admin",
    "/admin/machine-users",
    "/admin/machine-users/new",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/delete",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/secrets/x/delete",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/disable",
    "/admin/resource-servers",
    "/admin/users",
    "/admin/users/0190a0f4-0000-7000-8000-000000000000",
    "/admin/users/0190a0f4-0000-7000-8000-000000000000/change",
    "/admin/tokens",
    "/admin/tokens/0190a0f4-0000-7000-8000-000000000000",
    "/admin/tokens/0190a0f4-0000-7000-8000-000000000000/revoke",
    "/admin/scopes",
    "/admin/scopes/orders:read/delete",
    "/admin/keys",
    "/admin/audit",
    "/admin/webhooks",
];

const ADMIN_POSTS: &[&str] = &[
    "/admin/machine-users/new",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/managers",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/enabled",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/client-credentials",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/delete",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/secrets",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/secrets/x/delete",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/tokens",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/jwks",
    "/admin/machine-users/0190a0f4-0000-7000-8000-000000000000/jwks/delete",
    "/admin/resource-servers",
    "/admin/resource-servers/0190a0f4-0000-7000-8000-000000000000",
    "/admin/resource-servers/0190a0f4-0000-7000-8000-000000000000/delete",
    "/admin/users",
    "/admin/users/0190a0f4-0000-7000-8000-000000000000",
    "/admin/tokens/0190a0f4-0000-7000-8000-000000000000/revoke",
    "/admin/scopes",
    "/admin/scopes/orders:read",
    "/admin/scopes/orders:read/delete",
    "/admin/keys/rotate",
    "/admin/webhooks",
    "/admin/webhooks/0190a0f4-0000-7000-8000-000000000000/delete",
];

async fn every_admin_route_checks_the_caller_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    app.create_user("boss", true);
    let alice = Browser::signed_in(&app, "alice").await;
    let csrf = alice.get("/tokens").await.csrf();
    for path in ADMIN_GETS {
        let page = alice.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "GET {path} by a person");
        assert!(page.body.contains("administrators only"), "GET {path}");
    }
    for path in ADMIN_POSTS {
        let page = alice.post(path, &[("csrf", csrf.as_str())]).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "POST {path} by a person"
        );
        assert!(page.body.contains("administrators only"), "POST {path}");
    }
    let boss = Browser::signed_in(&app, "boss").await;
    for path in ADMIN_POSTS {
        let page = boss.post(path, &[("name", "x")]).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "POST {path} without CSRF"
        );
        assert!(page.body.contains("security token"), "POST {path}");
    }
    // Signed out, a page or a form post is sent to the sign-in form.
    let nobody = Browser::new(&app);
    for path in ["/admin/users", "/admin/keys"] {
        let page = nobody.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "GET {path} signed out");
        let back = path.replace('/', "%2F");
        assert_eq!(
            page.headers[header::LOCATION],
            format!("/login?next={back}")
        );
    }
    for path in ADMIN_POSTS {
        let page = nobody.post(path, &[]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "POST {path} signed out");
        assert_eq!(page.headers[header::LOCATION], "/login", "POST {path}");
    }
    // Nothing was made by any of it.
    let scopes = boss.get("/admin/scopes").await;
    scopes.expect(StatusCode::OK, "scopes");
    assert!(!scopes.body.contains("<td><code>x</code>"));
}

async fn admins_manage_machine_users_secrets_and_machine_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;

    // Register a scope for a downstream API, then create a machine user with it.
    let scope = b
        .submit(
            "/admin/scopes",
            "/admin/scopes",
            &[("name", "orders:read"), ("description", "Read orders")],
        )
        .await;
    assert_eq!(scope.status, StatusCode::SEE_OTHER);
    let dup = b
        .submit("/admin/scopes", "/admin/scopes", &[("name", "orders:read")])
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.body.contains("a scope with this name exists"));

    let new_form = b.get("/admin/machine-users/new").await;
    new_form.expect(StatusCode::OK, "new machine user form");
    assert!(new_form.body.contains(r#"value="orders:read""#));
    assert!(!new_form.body.contains(r#"value="admin:write""#));
    let created = b
        .submit(
            "/admin/machine-users/new",
            "/admin/machine-users/new",
            &[
                ("username", "billing"),
                ("display_name", "Billing service"),
                ("contact_email", "ops@example.com"),
                ("scopes", "orders:read"),
                ("scopes", "profile"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page_path = created
        .location()
        .split('?')
        .next()
        .expect("path")
        .to_owned();
    let mu = b.get(&page_path).await;
    assert_eq!(mu.status, StatusCode::OK);
    assert!(mu.body.contains("Billing service"));
    let bad = b
        .submit(
            "/admin/machine-users/new",
            "/admin/machine-users/new",
            &[("username", "billing")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("This username is taken"), "{}", bad.body);

    // A client secret, shown once; client credentials are off until turned on.
    let s = b
        .submit(&page_path, &format!("{page_path}/secrets"), &[])
        .await;
    let s = b.follow(&s).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(
        s.headers.get(header::CACHE_CONTROL).expect("cc"),
        "no-store"
    );
    let secret = s.secret();
    assert!(secret.starts_with("tsc_"));
    assert_eq!(
        app.client_credentials("billing", &secret, None)
            .await
            .status(),
        400,
        "unauthorized_client while off"
    );
    let bad_ttl = b
        .submit(
            &page_path,
            &format!("{page_path}/client-credentials"),
            &[("cc_enabled", "on"), ("ttl", "5000")],
        )
        .await;
    assert_eq!(bad_ttl.status, StatusCode::BAD_REQUEST);
    assert!(bad_ttl.body.contains("1 to 1440"));
    let on = b
        .submit(
            &page_path,
            &format!("{page_path}/client-credentials"),
            &[("cc_enabled", "on"), ("ttl", "15")],
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    let token = app.access_token("billing", &secret).await;
    assert_eq!(app.me_status(&token).await, 200);
    let mu = b.get(&page_path).await;
    mu.expect(StatusCode::OK, "machine user page");
    assert!(
        !mu.body.contains(&secret),
        "the secret is never shown again"
    );
    assert!(mu.body.contains(r#"value="15""#));

    // Two secrets at most; then one can be removed.
    let s2 = b
        .submit(&page_path, &format!("{page_path}/secrets"), &[])
        .await;
    let s2 = b.follow(&s2).await;
    let secret2 = s2.secret();
    let mu = b.get(&page_path).await;
    assert!(mu.body.contains("holds two secrets"));
    // (The secret form is gone; a fresh nonce from the token form.)
    let nonce = mu.nonce(&format!("{page_path}/tokens")).expect("nonce");
    let third = b
        .post(
            &format!("{page_path}/secrets"),
            &[("csrf", &mu.csrf()), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(third.status, StatusCode::CONFLICT);
    let first_secret_delete = mu
        .body
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or(""))
        .find(|a| a.contains("/secrets/") && a.ends_with("/delete"))
        .expect("remove link")
        .to_owned();
    let confirm = b.get(&first_secret_delete).await;
    confirm.expect(StatusCode::OK, "the removal is confirmed first");
    assert!(confirm.body.contains("stops getting tokens at once"));
    let removed = b.post(&first_secret_delete, &[("csrf", &mu.csrf())]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let remaining_ok = [
        app.client_credentials("billing", &secret, None)
            .await
            .status(),
        app.client_credentials("billing", &secret2, None)
            .await
            .status(),
    ];
    assert_eq!(
        remaining_ok.iter().filter(|s| s.as_u16() == 200).count(),
        1,
        "exactly one secret still works"
    );

    // A machine token issued directly, shown once.
    let mt = b
        .submit(
            &page_path,
            &format!("{page_path}/tokens"),
            &[
                ("name", "nightly export"),
                ("scopes", "orders:read"),
                ("lifetime", "90"),
            ],
        )
        .await;
    let mt = b.follow(&mt).await;
    assert_eq!(mt.status, StatusCode::OK, "{}", mt.body);
    let machine_token = mt.secret();
    let me = app.get_bearer("/api/v1/me", &machine_token).await;
    assert_eq!(me.status(), 403, "the token holds orders:read, not profile");
    let mu = b.get(&page_path).await;
    mu.expect(StatusCode::OK, "machine user page");
    assert!(mu.body.contains("nightly export"));
    assert!(!mu.body.contains(&machine_token));
    let too_much = b
        .submit(
            &page_path,
            &format!("{page_path}/tokens"),
            &[
                ("name", "x"),
                ("scopes", "tokens:write"),
                ("lifetime", "30"),
            ],
        )
        .await;
    assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
    assert!(too_much.body.contains("may not hold tokens:write"));

    // Admin token list: filter, then revoke the machine token.
    let all = b.get("/admin/tokens?owner=billing&kind=machine").await;
    assert!(all.body.contains("nightly export"));
    let none = b.get("/admin/tokens?q=zzz").await;
    none.expect(StatusCode::OK, "token search");
    assert!(!none.body.contains("nightly export"));
    assert!(
        b.get("/admin/tokens?q=NIGHTLY")
            .await
            .body
            .contains("nightly export")
    );
    let tid = between(&all.body, r#"href="/admin/tokens/"#, "\"").expect("token link");
    let revoke = b
        .submit(
            &format!("/admin/tokens/{tid}/revoke"),
            &format!("/admin/tokens/{tid}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER);
    assert_eq!(app.me_status(&machine_token).await, 401);

    // Disable, then delete: its client-credentials token stops working.
    let off = b
        .submit(
            &page_path,
            &format!("{page_path}/enabled"),
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert_eq!(app.me_status(&token).await, 401);
    let confirm = b.get(&format!("{page_path}/delete")).await;
    assert!(confirm.body.contains("Delete machine user"));
    let deleted = b
        .post(&format!("{page_path}/delete"), &[("csrf", &confirm.csrf())])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get(&page_path).await.status, StatusCode::NOT_FOUND);

    // The audit log names every step, newest first, and never a secret.
    let audit = b.get("/admin/audit").await;
    audit.expect(StatusCode::OK, "audit log");
    for action in [
        "scope.create",
        "machine_user.create",
        "client_secret.create",
        "client_secret.delete",
        "machine_user.update",
        "token.create",
        "token.revoke",
        "machine_user.delete",
    ] {
        assert!(
            audit.body.contains(&format!("<code>{action}</code>")),
            "{action} missing"
        );
    }
    let newest = audit
        .body
        .find("<code>machine_user.delete</code>")
        .expect("delete");
    let oldest = audit.body.find("<code>scope.create</code>").expect("scope");
    assert!(newest < oldest, "newest first");
    for s in [&secret, &secret2, &machine_token] {
        assert!(!audit.body.contains(s.as_str()));
    }
    let filtered = b.get("/admin/audit?action=scope.create").await;
    filtered.expect(StatusCode::OK, "filtered audit log");
    assert!(filtered.body.contains("<code>scope.create</code>"));
    assert!(!filtered.body.contains("<code>machine_user.delete</code>"));
}

async fn admins_manage_users_keys_and_see_the_dashboard(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;

    let weak = b
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("username", "erin"),
                ("password", "short"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("at least 8 characters"));
    let ok = b
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("username", "erin"),
                ("password", "first password"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let erin = Browser::new(&app);
    assert_eq!(erin.login("erin", "first password").await.status, 303);
    assert_eq!(erin.get("/admin/users").await.status, 403);

    let users = b.get("/admin/users").await;
    let erin_id = user_id(&users, "erin");
    let promote = b
        .submit(
            "/admin/users",
            &format!("/admin/users/{erin_id}"),
            &[("op", "role"), ("role", "admin")],
        )
        .await;
    assert_eq!(promote.status, StatusCode::SEE_OTHER);
    assert_eq!(
        erin.get("/admin/users").await.status,
        200,
        "promoted at once"
    );
    let reset = b
        .submit(
            "/admin/users",
            &format!("/admin/users/{erin_id}"),
            &[("op", "password"), ("password", "second password")],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    assert_eq!(
        erin.get("/tokens").await.status,
        303,
        "a password reset ends the sessions"
    );
    assert_eq!(erin.login("erin", "first password").await.status, 401);
    assert_eq!(erin.login("erin", "second password").await.status, 303);

    // The last admin cannot demote themselves into lockout.
    let me_id = user_id(&b.get("/admin/users").await, "boss");
    let demote_erin = b
        .submit(
            "/admin/users",
            &format!("/admin/users/{erin_id}"),
            &[("op", "role"), ("role", "user")],
        )
        .await;
    assert_eq!(demote_erin.status, StatusCode::SEE_OTHER);
    let demote_me = b
        .submit(
            "/admin/users",
            &format!("/admin/users/{me_id}"),
            &[("op", "role"), ("role", "user")],
        )
        .await;
    assert_eq!(demote_me.status, StatusCode::BAD_REQUEST);
    assert!(
        demote_me
            .body
            .contains("cannot remove your own administrator role")
    );

    // Keys: rotate, and the new key signs tokens that verify.
    let keys = b.get("/admin/keys").await;
    assert_eq!(keys.body.matches("status active").count(), 1);
    let rotated = b.submit("/admin/keys", "/admin/keys/rotate", &[]).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let keys = b.get("/admin/keys?notice=rotated").await;
    assert!(keys.body.contains("A new signing key is active"));
    assert!(keys.body.contains("retired"));
    let (tok, _) = b.create_token("after rotation", &["profile"]).await;
    assert_eq!(app.me_status(&tok).await, 200);

    // The dashboard counts today's issued tokens and validations.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let home = b.get("/").await;
    assert!(home.body.contains("<svg"));
    assert!(
        home.body
            .contains("Tokens issued per day: 1 in total, at most 1 a day"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains("Token validations per day: 1 in total"),
        "{}",
        home.body
    );
    assert!(home.body.contains("No client secret is older than 90 days"));
}

async fn static_assets_are_served_and_pages_are_not_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    let css = b.get("/static/style.css").await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/css")
    );
    let js = b.get("/static/copy.js").await;
    assert!(js.body.contains("clipboard"));
    let login = b.get("/login").await;
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
    assert!(login.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(login.body.contains(r#"<label for="username">"#));
    assert!(login.body.contains(r#"<label for="password">"#));
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
    let app = TestApp::spawn_with(
        backend,
        &[("TESSERA_PUBLIC_URL", "https://tessera.example")],
    )
    .await;
    app.create_user("alice", false);
    // A plain client: a cookie store would (rightly) not send Secure cookies over http.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = Browser::page(client.get(app.url("/login")).send().await.expect("GET")).await;
    let pre = login.headers[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(pre.contains("Secure"), "{pre}");
    let pre_value = pre.split(';').next().expect("value").to_owned();
    let res = Browser::page(
        client
            .post(app.url("/login"))
            .header(header::COOKIE, pre_value)
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
    let cookie = session_cookie(&res);
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

// ---------------------------------------------------------------- timeouts

/// Direct database access, through the same entities the server uses, to age
/// rows in ways a test cannot wait for.
async fn database(app: &TestApp) -> tessera::storage::Db {
    tessera::storage::Db::connect(&app.db.url)
        .await
        .expect("database")
}

async fn expired_setup_codes_are_refused(backend: Backend) {
    use sea_orm::{EntityTrait, sea_query::Expr};
    use tessera::storage::entities::setup_code;
    let (app, code) = TestApp::spawn_with_setup_code(backend).await;
    let b = Browser::new(&app);
    let path = format!("/setup?code={code}");
    let csrf = b.get(&path).await.csrf();
    let db = database(&app).await;
    setup_code::Entity::update_many()
        .col_expr(
            setup_code::Column::ExpiresAt,
            Expr::value(tessera::domain::clock::now() - time::Duration::minutes(1)),
        )
        .exec(&db.write)
        .await
        .expect("age the code");
    assert_eq!(b.get(&path).await.status, StatusCode::FORBIDDEN);
    let res = b
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
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.body.contains("expired"));
    assert_eq!(b.login("root", "a long password").await.status, 401);
}

async fn sessions_slide_and_end_after_idle_and_absolute_timeouts(backend: Backend) {
    use sea_orm::{EntityTrait, sea_query::Expr};
    use tessera::{domain::clock, storage::entities::session};
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let db = database(&app).await;
    let set = |col: session::Column, minutes_ago: i64| {
        let db = db.write.clone();
        async move {
            session::Entity::update_many()
                .col_expr(
                    col,
                    Expr::value(clock::now() - time::Duration::minutes(minutes_ago)),
                )
                .exec(&db)
                .await
                .expect("update sessions");
        }
    };
    let count = || {
        let db = db.read.clone();
        async move {
            session::Entity::find()
                .all(&db)
                .await
                .expect("sessions")
                .len()
        }
    };

    // Used 5 minutes ago: still live, and the request slides last_seen_at.
    let b = Browser::signed_in(&app, "alice").await;
    set(session::Column::LastSeenAt, 5).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::OK);
    let row = session::Entity::find()
        .one(&db.read)
        .await
        .expect("query")
        .expect("session");
    assert!(clock::now() - row.last_seen_at < time::Duration::minutes(1));

    // 31 minutes idle: over.
    set(session::Column::LastSeenAt, 31).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::SEE_OTHER);
    assert_eq!(count().await, 0, "the expired session is deleted");

    // Past the absolute lifetime, however recently used: over.
    let b = Browser::signed_in(&app, "alice").await;
    set(session::Column::ExpiresAt, 1).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::SEE_OTHER);
    assert_eq!(count().await, 0, "the expired session is deleted");
}

async fn the_dashboard_names_machine_users_with_old_secrets(backend: Backend) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use tessera::{domain::clock, storage::entities::client_secret};
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_machine("fresh-robot", &["profile"]);
    app.create_machine("old-robot", &["profile"]);
    let db = database(&app).await;
    let old = tessera::domain::principals::find_by_username(&db.read, "old-robot")
        .await
        .expect("query")
        .expect("machine user");
    client_secret::Entity::update_many()
        .col_expr(
            client_secret::Column::CreatedAt,
            Expr::value(clock::now() - time::Duration::days(91)),
        )
        .filter(client_secret::Column::MachineUserId.eq(old.id))
        .exec(&db.write)
        .await
        .expect("age the secret");
    let b = Browser::signed_in(&app, "boss").await;
    let home = b.get("/").await;
    home.expect(StatusCode::OK, "dashboard");
    assert!(
        home.body.contains(">old-robot</a>: secret created"),
        "{}",
        home.body
    );
    assert!(home.body.contains("91 days ago"));
    // (The orphans section below names both: made on the command line, no one looks after them.)
    let stale = home.body.split(r#"id="orphans""#).next().unwrap();
    assert!(!stale.contains("fresh-robot"));
}

/// The machine-token form offers what issuance allows: the policy maximum,
/// also above a year.
async fn the_machine_token_form_offers_the_policy_maximum(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_MAX_TOKEN_LIFETIME", "730d")]).await;
    app.create_user("boss", true);
    app.create_machine("long-lived", &["profile"]);
    let b = Browser::signed_in(&app, "boss").await;
    let list = b.get("/admin/machine-users").await;
    let row = list
        .body
        .split("<td")
        .find(|c| c.contains(">long-lived<"))
        .expect("row");
    let id = between(row, "href=\"/admin/machine-users/", "\"").expect("machine user link");
    let page = b.get(&format!("/admin/machine-users/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("at most 730 days"), "{}", page.body);
}

both_backends!(
    the_machine_token_form_offers_the_policy_maximum,
    first_admin_is_created_once_with_the_setup_code,
    sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session,
    failed_sign_ins_lock_that_account_only,
    a_machine_user_cannot_sign_in,
    a_disabled_user_cannot_sign_in_and_their_sessions_end,
    state_changing_forms_without_the_csrf_token_are_refused,
    a_personal_token_is_shown_once_and_works,
    a_duplicate_token_name_is_refused_with_the_form_kept,
    regenerated_and_revoked_personal_tokens_stop_working_at_once,
    someone_elses_personal_token_is_not_found,
    token_names_are_escaped,
    bad_input_gets_a_page_in_words_never_a_500,
    nul_characters_in_pages_and_forms_get_a_400_never_a_500,
    the_machine_token_form_refuses_a_persons_id,
    admin_pages_are_for_admins_only,
    every_admin_route_checks_the_caller_first,
    admins_manage_machine_users_secrets_and_machine_tokens,
    admins_manage_users_keys_and_see_the_dashboard,
    static_assets_are_served_and_pages_are_not_cached,
    expired_setup_codes_are_refused,
    the_dashboard_names_machine_users_with_old_secrets,
    cookies_are_secure_when_the_public_url_is_https,
    failed_sign_ins_from_one_address_are_throttled_across_accounts,
    sessions_slide_and_end_after_idle_and_absolute_timeouts,
);

#[tokio::test]
async fn unknown_urls_get_a_404_page_or_problem() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.text().await.unwrap().contains("There is no such page."));
    let res = app
        .client
        .get(app.url("/oauth2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
