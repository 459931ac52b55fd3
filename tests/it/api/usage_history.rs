//! Each token's recent uses (INTERFACE §12): API calls and introspections,
//! accepted or refused with a reason, at most 100 kept, and written only by
//! the batched flush, never per request.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{Api, Backend, TestApp, token_request},
};

async fn spawn(backend: Backend, flush: &str) -> Api {
    Api {
        app: TestApp::spawn_with(backend, &[("TESSERA_USAGE_FLUSH_INTERVAL", flush)]).await,
    }
}

/// `GET path` with a Bearer token and a user agent; the status.
async fn call_as(api: &Api, path: &str, token: &str, agent: &str) -> u16 {
    api.app
        .client
        .get(api.app.url(path))
        .bearer_auth(token)
        .header("user-agent", agent)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// The usage history at `path` once `done` holds for it (the flush runs
/// every second in these tests); fails after 20 s.
async fn history_when(api: &Api, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let reply = api.get(path, token).await;
        reply.expect(200, path);
        if done(&reply.body) {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed the expected uses");
}

async fn user_id(api: &Api, admin: &str, username: &str) -> String {
    let users = api.get("/api/v1/users?limit=500", admin).await;
    users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .expect("user listed")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn api_calls_and_introspections_are_recorded_with_outcomes(backend: Backend) {
    let api = spawn(backend, "1s").await;
    let admin = api.admin();
    let reader = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let made = api
        .post(
            "/api/v1/tokens",
            &reader,
            &token_request("watched", &["profile"]),
        )
        .await;
    made.expect(201, "watched token");
    let watched = made.body["token"].as_str().unwrap().to_owned();
    let id = made.body["id"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        assert_eq!(call_as(&api, "/api/v1/me", &watched, "probe/1").await, 200);
    }
    assert_eq!(
        call_as(&api, "/api/v1/admin/tokens", &watched, "probe/2").await,
        403,
        "a scope it lacks"
    );
    let rs_secret = api.app.create_machine("resource-server", &["introspect"]);
    let intro = api
        .app
        .client
        .post(api.app.url("/oauth2/introspect"))
        .basic_auth("resource-server", Some(&rs_secret))
        .header("user-agent", "rs/1")
        .form(&[("token", watched.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(intro.status(), 200);
    api.delete(&format!("/api/v1/tokens/{id}"), &reader)
        .await
        .expect(204, "revoke");
    assert_eq!(call_as(&api, "/api/v1/me", &watched, "probe/3").await, 401);

    let path = format!("/api/v1/tokens/{id}/usage");
    let body = history_when(&api, &path, &reader, |b| {
        b["items"].as_array().unwrap().len() >= 6
    })
    .await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "{body}");
    // Newest first.
    assert_eq!(items[0]["outcome"], "refused");
    assert_eq!(items[0]["reason"], "revoked");
    assert_eq!(items[0]["user_agent"], "probe/3");
    assert_eq!(items[1]["via"], "introspection");
    assert_eq!(items[1]["client_id"], "resource-server");
    assert_eq!(items[1]["outcome"], "accepted");
    assert_eq!(items[1]["user_agent"], "rs/1");
    assert_eq!(items[2]["via"], "api");
    assert_eq!(items[2]["outcome"], "refused");
    assert_eq!(items[2]["reason"], "insufficient_scope");
    for item in &items[3..] {
        assert_eq!(item["via"], "api");
        assert_eq!(item["outcome"], "accepted");
        assert_eq!(item["reason"], Value::Null);
        assert_eq!(item["client_id"], Value::Null);
        assert_eq!(item["user_agent"], "probe/1");
        assert_eq!(item["ip"], "127.0.0.1");
        assert!(item["at"].as_str().is_some());
    }
    assert_eq!(body["addresses"], json!(["127.0.0.1"]));
    assert_eq!(body["next_cursor"], Value::Null, "the list shape, one page");
    assert!(body.as_object().unwrap().contains_key("next_cursor"));

    // Admins see anyone's; the owner only their own.
    let any = api
        .get(&format!("/api/v1/admin/tokens/{id}/usage"), &admin)
        .await;
    any.expect(200, "admin view");
    assert_eq!(any.body["items"], body["items"]);
    let other = api.user("bob", &["profile", "tokens:read"]);
    api.get(&path, &other).await.expect(404, "not bob's token");
    api.get(&format!("/api/v1/admin/tokens/{id}/usage"), &reader)
        .await
        .expect(403, "admins only");

    // A disabled owner's token is refused as owner_inactive.
    let bob_tokens = api.get("/api/v1/admin/tokens?owner=bob", &admin).await;
    let bob_token_id = bob_tokens.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = user_id(&api, &admin, "bob").await;
    api.patch(
        &format!("/api/v1/users/{bob}"),
        &admin,
        &json!({"enabled": false}),
    )
    .await
    .expect(200, "disable bob");
    assert_eq!(call_as(&api, "/api/v1/me", &other, "bob/1").await, 401);
    let bob_path = format!("/api/v1/admin/tokens/{bob_token_id}/usage");
    let bob_uses = history_when(&api, &bob_path, &admin, |b| {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["reason"] == "owner_inactive")
    })
    .await;
    assert_eq!(bob_uses["items"][0]["user_agent"], "bob/1");
}

async fn the_history_keeps_the_newest_hundred_uses(backend: Backend) {
    let api = spawn(backend, "1s").await;
    let reader = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let made = api
        .post(
            "/api/v1/tokens",
            &reader,
            &token_request("busy", &["profile"]),
        )
        .await;
    let busy = made.body["token"].as_str().unwrap().to_owned();
    let id = made.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/tokens/{id}/usage");
    // Two rounds, so the store (not only the buffer) must drop old uses.
    for n in 0..60 {
        assert_eq!(
            call_as(&api, "/api/v1/me", &busy, &format!("n-{n}")).await,
            200
        );
    }
    history_when(&api, &path, &reader, |b| {
        b["items"][0]["user_agent"] == "n-59"
    })
    .await;
    for n in 60..130 {
        assert_eq!(
            call_as(&api, "/api/v1/me", &busy, &format!("n-{n}")).await,
            200
        );
    }
    let whole = format!("{path}?limit=500");
    let body = history_when(&api, &whole, &reader, |b| {
        b["items"][0]["user_agent"] == "n-129"
    })
    .await;
    let agents = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user_agent"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<String> = (30..130).rev().map(|n| format!("n-{n}")).collect();
    assert_eq!(agents(&body), expected, "the newest 100, newest first");
    assert_eq!(body["next_cursor"], Value::Null);

    // A page at a time, as every list: 50 by default, then by cursor.
    let first = api.get(&path, &reader).await;
    first.expect(200, "first page");
    assert_eq!(agents(&first.body), expected[..50]);
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api
            .get(&format!("{path}?limit=30&cursor={cursor}"), &reader)
            .await;
        page.expect(200, "a page");
        walked.extend(agents(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, expected, "the pages add up to the whole history");
    // A cursor of the right shape, forged for a time before any use (year
    // -9999, before PostgreSQL's first timestamp).
    let forged = {
        use base64::Engine;
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&(-377_705_116_800_i128 * 1_000_000_000).to_be_bytes());
        format!(
            "cursor={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    };
    for bad in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "cursor=garbage",
        &forged,
        "limit=1&limit=2",
    ] {
        let res = api.get(&format!("{path}?{bad}"), &reader).await;
        res.expect(400, bad);
    }
    // The busiest token (this one: the reader made fewer calls) keeps 100
    // once the flush that stored the last uses has pruned.
    let busiest = "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM token_uses GROUP BY token_id) c";
    let mut stored = 0;
    for _ in 0..100 {
        stored = api.app.scalar(busiest).await;
        if stored == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored, 100, "older uses are deleted from the store");

    // A flush inserts before it prunes, in separate statements: while the
    // store holds more than 100, readers still see the newest 100. Five
    // copies of the oldest use kept, with ids that sort below it (uses are
    // timed to the second, then ordered by id), stand in for the uses not
    // yet pruned.
    for k in 1..=5 {
        let id = match backend {
            Backend::Sqlite => format!("x'{k:032x}'"),
            Backend::Postgres => format!("'{}'::uuid", uuid::Uuid::from_u128(k)),
        };
        let copy = format!(
            "INSERT INTO token_uses (id, token_id, at, ip, user_agent, via, client_id, outcome, reason) \
             SELECT {id}, token_id, at, ip, user_agent, via, client_id, outcome, reason \
             FROM token_uses WHERE user_agent = 'n-30' LIMIT 1"
        );
        assert_eq!(api.app.sql(&copy).await, 1);
    }
    let body = api.get(&whole, &reader).await;
    body.expect(200, "the history while unpruned");
    assert_eq!(agents(&body.body), expected, "still the newest 100");
}

/// With a flush interval of an hour, many requests leave the database
/// untouched; the shutdown flush then writes them all at once.
async fn uses_are_written_only_by_the_flush(backend: Backend) {
    let api = spawn(backend, "1h").await;
    let token = api.user("alice", &["profile"]);
    for n in 0..50 {
        assert_eq!(
            call_as(&api, "/api/v1/me", &token, &format!("n-{n}")).await,
            200
        );
    }
    // Longer than the default interval (5 s): a flush that ignored the
    // setting would have written by now.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(
        api.app.scalar("SELECT COUNT(*) FROM token_uses").await,
        0,
        "no use was written by a request"
    );
    assert_eq!(
        api.app
            .scalar("SELECT COUNT(*) FROM tokens WHERE last_used_at IS NOT NULL")
            .await,
        0
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &api.app.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stored = 0;
    for _ in 0..200 {
        stored = api.app.scalar("SELECT COUNT(*) FROM token_uses").await;
        if stored > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored, 50, "one batch at shutdown holds every use");
}

both_backends!(
    api_calls_and_introspections_are_recorded_with_outcomes,
    the_history_keeps_the_newest_hundred_uses,
    uses_are_written_only_by_the_flush,
);
