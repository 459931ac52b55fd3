//! The browser pages over HTTP, on both backends, one module per area. Here:
//! what every page shares (static assets, no caching, the 404 page) and the
//! helpers the areas use.

mod account_and_hints;
mod admin;
mod first_use;
mod forms_and_lists;
mod grace_choice;
mod keys_and_resources;
mod notices;
mod reveal;
mod sign_in;
mod sso;
mod sso_refusals;
mod throttle;
mod time_limits;
mod tokens;

use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        web::{Browser, Page, between},
    },
};
use reqwest::header;

/// A user's id, read from the link of their row on /admin/users.
fn user_id(users: &Page, username: &str) -> String {
    let marker = format!("\">{username}</a>");
    let at = users.body.find(&marker).expect("user row");
    let before = &users.body[..at];
    let start = before.rfind("href=\"/admin/users/").expect("id") + "href=\"/admin/users/".len();
    before[start..].to_owned()
}

fn session_cookie(page: &Page) -> String {
    page.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tessera_session=") && !v.starts_with("tessera_session=;"))
        .unwrap_or_else(|| panic!("no session cookie set: {:?}", page.headers))
        .to_owned()
}

async fn static_assets_are_served_and_pages_are_not_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    let css = b.get("/static/style.css").await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/css")
    );
    let js = b.get("/static/copy.js").await;
    assert!(js.body.contains("clipboard"));
    let login = b.get("/login").await;
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
    assert!(login.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(login.body.contains(r#"<label for="username">"#));
    assert!(login.body.contains(r#"<label for="password">"#));
}

both_backends!(static_assets_are_served_and_pages_are_not_cached,);

#[tokio::test]
async fn unknown_urls_get_a_404_page_or_problem() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.text().await.unwrap().contains("There is no such page."));
    let res = app
        .client
        .get(app.url("/oauth2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
