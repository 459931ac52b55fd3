//! End-to-end tests in a real headless Chromium, driven over WebDriver
//! (chromedriver) with fantoccini.
//!
//! Without `chromium` and `chromedriver` on PATH the tests are skipped with a
//! message, unless `TESSERA_REQUIRE_CHROMIUM=1` (as in CI), which makes them fail.
//! With `TESSERA_SCREENSHOTS=1` they save screenshots of the main pages to
//! `docs/screenshots/` (1280×800) for the README.

mod layout;
mod reveal;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    both_backends,
    common::{Backend, TestApp},
};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,800",
];

fn on_path(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate.to_string_lossy().into_owned());
            }
        }
    }
    None
}

/// A chromedriver process and a Chromium session; both end when dropped.
struct Chrome {
    client: Option<Client>,
    /// Save screenshots (one backend only, so two runs do not race on the files).
    shots: bool,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Chrome {
    /// `None` (after saying why) when Chromium is not installed and not required.
    async fn start() -> Option<Self> {
        Self::start_with(1280, 800, true).await
    }

    /// A session with a `width`×`height` viewport, with or without JavaScript.
    async fn start_with(width: u32, height: u32, javascript: bool) -> Option<Self> {
        let required = std::env::var("TESSERA_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        let browser = on_path(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = on_path(&["chromedriver"]);
        let (Some(browser), Some(driver)) = (browser, driver) else {
            assert!(
                !required,
                "TESSERA_REQUIRE_CHROMIUM=1 but chromium and chromedriver are not both on PATH"
            );
            eprintln!(
                "skipping the browser test: install chromium and chromium-driver (set TESSERA_REQUIRE_CHROMIUM=1 to make this a failure)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        // Without JavaScript: the content setting a policy would set.
        // A phone-sized viewport needs mobile emulation: a window is never
        // narrower than about 500 px.
        let mobile = if width < 500 {
            json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 } })
        } else {
            Value::Null
        };
        let prefs = if javascript {
            json!({})
        } else {
            json!({ "profile.managed_default_content_settings.javascript": 2 })
        };
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": browser, "args": args, "prefs": prefs },
        });
        let mut caps = caps;
        if !mobile.is_null() {
            caps["goog:chromeOptions"]["mobileEmulation"] = mobile;
        }
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        let mut chrome = Self {
            client: None,
            shots: false,
            driver: child,
            _profile: profile,
        };
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    chrome.client = Some(client);
                    if width >= 500 {
                        chrome.resize(width, height).await;
                    }
                    return Some(chrome);
                }
                Err(e) => {
                    last_error = e.to_string();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        panic!("cannot start a Chromium session: {last_error}");
    }

    /// A `width`×`height` viewport, whatever the window decorations take.
    async fn resize(&self, width: u32, height: u32) {
        let client = self.c();
        let _ = client.set_window_size(width, height).await;
        let extra = client
            .execute(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| {
                let a = v.as_array()?;
                Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?))
            })
            .unwrap_or((0, 0));
        let _ = client
            .set_window_size(width + extra.0 as u32, height + extra.1 as u32)
            .await;
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("session")
    }

    async fn goto(&self, url: &str) {
        self.c().goto(url).await.expect("navigate");
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.c().wait().for_element(Locator::Css(css)).await;
        let e = e.unwrap_or_else(|err| panic!("{css}: {err}"));
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        let e = self.c().wait().for_element(Locator::Css(css)).await;
        e.unwrap_or_else(|err| panic!("{css}: {err}"))
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Clicks something that loads a new page, and waits until it has loaded.
    async fn click_nav(&self, css: &str) {
        self.c()
            .execute("window.__tesseraOldPage = true;", vec![])
            .await
            .expect("mark page");
        self.click(css).await;
        for _ in 0..200 {
            let done = self
                .c()
                .execute(
                    "return !window.__tesseraOldPage && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(done, Ok(Value::Bool(true))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} did not load a new page");
    }

    async fn text(&self, css: &str) -> String {
        self.c()
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css}: {err}"))
            .text()
            .await
            .expect("text")
    }

    async fn path(&self) -> String {
        self.c().current_url().await.expect("url").path().to_owned()
    }

    async fn source(&self) -> String {
        self.c().source().await.expect("source")
    }

    async fn screenshot(&self, name: &str) {
        if self.shots && std::env::var("TESSERA_SCREENSHOTS").is_ok_and(|v| v == "1") {
            let png = self.c().screenshot().await.expect("screenshot");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
        }
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

/// First-admin setup → sign out → sign in → create a PAT → use it → revoke it
/// in the browser → it stops working; then the admin creates a machine user
/// and a client secret, turns client credentials on, and gets a token.
async fn a_new_admin_does_everything_in_the_browser(backend: Backend) {
    let Some(mut chrome) = Chrome::start().await else {
        return;
    };
    chrome.shots = backend == Backend::Sqlite;
    let (app, code) = TestApp::spawn_with_setup_code(backend).await;

    // Setup.
    chrome.goto(&app.url(&format!("/setup?code={code}"))).await;
    chrome.fill("#username", "root").await;
    chrome.fill("#password", "a long password").await;
    chrome.fill("#password_again", "a long password").await;
    chrome.screenshot("setup").await;
    chrome.click_nav("main button[type=submit]").await;
    assert_eq!(chrome.text("main h1").await, "Dashboard");

    // Sign out, then sign in.
    chrome.click_nav("form.logout button").await;
    assert_eq!(chrome.path().await, "/login");
    assert!(chrome.source().await.contains("You have signed out."));
    chrome.fill("#username", "root").await;
    chrome.fill("#password", "wrong password").await;
    chrome.click_nav("main button[type=submit]").await;
    assert!(
        chrome
            .text("#login-error")
            .await
            .contains("username or password is wrong")
    );
    chrome.screenshot("login").await;
    chrome.fill("#password", "a long password").await;
    chrome.click_nav("main button[type=submit]").await;
    assert_eq!(chrome.path().await, "/");

    // Create a personal access token.
    chrome.goto(&app.url("/tokens/new")).await;
    chrome.fill("#name", "my laptop").await;
    chrome
        .click("input[name=scopes][value='tokens:read']")
        .await;
    chrome.click("input[name=lifetime][value='7']").await;
    chrome.screenshot("token-new").await;
    chrome
        .click_nav("form[action='/tokens/new'] button[type=submit]")
        .await;
    let secret = chrome.text("#secret").await;
    assert!(secret.split('.').count() == 3, "a JWT: {secret}");
    // The copy button appears only with JavaScript, which ran.
    let copy = chrome
        .c()
        .find(Locator::Css("button.copy"))
        .await
        .expect("copy button");
    assert!(copy.is_displayed().await.expect("displayed"));
    chrome.screenshot("token-created").await;
    assert_eq!(app.me_status(&secret).await, 200);

    // Going back to the list does not show the secret again.
    // (WebDriver has no status code: the page naming the token shows it loaded.)
    chrome.goto(&app.url("/tokens")).await;
    let list = chrome.source().await;
    assert!(list.contains("my laptop"), "the token list loaded");
    assert!(!list.contains(&secret));
    chrome.screenshot("tokens").await;

    // Revoke it in the browser, with the confirmation step.
    chrome.click_nav("main table a").await;
    chrome.click_nav("a.button.danger").await;
    chrome.click_nav("main form button.danger").await;
    assert!(chrome.source().await.contains("The token was revoked"));
    assert_eq!(app.me_status(&secret).await, 401);

    // The admin creates a machine user with a client secret and credentials on.
    chrome.goto(&app.url("/admin/machine-users/new")).await;
    chrome.fill("#username", "billing").await;
    chrome.fill("#display_name", "Billing service").await;
    chrome.click("input[name=scopes][value='profile']").await;
    chrome.click_nav("main button[type=submit]").await;
    assert!(chrome.path().await.starts_with("/admin/machine-users/"));
    let machine_page = chrome.c().current_url().await.expect("url").to_string();
    chrome.click_nav("#generate-secret").await;
    let client_secret = chrome.text("#secret").await;
    assert!(client_secret.starts_with("tsc_"));
    chrome.goto(&machine_page).await;
    let machine = chrome.source().await;
    assert!(
        machine.contains("Billing service"),
        "the machine user page loaded"
    );
    assert!(!machine.contains(&client_secret));
    chrome.click("#cc_enabled").await;
    chrome.fill("#ttl", "30").await;
    chrome
        .click_nav("form[action$='/client-credentials'] button[type=submit]")
        .await;
    assert!(chrome.source().await.contains("Saved."));
    chrome.screenshot("machine-user").await;
    let res = app
        .client_credentials("billing", &client_secret, None)
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["expires_in"], 1800);
    let access = body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(app.me_status(&access).await, 200);

    // The other main pages, for the README. The dashboard always has its
    // charts; wait until it counts both successful validations (the
    // personal token's and the access token's) once the uses are written.
    let started = std::time::Instant::now();
    let dashboard = loop {
        chrome.goto(&app.url("/")).await;
        let source = chrome.source().await;
        if source.contains("Token validations per day: 2 in total")
            || started.elapsed() > Duration::from_secs(20)
        {
            break source;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        dashboard.contains("Token validations per day: 2 in total"),
        "{dashboard}"
    );
    chrome.screenshot("dashboard").await;
    chrome.goto(&app.url("/admin/tokens")).await;
    chrome.screenshot("admin-tokens").await;
    chrome.goto(&app.url("/admin/audit")).await;
    chrome.screenshot("audit").await;
    chrome.close().await;
}

both_backends!(a_new_admin_does_everything_in_the_browser);

mod sso;
