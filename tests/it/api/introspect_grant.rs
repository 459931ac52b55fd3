//! `introspect` is for resource servers: only an administrator may hold it or
//! grant it (to a machine user, or to themselves). The API and the pages agree.

use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, web::Browser},
};

async fn only_admins_hold_or_grant_introspect(backend: Backend) {
    let api = Api::spawn(backend).await;
    let alice = api.user("alice", &["profile", "tokens:write"]);
    let refused = api
        .post(
            "/api/v1/tokens",
            &alice,
            &json!({"name": "rs", "scopes": ["introspect"], "expires_in_seconds": 3600}),
        )
        .await;
    refused.expect(400, "a user asking for introspect");
    assert!(refused.text.contains("scopes"), "{}", refused.text);
    assert!(refused.text.contains("introspect"), "{}", refused.text);

    // An admin whose token holds it may give it to themselves.
    let admin = api
        .app
        .admin_token(&["profile", "tokens:write", "introspect"]);
    api.post(
        "/api/v1/tokens",
        &admin,
        &json!({"name": "rs", "scopes": ["introspect"], "expires_in_seconds": 3600}),
    )
    .await
    .expect(201, "an admin's own introspect token");

    // The pages offer it to the admin only.
    let b = Browser::signed_in(&api.app, "alice").await;
    let form = b.get("/tokens/new").await;
    assert!(form.body.contains(r#"value="profile""#), "{}", form.body);
    assert!(!form.body.contains(r#"value="introspect""#));
    let boss = Browser::signed_in(&api.app, "admin").await;
    let form = boss.get("/tokens/new").await;
    assert!(form.body.contains(r#"value="introspect""#));
}

both_backends!(only_admins_hold_or_grant_introspect);
