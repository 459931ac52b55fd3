//! Scopes are resources (INTERFACE §8): read, describe and delete one scope,
//! through the API and on the admin page.

use serde_json::json;

use super::minting::token_id;
use crate::{
    both_backends,
    common::{
        Api, Backend, token_request,
        web::{Browser, between},
    },
};

async fn a_scope_is_read_changed_and_deleted_at_its_own_url(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let user = api.user("alice", &["profile"]);

    let created = api
        .post(
            "/api/v1/scopes",
            &admin,
            &json!({"name": "orders:read", "description": "Read orders"}),
        )
        .await;
    created.expect(201, "register");
    let at = "/api/v1/scopes/orders:read";
    assert_eq!(created.header("location"), Some(at));

    let got = api.get(at, &user).await;
    got.expect(200, "read with profile");
    assert_eq!(
        got.body,
        json!({"name": "orders:read", "description": "Read orders", "builtin": false})
    );
    let builtin = api.get("/api/v1/scopes/profile", &user).await;
    builtin.expect(200, "a built-in scope");
    assert_eq!(builtin.body["builtin"], true);
    let missing = api.get("/api/v1/scopes/orders:write", &user).await;
    missing.expect(404, "unknown scope");
    assert_eq!(missing.problem(), "not-found");

    // Describe it.
    let patched = api
        .patch(at, &admin, &json!({"description": "  Read every order  "}))
        .await;
    patched.expect(200, "describe");
    assert_eq!(patched.body["description"], "Read every order");
    assert_eq!(
        api.get(at, &user).await.body["description"],
        "Read every order"
    );
    let cases = [
        (
            at,
            json!({"description": "x"}),
            &user,
            403,
            "without admin:write",
        ),
        (
            at,
            json!({"description": "x".repeat(501)}),
            &admin,
            400,
            "too long",
        ),
        (at, json!({"name": "other"}), &admin, 400, "unknown field"),
        (at, json!({}), &admin, 400, "no description"),
        (
            "/api/v1/scopes/profile",
            json!({"description": "mine now"}),
            &admin,
            409,
            "built-in",
        ),
        (
            "/api/v1/scopes/nope",
            json!({"description": "x"}),
            &admin,
            404,
            "unknown",
        ),
    ];
    for (path, body, token, status, what) in cases {
        api.patch(path, token, &body)
            .await
            .expect(status, &format!("PATCH {what}"));
    }
    assert_eq!(
        api.get("/api/v1/scopes/profile", &user).await.body["description"],
        builtin.body["description"],
        "built-in unchanged"
    );

    // Delete it; then it is gone.
    api.delete(at, &user)
        .await
        .expect(403, "delete without admin:write");
    api.delete("/api/v1/scopes/profile", &admin)
        .await
        .expect(409, "delete a built-in scope");
    api.delete("/api/v1/scopes/nope", &admin)
        .await
        .expect(404, "delete an unknown scope");
    let res = api.delete(at, &admin).await;
    res.expect(204, "delete");
    api.get(at, &user).await.expect(404, "gone");
    api.delete(at, &admin).await.expect(404, "deleted twice");

    for action in ["scope.update", "scope.delete"] {
        let events = api
            .get(&format!("/api/v1/audit?action={action}"), &admin)
            .await;
        events.expect(200, "audit");
        let items = events.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{action} audited once: {items:?}");
        assert_eq!(items[0]["target_id"], "orders:read");
        assert_eq!(items[0]["actor"]["username"], "admin");
    }
}

async fn a_scope_in_use_cannot_be_deleted(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    for name in ["a_b", "axb"] {
        api.post("/api/v1/scopes", &admin, &json!({"name": name}))
            .await
            .expect(201, name);
    }
    // A machine user allowed `a_b`, and tokens holding `axb` only: the
    // `_` in a name is not a wildcard when holders are counted.
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "robot", "scopes": ["a_b", "axb"]}),
        )
        .await;
    machine.expect(201, "machine user");
    let robot = machine.body["id"].as_str().unwrap().to_owned();
    let held = api.app.token_for("admin", &["a_b"]);
    let held_id = token_id(&held);
    for name in ["other-1", "other-2"] {
        api.post(
            &format!("/api/v1/machine-users/{robot}/tokens"),
            &admin,
            &token_request(name, &["axb"]),
        )
        .await
        .expect(201, name);
    }

    let res = api.delete("/api/v1/scopes/a_b", &admin).await;
    res.expect(409, "in use");
    let detail = res.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("1 machine user is allowed it (robot)")
            && detail.contains("1 active token"),
        "holders counted, machine users named: {detail}"
    );

    api.patch(
        &format!("/api/v1/machine-users/{robot}"),
        &admin,
        &json!({"scopes": ["axb"]}),
    )
    .await
    .expect(200, "no longer allowed");
    let res = api.delete("/api/v1/scopes/a_b", &admin).await;
    res.expect(409, "still held by a token");
    let detail = res.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("1 active token") && !detail.contains("machine user"),
        "{detail}"
    );

    api.delete(&format!("/api/v1/tokens/{held_id}"), &admin)
        .await
        .expect(204, "revoke");
    api.delete("/api/v1/scopes/a_b", &admin)
        .await
        .expect(204, "a revoked token holds nothing");

    let res = api.delete("/api/v1/scopes/axb", &admin).await;
    res.expect(409, "axb in use");
    let detail = res.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("1 machine user") && detail.contains("2 active tokens"),
        "{detail}"
    );
}

async fn admins_describe_and_delete_scopes_on_the_scopes_page(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    api.post(
        "/api/v1/scopes",
        &admin,
        &json!({"name": "orders:read", "description": "Read orders"}),
    )
    .await
    .expect(201, "register");
    api.post(
        "/api/v1/scopes",
        &admin,
        &json!({"name": "orders:write", "description": "Write orders"}),
    )
    .await
    .expect(201, "register");
    api.post(
        "/api/v1/machine-users",
        &admin,
        &json!({"username": "robot", "scopes": ["orders:write"]}),
    )
    .await
    .expect(201, "machine user");
    let browser = Browser::signed_in(&api.app, "admin").await;

    // Describe.
    let res = browser
        .submit(
            "/admin/scopes",
            "/admin/scopes/orders:read",
            &[("description", "Read every <order>")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), "/admin/scopes?notice=updated");
    let page = browser.get(res.location()).await;
    assert!(page.body.contains("Saved."), "notice shown");
    assert!(
        page.body.contains("Read every &#60;order&#62;")
            || page.body.contains("Read every &lt;order&gt;"),
        "escaped: {}",
        page.body
    );
    assert!(!page.body.contains("<order>"), "never raw");
    assert_eq!(
        api.get("/api/v1/scopes/orders:read", &admin).await.body["description"],
        "Read every <order>"
    );

    // Built-in scopes offer no edit or delete, and refuse them if forced.
    assert!(!page.body.contains(r#"action="/admin/scopes/profile""#));
    assert!(!page.body.contains("/admin/scopes/profile/delete"));
    let res = browser
        .submit(
            "/admin/scopes",
            "/admin/scopes/profile",
            &[("description", "mine")],
        )
        .await;
    assert_eq!(res.status, 400, "built-in: {}", res.body);
    assert!(res.body.contains("built-in"), "{}", res.body);

    // Without the CSRF token: refused.
    let res = browser
        .post("/admin/scopes/orders:read/delete", &[("csrf", "wrong")])
        .await;
    assert_eq!(res.status, 403);

    // A scope in use is refused with the reason in words.
    let confirm = browser.get("/admin/scopes/orders:write/delete").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let res = browser
        .submit(
            "/admin/scopes/orders:write/delete",
            "/admin/scopes/orders:write/delete",
            &[],
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("1 machine user"), "{}", res.body);

    // Delete.
    let res = browser
        .submit(
            "/admin/scopes/orders:read/delete",
            "/admin/scopes/orders:read/delete",
            &[],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), "/admin/scopes?notice=deleted");
    let page = browser.get(res.location()).await;
    assert!(page.body.contains("Deleted."));
    assert!(
        !page
            .body
            .contains(r#"<td data-label="Name"><code>orders:read</code>"#)
    );
    api.get("/api/v1/scopes/orders:read", &admin)
        .await
        .expect(404, "gone");
    assert!(
        between(
            &page.body,
            r#"<td data-label="Name"><code>orders:write</code>"#,
            "</tr>"
        )
        .is_some(),
        "the scope in use is still listed"
    );
    let unknown = browser.get("/admin/scopes/nope/delete").await;
    assert_eq!(unknown.status, 404);
}

both_backends!(
    a_scope_is_read_changed_and_deleted_at_its_own_url,
    a_scope_in_use_cannot_be_deleted,
    admins_describe_and_delete_scopes_on_the_scopes_page,
);
