//! Single sign-on callbacks that must not sign anyone in, against a real
//! OpenID Provider on both backends: a wrong `state`, a replayed code, a
//! code for another client, an ID token with another nonce, a declined
//! consent, a provider that is down, names another issuer or leaves its
//! name out, and a flow started in another browser. Each gives a page in
//! words (never a 500; a provider's own failure is a 502) and no session; and a flow started on one instance finishes on another.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        oidc::{
            CLIENT_ID, OTHER_CLIENT_ID, OidcProvider, Sso, account, at_provider, begin, free_port,
            get_url, sign_in, signed_in, sso_env, with_param,
        },
        receivers::Silent,
        web::Browser,
    },
};

fn accounts() -> serde_json::Value {
    json!({"s-alice": account("alice", &[])})
}

async fn a_wrong_state_is_refused_and_the_right_one_still_works(backend: Backend) {
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let b = Browser::new(&sso.app);
    let auth = begin(&b).await;
    let callback = at_provider(&b, &auth, "s-alice", false).await;
    for state in ["not-the-state", ""] {
        let page = get_url(&b, &with_param(&callback, "state", state)).await;
        page.expect(StatusCode::BAD_REQUEST, "wrong state");
        assert!(page.body.contains("not known here"), "{}", page.body);
        assert!(!signed_in(&b).await);
    }
    // RFC 9207: the provider names itself; another name is a mix-up.
    assert!(callback.contains("iss="), "{callback}");
    let page = get_url(&b, &with_param(&callback, "iss", "https://evil.example")).await;
    page.expect(StatusCode::BAD_REQUEST, "another issuer");
    assert!(
        page.body.contains("another identity provider") && !page.body.contains("evil.example"),
        "{}",
        page.body
    );
    assert!(!signed_in(&b).await);
    // RFC 9207 §2.4: this provider promises `iss` (its discovery says
    // so), so an answer without it is refused too.
    let mut unnamed = url::Url::parse(&callback).expect("URL");
    let kept: Vec<(String, String)> = unnamed
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    unnamed.query_pairs_mut().clear().extend_pairs(kept);
    let page = get_url(&b, unnamed.as_str()).await;
    page.expect(StatusCode::BAD_REQUEST, "no issuer");
    assert!(page.body.contains("RFC 9207"), "{}", page.body);
    assert!(!signed_in(&b).await);
    // The flow it spent is begun again; the provider remembers the person.
    let auth = begin(&b).await;
    let callback = at_provider(&b, &auth, "s-alice", false).await;
    get_url(&b, &callback)
        .await
        .expect(StatusCode::SEE_OTHER, "the real callback");
    assert!(signed_in(&b).await);
}

async fn a_provider_gone_before_the_code_is_exchanged_is_a_bad_gateway(backend: Backend) {
    let Sso { app, idp } = Sso::spawn(backend, accounts(), &[]).await;
    let b = Browser::new(&app);
    let auth = begin(&b).await;
    let callback = at_provider(&b, &auth, "s-alice", false).await;
    drop(idp);
    let page = get_url(&b, &callback).await;
    page.expect(
        StatusCode::BAD_GATEWAY,
        "the provider's failure, not the browser's",
    );
    assert!(page.body.contains("could not be reached"), "{}", page.body);
    // The connection error is for the operator: in the log and the audit.
    assert!(!page.body.contains("os error"), "{}", page.body);
    assert!(!signed_in(&b).await);
    let line = app
        .log
        .line_with(
            "identity provider failed",
            std::time::Duration::from_secs(10),
        )
        .expect("a warning");
    assert!(line.contains("/token"), "{line}");
}

async fn a_replayed_code_is_refused(backend: Backend) {
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let b = Browser::new(&sso.app);
    let auth = begin(&b).await;
    let callback = at_provider(&b, &auth, "s-alice", false).await;
    get_url(&b, &callback)
        .await
        .expect(StatusCode::SEE_OTHER, "first use");

    // The same callback again: its flow is spent.
    let other = Browser::new(&sso.app);
    let page = get_url(&other, &callback).await;
    page.expect(StatusCode::BAD_REQUEST, "replayed callback");
    assert!(!signed_in(&other).await);

    // The used code inside a fresh flow of this browser: the provider refuses it.
    let fresh = begin(&other).await;
    let state = url::Url::parse(&fresh)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .expect("state")
        .1
        .into_owned();
    let page = get_url(&other, &with_param(&callback, "state", &state)).await;
    page.expect(StatusCode::BAD_REQUEST, "replayed code");
    assert!(page.body.contains("refused the sign-in"), "{}", page.body);
    assert!(page.body.contains("invalid_grant"), "{}", page.body);
    assert!(!signed_in(&other).await);
}

async fn a_code_for_another_client_is_refused(backend: Backend) {
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let b = Browser::new(&sso.app);
    let auth = begin(&b).await;
    assert!(auth.contains(&format!("client_id={CLIENT_ID}")));
    let foreign = with_param(&auth, "client_id", OTHER_CLIENT_ID);
    let callback = at_provider(&b, &foreign, "s-alice", false).await;
    let page = get_url(&b, &callback).await;
    page.expect(StatusCode::BAD_REQUEST, "another client's code");
    assert!(page.body.contains("refused the sign-in"), "{}", page.body);
    assert!(!signed_in(&b).await);
}

async fn an_id_token_with_another_nonce_is_refused(backend: Backend) {
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let b = Browser::new(&sso.app);
    let auth = begin(&b).await;
    assert!(auth.contains("nonce="), "{auth}");
    assert!(auth.contains("code_challenge_method=S256"), "{auth}");
    // A code injected with the right PKCE challenge but another nonce.
    let callback = at_provider(
        &b,
        &with_param(&auth, "nonce", "injected"),
        "s-alice",
        false,
    )
    .await;
    let page = get_url(&b, &callback).await;
    page.expect(StatusCode::BAD_REQUEST, "wrong nonce");
    assert!(
        page.body.contains("ID token was not accepted"),
        "{}",
        page.body
    );
    assert!(page.body.to_lowercase().contains("nonce"), "{}", page.body);
    assert!(!signed_in(&b).await);
    let admin = sso.app.admin_token(&["admin:read"]);
    let res = sso
        .app
        .get_bearer("/api/v1/audit?action=session.login_failed", &admin)
        .await;
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["details"]["method"] == "oidc"),
        "{body}"
    );
}

async fn a_declined_consent_gives_a_page(backend: Backend) {
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let b = Browser::new(&sso.app);
    let auth = begin(&b).await;
    let callback = at_provider(&b, &auth, "s-alice", true).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let page = get_url(&b, &callback).await;
    page.expect(StatusCode::BAD_REQUEST, "declined");
    assert!(page.body.contains("declined"), "{}", page.body);
    assert!(!signed_in(&b).await);
    // A crafted link, of no flow of this browser's: its words are not shown.
    let crafted = get_url(
        &b,
        &sso.app.url(
            "/login/oidc/callback?state=x&error=access_denied&error_description=Call+0800-SCAM",
        ),
    )
    .await;
    crafted.expect(StatusCode::BAD_REQUEST, "a crafted refusal");
    assert!(!crafted.body.contains("0800-SCAM"), "{}", crafted.body);
}

async fn a_flow_started_in_another_browser_is_refused(backend: Backend) {
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let attacker = Browser::new(&sso.app);
    let auth = begin(&attacker).await;
    let callback = at_provider(&attacker, &auth, "s-alice", false).await;
    // Login CSRF: the victim's browser is sent the attacker's callback.
    let victim = Browser::new(&sso.app);
    let page = get_url(&victim, &callback).await;
    page.expect(StatusCode::BAD_REQUEST, "another browser");
    assert!(page.body.contains("another browser"), "{}", page.body);
    assert!(!signed_in(&victim).await);
}

async fn a_flow_started_on_one_instance_finishes_on_another(backend: Backend) {
    let mut sso = Sso::spawn(backend, accounts(), &[]).await;
    let mut env = sso_env(&sso.idp.issuer);
    env.push(("TESSERA_PUBLIC_URL".into(), sso.app.url("")));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let second = sso.app.start_another(&env);
    let there = Browser::at(&format!("http://{second}"));
    let auth = begin(&there).await;
    // The provider sends the browser back to the public URL: the first instance.
    let here = Browser {
        client: there.client.clone(),
        base: sso.app.url(""),
    };
    let callback = at_provider(&here, &auth, "s-alice", false).await;
    get_url(&here, &callback)
        .await
        .expect(StatusCode::SEE_OTHER, "finished on the other instance");
    assert!(signed_in(&here).await);
}

async fn a_provider_that_is_down_is_explained_and_retried(backend: Backend) {
    let port = free_port();
    let public_port = free_port();
    let public = format!("http://127.0.0.1:{public_port}");
    let issuer = format!("http://127.0.0.1:{port}");
    let mut env = sso_env(&issuer);
    env.push(("TESSERA_LISTEN".into(), format!("127.0.0.1:{public_port}")));
    env.push(("TESSERA_PUBLIC_URL".into(), public.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with(backend, &env).await;
    let b = Browser::new(&app);
    let login = b.get("/login").await;
    login.expect(StatusCode::OK, "the sign-in page still works");
    assert!(login.body.contains("unavailable"), "{}", login.body);
    assert!(login.body.contains("TESSERA_OIDC_ISSUER"), "{}", login.body);
    assert!(
        login.body.contains(r#"name="password""#),
        "passwords still work"
    );
    let start = b.get("/login/oidc").await;
    start.expect(StatusCode::BAD_GATEWAY, "no provider");
    assert!(start.body.contains("TESSERA_OIDC_ISSUER"), "{}", start.body);
    assert!(!start.body.contains("os error"), "{}", start.body);

    // The provider comes up: discovery is retried and sign-in works.
    let _idp = OidcProvider::start(&public, accounts(), Some(port));
    let mut ready = false;
    for _ in 0..100 {
        if !b.get("/login").await.body.contains("unavailable") {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ready, "discovery is retried");
    sign_in(&b, "s-alice")
        .await
        .expect(StatusCode::SEE_OTHER, "signed in");
}

async fn an_issuer_that_does_not_match_is_refused(backend: Backend) {
    // The provider calls itself http://127.0.0.1:PORT; Tessera is told localhost.
    let sso = Sso::spawn(backend, accounts(), &[]).await;
    let wrong = sso.idp.issuer.replace("127.0.0.1", "localhost");
    let mut env = sso_env(&wrong);
    env.push(("TESSERA_PUBLIC_URL".into(), sso.app.url("")));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with(backend, &env).await;
    let b = Browser::new(&app);
    let page = b.get("/login/oidc").await;
    page.expect(StatusCode::BAD_GATEWAY, "issuer mismatch");
    assert!(page.body.contains("TESSERA_OIDC_ISSUER"), "{}", page.body);
    // The reason, for the operator.
    let line = app
        .log
        .line_with("discovery failed", std::time::Duration::from_secs(10))
        .expect("a warning");
    assert!(line.contains("unexpected issuer"), "{line}");
    assert!(!signed_in(&b).await);
}

/// A provider that takes connections and never answers (packets dropped
/// past the handshake) holds its discovery until the client's 10 s timeout:
/// the sign-in page waits for it at most briefly and offers passwords,
/// however many load it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_answers_does_not_hold_up_the_sign_in_page() {
    let silent = Silent::start();
    let env = sso_env(&format!("http://127.0.0.1:{}", silent.port));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await;
    let started = std::time::Instant::now();
    let pages = futures_util::future::join_all((0..4).map(|_| {
        let b = Browser::new(&app);
        async move { b.get("/login").await }
    }))
    .await;
    let took = started.elapsed();
    for page in &pages {
        page.expect(StatusCode::OK, "the sign-in page");
        assert!(page.body.contains(r#"name="password""#), "{}", page.body);
        assert!(page.body.contains("unavailable"), "{}", page.body);
    }
    assert!(silent.accepted() >= 1, "discovery was under way");
    // On this host, plain http is no warning. It would come at start-up,
    // before the setup link (src/app.rs): once that is logged, it is too late.
    app.log
        .line_with("no administrator yet", std::time::Duration::from_secs(10))
        .expect("the setup link is logged after start-up's warnings");
    assert!(!app.log.text().contains("plain http"), "{}", app.log.text());
    assert!(
        took < std::time::Duration::from_secs(7),
        "the pages waited {took:?} for a discovery that takes 10 s"
    );
}

/// A provider reached over plain http through a network gets a warning at
/// start-up: its keys and Tessera's client secret travel in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_provider_elsewhere_is_warned_of() {
    let env = sso_env("http://idp.invalid/realms/acme");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await;
    let line = app
        .log
        .line_with("plain http", std::time::Duration::from_secs(10))
        .expect("a warning");
    assert!(
        line.contains("WARN") && line.contains("TESSERA_OIDC_ISSUER"),
        "{line}"
    );
}

both_backends!(
    a_wrong_state_is_refused_and_the_right_one_still_works,
    a_replayed_code_is_refused,
    a_code_for_another_client_is_refused,
    an_id_token_with_another_nonce_is_refused,
    a_declined_consent_gives_a_page,
    a_flow_started_in_another_browser_is_refused,
    a_provider_that_is_down_is_explained_and_retried,
    an_issuer_that_does_not_match_is_refused,
    a_provider_gone_before_the_code_is_exchanged_is_a_bad_gateway,
);

/// Instances behind a load balancer share one PostgreSQL (SQLite serves one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_started_on_one_instance_finishes_on_another_on_postgres() {
    if crate::common::postgres::available() {
        a_flow_started_on_one_instance_finishes_on_another(Backend::Postgres).await;
    }
}
