//! Only real changes invalidate cached validations: repeating a revocation,
//! or a patch that changes nothing, must not empty every instance's cache.
//!
//! The cache is observed from outside: a token revoked behind the server's
//! back (a direct SQL update, announced to no one) stays accepted for as long
//! as its validation is served from the cache.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Api, Backend};

async fn repeated_and_empty_changes_keep_the_validation_cache(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    app.create_user("cached-owner", false);
    let create = |name: &str| {
        app.db.cli_ok(
            &[
                "tokens",
                "create",
                "--username",
                "cached-owner",
                "--name",
                name,
                "--scope",
                "profile",
            ],
            None,
        )
    };
    let cached = create("cached");
    create("spent");
    let list = api
        .get("/api/v1/admin/tokens?owner=cached-owner", &admin)
        .await;
    let spent = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "spent")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spent = format!("/api/v1/admin/tokens/{spent}");
    let revoke_spent = || api.delete(&spent, &admin);
    assert_eq!(revoke_spent().await.status, 204);
    let users = api.get("/api/v1/users?limit=500", &admin).await;
    let owner = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "cached-owner")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "cached-machine", "scopes": ["profile"]}),
        )
        .await;
    assert_eq!(machine.status, 201);
    let machine = machine.body["id"].as_str().unwrap().to_owned();

    let me = || app.me_status(&cached);
    // Warm the cache, then revoke behind the server's back; retry while the
    // cache is not in use yet (PostgreSQL: until the change listener is up).
    let start = Instant::now();
    loop {
        app.sql("UPDATE tokens SET revoked_at = NULL WHERE name = 'cached'")
            .await;
        assert_eq!(me().await, 200);
        app.sql("UPDATE tokens SET revoked_at = created_at WHERE name = 'cached'")
            .await;
        if me().await == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the cache is never used"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Changes that change nothing.
    assert_eq!(revoke_spent().await.status, 204);
    let same_role = api
        .patch(
            &format!("/api/v1/users/{owner}"),
            &admin,
            &json!({"role": "user", "enabled": true}),
        )
        .await;
    assert_eq!(same_role.status, 200);
    let same_machine = api
        .patch(
            &format!("/api/v1/machine-users/{machine}"),
            &admin,
            &json!({"scopes": ["profile"], "enabled": true}),
        )
        .await;
    assert_eq!(same_machine.status, 200);
    assert_eq!(
        me().await,
        200,
        "a change that changed nothing emptied the cache"
    );

    // A real change does.
    let disable = api
        .patch(
            &format!("/api/v1/machine-users/{machine}"),
            &admin,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(disable.status, 200);
    assert_eq!(me().await, 401);
}

crate::both_backends!(repeated_and_empty_changes_keep_the_validation_cache);
