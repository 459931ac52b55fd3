//! RFC 6750 challenges and the scope table of INTERFACE §6.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{Api, Backend, Reply},
};

const ZERO: &str = "00000000-0000-0000-0000-000000000000";

/// Every admin route of the contract, with the scope it needs.
fn admin_routes() -> Vec<(Method, String, &'static str)> {
    let id = ZERO;
    vec![
        (Method::GET, "/api/v1/machine-users".into(), "admin:read"),
        (Method::POST, "/api/v1/machine-users".into(), "admin:write"),
        (
            Method::GET,
            format!("/api/v1/machine-users/{id}"),
            "admin:read",
        ),
        (
            Method::PATCH,
            format!("/api/v1/machine-users/{id}"),
            "admin:write",
        ),
        (
            Method::DELETE,
            format!("/api/v1/machine-users/{id}"),
            "admin:write",
        ),
        (
            Method::POST,
            format!("/api/v1/machine-users/{id}/secrets"),
            "admin:write",
        ),
        (
            Method::DELETE,
            format!("/api/v1/machine-users/{id}/secrets/{id}"),
            "admin:write",
        ),
        (
            Method::POST,
            format!("/api/v1/machine-users/{id}/tokens"),
            "admin:write",
        ),
        (Method::GET, "/api/v1/admin/tokens".into(), "admin:read"),
        (
            Method::DELETE,
            format!("/api/v1/admin/tokens/{id}"),
            "admin:write",
        ),
        (Method::GET, "/api/v1/users".into(), "admin:read"),
        (Method::POST, "/api/v1/users".into(), "admin:write"),
        (Method::PATCH, format!("/api/v1/users/{id}"), "admin:write"),
        (Method::POST, "/api/v1/scopes".into(), "admin:write"),
        (Method::GET, "/api/v1/audit".into(), "admin:read"),
    ]
}

fn body_for(method: &Method) -> Option<Value> {
    (*method == Method::POST || *method == Method::PATCH).then(|| json!({}))
}

#[track_caller]
fn assert_insufficient(res: &Reply, scope: &str, what: &str) {
    res.expect(403, what);
    assert_eq!(res.problem(), "insufficient-scope", "{what}");
    let challenge = res.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(&format!(r#"scope="{scope}""#)),
        "{what}: {challenge}"
    );
}

async fn missing_and_bad_tokens_get_rfc6750_challenges(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let res = api.call(Method::GET, "/api/v1/tokens", None, None).await;
    res.expect(401, "no token");
    assert_eq!(
        res.header("www-authenticate"),
        Some(r#"Bearer realm="tessera""#)
    );
    assert_eq!(res.problem(), "unauthorized");

    for bad in ["garbage", "a.b.c", &format!("{admin}x")] {
        let res = api.get("/api/v1/me", bad).await;
        res.expect(401, bad);
        let challenge = res.header("www-authenticate").unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
    let basic = api
        .app
        .client
        .get(api.app.url("/api/v1/me"))
        .basic_auth("admin", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401, "Basic is not a Bearer token");
    // No Bearer token was sent: a bare challenge, no error (RFC 6750 §3.1).
    assert_eq!(
        basic.headers()["www-authenticate"],
        r#"Bearer realm="tessera""#
    );

    // An unauthenticated write learns nothing about its body.
    let res = api
        .call(
            Method::POST,
            "/api/v1/users",
            None,
            Some(&json!({"nonsense": 1})),
        )
        .await;
    res.expect(401, "no token, bad body");
}

async fn a_users_token_is_refused_on_every_admin_route(backend: Backend) {
    let api = Api::spawn(backend).await;
    let user = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    for (method, path, scope) in admin_routes() {
        let what = format!("{method} {path}");
        let res = api
            .call(
                method.clone(),
                &path,
                Some(&user),
                body_for(&method).as_ref(),
            )
            .await;
        assert_insufficient(&res, scope, &what);
    }
    // …while the user's own routes work.
    api.get("/api/v1/tokens", &user)
        .await
        .expect(200, "own tokens");
    api.get("/api/v1/scopes", &user).await.expect(200, "scopes");
}

async fn an_admin_token_without_admin_write_cannot_write(backend: Backend) {
    let api = Api::spawn(backend).await;
    api.admin();
    let reader = api.app.token_for("admin", &["admin:read"]);
    for (method, path, scope) in admin_routes() {
        let what = format!("{method} {path}");
        let res = api
            .call(
                method.clone(),
                &path,
                Some(&reader),
                body_for(&method).as_ref(),
            )
            .await;
        if scope == "admin:write" {
            assert_insufficient(&res, scope, &what);
        } else {
            assert!(
                res.status == 200 || res.status == 404,
                "{what}: {}",
                res.text
            );
        }
    }
    // Nor the user's own routes without tokens:*.
    let res = api.get("/api/v1/tokens", &reader).await;
    assert_insufficient(&res, "tokens:read", "own tokens with admin:read");
    let res = api.get("/api/v1/me", &reader).await;
    assert_insufficient(&res, "profile", "me without profile");
}

async fn demoting_an_admin_removes_admin_power_on_the_next_request(backend: Backend) {
    let api = Api::spawn(backend).await;
    let root = api.admin();
    api.app.create_user("bob", true);
    let bob = api
        .app
        .token_for("bob", &["profile", "admin:read", "admin:write"]);
    api.get("/api/v1/users", &bob)
        .await
        .expect(200, "bob is an admin");
    let me = api.get("/api/v1/me", &bob).await;
    assert_eq!(me.body["role"], "admin");
    let bob_id = me.body["id"].as_str().unwrap().to_owned();

    api.patch(
        &format!("/api/v1/users/{bob_id}"),
        &root,
        &json!({"role": "user"}),
    )
    .await
    .expect(200, "demote bob");

    let res = api.get("/api/v1/users", &bob).await;
    assert_insufficient(&res, "admin:read", "bob's token after demotion");
    let res = api
        .post(
            "/api/v1/machine-users",
            &bob,
            &json!({"username": "sneaky"}),
        )
        .await;
    assert_insufficient(&res, "admin:write", "bob's write after demotion");
    let me = api.get("/api/v1/me", &bob).await;
    me.expect(200, "bob is still a user");
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["scopes"], json!(["profile"]), "effective scopes");

    // Promoted again: the same token regains its power.
    api.patch(
        &format!("/api/v1/users/{bob_id}"),
        &root,
        &json!({"role": "admin"}),
    )
    .await
    .expect(200, "promote bob");
    api.get("/api/v1/users", &bob)
        .await
        .expect(200, "admin again");
}

async fn a_token_cannot_mint_a_token_with_more_than_it_holds(backend: Backend) {
    let api = Api::spawn(backend).await;
    api.admin();
    let narrow = api.app.token_for("admin", &["tokens:write"]);
    let res = api
        .post(
            "/api/v1/tokens",
            &narrow,
            &crate::common::token_request("escalate", &["admin:write"]),
        )
        .await;
    res.expect(403, "escalation");
    assert_eq!(res.problem(), "forbidden");
    api.post(
        "/api/v1/tokens",
        &narrow,
        &crate::common::token_request("same", &["tokens:write"]),
    )
    .await
    .expect(201, "within its own scopes");
}

both_backends!(
    missing_and_bad_tokens_get_rfc6750_challenges,
    a_users_token_is_refused_on_every_admin_route,
    an_admin_token_without_admin_write_cannot_write,
    demoting_an_admin_removes_admin_power_on_the_next_request,
    a_token_cannot_mint_a_token_with_more_than_it_holds
);
