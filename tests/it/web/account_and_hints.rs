//! INTERFACE.md §8 in the browser: a person sets their own e-mail address on
//! the account page, and token and client-secret hints appear on every page
//! that lists them.

use reqwest::StatusCode;
use serde_json::Value;

use super::{Browser, between};
use crate::{
    both_backends,
    common::{Backend, TestApp},
};

async fn api_json(app: &TestApp, path: &str, token: &str) -> Value {
    let res = app.get_bearer(path, token).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.expect("json")
}

async fn email_of(app: &TestApp, admin: &str, username: &str) -> Value {
    let users = api_json(app, "/api/v1/users?limit=500", admin).await;
    users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .expect("user listed")["email"]
        .clone()
}

async fn people_set_their_own_email_on_the_account_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token(&["admin:read"]);
    app.create_user("alice", false);

    // Signed out: off to the sign-in page.
    let anon = Browser::new(&app).get("/account").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(anon.location().starts_with("/login"), "{}", anon.location());

    let b = Browser::signed_in(&app, "alice").await;
    let home = b.get("/").await;
    assert!(
        home.body.contains(r#"href="/account""#),
        "linked from the navigation"
    );
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"action="/account/email""#));
    assert!(page.body.contains("password"), "says how alice signs in");
    assert!(
        !page.body.contains("Remove address"),
        "nothing to remove yet"
    );

    // A form without its CSRF token is refused and changes nothing.
    let forged = b
        .post("/account/email", &[("email", "forged@example.com")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(email_of(&app, &admin, "alice").await, Value::Null);

    // A bad address: the form again, saying why, with the input escaped.
    let bad = b
        .submit("/account", "/account/email", &[("email", "<b>nope")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("e-mail address such as"), "{}", bad.body);
    assert!(bad.body.contains("b&#62;nope"), "{}", bad.body);
    assert!(!bad.body.contains("<b>nope"));
    assert_eq!(email_of(&app, &admin, "alice").await, Value::Null);

    let saved = b
        .submit(
            "/account",
            "/account/email",
            &[("email", " alice@example.com ")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = b.get(saved.location()).await;
    assert!(after.body.contains("Your e-mail address was saved."));
    assert!(after.body.contains(r#"value="alice@example.com""#));
    assert_eq!(email_of(&app, &admin, "alice").await, "alice@example.com");
    let audit = api_json(&app, "/api/v1/audit?action=user.update&limit=1", &admin).await;
    let event = &audit["items"][0];
    assert_eq!(event["actor"]["username"], "alice");
    assert_eq!(event["details"]["email"], "alice@example.com");

    let removed = b
        .submit("/account", "/account/email", &[("remove", "on")])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert!(b.get(removed.location()).await.body.contains("was removed"));
    assert_eq!(email_of(&app, &admin, "alice").await, Value::Null);
}

async fn pages_show_token_and_secret_hints(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;

    let (secret, id) = b.create_token("ci", &["profile"]).await;
    let hint = format!("…{}", &secret[secret.len() - 4..]);
    for path in [
        "/tokens".to_owned(),
        format!("/tokens/{id}"),
        "/admin/tokens".to_owned(),
        format!("/admin/tokens/{id}"),
        "/admin/audit".to_owned(),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains(&hint), "{path} shows {hint}");
        assert!(!page.body.contains(&secret), "{path} shows the secret");
    }

    // Client secrets: one from the command line, one from the page.
    let first = app.create_machine("billing", &["profile"]);
    let list = b.get("/admin/machine-users").await;
    let mid = between(
        &list.body,
        r#"<td data-label="Client ID"><a href="/admin/machine-users/"#,
        "\"",
    )
    .expect("row");
    let page_path = format!("/admin/machine-users/{mid}");
    let made = b
        .submit(&page_path, &format!("{page_path}/secrets"), &[])
        .await;
    let made = b.follow(&made).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let second = made.secret();
    let hint_of = |s: &str| format!("{}…{}", &s[..8], &s[s.len() - 4..]);
    assert!(
        made.body.contains(&hint_of(&second)),
        "the shown-once page names its hint"
    );
    let page = b.get(&page_path).await;
    assert_eq!(page.status, StatusCode::OK);
    for s in [&first, &second] {
        assert!(page.body.contains(&hint_of(s)), "{} listed", hint_of(s));
        assert!(!page.body.contains(s.as_str()));
    }
    let audit = b.get("/admin/audit?action=client_secret.create").await;
    assert!(audit.body.contains(&hint_of(&second)));
}

both_backends!(
    people_set_their_own_email_on_the_account_page,
    pages_show_token_and_secret_hints,
);
