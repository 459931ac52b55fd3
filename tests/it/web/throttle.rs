//! Sign-in throttling (issue #8 items 2 and 3): attempts are counted before
//! the password is checked, an account is locked per address only, and
//! argon2 runs at most once per core, answering 429 when every core is busy.
//!
//! The server sees each request's peer address; requests are sent from
//! different loopback addresses (127.0.0.x, Linux) to play several hosts.

use std::net::IpAddr;

use reqwest::StatusCode;
use serde_json::Value;

use super::{Browser, Page};
use crate::{
    both_backends,
    common::{ADMIN_PASSWORD, Backend, TestApp},
};

/// A browser whose connections come from `ip`, sending `headers` with each request.
fn browser_with(app: &TestApp, ip: &str, headers: reqwest::header::HeaderMap) -> Browser {
    Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip.parse::<IpAddr>().expect("address"))
            .default_headers(headers)
            .build()
            .expect("client"),
        base: app.url(""),
    }
}

/// A browser whose connections come from `ip`.
fn browser_from(app: &TestApp, ip: &str) -> Browser {
    browser_with(app, ip, reqwest::header::HeaderMap::new())
}

/// A browser whose connections come from `proxy`, saying they are for `client`.
fn browser_via(app: &TestApp, proxy: &str, client: &str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client.parse().expect("header"));
    browser_with(app, proxy, headers)
}

/// Browsers that have each loaded the sign-in form, ready to post it at once.
async fn ready(app: &TestApp, ips: &[String]) -> Vec<(Browser, String)> {
    let mut out = Vec::new();
    for ip in ips {
        let b = browser_from(app, ip);
        let csrf = b.get("/login").await.csrf();
        out.push((b, csrf));
    }
    out
}

/// Posts every prepared form at the same moment: `(username, password)` each.
async fn post_all(forms: Vec<(Browser, String)>, username: &str, password: &str) -> Vec<Page> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (b, csrf)) in forms.into_iter().enumerate() {
        let username = username.replace("{i}", &i.to_string());
        let password = password.to_owned();
        set.spawn(async move {
            b.post(
                "/login",
                &[
                    ("csrf", csrf.as_str()),
                    ("username", username.as_str()),
                    ("password", password.as_str()),
                ],
            )
            .await
        });
    }
    set.join_all().await
}

/// Audited failed sign-ins at `username`.
async fn audited_failures(app: &TestApp, admin_token: &str, username: &str) -> usize {
    let res = app
        .get_bearer(
            "/api/v1/audit?action=session.login_failed&limit=100",
            admin_token,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["details"]["username"] == username)
        .count()
}

async fn parallel_wrong_passwords_never_exceed_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token(&["admin:read"]);
    app.create_user("victim", false);
    let forms = ready(&app, &vec!["127.0.0.1".to_owned(); 20]).await;
    let pages = post_all(forms, "victim", "wrong password!").await;
    for p in &pages {
        assert!(
            p.status == StatusCode::UNAUTHORIZED || p.status == StatusCode::TOO_MANY_REQUESTS,
            "{}: {}",
            p.status,
            p.body
        );
    }
    // Whatever got through in parallel, the rest of the allowance is used up
    // one by one until the address is locked out of this account.
    let b = Browser::new(&app);
    let mut sequential = 0;
    loop {
        let p = b.login("victim", "wrong password!").await;
        if p.status == StatusCode::TOO_MANY_REQUESTS && p.body.contains("Too many failed") {
            break;
        }
        assert!(
            p.status == StatusCode::UNAUTHORIZED || p.status == StatusCode::TOO_MANY_REQUESTS,
            "{}",
            p.status
        );
        sequential += 1;
        assert!(sequential <= 40, "never throttled");
    }
    assert_eq!(
        audited_failures(&app, &admin, "victim").await,
        5,
        "exactly the limit of password checks failed, however many ran in parallel"
    );
}

/// `attempts` wrong passwords for `username`: the first five are checked
/// (401), the rest refused unchecked (429).
async fn guess_until_locked(b: &Browser, username: &str, attempts: usize) {
    for i in 0..attempts {
        let p = b.login(username, "guess guess").await;
        let expected = if i < 5 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(p.status, expected, "attempt {i}: {}", p.body);
    }
}

async fn an_attacker_elsewhere_cannot_lock_the_admin_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    // One attacker hammers the account from one address: locked out there
    // after five failures, even with the right password.
    let attacker = browser_from(&app, "127.0.0.2");
    guess_until_locked(&attacker, "boss", 8).await;
    let p = attacker.login("boss", ADMIN_PASSWORD).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.headers.contains_key("retry-after"));
    // More attackers from more addresses: the account slows down, never locks.
    for (ip, n) in [("127.0.0.3", 5), ("127.0.0.4", 2)] {
        let b = browser_from(&app, ip);
        for _ in 0..n {
            assert_eq!(
                b.login("boss", "guess guess").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    // The admin, from their own address, still signs in.
    let res = browser_from(&app, "127.0.0.1")
        .login("boss", ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), "/");
}

async fn a_flood_of_sign_ins_is_refused_when_every_password_check_is_busy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Sixty hosts, one unknown account each: no throttle applies, so only
    // the bound on concurrent argon2 computations can refuse them.
    let ips: Vec<String> = (1..=60).map(|i| format!("127.0.1.{i}")).collect();
    let forms = ready(&app, &ips).await;
    let pages = post_all(forms, "nobody{i}", "a wrong password").await;
    let mut busy = 0;
    for p in &pages {
        match p.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(p.body.contains("busy"), "{}", p.body);
                assert_eq!(p.headers["retry-after"], "1");
                busy += 1;
            }
            other => panic!("{other}: {}", p.body),
        }
    }
    assert!(busy > 0, "sixty parallel argon2 checks all ran at once");
    // The flood over, sign-ins work again.
    app.create_user("after", false);
    let res = browser_from(&app, "127.0.1.1")
        .login("after", ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}

/// Text typed as the username of an account that does not exist may be a
/// password put in the wrong box: the audit log records the failure, not it.
async fn what_was_typed_for_an_unknown_account_is_not_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token(&["admin:read"]);
    let b = browser_from(&app, "127.0.0.1");
    let page = b
        .submit(
            "/login",
            "/login",
            &[("username", "hunter2-my-password"), ("password", "x")],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNAUTHORIZED,
        "the form is shown again"
    );
    let res = app
        .get_bearer("/api/v1/audit?action=session.login_failed", &admin)
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("body");
    assert!(
        text.contains("unknown user"),
        "the failure is audited: {text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

/// Behind a trusted reverse proxy (`TESSERA_TRUSTED_PROXIES`) the limits
/// count the client it names in `X-Forwarded-For`, not the proxy every
/// request comes from; from a peer that is not trusted the header is ignored.
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_TRUSTED_PROXIES", "127.0.0.2")]).await;
    app.create_user("boss", true);
    let attacker = browser_via(&app, "127.0.0.2", "203.0.113.7");
    guess_until_locked(&attacker, "boss", 6).await;
    // The admin, through the same proxy, from an address of their own.
    let res = browser_via(&app, "127.0.0.2", "198.51.100.9")
        .login("boss", ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);

    // Not a proxy: what it says of itself changes nothing.
    let spoofer = browser_via(&app, "127.0.0.3", "198.51.100.10");
    for _ in 0..5 {
        assert_eq!(
            spoofer.login("boss", "guess guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let p = spoofer.login("boss", ADMIN_PASSWORD).await;
    assert_eq!(
        p.status,
        StatusCode::TOO_MANY_REQUESTS,
        "counted at 127.0.0.3"
    );
    let res = browser_via(&app, "127.0.0.2", "198.51.100.10")
        .login("boss", ADMIN_PASSWORD)
        .await;
    assert_eq!(
        res.status,
        StatusCode::SEE_OTHER,
        "198.51.100.10 never failed"
    );
}

both_backends!(
    behind_a_trusted_proxy_the_forwarded_client_is_counted,
    what_was_typed_for_an_unknown_account_is_not_audited,
    parallel_wrong_passwords_never_exceed_the_limit,
    an_attacker_elsewhere_cannot_lock_the_admin_out,
    a_flood_of_sign_ins_is_refused_when_every_password_check_is_busy,
);
