//! A real OpenID Provider for the single sign-on tests: node `oidc-provider`
//! (tests/oidc-provider/provider.mjs), started on a free port of 127.0.0.1
//! and stopped when dropped; and the helpers that walk a browser-like
//! client through its sign-in pages.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    Backend, TestApp, first_line,
    web::{Browser, Page, between},
};

pub const CLIENT_ID: &str = "tessera";
pub const CLIENT_SECRET: &str = "tessera-test-client-secret";
/// A second client at the same provider, for codes minted for someone else.
pub const OTHER_CLIENT_ID: &str = "other-app";
pub const ADMIN_GROUP: &str = "tessera-admins";

pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Installs the provider from its lockfile on first use (`npm ci`), so a
/// plain `cargo test` needs nothing set up by hand.
fn install(dir: &std::path::Path) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if dir.join("node_modules/oidc-provider").is_dir() {
            return;
        }
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install the test OpenID Provider: run `npm ci --prefix tests/oidc-provider` (node 20+)"
        );
    });
}

impl OidcProvider {
    /// The provider with Tessera's client (redirect URI `{tessera}/login/oidc/callback`),
    /// a second client with the same redirect URI, and `accounts`
    /// (`{"<sub>": {claims}}`); on `port`, or any free one.
    pub fn start(tessera: &str, accounts: Value, port: Option<u16>) -> Self {
        let dir = provider_dir();
        install(&dir);
        let redirect = format!("{tessera}/login/oidc/callback");
        let clients = json!([
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect]},
            {"client_id": OTHER_CLIENT_ID, "client_secret": "other-app-secret", "redirect_uris": [redirect]},
        ]);
        // A provider that has not said where it listens within 40 s is
        // stopped and started again (seen rarely on loaded 2-core machines,
        // where node usually starts in about a second).
        for attempt in 1..=3 {
            let mut child = Command::new("node")
                .arg(dir.join("provider.mjs"))
                .current_dir(&dir)
                .env("CLIENTS", clients.to_string())
                .env("ACCOUNTS", accounts.to_string())
                .env("PORT", port.unwrap_or(0).to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("node runs the test OpenID Provider (is node installed?)");
            let stdout = child.stdout.take().expect("stdout");
            match first_line(stdout, Duration::from_secs(40)) {
                Ok(line) => {
                    let issuer = line
                        .strip_prefix("listening on ")
                        .unwrap_or_else(|| {
                            panic!("unexpected first line from the provider: {line}")
                        })
                        .to_owned();
                    return Self { issuer, child };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(
                        attempt < 3,
                        "the test OpenID Provider starts: {e:?}, three times"
                    );
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Replaces an account's claims (a rename or a group change at the provider).
    pub async fn set_account(&self, sub: &str, claims: Value) {
        let res = reqwest::Client::new()
            .put(format!("{}/test/accounts/{sub}", self.issuer))
            .body(claims.to_string())
            .send()
            .await
            .expect("PUT account");
        assert_eq!(res.status(), 204);
    }
}

/// Tessera with single sign-on at a fresh provider.
pub struct Sso {
    pub app: TestApp,
    pub idp: OidcProvider,
}

/// The environment that points Tessera at `issuer` as `CLIENT_ID`.
pub fn sso_env(issuer: &str) -> Vec<(String, String)> {
    [
        ("TESSERA_OIDC_ISSUER", issuer),
        ("TESSERA_OIDC_CLIENT_ID", CLIENT_ID),
        ("TESSERA_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("TESSERA_OIDC_SCOPES", "openid profile email groups"),
        ("TESSERA_OIDC_ADMIN_GROUPS", ADMIN_GROUP),
        ("TESSERA_OIDC_NAME", "Test IdP"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

impl Sso {
    /// Tessera (on a port chosen first, so the provider knows its redirect
    /// URI) and the provider with `accounts`; `extra` settings win.
    /// The port is free when chosen but not held while the provider starts:
    /// should something else take it meanwhile, both start again on another.
    pub async fn spawn(backend: Backend, accounts: Value, extra: &[(&str, &str)]) -> Self {
        for attempt in 1.. {
            let port = free_port();
            let public = format!("http://127.0.0.1:{port}");
            let idp = OidcProvider::start(&public, accounts.clone(), None);
            let listen = format!("127.0.0.1:{port}");
            let mut env = sso_env(&idp.issuer);
            env.push(("TESSERA_LISTEN".into(), listen));
            env.push(("TESSERA_PUBLIC_URL".into(), public));
            for (k, v) in extra {
                env.retain(|(key, _)| key != k);
                env.push(((*k).to_owned(), (*v).to_owned()));
            }
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut app = match TestApp::try_spawn_with(backend, &env).await {
                Ok(app) => app,
                Err(e) if attempt < 3 && e.contains("cannot listen") => continue,
                Err(e) => panic!("server starts: {e}"),
            };
            // The command line signs tokens for the same issuer as the server.
            app.db
                .extra_env
                .push(("TESSERA_PUBLIC_URL".into(), app.url("")));
            return Self { app, idp };
        }
        unreachable!("the loop returns or panics")
    }
}

/// An account's claims as the provider holds them.
pub fn account(username: &str, groups: &[&str]) -> Value {
    json!({
        "preferred_username": username,
        "email": format!("{}@example.com", username.to_lowercase()),
        "groups": groups,
    })
}

fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("a URL")
        .to_string()
}

/// `GET /login/oidc` at Tessera: the provider's authorization URL it sends the browser to.
pub async fn begin(b: &Browser) -> String {
    let start = b.get("/login/oidc").await;
    start.expect(StatusCode::SEE_OTHER, "off to the provider");
    start.location().to_owned()
}

/// At the provider from `auth_url`: signs in as `account` (or presses Deny)
/// and returns the callback URL at Tessera that the provider redirects to.
pub async fn at_provider(b: &Browser, auth_url: &str, account: &str, deny: bool) -> String {
    let mut url = auth_url.to_owned();
    for _ in 0..12 {
        if url.starts_with(&b.base) {
            return url;
        }
        let page = Browser::page(b.client.get(&url).send().await.expect("GET provider")).await;
        if page.status.is_redirection() {
            url = resolve(&url, page.location());
            continue;
        }
        page.expect(StatusCode::OK, "the provider's sign-in page");
        let action = between(&page.body, r#"action=""#, "\"").expect("a form");
        let mut form = vec![("account", account)];
        if deny {
            form.push(("deny", "1"));
        }
        let posted = Browser::page(
            b.client
                .post(resolve(&url, &action))
                .form(&form)
                .send()
                .await
                .expect("POST provider"),
        )
        .await;
        assert!(
            posted.status.is_redirection(),
            "the provider took the form: {} {}",
            posted.status,
            posted.body
        );
        url = resolve(&url, posted.location());
    }
    panic!("the provider never sent the browser back: {url}");
}

/// GET of a full URL (the callback) in this browser.
pub async fn get_url(b: &Browser, url: &str) -> Page {
    Browser::page(b.client.get(url).send().await.expect("GET")).await
}

/// The whole flow: Tessera → provider (as `account`) → Tessera's callback.
pub async fn sign_in(b: &Browser, account: &str) -> Page {
    let auth = begin(b).await;
    let callback = at_provider(b, &auth, account, false).await;
    get_url(b, &callback).await
}

/// A URL with one query parameter replaced.
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).expect("URL");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// Whether this browser has a working Tessera session.
pub async fn signed_in(b: &Browser) -> bool {
    b.get("/tokens").await.status == StatusCode::OK
}
