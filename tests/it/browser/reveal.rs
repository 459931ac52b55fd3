//! A secret is shown once, in the browser too: Back to the page that showed
//! it (which Chromium restores from its back/forward cache, no-store or not)
//! shows "Already shown", never the secret.

use std::time::Duration;

use super::{
    Chrome,
    layout::{create_token, sign_in},
};
use crate::{
    both_backends,
    common::{Backend, TestApp},
};

async fn back_to_a_shown_secret_shows_it_no_more(backend: Backend) {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    sign_in(&chrome, &app, "boss").await;
    create_token(&chrome, &app, "once").await;
    let shown_at = chrome.path().await;
    let secret = chrome.text("#secret").await;
    assert_eq!(secret.split('.').count(), 3, "the token is shown: {secret}");
    chrome.click_nav("#done").await;
    assert_eq!(chrome.path().await, "/tokens");

    chrome.c().back().await.expect("back");
    let mut again = String::new();
    for _ in 0..100 {
        again = chrome.source().await;
        if chrome.path().await == shown_at && again.contains("Already shown") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!again.contains(&secret), "Back showed the secret again");
    assert!(again.contains("Already shown"), "{again}");
    chrome.close().await;
}

/// A refused form says so in the page's title, and takes the focus to the
/// field it refused, however far down the page that is.
async fn a_refused_form_takes_the_focus_to_its_field(backend: Backend) {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    sign_in(&chrome, &app, "boss").await;
    create_token(&chrome, &app, "nightly").await;
    chrome.goto(&app.url("/tokens/new")).await;
    chrome.fill("#name", "nightly").await;
    chrome.click("input[name=lifetime][value='7']").await;
    chrome
        .click_nav("form[action='/tokens/new'] button[type=submit]")
        .await;
    assert!(
        chrome.source().await.contains("already has this name"),
        "the name was refused"
    );
    let seen = chrome
        .c()
        .execute(
            "return [document.activeElement.id, document.title];",
            vec![],
        )
        .await
        .expect("focus");
    assert_eq!(seen[0], "name", "{seen:?}");
    assert!(
        seen[1].as_str().is_some_and(|t| t.starts_with("Error: ")),
        "{seen:?}"
    );
    chrome.close().await;
}

both_backends!(
    back_to_a_shown_secret_shows_it_no_more,
    a_refused_form_takes_the_focus_to_its_field
);
