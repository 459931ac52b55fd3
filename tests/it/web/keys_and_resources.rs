//! INTERFACE §11 in the browser: an admin registers, sees and removes a
//! machine user's public keys on its page, registers resource servers on
//! /admin/resource-servers, and issues a machine token for one of them.

use reqwest::StatusCode;
use serde_json::json;

use super::Browser;
use crate::{
    api::client_assertions::{Key, jwt_claims},
    both_backends,
    common::{Api, Backend},
};

async fn admins_manage_keys_and_resource_servers_in_the_browser(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    api.post("/api/v1/scopes", &admin, &json!({"name": "billing:read"}))
        .await
        .expect(201, "scope");
    let m = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "keyed", "scopes": ["billing:read"]}),
        )
        .await;
    let id = m.body["id"].as_str().unwrap().to_owned();
    let page_path = format!("/admin/machine-users/{id}");
    let b = Browser::signed_in(&api.app, "admin").await;

    let page = b.get(&page_path).await;
    page.expect(StatusCode::OK, "machine user page");
    assert!(
        page.body.contains("No public keys registered."),
        "{}",
        page.body
    );

    // A private key pasted by mistake is refused with the reason.
    let mut private = Key::ec(1).jwk("k1");
    private["d"] = json!("c2VjcmV0");
    let refused = b
        .submit(
            &page_path,
            &format!("{page_path}/jwks"),
            &[("jwks", &json!({"keys": [private]}).to_string())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("private member"), "{}", refused.body);
    let refused = b
        .submit(
            &page_path,
            &format!("{page_path}/jwks"),
            &[("jwks", "{not json")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    let set = json!({"keys": [Key::ec(1).jwk("k1"), Key::ed(2).jwk("k2")]}).to_string();
    let saved = b
        .submit(&page_path, &format!("{page_path}/jwks"), &[("jwks", &set)])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = b.get(&page_path).await;
    page.expect(StatusCode::OK, "machine user page with keys");
    assert!(
        page.body.contains("2 public key(s) registered."),
        "{}",
        page.body
    );
    // Pretty-printed JSON, escaped in the textarea.
    assert!(
        page.body.contains("&#34;kid&#34;: &#34;k2&#34;"),
        "the set is shown in the textarea: {}",
        page.body
    );
    let stored = api
        .get(&format!("/api/v1/machine-users/{id}/jwks"), &admin)
        .await;
    assert_eq!(stored.body["keys"].as_array().map(Vec::len), Some(2));

    // Resource servers.
    let rs = b.get("/admin/resource-servers").await;
    rs.expect(StatusCode::OK, "resource servers page");
    let bad = b
        .submit(
            "/admin/resource-servers",
            "/admin/resource-servers",
            &[
                ("identifier", "https://billing.example.com/#x"),
                ("name", "Billing"),
                ("scopes", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("must not have a fragment"),
        "{}",
        bad.body
    );
    let created = b
        .submit(
            "/admin/resource-servers",
            "/admin/resource-servers",
            &[
                ("identifier", "https://billing.example.com"),
                ("name", "Billing"),
                ("scopes", "billing:read"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let rs = b.get("/admin/resource-servers").await;
    assert!(
        rs.body.contains("https://billing.example.com"),
        "{}",
        rs.body
    );

    // A machine token for that API from the machine user's page.
    let issued = b
        .submit(
            &page_path,
            &format!("{page_path}/tokens"),
            &[
                ("name", "billing-job"),
                ("scopes", "billing:read"),
                ("audience", "https://billing.example.com"),
                ("lifetime", "30"),
            ],
        )
        .await;
    let issued = b.follow(&issued).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    assert_eq!(
        jwt_claims(&issued.secret())["aud"],
        "https://billing.example.com"
    );

    // Deleting the resource server asks first, on a page of its own.
    let servers = api.get("/api/v1/resource-servers", &admin).await;
    let rs_id = servers.body["items"][0]["id"].as_str().unwrap().to_owned();
    let delete = format!("/admin/resource-servers/{rs_id}/delete");
    let listing = b.get("/admin/resource-servers").await;
    assert!(listing.body.contains(&format!(r#"href="{delete}""#)));
    let confirm = b.get(&delete).await;
    confirm.expect(StatusCode::OK, "confirm deleting the resource server");
    assert!(confirm.body.contains("Delete resource server"));
    let done = b.submit(&delete, &delete, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    api.get(&format!("/api/v1/resource-servers/{rs_id}"), &admin)
        .await
        .expect(404, "deleted from the console");

    // Removing the keys.
    let removed = b
        .submit(&page_path, &format!("{page_path}/jwks/delete"), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(
        b.get(&page_path)
            .await
            .body
            .contains("No public keys registered.")
    );
}

both_backends!(admins_manage_keys_and_resource_servers_in_the_browser);
