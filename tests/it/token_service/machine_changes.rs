//! Changes to a machine user take effect on its next request: two client
//! secrets rotating without downtime, narrowed scopes, a disabled or
//! demoted owner.

use super::post_form;
use crate::{
    both_backends,
    common::{Api, Backend, Reply, TestApp, token_request},
};
use serde_json::{Value, json};

/// A machine user with client credentials on (tokens for 10 minutes), made
/// through the management API; returns its id.
async fn api_machine(api: &Api, admin: &str, username: &str, scopes: &[&str]) -> String {
    let body = json!({"username": username, "scopes": scopes, "client_credentials": {"enabled": true, "access_token_ttl_minutes": 10}});
    let created = api.post("/api/v1/machine-users", admin, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn new_secret(api: &Api, admin: &str, id: &str) -> Reply {
    api.post_empty(&format!("/api/v1/machine-users/{id}/secrets"), admin)
        .await
}

async fn patch_machine(api: &Api, admin: &str, id: &str, body: Value) {
    let res = api
        .patch(&format!("/api/v1/machine-users/{id}"), admin, &body)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

async fn two_client_secrets_rotate_without_downtime(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let id = api_machine(&api, &admin, "rotating", &["profile"]).await;
    let first = new_secret(&api, &admin, &id).await;
    assert_eq!(first.status, 201);
    let second = new_secret(&api, &admin, &id).await;
    assert_eq!(second.status, 201);
    let third = new_secret(&api, &admin, &id).await;
    assert_eq!(third.status, 409, "a third secret is refused");
    let first_secret = first.body["client_secret"].as_str().unwrap();
    let second_secret = second.body["client_secret"].as_str().unwrap();
    // Both work at once; the TTL is the machine user's.
    let res: Value = app
        .client_credentials("rotating", first_secret, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["expires_in"], 600);
    app.access_token("rotating", second_secret).await;
    // Removing the old one stops it at once (it was cached), the new one goes on.
    let removed = api
        .delete(
            &format!(
                "/api/v1/machine-users/{id}/secrets/{}",
                first.body["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        app.client_credentials("rotating", first_secret, None)
            .await
            .status(),
        401
    );
    app.access_token("rotating", second_secret).await;
    // A slot is free again.
    assert_eq!(new_secret(&api, &admin, &id).await.status, 201);
}

async fn machine_user_changes_take_effect_on_the_next_request(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let id = api_machine(&api, &admin, "changing", &["profile", "introspect"]).await;
    let secret = new_secret(&api, &admin, &id).await.body["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = app.access_token("changing", &secret).await;
    let me: Value = app
        .get_bearer("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["scopes"], json!(["introspect", "profile"]));

    // Narrowing the allowed scopes narrows the live token.
    patch_machine(&api, &admin, &id, json!({"scopes": ["profile"]})).await;
    let me: Value = app
        .get_bearer("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["scopes"], json!(["profile"]));
    // Client credentials off: the grant is refused, existing tokens live on.
    patch_machine(
        &api,
        &admin,
        &id,
        json!({"client_credentials": {"enabled": false}}),
    )
    .await;
    let res = app.client_credentials("changing", &secret, None).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    // Disabled: its token is refused and introspects inactive; it cannot authenticate.
    patch_machine(
        &api,
        &admin,
        &id,
        json!({"enabled": false, "client_credentials": {"enabled": true}}),
    )
    .await;
    assert_eq!(app.me_status(&token).await, 401);
    let rs = app.create_machine("resource-server", &["introspect"]);
    let body: Value = post_form(
        app,
        "/oauth2/introspect",
        &[("token", &token)],
        Some(("resource-server", &rs)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body, json!({"active": false}));
    assert_eq!(
        app.client_credentials("changing", &secret, None)
            .await
            .status(),
        401
    );
    // Enabled again: the token works again (it was never revoked).
    patch_machine(&api, &admin, &id, json!({"enabled": true})).await;
    assert_eq!(app.me_status(&token).await, 200);
    // Deleted: its tokens die with it.
    let deleted = api
        .delete(&format!("/api/v1/machine-users/{id}"), &admin)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(app.me_status(&token).await, 401);
    assert_eq!(
        app.client_credentials("changing", &secret, None)
            .await
            .status(),
        401
    );
}

async fn a_disabled_or_demoted_owner_loses_power_at_once(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write", "profile"]);
    app.create_user("carol", true);
    let carol = app.token_for("carol", &["profile", "admin:read"]);
    let me = api.get("/api/v1/me", &carol).await;
    assert_eq!(me.body["scopes"], json!(["admin:read", "profile"]));
    let carol_id = me.body["id"].as_str().unwrap().to_owned();
    // Demoted: admin:read is gone from the live token.
    let demoted = api
        .patch(
            &format!("/api/v1/users/{carol_id}"),
            &admin,
            &json!({"role": "user"}),
        )
        .await;
    assert_eq!(demoted.status, 200);
    let me = api.get("/api/v1/me", &carol).await;
    assert_eq!(me.body["scopes"], json!(["profile"]));
    assert_eq!(api.get("/api/v1/users", &carol).await.status, 403);
    // Disabled: the token is refused.
    let disabled = api
        .patch(
            &format!("/api/v1/users/{carol_id}"),
            &admin,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(app.me_status(&carol).await, 401);
}

/// Tokens asked for while their machine user is being deleted: each request
/// either gets its token or finds the machine user gone, never a 500 (the
/// owner vanished between its authentication and the token's record).
async fn a_machine_user_deleted_mid_request_is_gone_not_a_server_error(backend: Backend) {
    // Refused client authentications must not be throttled here.
    let app = TestApp::spawn_with(backend, &[("TESSERA_AUTH_FAILURES_PER_IP", "100000/1m")]).await;
    let api = Api { app };
    let admin = api.admin();
    for round in 0..10 {
        let username = format!("doomed-{round}");
        let id = api_machine(&api, &admin, &username, &["profile"]).await;
        let secret = new_secret(&api, &admin, &id).await.body["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/api/v1/machine-users/{id}/tokens");
        let mut existing = Vec::new();
        for i in 0..5 {
            let made = api
                .post(
                    &path,
                    &admin,
                    &token_request(&format!("old{i}"), &["profile"]),
                )
                .await;
            made.expect(201, "a machine token to regenerate");
            existing.push(made.body["id"].as_str().unwrap().to_owned());
        }
        let mut own = Vec::new();
        for _ in 0..5 {
            own.push(api.app.access_token(&username, &secret).await);
        }
        let revoked = own.iter().map(|token| {
            let (app, username, secret) = (&api.app, &username, &secret);
            async move {
                let res = app
                    .client
                    .post(app.url("/oauth2/revoke"))
                    .basic_auth(username, Some(secret))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            }
        });
        let client = (0..40).map(|_| async {
            let res = api.app.client_credentials(&username, &secret, None).await;
            res.status().as_u16()
        });
        let machine = (0..10).map(|i| {
            let (api, admin, path) = (&api, &admin, &path);
            async move {
                let body = token_request(&format!("t{i}"), &["profile"]);
                api.post(path, admin, &body).await.status
            }
        });
        let regenerated = existing.iter().map(|token| {
            let (api, admin) = (&api, &admin);
            async move {
                let path = format!("/api/v1/admin/tokens/{token}/regenerate");
                api.post_empty(&path, admin).await.status
            }
        });
        let delete = async {
            // Later each round, to meet the requests at different stages.
            tokio::time::sleep(std::time::Duration::from_millis(round)).await;
            api.delete(&format!("/api/v1/machine-users/{id}"), &admin)
                .await
                .status
        };
        let (client, machine, regenerated, revoked, deleted) = tokio::join!(
            futures_util::future::join_all(client),
            futures_util::future::join_all(machine),
            futures_util::future::join_all(regenerated),
            futures_util::future::join_all(revoked),
            delete
        );
        assert_eq!(deleted, 204, "round {round}");
        assert!(
            client.iter().all(|s| [200, 401].contains(s)),
            "round {round}: {client:?}"
        );
        assert!(
            machine.iter().all(|s| [201, 404].contains(s)),
            "round {round}: {machine:?}"
        );
        assert!(
            regenerated.iter().all(|s| [201, 404].contains(s)),
            "round {round}: {regenerated:?}"
        );
        assert!(
            revoked.iter().all(|s| [200, 401].contains(s)),
            "round {round}: {revoked:?}"
        );
    }
}

both_backends!(
    two_client_secrets_rotate_without_downtime,
    a_machine_user_deleted_mid_request_is_gone_not_a_server_error,
    machine_user_changes_take_effect_on_the_next_request,
    a_disabled_or_demoted_owner_loses_power_at_once,
);
