//! POST → 303 → GET for everything that makes a secret: the secret is shown
//! once on the page after the redirect; Reload, Back and a resubmitted form
//! never show it again and never make anything.

use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        web::{Browser, Page, between},
    },
};
use reqwest::{StatusCode, header};

/// POSTs the form on `form_page` that posts to `action`, with its CSRF
/// token and nonce; returns the response and the fields sent (to resend).
async fn send(
    b: &Browser,
    form_page: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> (Page, Vec<(String, String)>) {
    let page = b.get(form_page).await;
    page.expect(StatusCode::OK, form_page);
    let nonce = page
        .nonce(action)
        .unwrap_or_else(|| panic!("no nonce in the form posting to {action}:\n{}", page.body));
    let mut fields = vec![
        ("csrf".to_owned(), page.csrf()),
        ("nonce".to_owned(), nonce),
    ];
    fields.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    (post(b, action, &fields).await, fields)
}

async fn post(b: &Browser, action: &str, fields: &[(String, String)]) -> Page {
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post(action, &borrowed).await
}

/// The answer to a create form: a 303 to the shown-once page, never cached.
fn reveal_location(res: &Page) -> String {
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.headers[header::CACHE_CONTROL], "no-store");
    let to = res.location().to_owned();
    assert!(to.starts_with("/shown/"), "{to}");
    to
}

/// Shows the secret once; every later GET says it was shown and holds no secret.
async fn shown_once(b: &Browser, app: &TestApp, to: &str) -> String {
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM form_nonces WHERE sealed IS NOT NULL")
            .await,
        1,
        "the secret waits, sealed, for its page"
    );
    let first = b.get(to).await;
    first.expect(StatusCode::OK, "the reveal page");
    assert_eq!(first.headers[header::CACHE_CONTROL], "no-store");
    let secret = first.secret();
    assert!(first.body.contains("shown only this once"));
    assert!(first.body.contains(r#"id="done""#), "a Done button");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM form_nonces WHERE sealed IS NOT NULL")
            .await,
        0,
        "shown: nothing of it is kept"
    );
    for _ in 0..2 {
        let again = b.get(to).await;
        again.expect(StatusCode::OK, "reload of the reveal page");
        assert!(again.body.contains("Already shown"), "{}", again.body);
        assert!(!again.body.contains(&secret));
        assert!(!again.body.contains(r#"id="secret""#));
    }
    secret
}

async fn a_new_token_is_shown_once_and_a_resubmission_makes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (res, fields) = send(
        &b,
        "/tokens/new",
        "/tokens/new",
        &[
            ("name", "laptop"),
            ("scopes", "profile"),
            ("lifetime", "30"),
        ],
    )
    .await;
    let to = reveal_location(&res);
    let secret = shown_once(&b, &app, &to).await;
    assert_eq!(app.me_status(&secret).await, 200);

    // Back, then Reload of the POST: recognised, nothing made, no secret.
    let again = post(&b, "/tokens/new", &fields).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(again.location(), "/tokens?notice=already-sent");
    let list = b.follow(&again).await;
    list.expect(StatusCode::OK, "the list");
    assert!(list.body.contains("already sent, so nothing new was made"));
    assert!(!list.body.contains(&secret));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'laptop'")
            .await,
        1
    );

    // Another session of the same person cannot open the reveal page, nor
    // post this session's nonce.
    let other = Browser::signed_in(&app, "alice").await;
    assert_eq!(other.get(&to).await.status, StatusCode::NOT_FOUND);
    let mut stolen = fields.clone();
    stolen[0].1 = other.get("/tokens/new").await.csrf();
    stolen[2].1 = "desktop".into();
    let refused = post(&other, "/tokens/new", &stolen).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("out of date"));
    // A form without its nonce is refused the same way.
    let csrf = other.get("/tokens/new").await.csrf();
    let bare = other
        .post(
            "/tokens/new",
            &[("csrf", &csrf), ("name", "desktop"), ("lifetime", "30")],
        )
        .await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'desktop'")
            .await,
        0
    );
}

async fn a_refused_form_can_be_corrected_and_sent_with_the_same_nonce(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (res, mut fields) = send(
        &b,
        "/tokens/new",
        "/tokens/new",
        &[("name", ""), ("scopes", "profile"), ("lifetime", "30")],
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    // The form comes back with the same nonce, usable once more.
    assert_eq!(
        res.nonce("/tokens/new").as_deref(),
        Some(fields[1].1.as_str())
    );
    fields[2].1 = "fixed".into();
    let to = reveal_location(&post(&b, "/tokens/new", &fields).await);
    shown_once(&b, &app, &to).await;
}

async fn two_posts_of_one_form_make_one_token_and_lead_to_its_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let page = b.get("/tokens/new").await;
    let fields = vec![
        ("csrf".to_owned(), page.csrf()),
        (
            "nonce".to_owned(),
            page.nonce("/tokens/new").expect("nonce"),
        ),
        ("name".to_owned(), "twice".to_owned()),
        ("scopes".to_owned(), "profile".to_owned()),
        ("lifetime".to_owned(), "30".to_owned()),
    ];
    // A double click: the second post waits for the first and is sent to
    // the same secret, since the browser shows only the last answer.
    let (a, c) = tokio::join!(
        post(&b, "/tokens/new", &fields),
        post(&b, "/tokens/new", &fields)
    );
    let to = reveal_location(&a);
    assert_eq!(reveal_location(&c), to);
    let secret = shown_once(&b, &app, &to).await;
    assert_eq!(app.me_status(&secret).await, 200);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'twice'")
            .await,
        1
    );

    // Sent again before its secret was shown (Back, then Reload of the
    // POST): the second answer leads to the secret, still shown once.
    let (first, fields) = send(
        &b,
        "/tokens/new",
        "/tokens/new",
        &[("name", "again"), ("scopes", "profile"), ("lifetime", "30")],
    )
    .await;
    let to = reveal_location(&first);
    let second = post(&b, "/tokens/new", &fields).await;
    assert_eq!(reveal_location(&second), to);
    let secret = shown_once(&b, &app, &to).await;
    assert_eq!(app.me_status(&secret).await, 200);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'again'")
            .await,
        1
    );
}

async fn a_regenerated_token_is_shown_once_and_reload_does_not_regenerate_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (old, id) = b.create_token("laptop", &["profile"]).await;
    let action = format!("/tokens/{id}/regenerate");
    let (res, fields) = send(&b, &action, &action, &[]).await;
    let to = reveal_location(&res);
    let new = shown_once(&b, &app, &to).await;
    assert_ne!(old, new);
    assert_eq!(app.me_status(&new).await, 200);
    assert_eq!(app.me_status(&old).await, 401);

    // Resubmitted: sent to the new token's page, not "cannot be regenerated".
    let again = post(&b, &action, &fields).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let new_page = b.follow(&again).await;
    new_page.expect(StatusCode::OK, "the new token's page");
    assert!(new_page.body.contains("already sent"));
    assert!(new_page.body.contains("status active"));
    assert_eq!(app.me_status(&new).await, 200, "still the one token");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'laptop'")
            .await,
        2
    );
}

async fn a_client_secret_and_a_machine_token_are_shown_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_machine("billing", &["profile"]);
    let b = Browser::signed_in(&app, "boss").await;
    let list = b.get("/admin/machine-users").await;
    let row = list
        .body
        .split("<td")
        .find(|c| c.contains(">billing<"))
        .expect("row");
    let id = between(row, "href=\"/admin/machine-users/", "\"").expect("machine user link");
    let page = format!("/admin/machine-users/{id}");

    // Client secret.
    let action = format!("{page}/secrets");
    let (res, fields) = send(&b, &page, &action, &[]).await;
    let to = reveal_location(&res);
    let secret = shown_once(&b, &app, &to).await;
    assert!(secret.starts_with("tsc_"), "{secret}");
    let again = post(&b, &action, &fields).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(again.location(), format!("{page}?notice=already-sent"));
    let machine = b.follow(&again).await;
    machine.expect(StatusCode::OK, "the machine user page");
    assert!(!machine.body.contains(&secret));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM client_secrets").await,
        2,
        "the one made at creation and the one made here, nothing more"
    );

    // Machine token.
    let action = format!("{page}/tokens");
    let (res, fields) = send(
        &b,
        &page,
        &action,
        &[
            ("name", "nightly"),
            ("scopes", "profile"),
            ("lifetime", "30"),
        ],
    )
    .await;
    let to = reveal_location(&res);
    let token = shown_once(&b, &app, &to).await;
    assert_eq!(app.me_status(&token).await, 200);
    let again = post(&b, &action, &fields).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'nightly'")
            .await,
        1
    );
}

async fn a_secret_not_opened_in_time_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (res, _) = send(
        &b,
        "/tokens/new",
        "/tokens/new",
        &[("name", "late"), ("scopes", "profile"), ("lifetime", "30")],
    )
    .await;
    let to = reveal_location(&res);
    let past = match app.db.backend {
        Backend::Sqlite => "'2000-01-01 00:00:00+00:00'",
        Backend::Postgres => "'2000-01-01 00:00:00+00'",
    };
    app.sql(&format!("UPDATE form_nonces SET reveal_until = {past}"))
        .await;
    let late = b.get(&to).await;
    late.expect(StatusCode::OK, "the reveal page");
    assert!(late.body.contains("Already shown"));
    assert!(!late.body.contains(r#"id="secret""#));
    // The next form shown clears what expired.
    b.get("/tokens/new").await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM form_nonces WHERE sealed IS NOT NULL")
            .await,
        0
    );
}

/// A path that cannot be a nonce (a NUL, which PostgreSQL cannot compare,
/// above all) is unknown like any other, not an error.
async fn what_is_no_nonce_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    for path in [
        "/shown/%00".to_owned(),
        "/shown/a%20b".to_owned(),
        format!("/shown/{}", "x".repeat(65)),
        format!("/shown/{}", "x".repeat(43)),
    ] {
        b.get(&path).await.expect(StatusCode::NOT_FOUND, &path);
    }
}

/// Showing forms in a loop keeps at most 50 unposted nonces for the session;
/// the newest still works.
async fn a_session_holds_at_most_fifty_unposted_nonces(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    for _ in 0..60 {
        b.get("/tokens/new")
            .await
            .expect(StatusCode::OK, "the form");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM form_nonces WHERE used_at IS NULL")
            .await,
        50
    );
    let sent = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[("name", "after"), ("scopes", "profile"), ("lifetime", "30")],
        )
        .await;
    reveal_location(&sent);
}

both_backends!(
    a_session_holds_at_most_fifty_unposted_nonces,
    what_is_no_nonce_is_not_found,
    a_new_token_is_shown_once_and_a_resubmission_makes_nothing,
    a_refused_form_can_be_corrected_and_sent_with_the_same_nonce,
    two_posts_of_one_form_make_one_token_and_lead_to_its_secret,
    a_regenerated_token_is_shown_once_and_reload_does_not_regenerate_again,
    a_client_secret_and_a_machine_token_are_shown_once,
    a_secret_not_opened_in_time_is_gone,
);
