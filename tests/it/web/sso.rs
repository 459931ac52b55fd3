//! Single sign-on (INTERFACE §10) against a real OpenID Provider, on both
//! backends: first and later sign-ins, roles from groups (and a demotion
//! reaching existing tokens), renames, the allow-list, taken usernames,
//! disabled users, bad username claims, and password sign-in off.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        oidc::{ADMIN_GROUP, Sso, account, sign_in, signed_in},
        web::Browser,
    },
};

async fn api(app: &TestApp, path: &str, token: &str) -> Value {
    let res = app.get_bearer(path, token).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.expect("json")
}

async fn users_named(app: &TestApp, admin: &str, username: &str) -> Vec<Value> {
    api(app, "/api/v1/users?limit=500", admin).await["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|u| u["username"] == username)
        .cloned()
        .collect()
}

async fn audit(app: &TestApp, admin: &str, action: &str) -> Vec<Value> {
    api(
        app,
        &format!("/api/v1/audit?action={action}&limit=500"),
        admin,
    )
    .await["items"]
        .as_array()
        .expect("items")
        .clone()
}

async fn first_sign_in_creates_the_user_and_later_ones_reuse_it(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({"sub-alice": account("Alice", &[ADMIN_GROUP])}),
        &[],
    )
    .await;
    let app = &sso.app;
    let admin = app.admin_token(&["admin:read"]);
    let b = Browser::new(app);

    let login = b.get("/login").await;
    login.expect(StatusCode::OK, "sign-in page");
    assert!(
        login.body.contains("Sign in with Test IdP"),
        "{}",
        login.body
    );
    assert!(login.body.contains(r#"href="/login/oidc""#));
    assert!(
        login.body.contains(r#"name="password""#),
        "passwords stay on by default"
    );

    let done = sign_in(&b, "sub-alice").await;
    done.expect(StatusCode::SEE_OTHER, "signed in");
    assert_eq!(done.location(), "/");
    let home = b.get("/").await;
    home.expect(StatusCode::OK, "dashboard");
    assert!(home.body.contains("alice (admin)"), "{}", home.body);

    let users = users_named(app, &admin, "alice").await;
    assert_eq!(users.len(), 1);
    let alice = &users[0];
    assert_eq!(alice["auth"], "oidc");
    assert_eq!(alice["role"], "admin");
    assert_eq!(alice["email"], "alice@example.com");

    // A second sign-in, in another browser: the same user, no new one.
    let again = Browser::new(app);
    sign_in(&again, "sub-alice")
        .await
        .expect(StatusCode::SEE_OTHER, "second sign-in");
    let users = users_named(app, &admin, "alice").await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], alice["id"]);
    assert_eq!(
        audit(app, &admin, "user.create")
            .await
            .iter()
            .filter(|e| e["details"]["via"] == "oidc")
            .count(),
        1
    );

    let logins = audit(app, &admin, "session.login").await;
    let by_sso: Vec<&Value> = logins
        .iter()
        .filter(|e| e["actor"]["username"] == "alice")
        .collect();
    assert_eq!(by_sso.len(), 2);
    assert!(by_sso.iter().all(|e| e["details"]["method"] == "oidc"));

    // The password path says its method too.
    app.create_user("pat", false);
    Browser::signed_in(app, "pat").await;
    let logins = audit(app, &admin, "session.login").await;
    let pat = logins
        .iter()
        .find(|e| e["actor"]["username"] == "pat")
        .expect("pat's sign-in");
    assert_eq!(pat["details"]["method"], "password");
    let wrong = Browser::new(app).login("pat", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let failed = audit(app, &admin, "session.login_failed").await;
    assert!(failed.iter().any(|e| e["details"]["method"] == "password"));
}

async fn roles_follow_groups_at_every_sign_in_and_a_demotion_reaches_tokens(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({"sub-alice": account("alice", &[ADMIN_GROUP, "staff"])}),
        &[],
    )
    .await;
    let app = &sso.app;
    let b = Browser::new(app);
    sign_in(&b, "sub-alice")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
    let (token, _) = b.create_token("ci", &["admin:read", "profile"]).await;
    assert_eq!(app.get_bearer("/api/v1/users", &token).await.status(), 200);

    // Out of the admin group at the provider: a user at the next sign-in,
    // and the token made while an admin loses admin power at once.
    sso.idp
        .set_account("sub-alice", account("alice", &["staff"]))
        .await;
    sign_in(&b, "sub-alice")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in again");
    let home = b.get("/").await;
    home.expect(StatusCode::OK, "the dashboard as a user");
    assert!(home.body.contains("alice"), "{}", home.body);
    assert!(!home.body.contains("alice (admin)"), "{}", home.body);
    assert_eq!(app.get_bearer("/api/v1/users", &token).await.status(), 403);
    assert_eq!(app.me_status(&token).await, 200, "the rest still works");

    // Back in the group: admin again.
    sso.idp
        .set_account("sub-alice", account("alice", &[ADMIN_GROUP]))
        .await;
    sign_in(&b, "sub-alice")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in again");
    assert!(b.get("/").await.body.contains("alice (admin)"));
    assert_eq!(app.get_bearer("/api/v1/users", &token).await.status(), 200);
}

async fn a_rename_at_the_provider_follows_the_same_user(backend: Backend) {
    let sso = Sso::spawn(backend, json!({"sub-1": account("carol", &[])}), &[]).await;
    let app = &sso.app;
    let admin = app.admin_token(&["admin:read"]);
    let b = Browser::new(app);
    sign_in(&b, "sub-1")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
    let before = users_named(app, &admin, "carol").await;
    sso.idp
        .set_account(
            "sub-1",
            json!({"preferred_username": "Carol.Smith", "email": "carol.smith@example.com", "groups": []}),
        )
        .await;
    sign_in(&b, "sub-1")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
    let after = users_named(app, &admin, "carol.smith").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], before[0]["id"]);
    assert_eq!(after[0]["email"], "carol.smith@example.com");
    assert!(users_named(app, &admin, "carol").await.is_empty());

    // An address the provider has not verified is not taken.
    sso.idp
        .set_account(
            "sub-1",
            json!({"preferred_username": "Carol.Smith", "email": "someone.else@example.com", "email_verified": false, "groups": []}),
        )
        .await;
    sign_in(&b, "sub-1")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
    let after = users_named(app, &admin, "carol.smith").await;
    assert_eq!(after[0]["email"], "carol.smith@example.com");
}

async fn a_username_taken_by_a_user_or_machine_user_is_refused(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({
            "sub-bob": account("Bob", &[ADMIN_GROUP]),
            "sub-robot": account("robot", &[]),
        }),
        &[],
    )
    .await;
    let app = &sso.app;
    let admin = app.admin_token(&["admin:read"]);
    app.create_user("bob", false);
    app.create_machine("robot", &["profile"]);
    for sub in ["sub-bob", "sub-robot"] {
        let b = Browser::new(app);
        let page = sign_in(&b, sub).await;
        page.expect(StatusCode::FORBIDDEN, "taken");
        assert!(page.body.contains("already taken"), "{}", page.body);
        assert!(!signed_in(&b).await, "no session");
    }
    let bob = users_named(app, &admin, "bob").await;
    assert_eq!(bob[0]["auth"], "password", "the password user is untouched");
    assert_eq!(bob[0]["role"], "user", "and not made an admin");
    let failed = audit(app, &admin, "session.login_failed").await;
    assert_eq!(
        failed
            .iter()
            .filter(
                |e| e["details"]["method"] == "oidc" && e["details"]["reason"] == "username taken"
            )
            .count(),
        2
    );
}

async fn the_allow_list_keeps_others_out(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({
            "s-out": account("outsider", &["contractors"]),
            "s-in": account("insider", &["staff"]),
            "s-admin": account("boss", &[ADMIN_GROUP]),
            "s-staff-admin": account("chief", &[ADMIN_GROUP, "ops"]),
        }),
        &[("TESSERA_OIDC_ALLOWED_GROUPS", "staff, ops")],
    )
    .await;
    let app = &sso.app;
    // An admin group alone is not on the list (INTERFACE §10: others are
    // refused); an admin who is also in an allowed group gets in.
    for sub in ["s-out", "s-admin"] {
        let out = Browser::new(app);
        let page = sign_in(&out, sub).await;
        page.expect(StatusCode::FORBIDDEN, sub);
        assert!(page.body.contains("not in a group"), "{}", page.body);
        assert!(!signed_in(&out).await);
    }
    for sub in ["s-in", "s-staff-admin"] {
        let b = Browser::new(app);
        sign_in(&b, sub).await.expect(StatusCode::SEE_OTHER, sub);
        assert!(signed_in(&b).await);
    }
    let admin = app.admin_token(&["admin:read"]);
    for name in ["outsider", "boss"] {
        assert!(
            users_named(app, &admin, name).await.is_empty(),
            "nobody created"
        );
    }
    assert_eq!(users_named(app, &admin, "chief").await[0]["role"], "admin");
}

async fn a_disabled_user_cannot_sign_in(backend: Backend) {
    let sso = Sso::spawn(backend, json!({"s-dave": account("dave", &[])}), &[]).await;
    let app = &sso.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let b = Browser::new(app);
    sign_in(&b, "s-dave")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
    let id = users_named(app, &admin, "dave").await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(res.status(), 200);
    assert!(!signed_in(&b).await, "the session ended");
    let again = Browser::new(app);
    let page = sign_in(&again, "s-dave").await;
    page.expect(StatusCode::FORBIDDEN, "disabled");
    assert!(page.body.contains("disabled"), "{}", page.body);
    assert!(!signed_in(&again).await);
}

async fn a_claim_that_cannot_be_a_username_is_refused_naming_it(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({
            "s-1": {"preferred_username": "Eve Example", "upn": "eve", "groups": []},
            "s-2": {"upn": "Frank", "groups": []},
        }),
        &[],
    )
    .await;
    let b = Browser::new(&sso.app);
    let page = sign_in(&b, "s-1").await;
    page.expect(StatusCode::FORBIDDEN, "bad claim");
    assert!(page.body.contains("preferred_username"), "{}", page.body);
    assert!(page.body.contains("Eve Example"), "{}", page.body);
    // A new browser: the provider remembers who signed in at it.
    let b = Browser::new(&sso.app);
    let page = sign_in(&b, "s-2").await;
    page.expect(StatusCode::FORBIDDEN, "missing claim");
    assert!(
        page.body.contains("did not send the claim"),
        "{}",
        page.body
    );
    assert!(!signed_in(&b).await);

    // Another claim can be chosen.
    let sso = Sso::spawn(
        backend,
        json!({"s-2": {"upn": "Frank", "groups": []}}),
        &[("TESSERA_OIDC_USERNAME_CLAIM", "upn")],
    )
    .await;
    let b = Browser::new(&sso.app);
    sign_in(&b, "s-2")
        .await
        .expect(StatusCode::SEE_OTHER, "upn");
    assert!(b.get("/").await.body.contains("frank"));
}

async fn with_password_sign_in_off_only_sso_signs_people_in(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({
            "s-root": account("root", &[ADMIN_GROUP]),
            "s-user": account("user1", &[]),
        }),
        &[("TESSERA_PASSWORD_LOGIN", "off")],
    )
    .await;
    let app = &sso.app;
    let b = Browser::new(app);
    let login = b.get("/login").await;
    login.expect(StatusCode::OK, "sign-in page");
    assert!(login.body.contains("Sign in with Test IdP"));
    assert!(!login.body.contains(r#"name="password""#), "{}", login.body);
    assert!(!login.body.contains(r#"action="/login""#));
    let post = b
        .post("/login", &[("username", "x"), ("password", "y")])
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get("/setup?code=anything").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.post("/setup", &[("code", "x")]).await.status,
        StatusCode::NOT_FOUND
    );

    // The first person of an admin group to sign in is an administrator.
    sign_in(&b, "s-root")
        .await
        .expect(StatusCode::SEE_OTHER, "root");
    assert!(b.get("/admin/users").await.status == StatusCode::OK);
    let u = Browser::new(app);
    sign_in(&u, "s-user")
        .await
        .expect(StatusCode::SEE_OTHER, "user1");
    assert_eq!(u.get("/admin/users").await.status, StatusCode::FORBIDDEN);

    // The command line still works, for recovery.
    app.create_user("rescue", true);
    let token = app.token_for("rescue", &["admin:read"]);
    assert_eq!(app.get_bearer("/api/v1/users", &token).await.status(), 200);
}

/// Without `TESSERA_OIDC_ADMIN_GROUPS` roles are Tessera's own: a person an
/// admin promoted stays an admin through later sign-ins.
async fn without_admin_groups_sign_in_leaves_roles_to_admins(backend: Backend) {
    let sso = Sso::spawn(
        backend,
        json!({"sub-erin": account("erin", &[ADMIN_GROUP])}),
        &[("TESSERA_OIDC_ADMIN_GROUPS", "")],
    )
    .await;
    let app = &sso.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let b = Browser::new(app);
    sign_in(&b, "sub-erin")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
    let erin = users_named(app, &admin, "erin").await;
    assert_eq!(
        erin[0]["role"], "user",
        "no admin groups: a new person is a user"
    );
    let id = erin[0]["id"].as_str().expect("id").to_owned();
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(res.status(), 200);
    let again = Browser::new(app);
    sign_in(&again, "sub-erin")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in again");
    assert!(again.get("/").await.body.contains("erin (admin)"));
    assert_eq!(users_named(app, &admin, "erin").await[0]["role"], "admin");
}

both_backends!(
    first_sign_in_creates_the_user_and_later_ones_reuse_it,
    roles_follow_groups_at_every_sign_in_and_a_demotion_reaches_tokens,
    without_admin_groups_sign_in_leaves_roles_to_admins,
    a_rename_at_the_provider_follows_the_same_user,
    a_username_taken_by_a_user_or_machine_user_is_refused,
    the_allow_list_keeps_others_out,
    a_disabled_user_cannot_sign_in,
    a_claim_that_cannot_be_a_username_is_refused_naming_it,
    with_password_sign_in_off_only_sso_signs_people_in,
);
