//! `/api/v1/machine-users`: CRUD, client secrets and machine tokens.

use reqwest::Method;
use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, token_request},
};

async fn an_admin_manages_a_machine_user_end_to_end(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();

    let created = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({
                "username": "billing-sync",
                "display_name": "Billing sync",
                "description": "nightly export",
                "contact_email": "ops@example.com",
                "scopes": ["profile"],
                "client_credentials": {"enabled": true, "access_token_ttl_minutes": 15}
            }),
        )
        .await;
    created.expect(201, "create machine user");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let at = format!("/api/v1/machine-users/{id}");
    assert_eq!(created.header("location"), Some(at.as_str()));
    assert_eq!(created.body["username"], "billing-sync");
    assert_eq!(created.body["scopes"], json!(["profile"]));
    assert_eq!(created.body["enabled"], true);
    assert_eq!(
        created.body["client_credentials"],
        json!({"enabled": true, "access_token_ttl_minutes": 15})
    );
    assert_eq!(created.body["secrets"], json!([]), "no secret on create");
    assert_eq!(created.body["created_by"]["username"], "admin");
    assert!(created.body.get("client_secret").is_none());

    // Defaults: client credentials off, TTL 60.
    let plain = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "plain"}),
        )
        .await;
    plain.expect(201, "only username");
    assert_eq!(
        plain.body["client_credentials"],
        json!({"enabled": false, "access_token_ttl_minutes": 60})
    );

    api.get(&at, &admin).await.expect(200, "get");
    let ids = api.all_ids("/api/v1/machine-users", &admin, 1).await;
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id));

    let patched = api
        .patch(
            &at,
            &admin,
            &json!({"display_name": "Billing", "client_credentials": {"access_token_ttl_minutes": 30}}),
        )
        .await;
    patched.expect(200, "patch");
    assert_eq!(patched.body["display_name"], "Billing");
    assert_eq!(patched.body["description"], "nightly export", "untouched");
    assert_eq!(
        patched.body["contact_email"], "ops@example.com",
        "untouched"
    );
    // `null` removes the address, as it does a user's (RFC 7396).
    let cleared = api
        .patch(&at, &admin, &json!({"contact_email": null}))
        .await;
    cleared.expect(200, "patch the address away");
    assert_eq!(cleared.body["contact_email"], "");
    assert_eq!(cleared.body["display_name"], "Billing", "untouched");
    assert_eq!(
        patched.body["client_credentials"],
        json!({"enabled": true, "access_token_ttl_minutes": 30})
    );

    // Secrets: two at most, shown once, usable at the token endpoint.
    let first = api.post_empty(&format!("{at}/secrets"), &admin).await;
    first.expect(201, "first secret");
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let secret_id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        first.header("location"),
        Some(format!("{at}/secrets/{secret_id}").as_str())
    );
    let secret = first.body["client_secret"].as_str().unwrap().to_owned();
    assert!(first.body["created_at"].is_string());
    api.post_empty(&format!("{at}/secrets"), &admin)
        .await
        .expect(201, "second secret");
    let third = api.post_empty(&format!("{at}/secrets"), &admin).await;
    third.expect(409, "third secret");
    let view = api.get(&at, &admin).await;
    view.expect(200, "machine user");
    assert_eq!(view.body["secrets"].as_array().unwrap().len(), 2);
    assert!(!view.text.contains(&secret), "secret shown again");

    let cc = api
        .app
        .client_credentials("billing-sync", &secret, None)
        .await;
    assert_eq!(cc.status(), 200, "client credentials with the new secret");

    api.delete(&format!("{at}/secrets/{secret_id}"), &admin)
        .await
        .expect(204, "delete secret");
    api.delete(&format!("{at}/secrets/{secret_id}"), &admin)
        .await
        .expect(404, "delete secret again");
    let cc = api
        .app
        .client_credentials("billing-sync", &secret, None)
        .await;
    assert_eq!(cc.status(), 401, "deleted secret refused");
    api.post_empty(&format!("{at}/secrets"), &admin)
        .await
        .expect(201, "room for another secret");

    // A machine token, issued without logging in as the machine user.
    let token = api
        .post(
            &format!("{at}/tokens"),
            &admin,
            &token_request("exporter", &["profile"]),
        )
        .await;
    token.expect(201, "machine token");
    assert_eq!(token.body["kind"], "machine");
    assert_eq!(token.body["owner"]["username"], "billing-sync");
    assert_eq!(token.body["owner"]["type"], "machine");
    assert_eq!(token.header("cache-control"), Some("no-store"));
    let token_id = token.body["id"].as_str().unwrap();
    assert_eq!(
        token.header("location"),
        Some(format!("{at}/tokens/{token_id}").as_str())
    );
    let machine_secret = token.body["token"].as_str().unwrap().to_owned();
    let me = api.get("/api/v1/me", &machine_secret).await;
    me.expect(200, "machine token works");
    assert_eq!(me.body["type"], "machine");
    assert_eq!(me.body["role"], serde_json::Value::Null);
    api.get(&format!("/api/v1/admin/tokens/{token_id}"), &admin)
        .await
        .expect(200, "admin reads the machine token");
    // Outside its allowed scopes: refused.
    api.post(
        &format!("{at}/tokens"),
        &admin,
        &token_request("too-much", &["tokens:read"]),
    )
    .await
    .expect(400, "scope not allowed for the machine user");

    // Narrowing its scopes takes effect on the next request.
    api.patch(&at, &admin, &json!({"scopes": []}))
        .await
        .expect(200, "narrow");
    api.get("/api/v1/me", &machine_secret)
        .await
        .expect(403, "profile no longer allowed");

    // Delete: gone, its token with it.
    api.delete(&at, &admin).await.expect(204, "delete");
    api.get(&at, &admin).await.expect(404, "deleted");
    api.delete(&at, &admin).await.expect(404, "deleted twice");
    api.get("/api/v1/me", &machine_secret)
        .await
        .expect(401, "token of a deleted machine user");
}

async fn machine_user_input_is_validated_and_nothing_half_written(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    api.app.create_user("alice", false);
    let cases = [
        (json!({}), 400, Some("username"), "no username"),
        (
            json!({"username": "Bad Name"}),
            400,
            Some("username"),
            "bad username",
        ),
        (
            json!({"username": "alice"}),
            409,
            None,
            "username of a user",
        ),
        (
            json!({"username": "admin"}),
            409,
            None,
            "username of the admin",
        ),
        (
            json!({"username": "mu1", "scopes": ["admin:read"]}),
            400,
            Some("scopes"),
            "admin scope",
        ),
        (
            json!({"username": "mu1", "scopes": ["nope"]}),
            400,
            Some("scopes"),
            "unknown scope",
        ),
        (
            json!({"username": "mu1", "contact_email": "not-an-email"}),
            400,
            Some("contact_email"),
            "email",
        ),
        (
            json!({"username": "mu1", "client_credentials": {"access_token_ttl_minutes": 0}}),
            400,
            Some("client_credentials.access_token_ttl_minutes"),
            "ttl 0",
        ),
        (
            json!({"username": "mu1", "client_credentials": {"access_token_ttl_minutes": 1441}}),
            400,
            Some("client_credentials.access_token_ttl_minutes"),
            "ttl 1441",
        ),
        (
            json!({"username": "mu1", "client_credentials": {"ttl": 5}}),
            400,
            None,
            "unknown nested field",
        ),
        (
            json!({"username": "mu1", "client_credentials": [true, 60]}),
            400,
            Some("client_credentials"),
            "an array in place of the nested object",
        ),
        (
            json!({"username": "mu1", "client_credentials": {"enabled": "yes"}}),
            400,
            Some("client_credentials.enabled"),
            "a nested value of the wrong type, named by its path",
        ),
        (
            json!({"username": "mu1", "id": "x"}),
            400,
            None,
            "id is not settable",
        ),
        (
            json!({"username": "mu1", "enabled": "yes"}),
            400,
            None,
            "wrong type",
        ),
        (json!(["mu1"]), 400, None, "an array"),
    ];
    for (body, status, field, what) in cases {
        let res = api.post("/api/v1/machine-users", &admin, &body).await;
        res.expect(status, what);
        if let Some(field) = field {
            assert_eq!(res.body["field"], field, "{what}: names the field");
        }
    }
    let repeated = api
        .raw(
            Method::POST,
            "/api/v1/machine-users",
            &admin,
            Some("application/json"),
            br#"{"username": "mu1", "client_credentials": {"enabled": true, "enabled": false}}"#
                .to_vec(),
        )
        .await;
    repeated.expect(400, "a nested field sent twice");
    let list = api.get("/api/v1/machine-users", &admin).await;
    assert_eq!(list.body["items"], json!([]), "nothing created");

    let m = api
        .post("/api/v1/machine-users", &admin, &json!({"username": "mu1"}))
        .await;
    let at = format!("/api/v1/machine-users/{}", m.body["id"].as_str().unwrap());
    let res = api.patch(&at, &admin, &json!({"username": "mu2"})).await;
    res.expect(400, "rename");
    assert_eq!(res.body["field"], "username");
    // What a client read, sent back whole, is a PATCH like any other.
    let mut read = api.get(&at, &admin).await.body;
    read["display_name"] = json!("Mu One");
    let body = json!({
        "username": read["username"],
        "display_name": read["display_name"],
        "description": read["description"],
        "contact_email": read["contact_email"],
        "scopes": read["scopes"],
        "enabled": read["enabled"],
        "client_credentials": read["client_credentials"],
    });
    let round_trip = api.patch(&at, &admin, &body).await;
    round_trip.expect(200, "the same username sent back");
    assert_eq!(round_trip.body["display_name"], "Mu One");
    api.patch(&at, &admin, &json!({"display_name": ""}))
        .await
        .expect(200, "back as it was");
    api.patch(
        &at,
        &admin,
        &json!({"display_name": "ok", "client_credentials": {"access_token_ttl_minutes": 9999}}),
    )
    .await
    .expect(400, "bad ttl in a patch");
    let view = api.get(&at, &admin).await;
    assert_eq!(
        view.body["display_name"], "",
        "a failed patch changes nothing"
    );

    // Users' ids are not machine users.
    let users = api.get("/api/v1/users", &admin).await;
    let user_id = users.body["items"][0]["id"].as_str().unwrap();
    for res in [
        api.get(&format!("/api/v1/machine-users/{user_id}"), &admin)
            .await,
        api.post(
            &format!("/api/v1/machine-users/{user_id}/tokens"),
            &admin,
            &token_request("x", &["profile"]),
        )
        .await,
        api.post_empty(&format!("/api/v1/machine-users/{user_id}/secrets"), &admin)
            .await,
        api.delete(&format!("/api/v1/machine-users/{user_id}"), &admin)
            .await,
    ] {
        res.expect(404, "a user is not a machine user");
    }
}

both_backends!(
    an_admin_manages_a_machine_user_end_to_end,
    machine_user_input_is_validated_and_nothing_half_written
);
