//! The grace choice on the pages (INTERFACE §9): regenerating a personal
//! token, an admin regenerating a machine token and rotating a client secret
//! each offer none, 1 hour, 24 hours or 72 hours; the old value keeps working
//! for the period chosen, and the pages say until when.

use reqwest::StatusCode;

use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        web::{Browser, between},
    },
};

const CHOICES: [&str; 4] = [
    r#"<option value="0" selected>"#,
    r#"<option value="3600">"#,
    r#"<option value="86400">"#,
    r#"<option value="259200">"#,
];

#[track_caller]
fn offers_the_grace_choices(body: &str) {
    for choice in CHOICES {
        assert!(body.contains(choice), "{choice} offered: {body}");
    }
}

async fn the_pages_offer_the_grace_period_and_show_its_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    app.create_user("boss", true);

    // A person's own token.
    let alice = Browser::signed_in(&app, "alice").await;
    let (old, id) = alice.create_token("laptop", &["profile"]).await;
    let confirm = alice.get(&format!("/tokens/{id}/regenerate")).await;
    confirm.expect(StatusCode::OK, "regenerate page");
    offers_the_grace_choices(&confirm.body);
    let shown = alice
        .submit(
            &format!("/tokens/{id}/regenerate"),
            &format!("/tokens/{id}/regenerate"),
            &[("grace", "3600")],
        )
        .await;
    let shown = alice.follow(&shown).await;
    shown.expect(StatusCode::OK, "regenerated");
    assert!(shown.body.contains("keeps working until"), "{}", shown.body);
    let new = shown.secret();
    assert_eq!(app.me_status(&old).await, 200, "old value during grace");
    // Sent again from a second tab (a form of its own): to the replacement,
    // grace kept, instead of a 409.
    let action = format!("/tokens/{id}/regenerate");
    let nonce = confirm.nonce(&action).expect("nonce");
    let csrf = confirm.csrf();
    let again = alice
        .post(
            &action,
            &[("csrf", &csrf), ("nonce", &nonce), ("grace", "0")],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let to = again.location().to_owned();
    assert!(
        to.ends_with("?notice=already-regenerated") && !to.contains(&id),
        "{to}"
    );
    let landed = alice.follow(&again).await;
    landed.expect(StatusCode::OK, "the replacement's page");
    assert!(
        landed.body.contains("regenerated already"),
        "{}",
        landed.body
    );
    assert_eq!(app.me_status(&old).await, 200, "the grace is kept");
    // The old token's confirmation page leads there too.
    let asked = alice.get(&action).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER);
    assert_eq!(asked.location(), to);
    assert_eq!(app.me_status(&new).await, 200);
    let page = alice.get(&format!("/tokens/{id}")).await;
    page.expect(StatusCode::OK, "old token page");
    assert!(
        page.body
            .contains("rotating: the old value stops working at"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&format!("/tokens/{id}/regenerate")));
    let list = alice.get("/tokens").await;
    assert!(
        list.body
            .contains("rotating: the old value stops working at")
    );
    // A choice not offered is refused, naming it.
    let (_, other) = alice.create_token("desktop", &["profile"]).await;
    let bad = alice
        .submit(
            &format!("/tokens/{other}/regenerate"),
            &format!("/tokens/{other}/regenerate"),
            &[("grace", "forever")],
        )
        .await;
    bad.expect(StatusCode::BAD_REQUEST, "bad grace");
    assert!(bad.body.contains("grace period"), "{}", bad.body);

    // An admin: a machine token, and a client secret.
    let admin = Browser::signed_in(&app, "boss").await;
    let client_secret = app.create_machine("deployer", &["profile"]);
    let machine_token = app.token_for("deployer", &["profile"]);
    let tid = {
        let me = app.get_bearer("/api/v1/me", &machine_token).await;
        let body: serde_json::Value = me.json().await.unwrap();
        body["token"]["id"].as_str().unwrap().to_owned()
    };
    let token_page = admin.get(&format!("/admin/tokens/{tid}")).await;
    assert!(
        token_page
            .body
            .contains(&format!("/admin/tokens/{tid}/regenerate"))
    );
    offers_the_grace_choices(
        &admin
            .get(&format!("/admin/tokens/{tid}/regenerate"))
            .await
            .body,
    );
    let sent = admin
        .submit(
            &format!("/admin/tokens/{tid}/regenerate"),
            &format!("/admin/tokens/{tid}/regenerate"),
            &[("grace", "86400")],
        )
        .await;
    admin
        .follow(&sent)
        .await
        .expect(StatusCode::OK, "admin regenerates a machine token");
    assert_eq!(app.me_status(&machine_token).await, 200);
    assert!(
        admin
            .get(&format!("/admin/tokens/{tid}"))
            .await
            .body
            .contains("rotating: the old value stops working at")
    );
    admin
        .get(&format!("/admin/tokens/{id}/regenerate"))
        .await
        .expect(StatusCode::FORBIDDEN, "a person's token");

    let machines = admin.get("/admin/machine-users").await;
    let mid = between(
        &machines.body,
        "<td data-label=\"Client ID\"><a href=\"/admin/machine-users/",
        "\"",
    )
    .expect("the machine user's link");
    let machine_page = admin.get(&format!("/admin/machine-users/{mid}")).await;
    let rotate = between(
        &machine_page.body,
        "href=\"/admin/machine-users/",
        "\">Rotate…<",
    )
    .unwrap_or_else(|| panic!("a Rotate link: {}", machine_page.body));
    let rotate = format!("/admin/machine-users/{rotate}");
    offers_the_grace_choices(&admin.get(&rotate).await.body);
    let sent = admin.submit(&rotate, &rotate, &[("grace", "259200")]).await;
    let shown = admin.follow(&sent).await;
    shown.expect(StatusCode::OK, "rotated secret");
    let new_secret = shown.secret();
    for s in [&client_secret, &new_secret] {
        assert_eq!(
            app.client_credentials("deployer", s, None).await.status(),
            200
        );
    }
    let machine_page = admin.get(&format!("/admin/machine-users/{mid}")).await;
    assert!(
        machine_page.body.contains("rotating: stops working at"),
        "{}",
        machine_page.body
    );
}

both_backends!(the_pages_offer_the_grace_period_and_show_its_end);
