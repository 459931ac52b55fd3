//! Personal tokens in the browser: shown once, named once, regenerated and
//! revoked at once, private to their owner, escaped; and bad input in pages
//! and forms, answered in words and never with a 500.

use super::user_id;
use crate::{
    both_backends,
    common::{
        ADMIN_PASSWORD, Backend, TestApp,
        web::{Browser, between},
    },
};
use reqwest::{StatusCode, header};

async fn a_personal_token_is_shown_once_and_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;

    let form = b.get("/tokens/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"value="tokens:read""#));
    assert!(
        !form.body.contains(r#"value="admin:read""#),
        "a user is not offered admin scopes"
    );
    for days in ["7", "30", "60", "90", "365"] {
        assert!(
            form.body
                .contains(&format!(r#"name="lifetime" value="{days}""#))
        );
    }

    let csrf = form.csrf();
    let nonce = form.nonce("/tokens/new").expect("the form's nonce");
    let created = b
        .post(
            "/tokens/new",
            &[
                ("csrf", &csrf),
                ("nonce", &nonce),
                ("name", "laptop"),
                ("description", "for scripts"),
                ("scopes", "profile"),
                ("scopes", "tokens:read"),
                ("lifetime", "7"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let created = b.follow(&created).await;
    assert_eq!(
        created.headers.get(header::CACHE_CONTROL).expect("cache"),
        "no-store"
    );
    assert!(created.body.contains("shown only this once"));
    let secret = created.secret();
    let id = between(&created.body, r#"href="/tokens/"#, "\"").expect("link");
    assert_eq!(app.me_status(&secret).await, 200);

    // Never shown again: not in the list, the detail page or the audit log.
    let list = b.get("/tokens").await;
    list.expect(StatusCode::OK, "token list");
    assert!(list.body.contains("laptop"));
    assert!(list.body.contains("expires in 7 days"), "{}", list.body);
    assert!(list.body.contains("badge warn"), "expiry warning shown");
    let detail = b.get(&format!("/tokens/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("for scripts"));
    for page in [&list, &detail] {
        assert!(!page.body.contains(&secret));
    }
    let dashboard = b.get("/").await;
    dashboard.expect(StatusCode::OK, "dashboard");
    assert!(
        dashboard.body.contains("laptop"),
        "expiring soon on the dashboard"
    );
    assert!(
        !dashboard.body.contains("Tokens issued per day"),
        "no admin chart"
    );
}

async fn a_duplicate_token_name_is_refused_with_the_form_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    b.create_token("laptop", &["profile"]).await;
    let dup = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[
                ("name", "laptop"),
                ("scopes", "profile"),
                ("lifetime", "30"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(
        dup.body
            .contains("An active token of this owner already has this name")
    );
    // Nothing was made: the first `laptop` is the only one.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'laptop'")
            .await,
        1,
        "no second token named laptop"
    );
}

async fn regenerated_and_revoked_personal_tokens_stop_working_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (secret, id) = b.create_token("laptop", &["profile", "tokens:read"]).await;
    assert_eq!(app.me_status(&secret).await, 200);

    // Regenerate: a new secret once, the old one revoked at once.
    let confirm = b.get(&format!("/tokens/{id}/regenerate")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let regen = b
        .post(
            &format!("/tokens/{id}/regenerate"),
            &[
                ("csrf", &confirm.csrf()),
                (
                    "nonce",
                    &confirm
                        .nonce(&format!("/tokens/{id}/regenerate"))
                        .expect("nonce"),
                ),
            ],
        )
        .await;
    let regen = b.follow(&regen).await;
    assert_eq!(regen.status, StatusCode::OK, "{}", regen.body);
    let secret2 = regen.secret();
    let id2 = between(&regen.body, r#"href="/tokens/"#, "\"").expect("link");
    assert_ne!(secret, secret2);
    assert_eq!(app.me_status(&secret).await, 401);
    assert_eq!(app.me_status(&secret2).await, 200);

    // Revoke with a confirmation step.
    let confirm = b.get(&format!("/tokens/{id2}/revoke")).await;
    assert!(confirm.body.contains("Revoke token"));
    let revoked = b
        .post(
            &format!("/tokens/{id2}/revoke"),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(app.me_status(&secret2).await, 401);
    let after = b.get(&format!("/tokens/{id2}")).await;
    assert!(after.body.contains("revoked"));
    let filtered = b.get("/tokens?status=revoked").await;
    // The regenerated one reads "replaced", the other "revoked".
    assert_eq!(filtered.body.matches("status revoked").count(), 1);
    assert_eq!(filtered.body.matches("status replaced").count(), 1);
    let active = b.get("/tokens?status=active").await;
    active.expect(StatusCode::OK, "active tokens");
    assert!(!active.body.contains("status revoked"));
    assert!(active.body.contains("No tokens match"));

    // A revoked token cannot be regenerated: a 409 page in words.
    let refused = b
        .submit(
            &format!("/tokens/{id2}/regenerate"),
            &format!("/tokens/{id2}/regenerate"),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("cannot be regenerated"));
}

async fn someone_elses_personal_token_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (_, id) = b.create_token("laptop", &["profile"]).await;
    // Regenerated (so `id` is revoked) and then revoked: not found either way.
    let regen = b
        .submit(
            &format!("/tokens/{id}/regenerate"),
            &format!("/tokens/{id}/regenerate"),
            &[],
        )
        .await;
    let regen = b.follow(&regen).await;
    assert_eq!(regen.status, StatusCode::OK, "{}", regen.body);
    let id2 = between(&regen.body, r#"href="/tokens/"#, "\"").expect("link");
    let revoked = b
        .submit(
            &format!("/tokens/{id2}/revoke"),
            &format!("/tokens/{id2}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);

    // Someone else's token is not found.
    app.create_user("mallory", false);
    let m = Browser::signed_in(&app, "mallory").await;
    assert_eq!(m.get(&format!("/tokens/{id}")).await.status, 404);
    // With a nonce of her own: the token is still not hers.
    let own = m.get("/tokens/new").await;
    let nonce = own.nonce("/tokens/new").expect("nonce");
    let steal = m
        .post(
            &format!("/tokens/{id2}/regenerate"),
            &[("csrf", &own.csrf()), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(steal.status, StatusCode::NOT_FOUND);
}

async fn token_names_are_escaped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", true);
    let b = Browser::signed_in(&app, "alice").await;
    let name = "<script>alert(1)</script>";
    let (_, id) = b.create_token(name, &["profile"]).await;
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    for path in [
        "/tokens".to_owned(),
        format!("/tokens/{id}"),
        format!("/tokens/{id}/revoke"),
        "/admin/tokens".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains(name), "{path} shows the name unescaped");
        assert!(
            page.body.contains(escaped) || page.body.contains("&lt;script&gt;"),
            "{path} does not show the escaped name:\n{}",
            page.body
        );
    }
}

async fn bad_input_gets_a_page_in_words_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    for (path, status) in [
        ("/tokens/not-a-uuid", 404),
        ("/tokens/00000000-0000-0000-0000-000000000000", 404),
        ("/tokens?status=bogus", 400),
        ("/tokens?page=%%%", 400),
        ("/tokens?page=0", 400),
        ("/admin/tokens?sort=bogus", 400),
        ("/admin/tokens?kind=bogus", 400),
        ("/admin/audit?since=yesterday", 400),
        // A signed year parses as a date, but PostgreSQL cannot go that far back.
        ("/admin/audit?since=-4800-01-01", 400),
        ("/admin/audit?until=-4800-01-01", 400),
        ("/admin/audit?since=0000-01-01", 400),
        ("/admin/audit?until=9999-12-31", 200),
        ("/admin/machine-users/nope", 404),
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status.as_u16(), status, "{path}: {}", page.body);
        assert!(page.body.contains("<h1>"), "{path} renders an HTML page");
    }
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("name", "t"), ("scopes", "profile"), ("lifetime", "400")],
            "must live at least 1 minute and at most 365 days",
        ),
        (
            &[("name", "t"), ("scopes", "profile"), ("lifetime", "soon")],
            "Choose one of the lifetimes",
        ),
        (
            &[
                ("name", "t"),
                ("scopes", "profile"),
                ("lifetime", "custom"),
                ("expires_on", "2001-01-01"),
            ],
            "must live at least 1 minute and at most 365 days",
        ),
        (
            &[("name", "t"), ("scopes", "profile"), ("lifetime", "custom")],
            "Choose a date",
        ),
        (
            &[("name", "t"), ("lifetime", "30")],
            "Choose at least one scope",
        ),
        (
            &[("name", "t"), ("scopes", "nope:nope"), ("lifetime", "30")],
            "Unknown scope",
        ),
        (
            &[("name", ""), ("scopes", "profile"), ("lifetime", "30")],
            r#"id="name-error">The name must be 1–100 characters"#,
        ),
    ];
    for (form, message) in cases {
        let res = b.submit("/tokens/new", "/tokens/new", form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert!(res.body.contains(message), "{form:?}: {}", res.body);
    }
    // Bodies no browser sends from the form: each refused with a page in
    // words (INTERFACE §7), nothing saved.
    let long = format!("description={}", "a".repeat(70 * 1024));
    let raw: &[(&str, &str, StatusCode, &str)] = &[
        (
            "application/x-www-form-urlencoded",
            "name=%FF%FE",
            StatusCode::BAD_REQUEST,
            "not valid UTF-8",
        ),
        (
            "application/x-www-form-urlencoded",
            "name=first&name=second",
            StatusCode::BAD_REQUEST,
            "The field “name” was sent more than once",
        ),
        // A field name that is a message is not repeated on the page.
        (
            "application/x-www-form-urlencoded",
            "Call+IT+at+555-0100=1&Call+IT+at+555-0100=2",
            StatusCode::BAD_REQUEST,
            "A field was sent more than once",
        ),
        (
            "text/plain",
            "name=plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not sent as a web form",
        ),
        (
            "application/x-www-form-urlencoded",
            &long,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the server accepts",
        ),
    ];
    for (content_type, fields, status, says) in raw {
        let form = b.get("/tokens/new").await;
        let body = format!(
            "csrf={}&nonce={}&scopes=profile&lifetime=30&{fields}",
            form.csrf(),
            form.nonce("/tokens/new").unwrap()
        );
        let res = Browser::page(
            b.client
                .post(format!("{}/tokens/new", b.base))
                .header("content-type", *content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(res.status, *status, "{fields:.40}: {}", res.body);
        assert!(res.body.contains("<h1>"), "{fields:.40}: an HTML page");
        assert!(res.body.contains(says), "{fields:.40}: {}", res.body);
        assert!(!res.body.contains("555-0100"), "{}", res.body);
    }
    assert!(b.get("/tokens").await.body.contains("No tokens here yet"));
}

/// PostgreSQL refuses NUL in text, so a NUL in any field or filter must be
/// turned away at the form parser, not reach a query (a 500, or a hang).
async fn nul_characters_in_pages_and_forms_get_a_400_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    for path in [
        "/admin/tokens?q=a%00b",
        "/admin/tokens?owner=a%00b",
        "/admin/audit?actor=a%00b",
        "/admin/audit?action=a%00b",
        "/tokens?q=a%00b",
        "/setup?code=a%00b",
    ] {
        let page = b.get(path).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains("NUL character"), "{path}: {}", page.body);
    }
    let forms: &[(&str, &[(&str, &str)])] = &[
        (
            "/tokens/new",
            &[
                ("name", "t"),
                ("description", "a\u{0}b"),
                ("scopes", "profile"),
                ("lifetime", "30"),
            ],
        ),
        (
            "/tokens/new",
            &[
                ("name", "t"),
                ("scopes", "pro\u{0}file"),
                ("lifetime", "30"),
            ],
        ),
        (
            "/admin/machine-users/new",
            &[("username", "robot"), ("description", "a\u{0}b")],
        ),
        (
            "/admin/scopes",
            &[("name", "orders:read"), ("description", "a\u{0}b")],
        ),
    ];
    for (path, form) in forms {
        let res = b.submit(path, path, form).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{form:?}: {}",
            res.body
        );
        assert!(res.body.contains("NUL character"), "{form:?}: {}", res.body);
    }
    // Signing in with a NUL in the username: refused, not a 500.
    let anon = Browser::new(&app);
    let res = anon.login("bo\u{0}ss", ADMIN_PASSWORD).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    // Nothing was written, and the lists still load.
    assert!(b.get("/tokens").await.body.contains("No tokens here yet"));
    let scopes = b.get("/admin/scopes").await;
    scopes.expect(StatusCode::OK, "scopes");
    assert!(!scopes.body.contains("<code>orders:read</code></td>"));
    let machines = b.get("/admin/machine-users").await;
    machines.expect(StatusCode::OK, "machine users");
    assert!(!machines.body.contains("robot"));
    assert_eq!(b.get("/admin/audit").await.status, StatusCode::OK);
    assert_eq!(b.get("/admin/tokens?q=t").await.status, StatusCode::OK);
}

/// The machine-token form issues tokens for machine users only: posted with a
/// person's id, it must not mint a personal token that the admin then sees.
async fn the_machine_token_form_refuses_a_persons_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "boss").await;
    let users = b.get("/admin/users").await;
    for who in ["alice", "boss"] {
        let id = user_id(&users, who);
        let res = b
            .submit(
                "/admin/users",
                &format!("/admin/machine-users/{id}/tokens"),
                &[
                    ("name", "sneaky"),
                    ("scopes", "profile"),
                    ("lifetime", "30"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{who}: {}", res.body);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM tokens WHERE name = 'sneaky'")
                .await,
            0,
            "{who}: no token made"
        );
    }
    let all = b.get("/admin/tokens?q=sneaky").await;
    assert!(all.body.contains("No token matches."), "{}", all.body);
}

both_backends!(
    a_personal_token_is_shown_once_and_works,
    a_duplicate_token_name_is_refused_with_the_form_kept,
    regenerated_and_revoked_personal_tokens_stop_working_at_once,
    someone_elses_personal_token_is_not_found,
    token_names_are_escaped,
    bad_input_gets_a_page_in_words_never_a_500,
    nul_characters_in_pages_and_forms_get_a_400_never_a_500,
    the_machine_token_form_refuses_a_persons_id,
);
