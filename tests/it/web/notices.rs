//! The in-app side of §9: every page shows a signed-in person a notice while
//! a token of theirs (for admins any machine token, for managers those of
//! the machine users they manage) expires within 7 days,
//! and the admin console manages webhooks (the secret shown once).

use reqwest::StatusCode;
use serde_json::json;

use super::Browser;
use crate::{
    both_backends,
    common::{Api, Backend},
};

const NOTICE: &str = r#"class="warning expiring""#;

async fn pages_warn_of_tokens_expiring_within_a_week(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let alice = api.user("alice", &["profile", "tokens:write"]);
    api.app.create_user("bob", false);
    let b = Browser::signed_in(&api.app, "alice").await;
    for path in ["/", "/tokens", "/account"] {
        let page = b.get(path).await;
        page.expect(StatusCode::OK, path);
        assert!(!page.body.contains(NOTICE), "nothing expires yet: {path}");
    }
    api.post(
        "/api/v1/tokens",
        &alice,
        &json!({"name": "short", "scopes": ["profile"], "expires_in_seconds": 3 * 86_400}),
    )
    .await
    .expect(201, "a token for three days");
    for path in ["/", "/tokens", "/account"] {
        let page = b.get(path).await;
        assert!(page.body.contains(NOTICE), "{path}: {}", page.body);
        assert!(page.body.contains("A token of yours expires within 7 days"));
    }
    let bob = Browser::signed_in(&api.app, "bob").await;
    let page = bob.get("/").await;
    page.expect(StatusCode::OK, "bob's dashboard");
    assert!(!page.body.contains(NOTICE), "not bob's token");

    // Admins look after machine tokens.
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "svc", "scopes": ["profile"]}),
        )
        .await;
    machine.expect(201, "machine user");
    let boss = Browser::signed_in(&api.app, "admin").await;
    let page = boss.get("/").await;
    page.expect(StatusCode::OK, "the admin's dashboard");
    assert!(!page.body.contains(NOTICE), "no machine token yet");
    let id = machine.body["id"].as_str().unwrap();
    api.post(
        &format!("/api/v1/machine-users/{id}/tokens"),
        &admin,
        &json!({"name": "svc-token", "scopes": ["profile"], "expires_in_seconds": 86_400}),
    )
    .await
    .expect(201, "machine token for a day");
    let page = boss.get("/admin/users").await;
    assert!(page.body.contains(NOTICE), "{}", page.body);
    let page = bob.get("/").await;
    page.expect(StatusCode::OK, "bob's dashboard");
    assert!(!page.body.contains(NOTICE), "bob is no admin");

    // So do the managers of a machine user, for its tokens (§12).
    api.patch(
        &format!("/api/v1/machine-users/{id}"),
        &admin,
        &json!({"managers": ["bob"]}),
    )
    .await
    .expect(200, "bob manages svc");
    let page = bob.get("/").await;
    assert!(page.body.contains(NOTICE), "{}", page.body);
    assert!(
        page.body.contains("A token expires within 7 days"),
        "{}",
        page.body
    );
    let carol = {
        api.app.create_user("carol", false);
        Browser::signed_in(&api.app, "carol").await
    };
    let page = carol.get("/").await;
    page.expect(StatusCode::OK, "carol's dashboard");
    assert!(!page.body.contains(NOTICE), "carol manages nothing");
}

async fn admins_manage_webhooks_in_the_console(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let b = Browser::signed_in(&api.app, "admin").await;
    let page = b.get("/admin/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    let shown = b
        .submit(
            "/admin/webhooks",
            "/admin/webhooks",
            &[
                ("url", "https://hooks.example/in"),
                ("events", "token.revoked"),
                ("events", "ping"),
            ],
        )
        .await;
    let shown = b.follow(&shown).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let secret = shown.secret();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = b.get("/admin/webhooks").await;
    assert!(list.body.contains("https://hooks.example/in"));
    assert!(!list.body.contains(&secret), "the secret is shown once");
    let hooks = api.get("/api/v1/webhooks", &admin).await;
    let id = hooks.body["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        hooks.body["items"][0]["events"],
        json!(["token.revoked", "ping"])
    );

    let done = b
        .submit(
            "/admin/webhooks",
            &format!("/admin/webhooks/{id}/disable"),
            &[],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let one = api.get(&format!("/api/v1/webhooks/{id}"), &admin).await;
    assert_eq!(one.body["enabled"], false);
    let bad = b
        .submit(
            "/admin/webhooks",
            "/admin/webhooks",
            &[("url", "ftp://x.example/"), ("events", "ping")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    // The form again, saying why, with what was typed kept.
    assert!(bad.body.contains(r#"id="add-error""#), "{}", bad.body);
    assert!(bad.body.contains("http:// or https://"), "{}", bad.body);
    assert!(
        bad.body.contains(r#"value="ftp://x.example/""#),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains(r#"<input type="checkbox" name="events" value="ping" checked>"#),
        "{}",
        bad.body
    );
    // Delete asks first, on a page of its own.
    let delete = format!("/admin/webhooks/{id}/delete");
    let listing = b.get("/admin/webhooks").await;
    assert!(listing.body.contains(&format!(r#"href="{delete}""#)));
    assert!(!listing.body.contains(&format!(r#"action="{delete}""#)));
    let confirm = b.get(&delete).await;
    confirm.expect(StatusCode::OK, "confirm deleting the webhook");
    assert!(confirm.body.contains("Delete webhook"), "{}", confirm.body);
    api.get(&format!("/api/v1/webhooks/{id}"), &admin)
        .await
        .expect(200, "asking deletes nothing");
    let done = b.submit(&delete, &delete, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    api.get(&format!("/api/v1/webhooks/{id}"), &admin)
        .await
        .expect(404, "deleted from the console");
}

both_backends!(
    pages_warn_of_tokens_expiring_within_a_week,
    admins_manage_webhooks_in_the_console,
);
