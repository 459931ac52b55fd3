//! INTERFACE §8: failed client authentication at the OAuth endpoints is
//! limited per address (429 + Retry-After + `invalid_client`), without
//! locking out a working client from another address or behind the same NAT.
//!
//! Requests come from different loopback addresses (127.0.0.x, Linux) to
//! play several hosts; the limit is set low (`3/1h`) for the test: one try
//! comes back every 20 minutes, so none returns while the test runs.

use std::net::IpAddr;

use crate::{
    both_backends,
    common::{Backend, Reply, TestApp, TestDb},
};

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("address"))
        .build()
        .expect("client")
}

async fn post(
    app: &TestApp,
    from: &reqwest::Client,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Reply {
    let res = from
        .post(app.url(path))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("request");
    Reply::read(res).await
}

async fn token(app: &TestApp, from: &reqwest::Client, id: &str, secret: &str) -> Reply {
    post(
        app,
        from,
        "/oauth2/token",
        id,
        secret,
        &[("grant_type", "client_credentials")],
    )
    .await
}

#[track_caller]
fn assert_throttled(r: &Reply, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", r.text);
    let wait: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=1200).contains(&wait), "{what}: Retry-After {wait}");
    assert_eq!(r.body["error"], "invalid_client", "{what}");
    let why = r.body["error_description"].as_str().unwrap_or("");
    assert!(why.contains("too many failed"), "{what}: {why}");
}

async fn failed_client_authentication_is_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_AUTH_FAILURES_PER_IP", "3/1h")]).await;
    let worker = app.create_machine("worker", &["introspect"]);
    let neighbour = app.create_machine("neighbour", &["profile"]);
    let nat = client_from("127.0.0.1");
    let elsewhere = client_from("127.0.0.2");
    // A working client behind the NAT, before the attack.
    token(&app, &nat, "worker", &worker)
        .await
        .expect(200, "worker");

    // Three failures are told apart from a limit: 401…
    for i in 0..3 {
        let r = token(&app, &nat, "worker", "tsc_wrong").await;
        assert_eq!(r.status, 401, "failure {i}: {}", r.text);
        assert_eq!(r.body["error"], "invalid_client");
    }
    // …then every endpoint answers 429 for guesses from this address.
    assert_throttled(&token(&app, &nat, "worker", "tsc_wrong").await, "token");
    assert_throttled(
        &post(
            &app,
            &nat,
            "/oauth2/introspect",
            "worker",
            "tsc_x",
            &[("token", "t")],
        )
        .await,
        "introspect",
    );
    assert_throttled(
        &post(
            &app,
            &nat,
            "/oauth2/revoke",
            "ghost",
            "tsc_x",
            &[("token", "t")],
        )
        .await,
        "revoke",
    );

    // The working client behind the same NAT keeps working, at every endpoint.
    let access = token(&app, &nat, "worker", &worker).await;
    access.expect(200, "worker behind the NAT");
    let jwt = access.body["access_token"].as_str().expect("token");
    let r = post(
        &app,
        &nat,
        "/oauth2/introspect",
        "worker",
        &worker,
        &[("token", jwt)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], true);

    // Another address is not affected: its clients work, its first failure is a 401.
    token(&app, &elsewhere, "neighbour", &neighbour)
        .await
        .expect(200, "neighbour elsewhere");
    assert_eq!(
        token(&app, &elsewhere, "worker", "tsc_wrong").await.status,
        401
    );

    // A right secret that never worked before (a client new behind the NAT,
    // or one this instance has not seen since it started) works too, while
    // guesses from the address still get nothing but 429.
    let fresh = app.create_machine("fresh", &["profile"]);
    token(&app, &nat, "fresh", &fresh)
        .await
        .expect(200, "a new client behind the NAT");
    assert_throttled(&token(&app, &nat, "fresh", "tsc_wrong").await, "guess");
}

/// A bad value stops start-up with one line naming the setting.
#[test]
fn a_bad_limit_is_refused_naming_the_setting() {
    let db = TestDb::new(Backend::Sqlite);
    for bad in ["lots", "0/5m", "30/forever", "30"] {
        let out = db.cli_env(&["serve"], None, &[("TESSERA_AUTH_FAILURES_PER_IP", bad)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} should stop start-up");
        assert_eq!(stderr.trim().lines().count(), 1, "{bad}: {stderr:?}");
        assert!(
            stderr.contains("TESSERA_AUTH_FAILURES_PER_IP"),
            "{bad}: {stderr:?}"
        );
    }
}

/// Credentials that cannot even be read are failures too: a malformed
/// assertion or Basic header, or a client id without its secret.
async fn unreadable_credentials_count_as_failures(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_AUTH_FAILURES_PER_IP", "3/1h")]).await;
    let worker = app.create_machine("worker", &["profile"]);
    let from = client_from("127.0.0.3");
    let assertion = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", "a.b.c"),
    ];
    let send =
        async |req: reqwest::RequestBuilder| Reply::read(req.send().await.expect("request")).await;
    let unreadable = [
        from.post(app.url("/oauth2/token")).form(&assertion),
        from.post(app.url("/oauth2/token"))
            .header("Authorization", "Basic !!not-base64!!")
            .form(&[("grant_type", "client_credentials")]),
        from.post(app.url("/oauth2/introspect"))
            .form(&[("client_id", "worker"), ("token", "t")]),
    ];
    for (i, req) in unreadable.into_iter().enumerate() {
        let r = send(req).await;
        assert_eq!(r.status, 401, "failure {i}: {}", r.text);
        assert_eq!(r.body["error"], "invalid_client", "failure {i}");
    }
    assert_throttled(
        &send(from.post(app.url("/oauth2/token")).form(&assertion)).await,
        "a malformed assertion over the limit",
    );
    assert_throttled(
        &token(&app, &from, "worker", "tsc_wrong").await,
        "a wrong secret after them",
    );
    token(&app, &from, "worker", &worker)
        .await
        .expect(200, "the right secret still works");
}

both_backends!(
    failed_client_authentication_is_limited_per_address,
    unreadable_credentials_count_as_failures
);
