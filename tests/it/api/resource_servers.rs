//! INTERFACE §11, resource servers (RFC 8707): registered APIs with the
//! scopes they own; `resource=` at the token endpoint and `audience` in the
//! API make a token for one of them (its `aud`, its scopes only), reported
//! by introspection and in Token JSON; unknown or foreign targets are
//! refused; without a resource nothing changes.

use serde_json::{Value, json};

use super::client_assertions::{jwt_claims, machine, metadata};
use crate::{
    both_backends,
    common::{Api, Backend, TestApp, token_request},
};

const BILLING: &str = "https://billing.example.com";
const HR: &str = "urn:example:hr";

async fn register_scopes(api: &Api, admin: &str, names: &[&str]) {
    for name in names {
        api.post("/api/v1/scopes", admin, &json!({"name": name}))
            .await
            .expect(201, name);
    }
}

async fn resource_servers_are_managed_and_validated(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    register_scopes(&api, &admin, &["billing:read", "billing:write", "hr:read"]).await;
    let r = api
        .post(
            "/api/v1/resource-servers",
            &admin,
            &json!({"identifier": BILLING, "name": "Billing", "scopes": ["billing:read", "billing:write"]}),
        )
        .await;
    r.expect(201, "create");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/resource-servers/{id}").as_str())
    );
    assert_eq!(r.body["identifier"], BILLING);
    assert_eq!(r.body["scopes"], json!(["billing:read", "billing:write"]));

    let bad = [
        (
            json!({"identifier": "billing", "name": "x"}),
            400,
            "identifier",
        ),
        (
            json!({"identifier": "/relative", "name": "x"}),
            400,
            "identifier",
        ),
        (
            json!({"identifier": "https://x.example/#frag", "name": "x"}),
            400,
            "identifier",
        ),
        (json!({"identifier": "", "name": "x"}), 400, "identifier"),
        (json!({"name": "x"}), 400, "identifier"),
        (json!({"identifier": HR, "name": ""}), 400, "name"),
        (
            json!({"identifier": HR, "name": "HR", "scopes": ["nope"]}),
            400,
            "scopes",
        ),
        (
            json!({"identifier": HR, "name": "HR", "scopes": ["profile"]}),
            400,
            "scopes",
        ),
    ];
    for (body, status, field) in bad {
        let r = api.post("/api/v1/resource-servers", &admin, &body).await;
        r.expect(status, &body.to_string());
        assert_eq!(r.body["field"], field, "{body}");
    }
    let r = api
        .post(
            "/api/v1/resource-servers",
            &admin,
            &json!({"identifier": HR, "name": "HR", "scopes": ["hr:read", "billing:read"]}),
        )
        .await;
    r.expect(409, "a scope of another server");
    assert!(
        r.text.contains("billing:read") && r.text.contains(BILLING),
        "{}",
        r.text
    );
    api.post(
        "/api/v1/resource-servers",
        &admin,
        &json!({"identifier": BILLING, "name": "Again"}),
    )
    .await
    .expect(409, "duplicate identifier");
    // Nothing half-written: HR can be created now.
    let hr = api
        .post(
            "/api/v1/resource-servers",
            &admin,
            &json!({"identifier": HR, "name": "HR", "scopes": ["hr:read"]}),
        )
        .await;
    hr.expect(201, "HR");

    let list = api.get("/api/v1/resource-servers", &admin).await;
    list.expect(200, "list");
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let path = format!("/api/v1/resource-servers/{id}");
    let r = api
        .patch(
            &path,
            &admin,
            &json!({"name": "Billing API", "scopes": ["billing:read"]}),
        )
        .await;
    r.expect(200, "patch");
    assert_eq!(r.body["name"], "Billing API");
    assert_eq!(r.body["scopes"], json!(["billing:read"]));
    api.get(&path, &admin).await.expect(200, "get");
    let reader = api.user("reader", &["profile"]);
    api.get("/api/v1/resource-servers", &reader)
        .await
        .expect(403, "admin:read needed");
    api.delete(&path, &admin).await.expect(204, "delete");
    api.get(&path, &admin).await.expect(404, "gone");
    // Its scopes are free again.
    api.patch(
        &format!(
            "/api/v1/resource-servers/{}",
            hr.body["id"].as_str().unwrap()
        ),
        &admin,
        &json!({"scopes": ["hr:read", "billing:read"]}),
    )
    .await
    .expect(200, "scope freed by the delete");
    // The OpenAPI document lists the new routes.
    let doc = api.get("/api/openapi.json", &admin).await;
    for p in [
        "/api/v1/resource-servers",
        "/api/v1/resource-servers/{id}",
        "/api/v1/machine-users/{id}/jwks",
    ] {
        assert!(
            doc.body["paths"].get(p).is_some(),
            "{p} in the OpenAPI document"
        );
    }
}

async fn token(app: &TestApp, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("grant_type", "client_credentials")];
    all.extend_from_slice(form);
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth("svc", Some(secret))
        .form(&all)
        .send()
        .await
        .expect("token request");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn resource_indicators_end_to_end(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let app = &api.app;
    register_scopes(
        &api,
        &admin,
        &["billing:read", "billing:write", "hr:read", "misc"],
    )
    .await;
    for (identifier, scopes) in [
        (BILLING, json!(["billing:read", "billing:write"])),
        (HR, json!(["hr:read"])),
        ("https://empty.example.com", json!([])),
    ] {
        api.post(
            "/api/v1/resource-servers",
            &admin,
            &json!({"identifier": identifier, "name": identifier, "scopes": scopes}),
        )
        .await
        .expect(201, identifier);
    }
    let id = machine(
        &api,
        &admin,
        "svc",
        &[
            "profile",
            "introspect",
            "billing:read",
            "billing:write",
            "hr:read",
            "misc",
        ],
    )
    .await;
    let secret = api
        .post_empty(&format!("/api/v1/machine-users/{id}/secrets"), &admin)
        .await
        .body["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let default_aud = metadata(app).await["issuer"].as_str().unwrap().to_owned();

    // resource= alone: the allowed scopes that server owns; aud is the server.
    let (status, body) = token(app, &secret, &[("resource", BILLING)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "billing:read billing:write");
    let billing_token = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&billing_token);
    assert_eq!(claims["aud"], BILLING);
    let (status, body) = token(
        app,
        &secret,
        &[("resource", BILLING), ("scope", "billing:read")],
    )
    .await;
    assert_eq!(
        (status, body["scope"].clone()),
        (200, json!("billing:read")),
        "{body}"
    );
    // Introspection reports the aud.
    let res = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth("svc", Some(&secret))
        .form(&[("token", billing_token.as_str())])
        .send()
        .await
        .unwrap();
    let intro: Value = res.json().await.unwrap();
    assert_eq!(
        (intro["active"].clone(), intro["aud"].clone()),
        (json!(true), json!(BILLING)),
        "{intro}"
    );
    // It is for the billing API, not for Tessera's own.
    assert_eq!(app.me_status(&billing_token).await, 401);

    // Without a resource nothing changes.
    let (status, body) = token(app, &secret, &[]).await;
    assert_eq!(status, 200);
    let plain = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(plain)["aud"], default_aud);
    assert_eq!(
        body["scope"],
        "billing:read billing:write hr:read introspect misc profile"
    );

    let refusals: [(&[(&str, &str)], &str); 7] = [
        (
            &[("resource", BILLING), ("scope", "hr:read")],
            "invalid_target",
        ),
        (
            &[("resource", BILLING), ("scope", "billing:read misc")],
            "invalid_target",
        ),
        (
            &[("resource", "https://unknown.example.com")],
            "invalid_target",
        ),
        (&[("resource", "not a uri")], "invalid_target"),
        (
            &[("resource", "https://empty.example.com")],
            "invalid_target",
        ),
        (&[("resource", BILLING), ("resource", HR)], "invalid_target"),
        (
            &[("resource", BILLING), ("scope", "admin:write")],
            "invalid_scope",
        ),
    ];
    for (form, error) in refusals {
        let (status, body) = token(app, &secret, form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?}: {body}"
        );
    }

    // The API: machine tokens and PATs with an audience.
    let mut req = token_request("billing-job", &["billing:read"]);
    req["audience"] = json!(BILLING);
    let r = api
        .post(&format!("/api/v1/machine-users/{id}/tokens"), &admin, &req)
        .await;
    r.expect(201, "machine token for billing");
    assert_eq!(r.body["audience"], BILLING);
    assert_eq!(
        jwt_claims(r.body["token"].as_str().unwrap())["aud"],
        BILLING
    );
    let machine_token_id = r.body["id"].as_str().unwrap().to_owned();
    req["scopes"] = json!(["hr:read"]);
    req["name"] = json!("wrong");
    let r = api
        .post(&format!("/api/v1/machine-users/{id}/tokens"), &admin, &req)
        .await;
    r.expect(400, "foreign scope");
    assert_eq!(r.body["field"], "scopes");
    req["audience"] = json!("https://unknown.example.com");
    let r = api.post("/api/v1/tokens", &admin, &req).await;
    r.expect(400, "unknown audience");
    assert_eq!(r.body["field"], "audience");
    // A PAT passes on only scopes its calling token holds.
    let with_hr = app.admin_token(&["tokens:write", "hr:read"]);
    let mut pat = token_request("hr-pat", &["hr:read"]);
    pat["audience"] = json!(HR);
    let r = api.post("/api/v1/tokens", &with_hr, &pat).await;
    r.expect(201, "PAT for HR");
    assert_eq!(r.body["audience"], HR);
    let plain = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("plain", &["profile"]),
        )
        .await;
    plain.expect(201, "plain PAT");
    assert_eq!(plain.body["audience"], Value::Null, "default audience");
    // Regenerating keeps the audience.
    let r = api
        .post_empty(
            &format!(
                "/api/v1/tokens/{}/regenerate",
                r.body["id"].as_str().unwrap()
            ),
            &with_hr,
        )
        .await;
    r.expect(201, "regenerate");
    assert_eq!(r.body["audience"], HR);
    assert_eq!(jwt_claims(r.body["token"].as_str().unwrap())["aud"], HR);
    let listed = api
        .get(&format!("/api/v1/admin/tokens/{machine_token_id}"), &admin)
        .await;
    assert_eq!(listed.body["audience"], BILLING, "{}", listed.text);

    // Its scope moved to another resource server: the machine user still
    // holds it, but the token cannot be renewed for billing, and says so.
    let billing = api.get("/api/v1/resource-servers", &admin).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["identifier"] == BILLING)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.patch(
        &format!("/api/v1/resource-servers/{billing}"),
        &admin,
        &json!({"scopes": ["billing:write"]}),
    )
    .await
    .expect(200, "billing:read leaves billing");
    let r = api
        .post_empty(
            &format!("/api/v1/admin/tokens/{machine_token_id}/regenerate"),
            &admin,
        )
        .await;
    r.expect(409, "nothing left for billing");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("belongs to the resource server") && !detail.contains("may no longer hold"),
        "{detail}"
    );
}

both_backends!(
    resource_servers_are_managed_and_validated,
    resource_indicators_end_to_end,
);
