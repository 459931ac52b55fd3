//! Webhooks (INTERFACE §9) against real receivers that verify every
//! signature with the `standardwebhooks` package: the API and its bad input,
//! signed deliveries of domain events, retries under one message id, a
//! receiver that hangs or redirects delaying nobody.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{
        Api, Backend, TestApp,
        receivers::{eventually, wait_for, webhook},
        token_request,
    },
};

const WAIT: Duration = Duration::from_secs(30);

async fn spawn(backend: Backend, retries: &str) -> Api {
    Api {
        app: TestApp::spawn_with(
            backend,
            &[
                ("TESSERA_SWEEP_EVERY", "1s"),
                ("TESSERA_RETRY_SCHEDULE", retries),
            ],
        )
        .await,
    }
}

fn of_type<'a>(received: &'a [Value], event: &str) -> Vec<&'a Value> {
    received
        .iter()
        .filter(|r| r["body"]["type"] == event)
        .collect()
}

async fn webhooks_are_managed_by_admins_and_bad_input_names_the_field(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let created = api
        .post(
            "/api/v1/webhooks",
            &admin,
            &json!({"url": "https://hooks.example/t", "events": ["token.created", "ping"], "description": "ci"}),
        )
        .await;
    created.expect(201, "create");
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/webhooks/{id}").as_str())
    );
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let raw = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["events"], json!(["token.created", "ping"]));

    let one = api.get(&format!("/api/v1/webhooks/{id}"), &admin).await;
    one.expect(200, "get");
    let list = api.get("/api/v1/webhooks", &admin).await;
    list.expect(200, "list");
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    for shown in [&one.body, &list.body] {
        assert!(
            !shown.to_string().contains(raw),
            "the secret is shown once: {shown}"
        );
    }
    let changed = api
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &admin,
            &json!({"enabled": false, "events": ["token.revoked"]}),
        )
        .await;
    changed.expect(200, "patch");
    assert_eq!(changed.body["enabled"], false);
    assert_eq!(changed.body["events"], json!(["token.revoked"]));
    api.post_empty(&format!("/api/v1/webhooks/{id}/ping"), &admin)
        .await
        .expect(409, "a disabled webhook is not pinged");

    for (body, field) in [
        (
            json!({"url": "ftp://files.example/x", "events": ["ping"]}),
            "url",
        ),
        (json!({"url": "not a url", "events": ["ping"]}), "url"),
        // A password in the URL would be shown to every reader.
        (
            json!({"url": "https://user:hunter2@h.example/", "events": ["ping"]}),
            "url",
        ),
        (
            json!({"url": "https://user@h.example/", "events": ["ping"]}),
            "url",
        ),
        // The URL parser would drop these and store another URL.
        (
            json!({"url": "http://h.example/a\r\nb\tc", "events": ["ping"]}),
            "url",
        ),
        (
            json!({"url": "https://h.example/", "events": ["ping"], "description": "\u{1b}[31mred"}),
            "description",
        ),
        // No host, mended by the URL standard into one nobody gave.
        (json!({"url": "http:///x", "events": ["ping"]}), "url"),
        (json!({"url": "http:x.example/", "events": ["ping"]}), "url"),
        (
            json!({"url": "https:\\\\x.example/", "events": ["ping"]}),
            "url",
        ),
        (json!({"events": ["ping"]}), "url"),
        (
            json!({"url": "https://h.example/", "events": ["token.exploded"]}),
            "events",
        ),
        (json!({"url": "https://h.example/", "events": []}), "events"),
        (json!({"url": "https://h.example/"}), "events"),
        // 1,018 characters as sent, three times that once percent-encoded.
        (
            json!({"url": format!("https://h.example/{}", "é".repeat(1000)), "events": ["ping"]}),
            "url",
        ),
    ] {
        let res = api.post("/api/v1/webhooks", &admin, &body).await;
        res.expect(400, &body.to_string());
        assert_eq!(res.body["field"], field, "{body}: {}", res.body);
        assert!(!res.text.contains("hunter2"), "{}", res.text);
    }
    let res = api
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &admin,
            &json!({"url": "javascript:alert(1)"}),
        )
        .await;
    res.expect(400, "patch with a bad url");
    assert_eq!(res.body["field"], "url");

    let user = api.user("bob", &["profile", "tokens:read", "tokens:write"]);
    api.get("/api/v1/webhooks", &user)
        .await
        .expect(403, "not an admin");
    let reader = api.app.admin_token(&["admin:read"]);
    api.post(
        "/api/v1/webhooks",
        &reader,
        &json!({"url": "https://h.example/", "events": ["ping"]}),
    )
    .await
    .expect(403, "admin:read cannot create");

    api.delete(&format!("/api/v1/webhooks/{id}"), &admin)
        .await
        .expect(204, "delete");
    api.get(&format!("/api/v1/webhooks/{id}"), &admin)
        .await
        .expect(404, "gone");
}

async fn deliveries_are_signed_and_verified_by_an_independent_library(backend: Backend) {
    let api = spawn(backend, "1s").await;
    let admin = api.admin();
    let (id, receiver) = webhook(
        &api,
        &admin,
        &[
            "ping",
            "token.created",
            "token.revoked",
            "token.regenerated",
        ],
        "ok",
    )
    .await;
    api.post_empty(&format!("/api/v1/webhooks/{id}/ping"), &admin)
        .await
        .expect(202, "ping");
    wait_for("the ping", WAIT, || {
        (!of_type(&receiver.received(), "ping").is_empty()).then_some(())
    })
    .await;

    let created = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("deploy", &["profile"]),
        )
        .await;
    created.expect(201, "create a token");
    let token_id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let regenerated = api
        .post_empty(&format!("/api/v1/tokens/{token_id}/regenerate"), &admin)
        .await;
    regenerated.expect(201, "regenerate");
    let new_secret = regenerated.body["token"].as_str().unwrap().to_owned();
    let new_id = regenerated.body["id"].as_str().unwrap().to_owned();
    api.delete(&format!("/api/v1/tokens/{new_id}"), &admin)
        .await
        .expect(204, "revoke");

    let received = wait_for("three token events", WAIT, || {
        let r = receiver.received();
        (of_type(&r, "token.revoked").len() == 1
            && of_type(&r, "token.regenerated").len() == 1
            && of_type(&r, "token.created")
                .iter()
                .any(|c| c["body"]["data"]["id"] == token_id.as_str()))
        .then_some(r)
    })
    .await;
    for r in &received {
        assert_eq!(r["verified"], true, "signature verified: {r}");
        assert!(r["id"].as_str().unwrap().starts_with("msg_"), "{r}");
        let text = r.to_string();
        for s in [&secret, &new_secret, &admin] {
            assert!(!text.contains(s.as_str()), "no secret in a webhook: {r}");
        }
        assert!(r["body"]["timestamp"].as_str().is_some(), "{r}");
    }
    let made = of_type(&received, "token.created");
    let made = made
        .iter()
        .find(|r| r["body"]["data"]["id"] == token_id.as_str())
        .expect("token.created for the new token");
    let data = &made["body"]["data"];
    assert_eq!(data["name"], "deploy");
    assert_eq!(data["kind"], "personal");
    assert_eq!(data["owner"]["username"], "admin");
    assert_eq!(data["scopes"], json!(["profile"]));
    assert!(data.get("token").is_none(), "{data}");
    let regen = of_type(&received, "token.regenerated")[0];
    assert_eq!(regen["body"]["data"]["id"], token_id.as_str());
    assert_eq!(regen["body"]["data"]["new_token"]["id"], new_id.as_str());
    assert_eq!(
        of_type(&received, "token.revoked")[0]["body"]["data"]["status"],
        "revoked"
    );

    // The receiver logs a message before it answers, and the delivery is
    // recorded once the answer is in: wait for all four outcomes.
    let deliveries = format!("/api/v1/webhooks/{id}/deliveries");
    let log = eventually("four recorded deliveries", WAIT, || async {
        let log = api.get(&deliveries, &admin).await;
        log.expect(200, "deliveries");
        let items = log.body["items"].as_array().unwrap();
        (items.len() >= 4 && items.iter().all(|d| !d["status"].is_null())).then_some(log)
    })
    .await;
    let items = log.body["items"].as_array().unwrap();
    for d in items {
        assert_eq!(d["status"], 204, "{d}");
        assert_eq!(d["attempt"], 1, "{d}");
        assert!(d["next_attempt_at"].is_null(), "{d}");
    }
    assert!(
        items
            .iter()
            .any(|d| d["event"] == "ping" && received.iter().any(|r| r["id"] == d["message_id"])),
        "the log names the message ids the receiver saw"
    );
}

async fn retries_keep_the_message_id_then_give_up(backend: Backend) {
    let api = spawn(backend, "1s,1s").await;
    let admin = api.admin();
    let (flaky, flaky_rx) = webhook(&api, &admin, &["ping"], "fail:2").await;
    let (down, down_rx) = webhook(&api, &admin, &["ping"], "fail:100").await;
    for id in [&flaky, &down] {
        api.post_empty(&format!("/api/v1/webhooks/{id}/ping"), &admin)
            .await
            .expect(202, "ping");
    }
    let tries = wait_for("three attempts", WAIT, || {
        let r = flaky_rx.received();
        (r.len() == 3).then_some(r)
    })
    .await;
    assert!(tries.iter().all(|r| r["verified"] == true));
    assert!(
        tries.iter().all(|r| r["id"] == tries[0]["id"]),
        "one message id on every retry: {tries:?}"
    );
    let statuses: Vec<_> = tries.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, [json!(500), json!(500), json!(204)]);

    // The schedule has two retries: three attempts, then failed.
    let (api_ref, path) = (&api, format!("/api/v1/webhooks/{down}/deliveries"));
    let log = eventually("the given-up delivery", WAIT, || {
        let (path, admin) = (path.clone(), admin.clone());
        async move {
            let reply = api_ref.get(&path, &admin).await;
            let items = reply.body["items"].as_array()?;
            (items.len() >= 3).then(|| reply.body["items"].clone())
        }
    })
    .await;
    let items = log.as_array().unwrap();
    assert_eq!(items[0]["attempt"], 3, "{log}");
    assert!(items[0]["next_attempt_at"].is_null(), "given up: {log}");
    assert_eq!(items[0]["status"], 500);
    assert!(
        items[1]["next_attempt_at"].is_string(),
        "a failed attempt names the next: {log}"
    );
    assert_eq!(down_rx.received().len(), 3);
}

async fn a_hanging_or_redirecting_receiver_delays_no_other(backend: Backend) {
    let api = spawn(backend, "1h").await;
    let admin = api.admin();
    let (hanging_id, hanging) = webhook(&api, &admin, &["token.created"], "hang").await;
    let (_, good) = webhook(&api, &admin, &["token.created"], "ok").await;
    let (redirecting, redirect_rx) = webhook(
        &api,
        &admin,
        &["token.created"],
        &format!("redirect:{}", good.url()),
    )
    .await;
    api.post(
        "/api/v1/tokens",
        &admin,
        &token_request("fast", &["profile"]),
    )
    .await
    .expect(201, "a request is not delayed by receivers");
    wait_for("both receivers", WAIT, || {
        (!good.received().is_empty() && !hanging.received().is_empty()).then_some(())
    })
    .await;
    assert_eq!(hanging.received()[0]["status"], "pending");
    // The good receiver has its delivery while the hanging attempt (given
    // up after 10 s) has not even finished.
    let held = api
        .get(&format!("/api/v1/webhooks/{hanging_id}/deliveries"), &admin)
        .await;
    assert_eq!(
        held.body["items"],
        json!([]),
        "still waiting on the hanging receiver"
    );
    assert_eq!(good.received().len(), 1, "the redirect was not followed");
    let (api_ref, path) = (&api, format!("/api/v1/webhooks/{redirecting}/deliveries"));
    eventually("the redirect's delivery log", WAIT, || {
        let (path, admin) = (path.clone(), admin.clone());
        async move {
            let reply = api_ref.get(&path, &admin).await;
            (reply.body["items"][0]["status"] == 302).then_some(())
        }
    })
    .await;
    assert_eq!(redirect_rx.received().len(), 1);
    assert_eq!(good.received().len(), 1, "the redirect was not followed");
}

/// A message queued before its webhook was disabled is not sent: each retry
/// is logged as refused until the schedule is spent (or the webhook is
/// enabled again).
async fn a_disabled_webhook_is_sent_nothing_more(backend: Backend) {
    // Room to disable it between the first attempt and the retry.
    let api = spawn(backend, "6s").await;
    let admin = api.admin();
    let (id, rx) = webhook(&api, &admin, &["ping"], "fail:1").await;
    api.post_empty(&format!("/api/v1/webhooks/{id}/ping"), &admin)
        .await
        .expect(202, "ping");
    wait_for("the first attempt", WAIT, || {
        (rx.received().len() == 1).then_some(())
    })
    .await;
    api.patch(
        &format!("/api/v1/webhooks/{id}"),
        &admin,
        &json!({"enabled": false}),
    )
    .await
    .expect(200, "disable");
    let (api_ref, path) = (&api, format!("/api/v1/webhooks/{id}/deliveries"));
    let log = eventually("the retry's log line", WAIT, || {
        let (path, admin) = (path.clone(), admin.clone());
        async move {
            let reply = api_ref.get(&path, &admin).await;
            let items = reply.body["items"].as_array()?;
            (items.len() >= 2).then(|| reply.body["items"].clone())
        }
    })
    .await;
    assert_eq!(log[0]["attempt"], 2, "{log}");
    assert!(
        log[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("disabled")),
        "{log}"
    );
    assert!(log[0]["next_attempt_at"].is_null(), "schedule spent: {log}");
    assert_eq!(rx.received().len(), 1, "nothing sent once disabled");
}

/// A receiver that never answers holds at most four of an instance's sixteen
/// sending slots: with twenty messages queued for it, a message for another
/// receiver goes out while most of them still wait. Without the share, all
/// sixteen slots hang on it until its 10 s timeouts, and the other message
/// leaves only after sixteen or more of its sends.
async fn a_hanging_receiver_holds_only_its_share_of_the_slots(backend: Backend) {
    let api = spawn(backend, "1h").await;
    let admin = api.admin();
    let (good_id, good) = webhook(&api, &admin, &["ping"], "ok").await;
    let (_, hanging) = webhook(&api, &admin, &["token.created"], "hang").await;
    for i in 0..20 {
        api.post(
            "/api/v1/tokens",
            &admin,
            &token_request(&format!("t{i}"), &["profile"]),
        )
        .await
        .expect(201, "token");
    }
    wait_for("the hanging receiver's first requests", WAIT, || {
        (hanging.received().len() >= 4).then_some(())
    })
    .await;
    api.post_empty(&format!("/api/v1/webhooks/{good_id}/ping"), &admin)
        .await
        .expect(202, "ping");
    wait_for("the ping", WAIT, || {
        (!good.received().is_empty()).then_some(())
    })
    .await;
    let seen = hanging.received().len();
    assert!(
        seen < 16,
        "the ping went out while the hanging receiver had {seen} sends, 4 at a time"
    );
}

/// Deliveries reach private or local addresses only when allowed: by
/// default a receiver on loopback, named by address or by a name resolving
/// to it, gets nothing, and the delivery log says why.
async fn deliveries_to_private_addresses_are_refused_unless_allowed(backend: Backend) {
    let api = Api {
        app: TestApp::spawn_with(
            backend,
            &[
                ("TESSERA_SWEEP_EVERY", "1s"),
                ("TESSERA_RETRY_SCHEDULE", "1h"),
                ("TESSERA_WEBHOOK_ALLOWED_NETWORKS", ""),
            ],
        )
        .await,
    };
    let admin = api.admin();
    let (by_address, receiver) = webhook(&api, &admin, &["ping"], "ok").await;
    let (by_name, named) = webhook(&api, &admin, &["ping"], "ok").await;
    api.patch(
        &format!("/api/v1/webhooks/{by_name}"),
        &admin,
        &json!({"url": format!("http://localhost:{}/hook", named.port)}),
    )
    .await
    .expect(200, "a name that resolves to loopback");
    for id in [&by_address, &by_name] {
        api.post_empty(&format!("/api/v1/webhooks/{id}/ping"), &admin)
            .await
            .expect(202, "ping");
        let (api_ref, path) = (&api, format!("/api/v1/webhooks/{id}/deliveries"));
        let log = eventually("the refused delivery", WAIT, || {
            let (path, admin) = (path.clone(), admin.clone());
            async move {
                let reply = api_ref.get(&path, &admin).await;
                let items = reply.body["items"].as_array()?;
                (!items.is_empty()).then(|| items[0].clone())
            }
        })
        .await;
        let error = log["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("private or local address")
                && error.contains("TESSERA_WEBHOOK_ALLOWED_NETWORKS"),
            "{log}"
        );
        assert!(log["status"].is_null(), "nothing was sent: {log}");
    }
    assert!(receiver.received().is_empty(), "nothing reached loopback");
    assert!(named.received().is_empty(), "nor through a name");
}

both_backends!(
    deliveries_to_private_addresses_are_refused_unless_allowed,
    a_disabled_webhook_is_sent_nothing_more,
    webhooks_are_managed_by_admins_and_bad_input_names_the_field,
    deliveries_are_signed_and_verified_by_an_independent_library,
    retries_keep_the_message_id_then_give_up,
    a_hanging_or_redirecting_receiver_delays_no_other,
    a_hanging_receiver_holds_only_its_share_of_the_slots,
);
