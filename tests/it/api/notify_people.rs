//! Notifications reach the people of §12: the owner of a reported leak is
//! e-mailed (never the secret), and a machine user's managers are reminded
//! of its expiring tokens, through a real SMTP server.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_backends,
    common::{
        ADMIN_PASSWORD, Api, Backend, TestApp,
        receivers::{SmtpSink, wait_for},
        web::Browser,
    },
};

const WAIT: Duration = Duration::from_secs(30);

fn person(api: &Api, name: &str) {
    api.app.db.cli_ok(
        &[
            "users",
            "create",
            "--username",
            name,
            "--email",
            &format!("{name}@example.test"),
            "--password-stdin",
        ],
        Some(ADMIN_PASSWORD),
    );
}

fn to<'a>(messages: &'a [String], address: &str) -> Vec<&'a String> {
    messages
        .iter()
        .filter(|m| m.starts_with(&format!("X-Envelope-To: {address}\r\n")))
        .collect()
}

async fn a_leak_report_emails_the_owner(backend: Backend) {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let api = Api {
        app: TestApp::spawn_with(
            backend,
            &[("TESSERA_SWEEP_EVERY", "1s"), ("TESSERA_SMTP_URL", &url)],
        )
        .await,
    };
    person(&api, "alice");
    let alice = api.app.token_for("alice", &["profile", "tokens:write"]);
    let pat = api
        .post(
            "/api/v1/tokens",
            &alice,
            &json!({"name": "laptop", "scopes": ["profile"], "expires_in_seconds": 3600}),
        )
        .await;
    pat.expect(201, "a PAT");
    let secret = pat.body["token"].as_str().unwrap().to_owned();
    let reported = api
        .app
        .client
        .post(api.app.url("/api/v1/leaks"))
        .json(&json!({"tokens": [secret]}))
        .send()
        .await
        .expect("report");
    assert_eq!(reported.status(), 202);
    let mail = wait_for("the leak e-mail", WAIT, || {
        let all = smtp.messages();
        let mine: Vec<String> = to(&all, "alice@example.test")
            .into_iter()
            .filter(|m| m.contains("reported leaked"))
            .cloned()
            .collect();
        (!mine.is_empty()).then_some(mine)
    })
    .await;
    // A few sweeps later there is still one: it is not sent again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = to(&smtp.messages(), "alice@example.test")
        .into_iter()
        .filter(|m| m.contains("reported leaked"))
        .count();
    assert_eq!(again, 1, "{mail:#?}");
    assert!(!mail[0].contains(&secret), "never the secret");
    assert_eq!(api.app.me_status(&secret).await, 401, "revoked");
}

async fn managers_are_reminded_of_their_machine_users_tokens(backend: Backend) {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let api = Api {
        app: TestApp::spawn_with(
            backend,
            &[
                ("TESSERA_SWEEP_EVERY", "1s"),
                ("TESSERA_SMTP_URL", &url),
                ("TESSERA_REMINDERS", "2m"),
            ],
        )
        .await,
    };
    let admin = api.admin();
    person(&api, "dave");
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "nightly", "scopes": ["profile"]}),
        )
        .await;
    machine.expect(201, "machine user without a contact address");
    let id = machine.body["id"].as_str().unwrap().to_owned();
    api.patch(
        &format!("/api/v1/machine-users/{id}"),
        &admin,
        &json!({"managers": ["dave"]}),
    )
    .await
    .expect(200, "dave looks after it");
    api.post(
        &format!("/api/v1/machine-users/{id}/tokens"),
        &admin,
        &json!({"name": "nightly-export", "scopes": ["profile"], "expires_in_seconds": 90}),
    )
    .await
    .expect(201, "a machine token inside the 2m threshold");
    let mail = wait_for("the manager's reminder", WAIT, || {
        let all = smtp.messages();
        let his: Vec<String> = to(&all, "dave@example.test").into_iter().cloned().collect();
        (!his.is_empty()).then_some(his)
    })
    .await;
    assert!(mail[0].contains("nightly-export"), "{}", mail[0]);
    // The link opens for the manager; an admin is sent on to the admin page.
    let page = format!("/machine-users/{id}");
    assert!(mail[0].contains(&page), "{}", mail[0]);
    assert!(
        !mail[0].contains("/admin/"),
        "a page managers can open: {}",
        mail[0]
    );
    Browser::signed_in(&api.app, "dave")
        .await
        .get(&page)
        .await
        .expect(StatusCode::OK, "the manager opens the reminder's link");
    api.app.create_user("boss", true);
    let to_admin = Browser::signed_in(&api.app, "boss").await.get(&page).await;
    to_admin.expect(StatusCode::SEE_OTHER, "an admin is sent on");
    assert_eq!(to_admin.location(), format!("/admin/machine-users/{id}"));
}

both_backends!(
    a_leak_report_emails_the_owner,
    managers_are_reminded_of_their_machine_users_tokens
);
