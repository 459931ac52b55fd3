//! `POST /api/v1/leaks` (INTERFACE §12): what is live among the reported
//! strings is revoked or removed and its owner told; the answer never says
//! what was found; bad input revokes nothing; reports are limited per address.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{
        Api, Backend, Reply, TestApp,
        receivers::{wait_for, webhook},
        token_request,
        web::Browser,
    },
};

async fn report(api: &Api, body: &Value) -> Reply {
    Reply::read(
        api.app
            .client
            .post(api.app.url("/api/v1/leaks"))
            .json(body)
            .send()
            .await
            .expect("report"),
    )
    .await
}

async fn report_raw(api: &Api, body: Vec<u8>) -> Reply {
    Reply::read(
        api.app
            .client
            .post(api.app.url("/api/v1/leaks"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("report"),
    )
    .await
}

async fn leaked_credentials_of_every_kind_are_revoked(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let pat = api.user("alice", &["profile", "tokens:read"]);
    let secret = api.app.create_machine("svc", &["profile"]);
    let machines = api.get("/api/v1/machine-users", &admin).await;
    let svc = machines.body["items"][0]["id"].as_str().unwrap().to_owned();
    let made = api
        .post(
            &format!("/api/v1/machine-users/{svc}/tokens"),
            &admin,
            &token_request("deploy", &["profile"]),
        )
        .await;
    made.expect(201, "machine token");
    let machine_token = made.body["token"].as_str().unwrap().to_owned();
    let cc_token = api.app.access_token("svc", &secret).await;
    let bystander = api.user("bob", &["profile"]);
    for t in [&pat, &machine_token, &cc_token, &bystander] {
        assert_eq!(api.app.me_status(t).await, 200);
    }

    let reply = report(
        &api,
        &json!({"tokens": [pat, machine_token, cc_token, secret, "ghp_not_ours"]}),
    )
    .await;
    reply.expect(202, "report");
    assert_eq!(reply.body, json!({"received": 5}));

    for t in [&pat, &machine_token, &cc_token] {
        assert_eq!(api.app.me_status(t).await, 401, "revoked at once");
    }
    assert_eq!(api.app.me_status(&bystander).await, 200, "others untouched");
    let res = api.app.client_credentials("svc", &secret, None).await;
    assert_eq!(res.status(), 401, "the client secret is gone");

    let revokes = api
        .get("/api/v1/audit?action=token.revoke&limit=50", &admin)
        .await;
    let events = revokes.body["items"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{}", revokes.text);
    for e in events {
        assert_eq!(e["actor"], Value::Null, "nobody signed in");
        assert_eq!(e["details"]["reason"], "leaked");
        assert_eq!(e["details"]["reporter_ip"], "127.0.0.1");
        let id = e["target_id"].as_str().unwrap();
        let token = api.get(&format!("/api/v1/admin/tokens/{id}"), &admin).await;
        assert_eq!(token.body["status"], "revoked");
        assert_eq!(token.body["revoked_by"], Value::Null);
    }
    let deletes = api
        .get("/api/v1/audit?action=client_secret.delete", &admin)
        .await;
    let events = deletes.body["items"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["reason"], "leaked");
    assert_eq!(events[0]["target_id"], svc.as_str());
    let told = api.get("/api/v1/audit?action=leak.notify", &admin).await;
    assert_eq!(
        told.body["items"].as_array().unwrap().len(),
        4,
        "each owner is told"
    );

    // The owner sees a notice on every page; someone else does not.
    let alice = Browser::signed_in(&api.app, "alice").await;
    for path in ["/", "/tokens", "/account"] {
        let page = alice.get(path).await;
        page.expect(StatusCode::OK, path);
        assert!(page.body.contains(r#"id="leak-notice""#), "{path}");
        // It sends her where she can look, not to the admins' audit log.
        assert!(
            page.body.contains(r#"<a href="/tokens?status=revoked">"#),
            "{path}"
        );
        assert!(!page.body.contains("/admin/audit"), "{path}");
    }
    let bob = Browser::signed_in(&api.app, "bob").await;
    let page = bob.get("/").await;
    page.expect(StatusCode::OK, "bob's dashboard");
    assert!(!page.body.contains(r#"id="leak-notice""#));
}

/// Subscribers of `token.leaked` hear of every leaked credential, a client
/// secret as well as a token (§12), each once.
async fn leaked_tokens_and_secrets_are_announced_to_webhooks(backend: Backend) {
    let api = Api {
        app: TestApp::spawn_with(backend, &[("TESSERA_SWEEP_EVERY", "1s")]).await,
    };
    let admin = api.admin();
    let (_, receiver) = webhook(&api, &admin, &["token.leaked"], "ok").await;
    let pat = api.user("alice", &["profile"]);
    let secret = api.app.create_machine("svc", &["profile"]);
    report(&api, &json!({"tokens": [pat, secret]}))
        .await
        .expect(202, "report");
    let got = wait_for("two announcements", Duration::from_secs(30), || {
        let r = receiver.received();
        (r.len() >= 2).then_some(r)
    })
    .await;
    for r in &got {
        assert_eq!(r["body"]["type"], "token.leaked", "{r}");
        assert_eq!(r["verified"], true, "{r}");
    }
    assert!(
        got.iter()
            .any(|r| r["body"]["data"]["machine_user"]["username"] == "svc"),
        "the secret's: {got:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 2, "each once");
}

/// Garbage, a revoked token and nothing at all get the same answer as a
/// live token: status, body and content type.
async fn the_answer_is_the_same_whatever_was_found(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile"]);
    let live = report(&api, &json!({"tokens": [pat.clone(), "x"]})).await;
    let again = report(&api, &json!({"tokens": [pat, "x"]})).await;
    let garbage = report(&api, &json!({"tokens": ["eyJhbGciOiJub25lIn0.e30.", "x"]})).await;
    for r in [&live, &again, &garbage] {
        assert_eq!(r.status, 202);
        assert_eq!(r.body, json!({"received": 2}));
        assert_eq!(r.header("content-type"), live.header("content-type"));
    }
    let empty = report(&api, &json!({"tokens": []})).await;
    empty.expect(202, "nothing reported");
    assert_eq!(empty.body, json!({"received": 0}));
}

async fn bad_reports_revoke_nothing(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile"]);
    let mut many: Vec<Value> = (0..100).map(|n| json!(format!("junk-{n}"))).collect();
    many.push(json!(pat));
    let r = report(&api, &json!({ "tokens": many })).await;
    r.expect(400, "101 strings");
    assert_eq!(r.body["field"], "tokens");
    let long = format!("{pat}{}", "A".repeat(16 * 1024));
    report(&api, &json!({"tokens": [pat.clone(), long]}))
        .await
        .expect(413, "a string over 16 KiB");
    report(&api, &json!({"tokens": [pat.clone(), 7]}))
        .await
        .expect(400, "a number");
    report(&api, &json!({"tokens": pat.clone()}))
        .await
        .expect(400, "not a list");
    report(&api, &json!({"token": [pat.clone()]}))
        .await
        .expect(400, "unknown field");
    report_raw(&api, format!("{{\"tokens\": [\"{pat}\"").into_bytes())
        .await
        .expect(400, "truncated JSON");
    report_raw(&api, b"tokens=abc".to_vec())
        .await
        .expect(400, "not JSON");
    report_raw(&api, vec![b'a'; 2 * 1024 * 1024])
        .await
        .expect(413, "a body past the limit");
    // The right JSON under another content type, or none (INTERFACE §7).
    let right = json!({"tokens": [pat.clone()]}).to_string();
    for content_type in [Some("text/plain"), None] {
        let mut req = api.app.client.post(api.app.url("/api/v1/leaks"));
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        Reply::read(req.body(right.clone()).send().await.expect("report"))
            .await
            .expect(415, &format!("content type {content_type:?}"));
    }
    assert_eq!(api.app.me_status(&pat).await, 200, "nothing was revoked");
}

async fn reports_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_LEAK_REPORTS_PER_IP", "3/1h")]).await;
    let api = Api { app };
    for n in 0..3 {
        report(&api, &json!({"tokens": [format!("x{n}")]}))
            .await
            .expect(202, "within the limit");
    }
    let over = report(&api, &json!({"tokens": ["x"]})).await;
    over.expect(429, "over the limit");
    let wait: u64 = over.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    let out = api.app.db.cli_env(
        &["serve"],
        None,
        &[("TESSERA_LEAK_REPORTS_PER_IP", "often")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_LEAK_REPORTS_PER_IP"));
}

both_backends!(
    leaked_tokens_and_secrets_are_announced_to_webhooks,
    leaked_credentials_of_every_kind_are_revoked,
    the_answer_is_the_same_whatever_was_found,
    bad_reports_revoke_nothing,
    reports_are_limited_per_address,
);
