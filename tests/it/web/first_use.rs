//! What a new user ran into (issue 10): the date trap, client-credentials
//! tokens burying the list, admins changing themselves, a user's own page.

use crate::{
    api::minting::token_id,
    both_backends,
    common::{
        Backend, TestApp,
        web::{Browser, between},
    },
};
use reqwest::StatusCode;

async fn a_typed_date_never_silently_gives_a_preset_lifetime(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let res = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[
                ("name", "dated"),
                ("scopes", "profile"),
                ("lifetime", "30"),
                ("expires_on", "2030-01-01"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(res.body.contains("You typed a date but chose 30 days"));
    assert!(
        res.body.contains(r#"value="2030-01-01""#),
        "what was typed is kept"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'dated'")
            .await,
        0
    );
}

async fn all_tokens_hides_client_credentials_tokens_unless_chosen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let secret = app.create_machine("billing-sync", &["profile"]);
    app.access_token("billing-sync", &secret).await;
    let b = Browser::signed_in(&app, "boss").await;
    b.create_token("laptop", &["profile"]).await;
    let all = b.get("/admin/tokens").await;
    all.expect(StatusCode::OK, "all tokens");
    assert!(all.body.contains("laptop"));
    assert!(!all.body.contains(r#"data-kind="client_credentials""#));
    let cc = b.get("/admin/tokens?kind=client_credentials").await;
    assert!(cc.body.contains(r#"data-kind="client_credentials""#));
    assert!(
        !cc.body.contains("badge warn"),
        "no expiry warning for them"
    );
    let id = between(&cc.body, r#"href="/admin/tokens/"#, "\"").expect("link");
    let detail = b.get(&format!("/admin/tokens/{id}")).await;
    assert!(
        detail
            .body
            .contains("by the client credentials grant, billing-sync"),
        "{}",
        detail.body
    );
    // Back to the list it came from, which the full list is not.
    assert!(
        detail
            .body
            .contains(r#"href="/admin/tokens?kind=client_credentials">Back to the list"#),
        "{}",
        detail.body
    );
    // The owner filter takes any case.
    let by_owner = b.get("/admin/tokens?owner=BOSS").await;
    assert!(by_owner.body.contains("laptop"));
}

async fn each_user_has_a_page_and_admins_cannot_demote_or_disable_themselves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_user("root", true);
    app.create_user("alice", false);
    let alice = Browser::signed_in(&app, "alice").await;
    alice.create_token("laptop", &["profile"]).await;
    let b = Browser::signed_in(&app, "boss").await;
    let users = b.get("/admin/users").await;
    let link = |name: &str| {
        let at = users.body.find(&format!("\">{name}</a>")).expect("row");
        let start = users.body[..at].rfind("href=\"").expect("href") + 6;
        users.body[start..at].to_owned()
    };
    let page = b.get(&link("alice")).await;
    page.expect(StatusCode::OK, "alice's page");
    assert!(page.body.contains("laptop"), "her tokens");
    assert!(page.body.contains("signed in"), "her recent activity");

    // Disabling is confirmed first.
    let alice_path = link("alice");
    let confirm = b
        .get(&format!("{alice_path}/change?op=enabled&enabled=false"))
        .await;
    confirm.expect(StatusCode::OK, "confirmation");
    assert!(confirm.body.contains("Disable “alice”?"));
    let done = b
        .submit(
            &format!("{alice_path}/change?op=enabled&enabled=false"),
            &alice_path,
            &[("op", "enabled"), ("enabled", "false")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(alice.get("/tokens").await.status, StatusCode::SEE_OTHER);

    // Oneself: refused with a sentence, though another admin exists.
    let me = link("boss");
    for (op, value) in [("role", "user"), ("enabled", "false")] {
        let page = b.get(&format!("{me}/change?op={op}&{op}={value}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.body.contains("ask another administrator"));
        let res = b.submit(&me, &me, &[("op", op), (op, value)]).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{op}");
    }
    assert_eq!(
        b.get("/admin/users").await.status,
        StatusCode::OK,
        "still admin"
    );
}

/// The token ids a list page links to, top to bottom.
fn listed_ids(page: &str) -> Vec<String> {
    page.split(r#"href="/admin/tokens/"#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

async fn client_credentials_tokens_are_listed_newest_first_or_oldest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let secret = app.create_machine("billing-sync", &["profile"]);
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(token_id(&app.access_token("billing-sync", &secret).await));
    }
    let b = Browser::signed_in(&app, "boss").await;
    let newest = b.get("/admin/tokens?kind=client_credentials").await;
    newest.expect(StatusCode::OK, "client-credentials tokens");
    let mut expected: Vec<String> = issued.iter().rev().cloned().collect();
    assert_eq!(listed_ids(&newest.body), expected, "newest first");
    let oldest = b
        .get("/admin/tokens?kind=client_credentials&sort=created_asc")
        .await;
    oldest.expect(StatusCode::OK, "oldest first");
    expected.reverse();
    assert_eq!(listed_ids(&oldest.body), expected, "oldest first");
    let query = "/admin/tokens?owner=billing-sync&kind=client_credentials&limit=2";
    let first = b.get(query).await;
    first.expect(StatusCode::OK, "one owner's, two a page");
    assert_eq!(
        listed_ids(&first.body),
        [issued[2].clone(), issued[1].clone()]
    );
    let second = b.get(&format!("{query}&page=2")).await;
    second.expect(StatusCode::OK, "the second page");
    assert_eq!(listed_ids(&second.body), [issued[0].clone()]);
}

both_backends!(
    a_typed_date_never_silently_gives_a_preset_lifetime,
    all_tokens_hides_client_credentials_tokens_unless_chosen,
    client_credentials_tokens_are_listed_newest_first_or_oldest_first,
    each_user_has_a_page_and_admins_cannot_demote_or_disable_themselves,
);
