//! The admin console: admins only, every route checking its caller first,
//! machine users with their secrets and tokens, users, keys and the dashboard.

use super::user_id;
use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        web::{Browser, between},
    },
};
use reqwest::{StatusCode, header};

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
    "/admin/resource-servers/0190a0f4-0000-7000-8000-000000000000/delete",
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
    "/admin/webhooks/0190a0f4-0000-7000-8000-000000000000/delete",
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
        assert_eq!(
            page.headers[header::LOCATION],
            "/login?notice=unsaved",
            "POST {path}"
        );
    }
    // A form sent from one of our pages after the session ended: back to that
    // page after signing in, told that nothing was saved.
    let origin = app.url("");
    let from = format!("{}/admin/webhooks?x=1", origin.trim_end_matches('/'));
    let page = nobody
        .post_with("/admin/webhooks", &[], &[("referer", from.as_str())])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let to = page.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(to, "/login?next=%2Fadmin%2Fwebhooks%3Fx%3D1&notice=unsaved");
    let login = nobody.get(&to).await;
    login.expect(StatusCode::OK, "sign-in page");
    assert!(
        login.body.contains("what you sent was not saved"),
        "{}",
        login.body
    );
    assert!(
        login
            .body
            .contains(r#"<input type="hidden" name="next" value="/admin/webhooks?x=1">"#),
        "{}",
        login.body
    );
    // A foreign `Referer` names a path here at most.
    let page = nobody
        .post_with(
            "/admin/webhooks",
            &[],
            &[("referer", "https://evil.example//evil.example/x")],
        )
        .await;
    assert_eq!(page.headers[header::LOCATION], "/login?notice=unsaved");
    // Nothing was made by any of it.
    let scopes = boss.get("/admin/scopes").await;
    scopes.expect(StatusCode::OK, "scopes");
    assert!(!scopes.body.contains("<code>x</code></td>"));
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
    // Uses are written every second, for the dashboard's count below.
    let app = TestApp::spawn_with(backend, &[("TESSERA_USAGE_FLUSH_INTERVAL", "1s")]).await;
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

    // The dashboard counts today's issued tokens and validations, the latter
    // once the uses are written.
    let started = std::time::Instant::now();
    let home = loop {
        let home = b.get("/").await;
        if home.body.contains("Token validations per day: 1 in total")
            || started.elapsed() > std::time::Duration::from_secs(20)
        {
            break home;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
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

both_backends!(
    admin_pages_are_for_admins_only,
    every_admin_route_checks_the_caller_first,
    admins_manage_machine_users_secrets_and_machine_tokens,
    admins_manage_users_keys_and_see_the_dashboard,
);
