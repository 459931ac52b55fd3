//! `introspect` is a scope like the others for people (INTERFACE §3: only
//! `admin:*` is kept for admins): a user may hold it and then introspect with
//! a Bearer token; a machine user holds it when an admin allows it. The API
//! and the pages agree.

use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, web::Browser},
};

async fn a_user_may_hold_introspect_and_use_it(backend: Backend) {
    let api = Api::spawn(backend).await;
    let alice = api.user("alice", &["profile", "tokens:write", "introspect"]);
    let made = api
        .post(
            "/api/v1/tokens",
            &alice,
            &json!({"name": "rs", "scopes": ["introspect"], "expires_in_seconds": 3600}),
        )
        .await;
    made.expect(201, "a user asking for introspect");
    let rs = made.body["token"].as_str().unwrap().to_owned();
    let res = api
        .app
        .client
        .post(api.app.url("/oauth2/introspect"))
        .bearer_auth(&rs)
        .form(&[("token", alice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: serde_json::Value = res.json().await.unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["username"], "alice");
    // A Bearer token without the scope is told which one it lacks (RFC 6750 §3).
    let bob = api.user("bob", &["profile"]);
    let lacking = api
        .app
        .client
        .post(api.app.url("/oauth2/introspect"))
        .bearer_auth(&bob)
        .form(&[("token", rs.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(lacking.status(), 403);
    assert_eq!(
        lacking.headers()["www-authenticate"],
        r#"Bearer realm="tessera", error="insufficient_scope", scope="introspect""#
    );

    // admin:* stays with admins.
    let refused = api
        .post(
            "/api/v1/tokens",
            &alice,
            &json!({"name": "adm", "scopes": ["admin:read"], "expires_in_seconds": 3600}),
        )
        .await;
    refused.expect(400, "a user asking for admin:read");
    assert!(refused.text.contains("admin:read"), "{}", refused.text);

    // The pages offer it like any other scope; admin:* to admins only.
    let b = Browser::signed_in(&api.app, "alice").await;
    let form = b.get("/tokens/new").await;
    assert!(form.body.contains(r#"value="introspect""#), "{}", form.body);
    assert!(!form.body.contains(r#"value="admin:read""#));
    api.app.create_user("boss", true);
    let boss = Browser::signed_in(&api.app, "boss").await;
    let form = boss.get("/tokens/new").await;
    assert!(form.body.contains(r#"value="introspect""#));
    assert!(form.body.contains(r#"value="admin:read""#));
}

both_backends!(a_user_may_hold_introspect_and_use_it);
