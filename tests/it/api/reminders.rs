//! Expiry reminders (INTERFACE §9) to a real SMTP server and a real webhook
//! receiver: once per threshold, only the nearest for a token already inside
//! several, a notice at expiry, the right recipients and content (never a
//! secret), exactly once with two instances and across a restart; and bad
//! settings stop start-up with one line naming the setting.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{
        ADMIN_PASSWORD, Api, Backend, TestApp,
        receivers::{Silent, SmtpSink, eventually, wait_for, webhook},
    },
};

const WAIT: Duration = Duration::from_secs(30);
/// Long enough for several sweeps (`TESSERA_SWEEP_EVERY=1s`) to repeat
/// anything they would wrongly repeat.
const SETTLE: Duration = Duration::from_secs(4);

fn env<'a>(smtp: &'a str, reminders: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TESSERA_SWEEP_EVERY", "1s"),
        ("TESSERA_REMINDERS", reminders),
        ("TESSERA_SMTP_URL", smtp),
        ("TESSERA_SMTP_FROM", "Tessera <tessera@example.test>"),
    ]
}

fn to(messages: &[String], address: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.starts_with(&format!("X-Envelope-To: {address}\r\n")))
        .cloned()
        .collect()
}

fn events(received: &[Value], event: &str) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r["body"]["type"] == event)
        .cloned()
        .collect()
}

/// alice, a person with an e-mail address for her reminders.
fn create_alice(app: &TestApp) {
    app.db.cli_ok(
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.test",
            "--password-stdin",
        ],
        Some(ADMIN_PASSWORD),
    );
}

/// Moves a token's expiry behind the server's back (the lifetime minimum is
/// a minute; the reminder schedule is what is under test).
pub(crate) async fn expire_at(app: &TestApp, name: &str, in_seconds: i64) {
    let at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::seconds(in_seconds);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let changed = app
        .sql(&format!(
            "UPDATE tokens SET expires_at = '{at}' WHERE name = '{name}'"
        ))
        .await;
    assert_eq!(changed, 1);
}

async fn reminders_go_once_per_threshold_and_at_expiry(backend: Backend) {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let api = Api {
        app: TestApp::spawn_with(backend, &env(&url, "3m,2m,30s")).await,
    };
    let admin = api.admin();
    create_alice(&api.app);
    let alice = api.app.token_for("alice", &["profile", "tokens:write"]);
    let (_, receiver) = webhook(&api, &admin, &["token.expiring", "token.expired"], "ok").await;

    // Inside both the 3m and 2m thresholds: only the nearest (2m) goes out.
    let pat = api
        .post(
            "/api/v1/tokens",
            &alice,
            &json!({"name": "soon", "scopes": ["profile"], "expires_in_seconds": 90}),
        )
        .await;
    pat.expect(201, "a PAT expiring in 90 s");
    let pat_id = pat.body["id"].as_str().unwrap().to_owned();
    let pat_secret = pat.body["token"].as_str().unwrap().to_owned();
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "ci-bot", "contact_email": "ops@example.test", "scopes": ["profile"]}),
        )
        .await;
    machine.expect(201, "machine user");
    let machine_id = machine.body["id"].as_str().unwrap().to_owned();
    let mtoken = api
        .post(
            &format!("/api/v1/machine-users/{machine_id}/tokens"),
            &admin,
            &json!({"name": "bot-deploy", "scopes": ["profile"], "expires_in_seconds": 90}),
        )
        .await;
    mtoken.expect(201, "machine token");
    let mtoken_secret = mtoken.body["token"].as_str().unwrap().to_owned();
    let mtoken_id = mtoken.body["id"].as_str().unwrap().to_owned();

    let mail = wait_for("the first reminders", WAIT, || {
        let m = smtp.messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    let first = &to(&mail, "alice@example.test")[0];
    for needle in [
        "soon",
        "alice",
        "profile",
        "expires in",
        "Last used: never",
        &format!("/tokens/{pat_id}/regenerate"),
    ] {
        assert!(first.contains(needle), "{needle:?} in {first}");
    }
    let ops = &to(&mail, "ops@example.test");
    assert_eq!(ops.len(), 1, "the machine user's contact: {mail:?}");
    assert!(ops[0].contains("bot-deploy") && ops[0].contains("ci-bot"));
    assert!(ops[0].contains(&format!("/machine-users/{machine_id}")));
    assert!(!ops[0].contains("/admin/"), "a page managers can open too");
    for m in &mail {
        for secret in [&pat_secret, &mtoken_secret, &alice, &admin] {
            assert!(!m.contains(secret.as_str()), "no secret in a reminder");
        }
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        smtp.messages().len(),
        2,
        "the 3m threshold, crossed already, is not sent as well"
    );
    // A revoked token is reminded of nothing more.
    api.delete(&format!("/api/v1/admin/tokens/{mtoken_id}"), &admin)
        .await
        .expect(204, "revoke the machine token");

    expire_at(&api.app, "soon", 20).await;
    wait_for("the 30s reminder", WAIT, || {
        (to(&smtp.messages(), "alice@example.test").len() == 2).then_some(())
    })
    .await;
    expire_at(&api.app, "soon", -1).await;
    let mail = wait_for("the notice at expiry", WAIT, || {
        let m = to(&smtp.messages(), "alice@example.test");
        (m.len() == 3).then_some(m)
    })
    .await;
    assert!(mail[2].contains("has expired"), "{}", mail[2]);
    tokio::time::sleep(SETTLE).await;
    assert_eq!(smtp.messages().len(), 4, "each reminder exactly once");

    let received = wait_for("the webhooks", WAIT, || {
        let r = receiver.received();
        (r.len() >= 4).then_some(r)
    })
    .await;
    assert!(received.iter().all(|r| r["verified"] == true));
    let expiring = events(&received, "token.expiring");
    let expired = events(&received, "token.expired");
    assert_eq!((expiring.len(), expired.len()), (3, 1), "{received:?}");
    assert_eq!(expired[0]["body"]["data"]["id"], pat_id.as_str());
    assert_eq!(expiring[0]["body"]["data"]["days_left"], 1);
    assert!(
        !received.iter().any(|r| r.to_string().contains(&pat_secret)),
        "no secret in a webhook"
    );
}

async fn each_reminder_goes_once_across_instances_and_restarts(backend: Backend) {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let settings = env(&url, "2m");
    let mut api = Api {
        app: TestApp::spawn_with(backend, &settings).await,
    };
    if backend == Backend::Postgres {
        api.app.start_another(&settings);
    }
    api.app.db.cli_ok(
        &[
            "users",
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.test",
            "--password-stdin",
        ],
        Some(ADMIN_PASSWORD),
    );
    let carol = api.app.token_for("carol", &["profile", "tokens:write"]);
    for i in 0..6 {
        api.post(
            "/api/v1/tokens",
            &carol,
            &json!({"name": format!("t{i}"), "scopes": ["profile"], "expires_in_seconds": 90}),
        )
        .await
        .expect(201, "token");
    }
    wait_for("six reminders", WAIT, || {
        (smtp.messages().len() >= 6).then_some(())
    })
    .await;
    // A restarted instance knows nothing in memory: the database does.
    api.app.restart(&settings);
    if backend == Backend::Postgres {
        api.app.start_another(&settings);
    }
    tokio::time::sleep(SETTLE).await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 6, "exactly once each: {mail:#?}");
    for i in 0..6 {
        let name = format!("“t{i}”");
        assert_eq!(
            mail.iter().filter(|m| m.contains(&name)).count(),
            1,
            "t{i} reminded once"
        );
    }
    assert_eq!(
        api.app.scalar("SELECT COUNT(*) FROM token_reminders").await,
        6
    );
}

async fn bad_notification_settings_stop_start_up_with_one_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (var, value) in [
        ("TESSERA_SMTP_URL", "ftp://user:hunter2@mail.example"),
        ("TESSERA_SMTP_URL", "not a url at all"),
        ("TESSERA_SMTP_URL", "smtp://user:hunter2@"),
        ("TESSERA_SMTP_FROM", "nobody"),
        ("TESSERA_REMINDERS", "14d,soon"),
        ("TESSERA_SWEEP_EVERY", "0s"),
        ("TESSERA_SWEEP_EVERY", "often"),
    ] {
        let out = app.db.cli_env(&["migrate"], None, &[(var, value)]);
        assert!(!out.status.success(), "{var}={value:?} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(var), "{var}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(!stderr.contains("hunter2"), "no password: {stderr}");
    }
    let out = app.db.cli_env(
        &["migrate"],
        None,
        &[
            ("TESSERA_SMTP_URL", "smtps://u:p%40ss@mail.example:465"),
            ("TESSERA_REMINDERS", "30d,14d,7d,1d,1h"),
            ("TESSERA_SWEEP_EVERY", "30s"),
        ],
    );
    assert!(
        out.status.success(),
        "good settings pass: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// More tokens inside a threshold than the sweep reads at once (500): each
/// gets its reminder, not only the 500 nearest their end, which are then
/// reminded already and would fill every sweep.
async fn every_token_in_the_window_is_reminded_past_one_page(backend: Backend) {
    let api = Api {
        app: TestApp::spawn_with(
            backend,
            &[("TESSERA_SWEEP_EVERY", "1s"), ("TESSERA_REMINDERS", "1d")],
        )
        .await,
    };
    let admin = api.admin();
    for n in 0..520 {
        api.post(
            "/api/v1/tokens",
            &admin,
            &crate::common::token_request(&format!("batch-{n}"), &["profile"]),
        )
        .await
        .expect(201, "create");
    }
    let app = &api.app;
    eventually("a reminder for each of the 520", WAIT, || async move {
        let n = app
            .scalar(
                "SELECT count(*) FROM token_reminders r JOIN tokens t ON t.id = r.token_id \
                 WHERE t.name LIKE 'batch-%'",
            )
            .await;
        (n == 520).then_some(())
    })
    .await;
}

/// Tessera sending e-mail to `smtp` (retries an hour apart) with one
/// reminder due: alice's new token expires within its 1d threshold.
async fn one_reminder_for(backend: Backend, smtp: &str) -> Api {
    let mut settings = env(smtp, "1d");
    settings.push(("TESSERA_RETRY_SCHEDULE", "1h"));
    let api = Api {
        app: TestApp::spawn_with(backend, &settings).await,
    };
    create_alice(&api.app);
    let alice = api.app.token_for("alice", &["profile", "tokens:write"]);
    api.post(
        "/api/v1/tokens",
        &alice,
        &crate::common::token_request("soon", &["profile"]),
    )
    .await
    .expect(201, "a PAT inside the 1d threshold");
    api
}

/// Waits for the reminder's first attempt to have failed with an error
/// like `error` (an SQL `LIKE` pattern), due again later.
async fn first_attempt_failed(app: &TestApp, error: &str, wait: Duration) {
    let query = format!(
        "SELECT count(*) FROM outbox WHERE channel = 'email' AND state = 'pending' \
         AND attempts = 1 AND last_error LIKE '{error}'"
    );
    eventually("the attempt to fail", wait, || async {
        (app.scalar(&query).await == 1).then_some(())
    })
    .await;
}

/// An SMTP server that takes the connection and never says a word: the
/// attempt ends (30 s) as a failure due again later, instead of holding a
/// sending slot forever and its message being claimed and sent again.
async fn an_smtp_server_that_never_answers_fails_the_attempt(backend: Backend) {
    // The kernel completes the handshake; nothing ever reads or writes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let api = one_reminder_for(backend, &url).await;
    first_attempt_failed(&api.app, "%no answer within 30 s%", Duration::from_secs(90)).await;
    drop(silent);
}

/// With credentials in `TESSERA_SMTP_URL`, STARTTLS is required: a server
/// that offers AUTH without it (or a man in the middle that strips it) never
/// sees the password, and the attempt fails saying why.
async fn smtp_credentials_never_cross_the_network_in_clear(backend: Backend) {
    let sink = SmtpSink::start_with(&["--auth-in-clear"]);
    let url = format!("smtp://tessera:s3cret-pw@127.0.0.1:{}", sink.port);
    let api = one_reminder_for(backend, &url).await;
    first_attempt_failed(&api.app, "%STARTTLS%", WAIT).await;
    assert_eq!(sink.credentials_seen(), "", "no password was sent");
    assert!(sink.messages().is_empty());
}

/// A reminder still queued when its token is revoked (the SMTP server was
/// down meanwhile) is dropped at its next attempt instead of going out late
/// about a dead token; one about a token still alive keeps its retries.
async fn a_queued_reminder_about_a_revoked_token_is_dropped(backend: Backend) {
    // Nothing listens there: every attempt fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let mut settings = env(&url, "1d");
    settings.push(("TESSERA_RETRY_SCHEDULE", "3s,1h"));
    let api = Api {
        app: TestApp::spawn_with(backend, &settings).await,
    };
    create_alice(&api.app);
    let alice = api.app.token_for("alice", &["profile", "tokens:write"]);
    let mut ids = Vec::new();
    for name in ["doomed", "alive"] {
        let made = api
            .post(
                "/api/v1/tokens",
                &alice,
                &crate::common::token_request(name, &["profile"]),
            )
            .await;
        made.expect(201, "a PAT inside the 1d threshold");
        ids.push(made.body["id"].as_str().unwrap().to_owned());
    }
    let app = &api.app;
    let count = |sql: &'static str| async move { app.scalar(sql).await };
    eventually("both first attempts to fail", WAIT, || async {
        (count(
            "SELECT count(*) FROM outbox WHERE channel = 'email' AND state = 'pending' AND attempts = 1",
        )
        .await
            == 2)
            .then_some(())
    })
    .await;
    api.delete(&format!("/api/v1/tokens/{}", ids[0]), &alice)
        .await
        .expect(204, "revoke");
    eventually("the second attempts", WAIT, || async {
        (count("SELECT count(*) FROM outbox WHERE channel = 'email' AND attempts = 2").await == 2)
            .then_some(())
    })
    .await;
    assert_eq!(
        count(
            "SELECT count(*) FROM outbox WHERE channel = 'email' AND state = 'failed' \
             AND last_error LIKE 'not sent: the token was revoked%'"
        )
        .await,
        1,
        "the reminder about the revoked token is dropped"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM outbox WHERE channel = 'email' AND state = 'pending' \
             AND last_error NOT LIKE 'not sent%'"
        )
        .await,
        1,
        "the other keeps its retries"
    );
}

/// An SMTP server that hangs holds at most four of an instance's sixteen
/// sending slots, as a webhook receiver does: with twenty reminders queued
/// for it, a webhook message goes out at once. Without the share, sixteen
/// sends hang on it for their 30 s and the webhook waits for them.
async fn a_hanging_smtp_server_holds_only_its_share_of_the_slots(backend: Backend) {
    let silent = Silent::start();
    let url = format!("smtp://127.0.0.1:{}", silent.port);
    let mut settings = env(&url, "1d");
    settings.push(("TESSERA_RETRY_SCHEDULE", "1h"));
    let api = Api {
        app: TestApp::spawn_with(backend, &settings).await,
    };
    let admin = api.admin();
    let (hook_id, receiver) = webhook(&api, &admin, &["ping"], "ok").await;
    create_alice(&api.app);
    let alice = api.app.token_for("alice", &["profile", "tokens:write"]);
    for i in 0..20 {
        api.post(
            "/api/v1/tokens",
            &alice,
            &crate::common::token_request(&format!("soon-{i}"), &["profile"]),
        )
        .await
        .expect(201, "a PAT inside the 1d threshold");
    }
    wait_for("the first e-mails to hang", WAIT, || {
        (silent.accepted() >= 4).then_some(())
    })
    .await;
    api.post_empty(&format!("/api/v1/webhooks/{hook_id}/ping"), &admin)
        .await
        .expect(202, "ping");
    wait_for("the ping", WAIT, || {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    let hung = silent.accepted();
    assert!(
        hung <= 4,
        "the ping went out while the SMTP server held {hung} sends, 4 at a time"
    );
}

both_backends!(
    a_queued_reminder_about_a_revoked_token_is_dropped,
    a_hanging_smtp_server_holds_only_its_share_of_the_slots,
    smtp_credentials_never_cross_the_network_in_clear,
    an_smtp_server_that_never_answers_fails_the_attempt,
    every_token_in_the_window_is_reminded_past_one_page,
    reminders_go_once_per_threshold_and_at_expiry,
    each_reminder_goes_once_across_instances_and_restarts,
    bad_notification_settings_stop_start_up_with_one_line,
);
