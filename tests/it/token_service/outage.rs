//! A database that cannot serve (PostgreSQL refusing connections, SQLite's
//! write lock held past the busy timeout) is a 503 with `Retry-After`, which
//! clients and load balancers retry, never a 500; and the service recovers by
//! itself once the database is back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::{
    both_backends,
    common::{Backend, TestApp, web::Browser},
};

/// The database, made to fail until [`Outage::end`].
enum Outage {
    /// A connection holding SQLite's write lock in an open transaction.
    Sqlite(sqlx::SqliteConnection),
    /// PostgreSQL refusing this database's connections, the open ones cut.
    Postgres {
        admin: sqlx::PgConnection,
        database: String,
    },
}

impl Outage {
    async fn begin(app: &TestApp) -> Self {
        match app.db.backend {
            Backend::Sqlite => {
                let mut lock = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut lock)
                    .await
                    .unwrap();
                Self::Sqlite(lock)
            }
            Backend::Postgres => {
                let (server, database) = app.db.url.rsplit_once('/').unwrap();
                let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .unwrap();
                for statement in [
                    format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false"),
                    // Waits (up to 5 s) for each connection to be gone.
                    format!(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                         WHERE datname = '{database}'"
                    ),
                ] {
                    sqlx::query(&statement).execute(&mut admin).await.unwrap();
                }
                Self::Postgres {
                    admin,
                    database: database.to_owned(),
                }
            }
        }
    }

    async fn end(self) {
        match self {
            Self::Sqlite(mut lock) => {
                sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
            }
            Self::Postgres {
                mut admin,
                database,
            } => {
                sqlx::query(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
        }
    }
}

fn retry_after(res: &reqwest::Response) -> Option<&str> {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
}

async fn create_machine(app: &TestApp, admin: &str, username: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/machine-users"))
        .bearer_auth(admin)
        .json(&json!({"username": username, "scopes": ["profile"]}))
        .send()
        .await
        .unwrap()
}

async fn a_database_outage_is_503_and_passes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let secret = app.create_machine("during-outage", &["profile", "introspect"]);
    let live = app.access_token("during-outage", &secret).await;
    // Unknown to the validation cache until the outage.
    let fresh = app.access_token("during-outage", &secret).await;
    let browser = Browser::signed_in(&app, "admin").await;

    let outage = Outage::begin(&app).await;
    // A token would be returned without its record: refused, retryable.
    let (token, write) = tokio::join!(
        app.client_credentials("during-outage", &secret, None),
        create_machine(&app, &admin, "made-during-outage"),
    );
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&token), Some("5"));
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&write), Some("5"));
    assert_eq!(write.headers()["content-type"], "application/problem+json");
    let problem: Value = write.json().await.unwrap();
    assert_eq!(problem["type"], "https://tessera.dev/problems/unavailable");

    let list = app.get_bearer("/api/v1/machine-users", &admin).await;
    let page = browser.get("/admin/machine-users").await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    match backend {
        // SQLite's readers are not held up by the writer's lock.
        Backend::Sqlite => {
            assert_eq!(list.status(), StatusCode::OK);
            assert_eq!(page.status, StatusCode::OK);
            assert_eq!(ready.status(), StatusCode::OK);
        }
        Backend::Postgres => {
            assert_eq!(list.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                page.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                page.body
            );
            assert_eq!(
                page.headers.get("retry-after").map(|v| v.to_str().unwrap()),
                Some("5")
            );
            assert!(page.body.contains("Try again"), "{}", page.body);
            assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
            // Introspection, by a client and by a Bearer caller, and
            // revocation give no verdict rather than a wrong one.
            let oauth = |path: &'static str, form: Vec<(&'static str, String)>, bearer: bool| {
                let mut req = app.client.post(app.url(path)).form(&form);
                req = if bearer {
                    req.bearer_auth(&live)
                } else {
                    req.basic_auth("during-outage", Some(&secret))
                };
                req.send()
            };
            for (what, res) in [
                (
                    "introspection by a client",
                    oauth("/oauth2/introspect", vec![("token", fresh.clone())], false).await,
                ),
                (
                    "introspection by a Bearer caller",
                    oauth("/oauth2/introspect", vec![("token", fresh.clone())], true).await,
                ),
                (
                    "revocation",
                    oauth("/oauth2/revoke", vec![("token", fresh.clone())], false).await,
                ),
            ] {
                let res = res.unwrap();
                assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
            }
        }
    }
    outage.end().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = app.client_credentials("during-outage", &secret, None).await;
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the token endpoint did not recover: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing was half-written.
    assert_eq!(
        app.scalar("SELECT count(*) FROM principals WHERE username = 'made-during-outage'")
            .await,
        0
    );
    let again = create_machine(&app, &admin, "made-during-outage").await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

both_backends!(a_database_outage_is_503_and_passes);

/// A database that answers reads but takes no writes (a standby after a
/// failover, or set read-only) is not ready: `/readyz`'s own read passed.
#[tokio::test]
async fn a_read_only_postgres_is_not_ready_until_it_takes_writes_again() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let ready = async || {
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        res.status()
    };
    assert_eq!(ready().await, StatusCode::OK);
    let (server, database) = app.db.url.rsplit_once('/').unwrap();
    let mut superuser = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    let set = async |superuser: &mut sqlx::PgConnection, read_only: &str| {
        for statement in [
            format!("ALTER DATABASE {database} SET default_transaction_read_only = {read_only}"),
            // New connections take the setting.
            format!(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE datname = '{database}'"
            ),
        ] {
            sqlx::query(&statement)
                .execute(&mut *superuser)
                .await
                .unwrap();
        }
    };
    set(&mut superuser, "on").await;
    // Past the cut connections (each failing once), reads work again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        app.get_bearer("/api/v1/machine-users", &admin).await;
    }
    let read = app.get_bearer("/api/v1/machine-users", &admin).await;
    assert_eq!(read.status(), StatusCode::OK, "reads work");
    let write = create_machine(&app, &admin, "made-read-only").await;
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Not ready, every time, though its read would pass.
    for _ in 0..5 {
        assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    set(&mut superuser, "off").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready().await != StatusCode::OK {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let again = create_machine(&app, &admin, "made-read-only").await;
    assert_eq!(again.status(), StatusCode::CREATED);
}
