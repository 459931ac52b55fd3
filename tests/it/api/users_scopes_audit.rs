//! `/api/v1/users`, `/api/v1/scopes` and `/api/v1/audit`.

use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, token_request},
};

async fn an_admin_creates_and_changes_users(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();

    let created = api
        .post(
            "/api/v1/users",
            &admin,
            &json!({"username": "carol", "password": "a long password", "role": "user"}),
        )
        .await;
    created.expect(201, "create user");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let at = format!("/api/v1/users/{id}");
    assert_eq!(created.header("location"), Some(at.as_str()));
    assert_eq!(created.body["role"], "user");
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["last_login_at"], serde_json::Value::Null);
    assert!(created.body.get("password").is_none());
    assert!(created.body.get("password_hash").is_none());
    assert!(!created.text.contains("a long password"));

    let cases = [
        (
            json!({"username": "carol", "password": "a long password"}),
            409,
            None,
            "duplicate",
        ),
        (
            json!({"username": "dave", "password": "short"}),
            400,
            Some("password"),
            "short password",
        ),
        (
            json!({"username": "D", "password": "a long password"}),
            400,
            Some("username"),
            "bad username",
        ),
        (
            json!({"username": "dave", "password": "a long password", "role": "root"}),
            400,
            Some("role"),
            "unknown role",
        ),
        (
            json!({"username": "dave", "password": "a long password", "admin": true}),
            400,
            None,
            "unknown field",
        ),
        (json!({"username": "dave"}), 400, None, "no password"),
    ];
    for (body, status, field, what) in cases {
        let res = api.post("/api/v1/users", &admin, &body).await;
        res.expect(status, what);
        if let Some(field) = field {
            assert_eq!(res.body["field"], field, "{what}");
        }
    }
    let ids = api.all_ids("/api/v1/users", &admin, 500).await;
    assert_eq!(ids.len(), 2, "admin and carol only");

    let carol = api.app.token_for("carol", &["profile"]);
    api.get("/api/v1/me", &carol).await.expect(200, "carol");

    let promoted = api.patch(&at, &admin, &json!({"role": "admin"})).await;
    promoted.expect(200, "promote");
    assert_eq!(promoted.body["role"], "admin");
    api.get(&at, &admin).await.expect(200, "get user");

    api.patch(&at, &admin, &json!({"password": "x"}))
        .await
        .expect(400, "short new password");
    let res = api.patch(&at, &admin, &json!({"role": "superuser"})).await;
    res.expect(400, "unknown role in a patch");
    assert_eq!(res.body["field"], "role");
    api.patch(&at, &admin, &json!({"enabled": "no"}))
        .await
        .expect(400, "wrong type");
    api.patch(&at, &admin, &json!({"password": "another long one"}))
        .await
        .expect(200, "new password");

    let disabled = api.patch(&at, &admin, &json!({"enabled": false})).await;
    disabled.expect(200, "disable");
    assert_eq!(disabled.body["enabled"], false);
    api.get("/api/v1/me", &carol)
        .await
        .expect(401, "a disabled user's token");

    // The last administrator cannot be demoted.
    let me = api.get("/api/v1/me", &admin).await;
    let admin_id = me.body["id"].as_str().unwrap();
    api.patch(
        &format!("/api/v1/users/{admin_id}"),
        &admin,
        &json!({"role": "user"}),
    )
    .await
    .expect(409, "last admin");
    api.patch(
        "/api/v1/users/00000000-0000-0000-0000-000000000000",
        &admin,
        &json!({"role": "user"}),
    )
    .await
    .expect(404, "no such user");
}

async fn scopes_are_listed_to_everyone_and_registered_by_admins(backend: Backend) {
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
    created.expect(201, "register scope");
    assert!(created.header("location").is_some());
    assert_eq!(
        created.body,
        json!({"name": "orders:read", "description": "Read orders", "builtin": false})
    );

    let list = api.get("/api/v1/scopes", &user).await;
    list.expect(200, "list with profile");
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(list.body["next_cursor"], serde_json::Value::Null);
    let names: Vec<&str> = items.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for builtin in [
        "profile",
        "tokens:read",
        "tokens:write",
        "admin:read",
        "admin:write",
        "introspect",
    ] {
        assert!(names.contains(&builtin), "{builtin} listed");
    }
    assert!(names.contains(&"orders:read"));

    for (body, status, what) in [
        (json!({"name": "orders:read"}), 409, "duplicate"),
        (json!({"name": "profile"}), 400, "built-in name"),
        (json!({"name": "admin:everything"}), 400, "admin prefix"),
        (json!({"name": "Orders"}), 400, "uppercase"),
        (json!({"name": ""}), 400, "empty"),
        (json!({"name": "a".repeat(65)}), 400, "too long"),
        (json!({"name": "x", "builtin": true}), 400, "unknown field"),
    ] {
        let res = api.post("/api/v1/scopes", &admin, &body).await;
        res.expect(status, what);
        if status == 400 && what != "unknown field" {
            assert_eq!(res.body["field"], "name", "{what}");
        }
    }
    api.post("/api/v1/scopes", &user, &json!({"name": "mine"}))
        .await
        .expect(403, "a user cannot register scopes");
    // The new scope can now be granted.
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "orders-bot", "scopes": ["orders:read"]}),
        )
        .await;
    machine.expect(201, "machine user with a registered scope");
}

async fn every_change_is_audited_with_the_token_that_made_it(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let admin_token_id = api.get("/api/v1/me", &admin).await.body["token"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);

    let token = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("audited", &["profile"]),
        )
        .await;
    token.expect(201, "token");
    let token_id = token.body["id"].as_str().unwrap().to_owned();
    api.delete(&format!("/api/v1/tokens/{token_id}"), &admin)
        .await
        .expect(204, "revoke");
    let m = api
        .post("/api/v1/machine-users", &admin, &json!({"username": "bot"}))
        .await;
    let m_id = m.body["id"].as_str().unwrap().to_owned();
    api.post_empty(&format!("/api/v1/machine-users/{m_id}/secrets"), &admin)
        .await
        .expect(201, "secret");
    api.post("/api/v1/scopes", &admin, &json!({"name": "x.y"}))
        .await
        .expect(201, "scope");

    let events = api.get("/api/v1/audit?actor=admin&limit=500", &admin).await;
    events.expect(200, "audit");
    let items = events.body["items"].as_array().unwrap();
    for (action, target) in [
        ("token.create", token_id.as_str()),
        ("token.revoke", token_id.as_str()),
        ("machine_user.create", m_id.as_str()),
        ("client_secret.create", m_id.as_str()),
        ("scope.create", "x.y"),
    ] {
        let event = items
            .iter()
            .find(|e| e["action"] == action && e["target_id"] == target)
            .unwrap_or_else(|| panic!("{action} on {target} audited: {items:?}"));
        assert_eq!(event["actor"]["username"], "admin");
        assert_eq!(event["details"]["via_token"], admin_token_id.as_str());
        assert!(event["ip"].is_string());
        assert!(event["at"].is_string());
    }
    assert!(
        !events.text.contains(token.body["token"].as_str().unwrap()),
        "no secret in the audit log"
    );

    let only = api.get("/api/v1/audit?action=token.revoke", &admin).await;
    let only = only.body["items"].as_array().unwrap().clone();
    assert_eq!(only.len(), 1);
    // Usernames are lowercase, as in the token list's `owner`; a blank
    // filter (an empty form field) is no filter.
    let count = async |query: &str| {
        let res = api
            .get(&format!("/api/v1/audit?limit=500{query}"), &admin)
            .await;
        res.expect(200, query);
        res.body["items"].as_array().unwrap().len()
    };
    assert_eq!(count("&actor=%20Admin").await, items.len());
    assert_eq!(count("&actor=&action=").await, count("").await);
    assert!(
        !items.is_empty(),
        "so a blank filter that matched nothing would show"
    );
    let tokens = async |query: &str| {
        let res = api
            .get(&format!("/api/v1/admin/tokens?limit=500{query}"), &admin)
            .await;
        res.expect(200, query);
        res.body["items"].as_array().unwrap().len()
    };
    assert_eq!(tokens("&owner=").await, tokens("").await);
    assert!(tokens("").await >= 2, "the admin's and the audited one");
    let since = before
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let windowed = api
        .get(
            &format!("/api/v1/audit?since={since}&action=scope.create"),
            &admin,
        )
        .await;
    windowed.expect(200, "since");
    assert_eq!(windowed.body["items"].as_array().unwrap().len(), 1);
    // The same instant in another offset, percent-encoded as a URL needs.
    let since_east = before
        .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .replace('+', "%2B");
    let windowed = api
        .get(
            &format!("/api/v1/audit?since={since_east}&action=scope.create"),
            &admin,
        )
        .await;
    assert_eq!(
        windowed.body["items"].as_array().unwrap().len(),
        1,
        "{since_east}"
    );
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .to_offset(time::UtcOffset::from_hms(-5, 0, 0).unwrap())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let future = api
        .get(&format!("/api/v1/audit?since={later}"), &admin)
        .await;
    assert_eq!(future.body["items"], json!([]), "nothing after {later}");
    let until = api
        .get("/api/v1/audit?until=2000-01-01T00:00:00Z", &admin)
        .await;
    assert_eq!(until.body["items"], json!([]), "nothing before 2000");
    let nobody = api.get("/api/v1/audit?actor=nobody", &admin).await;
    assert_eq!(nobody.body["items"], json!([]));
    let bad = api.get("/api/v1/audit?since=yesterday", &admin).await;
    bad.expect(400, "bad since");
    assert_eq!(bad.body["field"], "since");
}

both_backends!(
    an_admin_creates_and_changes_users,
    scopes_are_listed_to_everyone_and_registered_by_admins,
    every_change_is_audited_with_the_token_that_made_it
);
