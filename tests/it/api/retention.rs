//! Records do not grow without bound (INTERFACE §8): expired client-credentials
//! tokens past `TESSERA_RETENTION`, audit events past `TESSERA_AUDIT_RETENTION`,
//! expired sessions and spent setup codes are pruned; everything else stays.

use std::time::{Duration, Instant};

use crate::common::{Backend, TestApp};

/// Moves `column` of the rows matching `filter` about 25 years into the past.
async fn age(app: &TestApp, table: &str, column: &str, filter: &str) -> u64 {
    let set = match app.db.backend {
        // SQLite keeps RFC 3339-like text that sorts by time: rewrite the year.
        Backend::Sqlite => format!("{column} = '2001' || substr({column}, 5)"),
        Backend::Postgres => format!("{column} = {column} - interval '10000 days'"),
    };
    app.sql(&format!("UPDATE {table} SET {set} WHERE {filter}"))
        .await
}

/// Polls `query` until it returns `want`, for at most 20 seconds.
async fn eventually(app: &TestApp, query: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = app.scalar(query).await;
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{query}: {n}, want {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const CC: &str = "SELECT COUNT(*) FROM tokens WHERE kind = 'client_credentials'";
const OTHER: &str = "SELECT COUNT(*) FROM tokens WHERE kind <> 'client_credentials'";
const AUDIT: &str = "SELECT COUNT(*) FROM audit_events";

async fn old_records_are_pruned_and_nothing_else(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let _admin = app.admin_token(&["profile"]);
    let secret = app.create_machine("pruned", &["profile"]);
    for _ in 0..3 {
        app.access_token("pruned", &secret).await;
    }
    app.token_for("pruned", &["profile"]);
    assert_eq!(app.scalar(CC).await, 3);
    let others = app.scalar(OTHER).await;
    assert_eq!(others, 2, "a PAT and a machine token");

    // Two client-credentials tokens and every personal or machine token
    // expired long ago; a session and the setup code too.
    let cc_ids =
        "id IN (SELECT id FROM tokens WHERE kind = 'client_credentials' ORDER BY id LIMIT 2)";
    assert_eq!(age(&app, "tokens", "expires_at", cc_ids).await, 2);
    age(&app, "tokens", "expires_at", "kind <> 'client_credentials'").await;
    let audit_before = app.scalar(AUDIT).await;
    assert!(audit_before > 0);
    assert_eq!(
        age(&app, "audit_events", "at", "1 = 1").await as i64,
        audit_before
    );
    age(&app, "setup_codes", "expires_at", "1 = 1").await;

    // A server with the default retention (30 days, audit kept forever)
    // prunes on start-up: the two old client-credentials records go.
    app.restart(&[]);
    eventually(&app, CC, 1).await;
    eventually(&app, "SELECT COUNT(*) FROM setup_codes", 0).await;
    assert_eq!(
        app.scalar(OTHER).await,
        others,
        "personal and machine tokens are kept"
    );
    assert!(
        app.scalar(AUDIT).await >= audit_before,
        "audit events are kept by default"
    );

    // With an audit retention, old events go and new ones stay.
    app.restart(&[("TESSERA_AUDIT_RETENTION", "365d")]);
    eventually(
        &app,
        "SELECT COUNT(*) FROM audit_events WHERE at < '2003-01-01'",
        0,
    )
    .await;
    assert_eq!(app.scalar(OTHER).await, others);
}

async fn bad_retention_settings_stop_start_up_with_one_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (var, value) in [
        ("TESSERA_RETENTION", "forever"),
        ("TESSERA_AUDIT_RETENTION", "-3d"),
    ] {
        let out = app.db.cli_env(&["migrate"], None, &[(var, value)]);
        assert!(!out.status.success(), "{var}={value} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(var), "{var}: {stderr}");
    }
}

crate::both_backends!(
    old_records_are_pruned_and_nothing_else,
    bad_retention_settings_stop_start_up_with_one_line
);
