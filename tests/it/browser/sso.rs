//! Single sign-on in a real Chromium: the "Sign in with …" button, the real
//! provider's sign-in page, and back to the dashboard, signed in as the
//! person the provider vouched for (an admin, from their group).

use serde_json::json;

use super::Chrome;
use crate::{
    both_backends,
    common::{
        Backend,
        oidc::{ADMIN_GROUP, Sso, account},
    },
};

async fn a_person_signs_in_with_the_identity_provider(backend: Backend) {
    let Some(mut chrome) = Chrome::start().await else {
        return;
    };
    chrome.shots = backend == Backend::Sqlite;
    let sso = Sso::spawn(
        backend,
        json!({"sub-grace": account("Grace", &[ADMIN_GROUP])}),
        &[("TESSERA_PASSWORD_LOGIN", "off")],
    )
    .await;
    chrome.goto(&sso.app.url("/tokens")).await;
    assert_eq!(chrome.path().await, "/login");
    assert_eq!(chrome.text("#sso").await, "Sign in with Test IdP");
    assert!(!chrome.source().await.contains(r#"id="password""#));
    chrome.screenshot("login-sso").await;
    chrome.click_nav("#sso").await;
    // At the provider's own page.
    assert!(
        chrome
            .c()
            .current_url()
            .await
            .expect("url")
            .as_str()
            .starts_with(&sso.idp.issuer)
    );
    chrome.fill("#account", "sub-grace").await;
    chrome.click_nav("#sign-in").await;
    // Back at the page asked for before signing in.
    assert_eq!(chrome.path().await, "/tokens");
    chrome.goto(&sso.app.url("/")).await;
    assert_eq!(chrome.text("main h1").await, "Dashboard");
    assert!(chrome.source().await.contains("grace (admin)"));
    chrome.close().await;
}

both_backends!(a_person_signs_in_with_the_identity_provider);
