//! Only real changes invalidate cached validations: repeating a revocation,
//! or a patch that changes nothing, must not empty every instance's cache.
//!
//! The cache is observed from outside: a token revoked behind the server's
//! back (a direct SQL update, announced to no one) stays accepted for as long
//! as its validation is served from the cache.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

async fn sql(app: &TestApp, statement: &str) {
    use sqlx::Connection;
    match app.db.backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(statement).execute(&mut c).await.unwrap();
        }
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(statement).execute(&mut c).await.unwrap();
        }
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn repeated_and_empty_changes_keep_the_validation_cache(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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
    let c = &app.client;
    let (_, list) = send(
        c.get(app.url("/api/v1/admin/tokens?owner=cached-owner"))
            .bearer_auth(&admin),
    )
    .await;
    let spent = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "spent")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke_spent = || {
        c.delete(app.url(&format!("/api/v1/admin/tokens/{spent}")))
            .bearer_auth(&admin)
    };
    assert_eq!(send(revoke_spent()).await.0, 204);
    let (_, users) = send(
        c.get(app.url("/api/v1/users?limit=500"))
            .bearer_auth(&admin),
    )
    .await;
    let owner = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "cached-owner")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, machine) = send(
        c.post(app.url("/api/v1/machine-users"))
            .bearer_auth(&admin)
            .json(&json!({"username": "cached-machine", "scopes": ["profile"]})),
    )
    .await;
    assert_eq!(status, 201);
    let machine = machine["id"].as_str().unwrap().to_owned();

    let me = || async {
        send(c.get(app.url("/api/v1/me")).bearer_auth(&cached))
            .await
            .0
    };
    // Warm the cache, then revoke behind the server's back; retry while the
    // cache is not in use yet (PostgreSQL: until the change listener is up).
    let start = Instant::now();
    loop {
        sql(
            &app,
            "UPDATE tokens SET revoked_at = NULL WHERE name = 'cached'",
        )
        .await;
        assert_eq!(me().await, 200);
        sql(
            &app,
            "UPDATE tokens SET revoked_at = created_at WHERE name = 'cached'",
        )
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
    assert_eq!(send(revoke_spent()).await.0, 204);
    let same_role = c
        .patch(app.url(&format!("/api/v1/users/{owner}")))
        .bearer_auth(&admin)
        .json(&json!({"role": "user", "enabled": true}));
    assert_eq!(send(same_role).await.0, 200);
    let same_machine = c
        .patch(app.url(&format!("/api/v1/machine-users/{machine}")))
        .bearer_auth(&admin)
        .json(&json!({"scopes": ["profile"], "enabled": true}));
    assert_eq!(send(same_machine).await.0, 200);
    assert_eq!(
        me().await,
        200,
        "a change that changed nothing emptied the cache"
    );

    // A real change does.
    let disable = c
        .patch(app.url(&format!("/api/v1/machine-users/{machine}")))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false}));
    assert_eq!(send(disable).await.0, 200);
    assert_eq!(me().await, 401);
}

crate::both_backends!(repeated_and_empty_changes_keep_the_validation_cache);
