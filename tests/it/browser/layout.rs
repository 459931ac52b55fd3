//! Layout in a real Chromium: no main page scrolls sideways on a phone
//! (390×844) or on a desktop (1280×900), Copy works without widening the
//! page, and without JavaScript no dead button shows.
//!
//! With `TESSERA_SCREENSHOTS=1` the phone run saves `docs/screenshots/phone-*.png`.

use super::Chrome;
use crate::{
    both_backends,
    common::{ADMIN_PASSWORD, Backend, TestApp},
};
use fantoccini::Locator;

pub(super) async fn sign_in(chrome: &Chrome, app: &TestApp, username: &str) {
    chrome.goto(&app.url("/login")).await;
    chrome.fill("#username", username).await;
    chrome.fill("#password", ADMIN_PASSWORD).await;
    chrome.click_nav("main button[type=submit]").await;
    assert_eq!(chrome.path().await, "/", "signed in");
}

/// (scrollWidth, innerWidth, scrollHeight) of the current page.
async fn extent(chrome: &Chrome) -> (u64, u64, u64) {
    let v = chrome
        .c()
        .execute(
            "return [document.scrollingElement.scrollWidth, window.innerWidth, document.scrollingElement.scrollHeight];",
            vec![],
        )
        .await
        .expect("measure");
    let a = v.as_array().expect("array");
    let n = |i: usize| a[i].as_u64().expect("number");
    (n(0), n(1), n(2))
}

/// Creates a personal token in the browser; leaves the browser on the page
/// that shows it.
pub(super) async fn create_token(chrome: &Chrome, app: &TestApp, name: &str) {
    chrome.goto(&app.url("/tokens/new")).await;
    chrome.fill("#name", name).await;
    chrome.click("input[name=lifetime][value='7']").await;
    chrome
        .click_nav("form[action='/tokens/new'] button[type=submit]")
        .await;
    assert!(chrome.path().await.starts_with("/shown/"));
}

/// Every main page, with what it takes to reach the ones with an id.
async fn main_pages(chrome: &Chrome, app: &TestApp) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = [
        ("dashboard", "/"),
        ("tokens", "/tokens"),
        ("token-new", "/tokens/new"),
        ("account", "/account"),
        ("machine-users", "/admin/machine-users"),
        ("machine-user-new", "/admin/machine-users/new"),
        ("users", "/admin/users"),
        ("admin-tokens", "/admin/tokens"),
        ("admin-tokens-cc", "/admin/tokens?kind=client_credentials"),
        ("scopes", "/admin/scopes"),
        ("keys", "/admin/keys"),
        ("audit", "/admin/audit"),
    ]
    .iter()
    .map(|(n, p)| ((*n).to_owned(), (*p).to_owned()))
    .collect();
    for (name, list, link) in [
        ("token", "/tokens", "main table a"),
        ("machine-user", "/admin/machine-users", "main table a"),
        ("user", "/admin/users", "main table a"),
        ("admin-token", "/admin/tokens", "main table a"),
    ] {
        chrome.goto(&app.url(list)).await;
        chrome.click_nav(link).await;
        let url = chrome.c().current_url().await.expect("url");
        pages.push((name.to_owned(), url.path().to_owned()));
    }
    let token = pages
        .iter()
        .find(|(n, _)| n == "token")
        .map(|(_, p)| p.clone())
        .expect("token page");
    pages.push(("revoke-confirm".into(), format!("{token}/revoke")));
    pages
}

/// Phone screenshots of these pages, for the README.
const PHONE_SHOTS: &[&str] = &["dashboard", "tokens", "machine-user", "users", "audit"];

async fn sideways_scrolling(
    chrome: &Chrome,
    app: &TestApp,
    pages: &[(String, String)],
    shots: bool,
) -> Vec<String> {
    let mut wide = Vec::new();
    for (name, path) in pages {
        chrome.goto(&app.url(path)).await;
        let source = chrome.source().await;
        // Every error page (templates/error.html) links to the start page,
        // and a lost session lands on the sign-in page.
        assert!(
            !source.contains("Something went wrong")
                && !source.contains("There is no such page")
                && !source.contains("Go to the start page"),
            "{path} did not load: {source}"
        );
        assert_ne!(chrome.path().await, "/login", "{path}: signed out");
        let (scroll, inner, _) = extent(chrome).await;
        if scroll > inner {
            wide.push(format!("{path}: {scroll} px wide in a {inner} px window"));
        }
        if shots && PHONE_SHOTS.contains(&name.as_str()) {
            chrome.screenshot(&format!("phone-{name}")).await;
        }
    }
    wide
}

async fn no_main_page_scrolls_sideways_and_copy_keeps_the_page_still(backend: Backend) {
    let Some(mut chrome) = Chrome::start_with(390, 844, true).await else {
        return;
    };
    chrome.shots = backend == Backend::Sqlite;
    // Usage is shown within a second of the token's use.
    let app = TestApp::spawn_with(backend, &[("TESSERA_USAGE_FLUSH_INTERVAL", "1s")]).await;
    app.create_user("boss", true);
    let secret = app.create_machine("billing-sync-service", &["profile"]);
    for _ in 0..3 {
        app.access_token("billing-sync-service", &secret).await;
    }
    sign_in(&chrome, &app, "boss").await;
    assert_eq!(extent(&chrome).await.1, 390, "a phone-sized viewport");
    // The longest name, without a space to wrap at.
    let name = format!("deploys-from-the-ci-server-{}", "x".repeat(73));
    assert_eq!(name.len(), 100);
    create_token(&chrome, &app, &name).await;
    // Used once, so its page has a table of recent use.
    let token = chrome.text("#secret").await;
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // Copy, on a phone: the button says so, the status sits under the
    // secret, nothing widens or grows.
    let before = extent(&chrome).await;
    let secret_width = || async {
        chrome
            .c()
            .execute(
                "return document.getElementById('secret').getBoundingClientRect().width;",
                vec![],
            )
            .await
            .expect("width")
            .as_f64()
            .expect("number")
    };
    let width_before = secret_width().await;
    chrome.click("button.copy").await;
    let mut label = String::new();
    for _ in 0..40 {
        label = chrome.text("button.copy").await;
        if label != "Copy" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(label, "Copied ✓", "the button reports the copy");
    assert_eq!(
        chrome.text(".secret-box .copied").await,
        "Copied to the clipboard."
    );
    let after = extent(&chrome).await;
    assert!(after.0 <= after.1, "Copy widened the page: {after:?}");
    assert!(
        after.2 <= before.2 + 40,
        "Copy made the page grow from {} to {} px",
        before.2,
        after.2
    );
    assert_eq!(
        secret_width().await,
        width_before,
        "the secret keeps its width"
    );
    chrome.screenshot("phone-token-copied").await;

    let pages = main_pages(&chrome, &app).await;
    let token_page = &pages.iter().find(|(n, _)| n == "token").expect("token").1;
    let mut used = false;
    for _ in 0..50 {
        chrome.goto(&app.url(token_page)).await;
        used = chrome
            .source()
            .await
            .contains(r#"<table class="usage cards">"#);
        if used {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(used, "the token's use is shown on its page");
    let wide = sideways_scrolling(&chrome, &app, &pages, true).await;
    assert!(wide.is_empty(), "at 390×844:\n{}", wide.join("\n"));
    chrome.close().await;

    let Some(desktop) = Chrome::start_with(1280, 900, true).await else {
        return;
    };
    sign_in(&desktop, &app, "boss").await;
    assert_eq!(extent(&desktop).await.1, 1280, "a 1280 px wide viewport");
    let wide = sideways_scrolling(&desktop, &app, &pages, false).await;
    assert!(wide.is_empty(), "at 1280×900:\n{}", wide.join("\n"));
    desktop.close().await;
}

async fn without_javascript_no_dead_button_shows(backend: Backend) {
    let Some(chrome) = Chrome::start_with(1280, 800, false).await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_machine("billing", &["profile"]);
    sign_in(&chrome, &app, "boss").await;
    create_token(&chrome, &app, "no script").await;
    let secret = chrome.text("#secret").await;
    assert!(
        secret.split('.').count() == 3,
        "the secret is shown: {secret}"
    );
    let dead = |css: &'static str| {
        let c = chrome.c().clone();
        async move {
            let mut shown = Vec::new();
            for e in c.find_all(Locator::Css(css)).await.expect("find") {
                if e.is_displayed().await.expect("displayed") {
                    shown.push(e.html(false).await.unwrap_or_default());
                }
            }
            shown
        }
    };
    assert_eq!(dead("button.copy").await, Vec::<String>::new());
    // JavaScript really is off: copy.js would have removed `hidden`.
    let copy = chrome
        .c()
        .find(Locator::Css("button.copy"))
        .await
        .expect("copy button in the page");
    assert!(copy.attr("hidden").await.expect("attr").is_some());
    chrome.goto(&app.url("/admin/machine-users")).await;
    chrome.click_nav("main table a").await;
    assert_eq!(dead("button.copy").await, Vec::<String>::new());
    // The client id is still there to select by hand.
    assert_eq!(chrome.text("#client-id").await, "billing");
    chrome.close().await;
}

both_backends!(
    no_main_page_scrolls_sideways_and_copy_keeps_the_page_still,
    without_javascript_no_dead_button_shows,
);
