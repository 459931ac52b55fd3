//! Times at the edges of the calendar and of `i64`: every one is a 400 that
//! names its field, never a panic, through the API and the command line.

use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, Reply},
};

/// Valid RFC 3339 whose UTC equivalent falls outside years 0000–9999, and
/// valid times far beyond any policy maximum.
const EDGE_DATES: [&str; 4] = [
    "9999-12-31T23:30:00-01:00",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00+23:59",
];

#[track_caller]
fn refused(reply: &Reply, field: &str, what: &str) {
    reply.expect(400, what);
    assert_eq!(reply.body["field"], field, "{what}: {}", reply.text);
}

async fn edge_times_are_refused_by_field(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let robot = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "robot", "scopes": ["profile"]}),
        )
        .await;
    robot.expect(201, "machine user");
    let machine_tokens = format!(
        "/api/v1/machine-users/{}/tokens",
        robot.body["id"].as_str().unwrap()
    );

    for path in ["/api/v1/tokens", machine_tokens.as_str()] {
        for (i, at) in EDGE_DATES.iter().enumerate() {
            let body =
                json!({"name": format!("edge-{i}"), "scopes": ["profile"], "expires_at": at});
            let reply = api.post(path, &admin, &body).await;
            refused(
                &reply,
                "expires_at",
                &format!("POST {path} expires_at={at}"),
            );
        }
        for (i, seconds) in [i64::MAX, i64::MIN, -1, 0, 59].iter().enumerate() {
            let body = json!({"name": format!("secs-{i}"), "scopes": ["profile"], "expires_in_seconds": seconds});
            let reply = api.post(path, &admin, &body).await;
            refused(
                &reply,
                "expires_in_seconds",
                &format!("POST {path} expires_in_seconds={seconds}"),
            );
        }
    }

    for field in ["since", "until"] {
        for at in &EDGE_DATES[..2] {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(field, at)
                .finish();
            let reply = api.get(&format!("/api/v1/audit?{q}"), &admin).await;
            refused(&reply, field, &format!("audit {field}={at}"));
        }
        // The far end of the calendar in UTC is an ordinary filter.
        let reply = api
            .get(
                &format!("/api/v1/audit?{field}=9999-12-31T23:59:59Z"),
                &admin,
            )
            .await;
        reply.expect(200, &format!("audit {field} at the end of 9999"));
    }

    // Still serving, and nothing was created by the refused requests.
    let list = api.get("/api/v1/tokens", &admin).await;
    list.expect(200, "list");
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["name"].as_str().unwrap().starts_with("edge-")),
        "{}",
        list.text
    );
}

both_backends!(edge_times_are_refused_by_field);

/// Durations on the command line and in the settings: a clear message, no panic.
#[tokio::test]
async fn huge_durations_on_the_command_line_are_refused() {
    let db = crate::common::TestDb::new(Backend::Sqlite);
    db.cli_ok(
        &["users", "create", "--username", "alice", "--password-stdin"],
        Some("a long password"),
    );
    for dur in ["999999999999w", "9223372036854775807s", "106752w", "0s"] {
        let out = db.cli(
            &[
                "tokens",
                "create",
                "--username",
                "alice",
                "--name",
                "x",
                "--expires-in",
                dur,
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--expires-in {dur} was accepted");
        assert!(
            stderr.contains("expires-in") && !stderr.contains("panicked"),
            "--expires-in {dur}: {stderr}"
        );
    }
    let out = db.cli_env(
        &["keys", "list"],
        None,
        &[("TESSERA_MAX_TOKEN_LIFETIME", "999999999999w")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("TESSERA_MAX_TOKEN_LIFETIME")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
}
