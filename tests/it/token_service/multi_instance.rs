//! Several instances on one PostgreSQL database (and, where it applies to a
//! single instance, SQLite too): sessions, keys and every change that must
//! stop a credential are seen by the other instance at once, also after its
//! listener connection is killed.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, Backend, TestApp, TestDb, web::Browser};

/// Polls `check` until it holds; fails if it has not within `deadline`.
async fn within<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How soon a change must be seen by the other instance. It takes
/// milliseconds; 5 s leaves room for a loaded machine and still fails a change
/// that was missed (cached answers live for a minute).
const AT_ONCE: Duration = Duration::from_secs(5);
/// With its listener just killed, the other instance must not wait for the
/// heartbeat to notice (3 s of silence, so at the earliest 2 s after the
/// kill): the lost connection alone turns its caches off.
const LOST_LISTENER: Duration = Duration::from_millis(1500);

async fn status(req: reqwest::RequestBuilder) -> StatusCode {
    req.send().await.expect("request").status()
}

async fn json_of(req: reqwest::RequestBuilder) -> Value {
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.expect("json")
}

async fn pg(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.expect("connect")
}

async fn scalar(url: &str, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut pg(url).await)
        .await
        .expect("query")
}

/// The kids an instance publishes.
async fn kids(client: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks = json_of(client.get(format!("{base}/.well-known/jwks.json"))).await;
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().expect("header"))
            .expect("base64"),
    )
    .expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// Two instances on one fresh PostgreSQL database, an admin `admin` and a
/// token of it able to do everything below.
async fn two_instances() -> Option<(TestApp, String, String)> {
    if !common::postgres::available() {
        return None;
    }
    let mut app = TestApp::spawn(Backend::Postgres).await;
    let other = format!("http://{}", app.start_another(&[]));
    let admin = app.admin_token(&["profile", "admin:read", "admin:write", "tokens:write"]);
    Some((app, other, admin))
}

struct Ids<'a> {
    app: &'a TestApp,
    admin: &'a str,
}

impl Ids<'_> {
    async fn user(&self, username: &str) -> String {
        let page = json_of(
            self.app
                .client
                .get(self.app.url("/api/v1/users?limit=500"))
                .bearer_auth(self.admin),
        )
        .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == username)
            .expect("user listed")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn machine(&self, username: &str) -> Value {
        let page = json_of(
            self.app
                .client
                .get(self.app.url("/api/v1/machine-users?limit=500"))
                .bearer_auth(self.admin),
        )
        .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == username)
            .expect("machine user listed")
            .clone()
    }

    async fn only_token_of(&self, username: &str) -> String {
        let page = json_of(
            self.app
                .client
                .get(
                    self.app
                        .url(&format!("/api/v1/admin/tokens?owner={username}")),
                )
                .bearer_auth(self.admin),
        )
        .await;
        page["items"][0]["id"]
            .as_str()
            .expect("token id")
            .to_owned()
    }
}

/// Each change made through the first instance stops the credential on the
/// other one within `limit`, though the other had it cached.
async fn every_change_is_refused_by_the_other_within(
    app: &TestApp,
    other: &str,
    admin: &str,
    tag: &str,
    limit: Duration,
) {
    let ids = Ids { app, admin };
    let c = &app.client;
    let me = |token: &str| {
        c.get(format!("{other}/api/v1/me"))
            .bearer_auth(token.to_owned())
    };

    // A revoked token.
    let owner = format!("rev-{tag}");
    app.create_user(&owner, false);
    let token = app.token_for(&owner, &["profile"]);
    for _ in 0..2 {
        assert_eq!(status(me(&token)).await, 200);
    }
    let id = ids.only_token_of(&owner).await;
    let revoke = c
        .delete(app.url(&format!("/api/v1/admin/tokens/{id}")))
        .bearer_auth(admin);
    assert_eq!(status(revoke).await, 204);
    within(
        limit,
        "revoked token refused by the other instance",
        || async { status(me(&token)).await == 401 },
    )
    .await;

    // A disabled owner.
    let owner = format!("off-{tag}");
    app.create_user(&owner, false);
    let token = app.token_for(&owner, &["profile"]);
    for _ in 0..2 {
        assert_eq!(status(me(&token)).await, 200);
    }
    let id = ids.user(&owner).await;
    let disable = c
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(admin)
        .json(&json!({"enabled": false}));
    assert_eq!(status(disable).await, 200);
    within(
        limit,
        "disabled owner's token refused by the other instance",
        || async { status(me(&token)).await == 401 },
    )
    .await;

    // A demoted admin.
    let owner = format!("adm-{tag}");
    app.create_user(&owner, true);
    let token = app.token_for(&owner, &["admin:read"]);
    let users = || {
        c.get(format!("{other}/api/v1/users"))
            .bearer_auth(token.clone())
    };
    for _ in 0..2 {
        assert_eq!(status(users()).await, 200);
    }
    let id = ids.user(&owner).await;
    let demote = c
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(admin)
        .json(&json!({"role": "user"}));
    assert_eq!(status(demote).await, 200);
    within(
        limit,
        "demoted admin refused by the other instance",
        || async { status(users()).await == 403 },
    )
    .await;

    // A removed client secret.
    let client_id = format!("svc-{tag}");
    let secret = app.create_machine(&client_id, &["profile"]);
    let grant = || {
        c.post(format!("{other}/oauth2/token"))
            .basic_auth(client_id.clone(), Some(secret.clone()))
            .form(&[("grant_type", "client_credentials")])
    };
    for _ in 0..2 {
        assert_eq!(status(grant()).await, 200);
    }
    let machine = ids.machine(&client_id).await;
    let remove = c
        .delete(app.url(&format!(
            "/api/v1/machine-users/{}/secrets/{}",
            machine["id"].as_str().unwrap(),
            machine["secrets"][0]["id"].as_str().unwrap()
        )))
        .bearer_auth(admin);
    assert_eq!(status(remove).await, 204);
    within(
        limit,
        "removed secret refused by the other instance",
        || async { status(grant()).await == 401 },
    )
    .await;
}

/// This database's listener connections (other tests share the server).
const LISTENERS: &str = "SELECT count(*) FROM pg_stat_activity \
     WHERE datname = current_database() AND query ILIKE 'LISTEN%'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_other_instance_at_once_also_after_its_listener_is_killed() {
    let Some((app, other, admin)) = two_instances().await else {
        return;
    };
    let url = app.db.url.clone();
    within(Duration::from_secs(10), "both listeners up", || async {
        scalar(&url, LISTENERS).await == 2
    })
    .await;
    every_change_is_refused_by_the_other_within(&app, &other, &admin, "a", AT_ONCE).await;

    let killed = scalar(
        &url,
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%') AS t",
    )
    .await;
    assert_eq!(killed, 2, "two listener connections were found and killed");
    // At once, while the listeners are down or reconnecting: the lost
    // connection turns the caches off, well before the heartbeat (3 s of
    // silence) would.
    every_change_is_refused_by_the_other_within(&app, &other, &admin, "b", LOST_LISTENER).await;
    // ...and once they are back.
    within(Duration::from_secs(10), "both listeners back", || async {
        scalar(&url, LISTENERS).await == 2
    })
    .await;
    every_change_is_refused_by_the_other_within(&app, &other, &admin, "c", AT_ONCE).await;
}

/// A listener connection that stops answering without closing (a firewall
/// dropping it) is noticed by the heartbeat: the caches are bypassed, so a
/// revocation still takes effect within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_listener_is_noticed_within_seconds() {
    let Some((app, other, admin)) = two_instances().await else {
        return;
    };
    let url = app.db.url.clone();
    within(Duration::from_secs(10), "both listeners up", || async {
        scalar(&url, LISTENERS).await == 2
    })
    .await;
    app.create_user("silent", false);
    let token = app.token_for("silent", &["profile"]);
    let c = &app.client;
    let me = || c.get(format!("{other}/api/v1/me")).bearer_auth(&token);
    for _ in 0..2 {
        assert_eq!(status(me()).await, 200);
    }
    // Freeze the listeners' server processes: their connections stay open
    // but nothing arrives on them any more.
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut pg(&url).await)
    .await
    .unwrap();
    assert_eq!(pids.len(), 2);
    let frozen = Frozen::new(pids);
    let id = Ids {
        app: &app,
        admin: &admin,
    }
    .only_token_of("silent")
    .await;
    let revoke = c
        .delete(app.url(&format!("/api/v1/admin/tokens/{id}")))
        .bearer_auth(&admin);
    assert_eq!(status(revoke).await, 204);
    // Noticed after 3 s without a heartbeat (one is due every second);
    // 10 s leaves room for a loaded machine.
    within(
        Duration::from_secs(10),
        "revoked token refused behind a frozen listener",
        || async { status(me()).await == 401 },
    )
    .await;
    drop(frozen);
}

/// Server processes stopped with SIGSTOP, continued when dropped (also when
/// the test fails).
struct Frozen(Vec<i32>);

impl Frozen {
    fn new(pids: Vec<i32>) -> Self {
        let frozen = Self(pids);
        frozen.signal("-STOP");
        frozen
    }

    fn signal(&self, sig: &str) {
        for pid in &self.0 {
            let ok = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot send {sig} to PostgreSQL backend {pid}");
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_made_on_one_instance_works_on_the_other() {
    let Some((app, other, _admin)) = two_instances().await else {
        return;
    };
    // Cookies ignore the port: the session is sent to the other instance too.
    let b = Browser::signed_in(&app, "admin").await;
    let res = b
        .client
        .get(format!("{other}/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the other instance did not know the session"
    );
    assert!(res.text().await.unwrap().contains("admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_on_one_instance_is_published_and_accepted_by_the_other() {
    let Some((app, other, _admin)) = two_instances().await else {
        return;
    };
    let c = &app.client;
    let me_url = format!("{other}/api/v1/me");
    let accepted_by_other = |token: String| status(c.get(&me_url).bearer_auth(token));

    // By the command line.
    let kid = app.db.cli_ok(&["keys", "rotate"], None);
    let token = app.token_for("admin", &["profile"]);
    assert_eq!(kid_of(&token), kid, "the CLI signs with the new key");
    assert_eq!(accepted_by_other(token).await, 200, "fresh key refused");
    for base in [app.url(""), other.clone()] {
        within(
            Duration::from_secs(3),
            "CLI-rotated key published",
            || async { kids(c, &base).await.contains(&kid) },
        )
        .await;
    }

    // In the admin console of the first instance.
    let before = kids(c, &app.url("")).await;
    let b = Browser::signed_in(&app, "admin").await;
    let res = b.submit("/admin/keys", "/admin/keys/rotate", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let new: Vec<String> = kids(c, &app.url(""))
        .await
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "one new key published by the rotating instance"
    );
    within(
        Duration::from_secs(3),
        "web-rotated key published by the other",
        || async { kids(c, &other).await.contains(&new[0]) },
    )
    .await;
    let secret = app.create_machine("rotation-probe", &["profile"]);
    let token = app.access_token("rotation-probe", &secret).await;
    assert_eq!(
        kid_of(&token),
        new[0],
        "the first instance signs with its new key"
    );
    assert_eq!(accepted_by_other(token).await, 200);
}

/// Starts `tessera serve` twice at the same moment on `db`; both must come up.
fn start_two_together(db: &TestDb) -> Vec<std::process::Child> {
    let started: Vec<Result<(std::process::Child, String), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| common::start_server(db, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut children = Vec::new();
    let mut failures = Vec::new();
    for s in started {
        match s {
            Ok((child, _)) => children.push(child),
            Err(e) => failures.push(e),
        }
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        failures.is_empty(),
        "an instance did not come up: {failures:?}"
    );
    children
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_started_together_on_an_empty_database_both_come_up() {
    if !common::postgres::available() {
        return;
    }
    for _ in 0..3 {
        let db = TestDb::new(Backend::Postgres);
        start_two_together(&db);
        assert_eq!(
            scalar(
                &db.url,
                "SELECT count(*) FROM signing_keys WHERE state = 'active'"
            )
            .await,
            1,
            "one first signing key"
        );
        // The migrations are all recorded, and a later run finds nothing to do.
        let applied = scalar(&db.url, "SELECT count(*) FROM seaql_migrations").await;
        db.cli_ok(&["migrate"], None);
        assert_eq!(
            scalar(&db.url, "SELECT count(*) FROM seaql_migrations").await,
            applied
        );
    }
}

/// Two admins demoting each other at once, each through a different
/// instance: one of them stays an admin, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_demoting_each_other_at_once_leave_an_admin() {
    let Some((app, other, admin)) = two_instances().await else {
        return;
    };
    let c = &app.client;
    let admins =
        "SELECT count(*) FROM principals WHERE kind = 'user' AND role = 'admin' AND enabled";
    // The setup admin steps aside, so the pair are the only admins.
    let mut previous = vec![
        Ids {
            app: &app,
            admin: &admin,
        }
        .user("admin")
        .await,
    ];
    for round in 0..10 {
        let (x, y) = (format!("admin-x{round}"), format!("admin-y{round}"));
        app.create_user(&x, true);
        app.create_user(&y, true);
        let (tx, ty) = (
            app.token_for(&x, &["admin:read", "admin:write"]),
            app.token_for(&y, &["admin:write"]),
        );
        let ids = Ids {
            app: &app,
            admin: &tx,
        };
        let (ix, iy) = (ids.user(&x).await, ids.user(&y).await);
        for id in previous.drain(..) {
            let demote = c
                .patch(app.url(&format!("/api/v1/users/{id}")))
                .bearer_auth(&tx)
                .json(&json!({"role": "user"}));
            assert_eq!(status(demote).await, 200);
        }
        assert_eq!(scalar(&app.db.url, admins).await, 2);
        let x_demotes_y = c
            .patch(app.url(&format!("/api/v1/users/{iy}")))
            .bearer_auth(&tx)
            .json(&json!({"role": "user"}));
        let y_demotes_x = c
            .patch(format!("{other}/api/v1/users/{ix}"))
            .bearer_auth(&ty)
            .json(&json!({"role": "user"}));
        let (a, b) = tokio::join!(status(x_demotes_y), status(y_demotes_x));
        assert!(
            !(a.is_success() && b.is_success()),
            "round {round}: both demotions succeeded ({a}, {b})"
        );
        assert_eq!(
            scalar(&app.db.url, admins).await,
            1,
            "round {round}: {a}, {b}"
        );
        if a.is_success() {
            previous.push(ix);
        } else {
            previous.push(iy);
        }
    }
}

/// A token signed with a key rotated a moment ago (by the command line, so
/// the server learns of it only from the token) is accepted by every one of
/// many concurrent requests.
async fn a_freshly_rotated_key_is_accepted_by_concurrent_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin_token(&["profile"]);
    for _ in 0..3 {
        app.db.cli_ok(&["keys", "rotate"], None);
        let token = app.token_for("admin", &["profile"]);
        let requests =
            (0..16).map(|_| status(app.client.get(app.url("/api/v1/me")).bearer_auth(&token)));
        let statuses = futures_join_all(requests).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "a token of a fresh key was refused: {statuses:?}"
        );
    }
}

async fn futures_join_all<F: Future<Output = StatusCode> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<StatusCode> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("request task"));
    }
    out
}

crate::both_backends!(a_freshly_rotated_key_is_accepted_by_concurrent_requests);

/// This database's request and token-writer connections (not the listener).
const POOLED: &str = "FROM pg_stat_activity \
     WHERE datname = current_database() AND application_name = 'tessera'";

/// Connections the database cuts (a failover, a firewall, here
/// `pg_terminate_backend`) are replaced before they fail a request: a pooled
/// connection idle for more than a second is pinged first, the token
/// writer's own connection included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_by_the_database_are_replaced_once_idle_for_a_second() {
    if !common::postgres::available() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let secret = app.create_machine("cut-off", &["profile"]);
    // Opens the token writer's connection and request connections.
    let token = app.access_token("cut-off", &secret).await;
    assert_eq!(app.me_status(&token).await, 200);

    let cut = app
        .scalar(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {POOLED}) AS t"
        ))
        .await;
    assert!(cut >= 2, "the writer's and a request connection: {cut} cut");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Each fresh token is recorded by the writer, and its first use reads the
    // database on a request connection.
    for _ in 0..4 {
        let fresh = app.access_token("cut-off", &secret).await;
        assert_eq!(app.me_status(&fresh).await, 200);
    }
    assert!(app.scalar(&format!("SELECT count(*) {POOLED}")).await >= 2);
}
