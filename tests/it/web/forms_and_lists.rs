//! The rest of issue 10: refusals next to their field with what was typed
//! kept, error pages inside the signed-in frame, returning to the page
//! wanted after signing in (never to another site), the disabled-account
//! message, the dashboard charts, and the token lists' count, order,
//! search, pages and row actions.

use crate::{
    both_backends,
    common::{
        ADMIN_PASSWORD, Backend, TestApp,
        web::{Browser, between},
    },
};
use reqwest::StatusCode;

/// The id of a machine user, from its row on the admin list.
async fn machine_id(b: &Browser, username: &str) -> String {
    let list = b.get("/admin/machine-users").await;
    let row = list
        .body
        .split("<td")
        .find(|c| c.contains(&format!(">{username}<")))
        .expect("row");
    between(row, "href=\"/admin/machine-users/", "\"").expect("machine user link")
}

// ---------------------------------------------------------------- item 8

async fn refusals_sit_next_to_their_field_and_keep_what_was_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_machine("robot", &["profile"]);
    let b = Browser::signed_in(&app, "boss").await;

    // A personal token with an empty name: said at the name, the rest kept.
    let res = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[
                ("name", " "),
                ("description", "kept words"),
                ("scopes", "profile"),
                ("lifetime", "7"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "empty name");
    assert!(
        res.body.contains(
            r#"<p class="field-error" id="name-error">The name must be 1–100 characters"#
        ),
        "{}",
        res.body
    );
    assert!(res.body.contains(r#"aria-invalid="true""#));
    assert!(res.body.contains("kept words"));
    assert!(
        res.body.contains(r#"name="lifetime" value="7" checked"#),
        "{}",
        res.body
    );
    assert!(!res.body.contains("name: must"), "not in the code's words");

    // An unknown API: said at the audience field; name and audience kept.
    let res = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[
                ("name", "keep-me"),
                ("audience", "https://nowhere.example"),
                ("scopes", "profile"),
                ("lifetime", "30"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "unknown audience");
    assert!(res.body.contains(r#"id="audience-error""#), "{}", res.body);
    assert!(res.body.contains(r#"value="keep-me""#));
    assert!(res.body.contains(r#"value="https://nowhere.example""#));

    // A past date: said at the lifetime, in days.
    let res = b
        .submit(
            "/tokens/new",
            "/tokens/new",
            &[
                ("name", "dated"),
                ("scopes", "profile"),
                ("lifetime", "custom"),
                ("expires_on", "2001-01-01"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "past date");
    assert!(res.body.contains(r#"<p class="field-error" id="lifetime-error">A token must live at least 1 minute and at most 365 days"#), "{}", res.body);
    assert!(res.body.contains(r#"value="2001-01-01""#));

    // The machine-token form on the machine user's page.
    let id = machine_id(&b, "robot").await;
    let page = format!("/admin/machine-users/{id}");
    let res = b
        .submit(
            &page,
            &format!("{page}/tokens"),
            &[
                ("name", "deploy"),
                ("audience", "https://nowhere.example"),
                ("scopes", "profile"),
                ("lifetime", "90"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "machine token, unknown audience");
    assert!(
        res.body.contains(r#"id="token-audience-error""#),
        "{}",
        res.body
    );
    assert!(
        res.body
            .contains(r#"id="token_name" name="name" value="deploy""#)
    );
    assert!(res.body.contains(r#"value="https://nowhere.example""#));
    assert!(res.body.contains(r#"name="lifetime" value="90" checked"#));
    let res = b
        .submit(
            &page,
            &format!("{page}/tokens"),
            &[("name", "deploy"), ("lifetime", "30")],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "machine token, no scope");
    assert!(
        res.body.contains(
            r#"<p class="field-error" id="token-scopes-error">Choose at least one scope."#
        ),
        "{}",
        res.body
    );

    // Creating a user: the username refused in words; e-mail and role kept,
    // the password never echoed.
    let res = b
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("username", "Not Valid"),
                ("password", "a secret password"),
                ("email", "kept@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "bad username");
    assert!(
        res.body
            .contains(r#"<p class="field-error" id="new_username-error">Use 3 to 64 characters"#),
        "{}",
        res.body
    );
    assert!(res.body.contains(r#"value="Not Valid""#));
    assert!(res.body.contains(r#"value="kept@example.com""#));
    assert!(res.body.contains(r#"<option value="admin" selected>"#));
    assert!(!res.body.contains("a secret password"));
    let res = b
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("username", "valid-name"),
                ("password", "short"),
                ("role", "user"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "short password");
    assert!(res.body.contains(r#"<p class="field-error" id="new_password-error">The password must be at least 8 characters."#), "{}", res.body);
    assert!(res.body.contains(r#"value="valid-name""#));

    // Creating a machine user: a taken username, said at the username.
    let res = b
        .submit(
            "/admin/machine-users/new",
            "/admin/machine-users/new",
            &[
                ("username", "robot"),
                ("display_name", "Kept name"),
                ("contact_email", "not an address"),
            ],
        )
        .await;
    res.expect(StatusCode::BAD_REQUEST, "machine user refused");
    assert!(res.body.contains("Kept name"));
    assert!(res.body.contains(r#"value="not an address""#));
    assert!(
        res.body
            .contains(r#"id="username-error">This username is taken"#)
            || res
                .body
                .contains(r#"id="contact_email-error">That is not an e-mail address"#),
        "{}",
        res.body
    );
}

async fn error_pages_keep_the_navigation_when_signed_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let no_csrf = b.post("/tokens/new", &[("name", "x")]).await;
    for (what, page, status) in [
        ("403", b.get("/admin/users").await, StatusCode::FORBIDDEN),
        ("404", b.get("/no/such/page").await, StatusCode::NOT_FOUND),
        (
            "404 of a token",
            b.get("/tokens/00000000-0000-0000-0000-000000000000").await,
            StatusCode::NOT_FOUND,
        ),
        (
            "400",
            b.get("/tokens?status=bogus").await,
            StatusCode::BAD_REQUEST,
        ),
        ("CSRF", no_csrf, StatusCode::FORBIDDEN),
    ] {
        page.expect(status, what);
        assert!(
            page.body.contains(r#"<nav aria-label="Main">"#),
            "{what}: {}",
            page.body
        );
        assert!(page.body.contains(">Sign out</button>"), "{what}");
        assert!(page.body.contains("alice"), "{what}");
        // The error page itself (templates/error.html), in words.
        assert!(
            page.body.contains(r#"<p class="error" role="alert">"#),
            "{what}: {}",
            page.body
        );
    }
    // Signed out: the same page, without the navigation.
    let anon = Browser::new(&app).get("/no/such/page").await;
    anon.expect(StatusCode::NOT_FOUND, "anonymous 404");
    assert!(!anon.body.contains(r#"<nav aria-label="Main">"#));
}

// ---------------------------------------------------------------- item 14

async fn sign_in_returns_to_the_page_wanted_and_never_to_another_site(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::new(&app);
    let away = b.get("/tokens/new").await;
    away.expect(StatusCode::SEE_OTHER, "signed out");
    assert_eq!(away.location(), "/login?next=%2Ftokens%2Fnew");

    let login = b.get(away.location()).await;
    login.expect(StatusCode::OK, "sign-in page");
    assert!(
        login
            .body
            .contains(r#"<input type="hidden" name="next" value="/tokens/new">"#),
        "{}",
        login.body
    );
    let res = b
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "alice"),
                ("password", ADMIN_PASSWORD),
                ("next", "/tokens/new"),
            ],
        )
        .await;
    res.expect(StatusCode::SEE_OTHER, "signed in");
    assert_eq!(res.location(), "/tokens/new");
    b.get("/tokens/new")
        .await
        .expect(StatusCode::OK, "the page wanted");

    for evil in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "evil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
    ] {
        let fresh = Browser::new(&app);
        let q: String = form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let page = fresh.get(&format!("/login?next={q}")).await;
        page.expect(StatusCode::OK, evil);
        assert!(
            !page.body.contains(r#"name="next""#),
            "{evil}: offered back"
        );
        let res = fresh
            .post(
                "/login",
                &[
                    ("csrf", &page.csrf()),
                    ("username", "alice"),
                    ("password", ADMIN_PASSWORD),
                    ("next", evil),
                ],
            )
            .await;
        res.expect(StatusCode::SEE_OTHER, evil);
        assert_eq!(res.location(), "/", "{evil}");
    }
}

async fn a_disabled_account_is_named_only_to_someone_with_its_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_user("dave", false);
    let admin = Browser::signed_in(&app, "boss").await;
    let users = admin.get("/admin/users").await;
    let at = users.body.find("\">dave</a>").expect("dave's row");
    let start = users.body[..at].rfind("href=\"").expect("href") + 6;
    let dave = users.body[start..at].to_owned();
    admin
        .submit(&dave, &dave, &[("op", "enabled"), ("enabled", "false")])
        .await
        .expect(StatusCode::SEE_OTHER, "disabled");

    let b = Browser::new(&app);
    let wrong = b.login("dave", "not the password").await;
    wrong.expect(StatusCode::UNAUTHORIZED, "wrong password");
    assert!(wrong.body.contains("The username or password is wrong."));
    assert!(!wrong.body.contains("disabled"), "{}", wrong.body);
    let nobody = b.login("nobody", "not the password").await;
    nobody.expect(StatusCode::UNAUTHORIZED, "no such user");
    assert!(!nobody.body.contains("disabled"));

    let right = b.login("dave", ADMIN_PASSWORD).await;
    right.expect(StatusCode::UNAUTHORIZED, "right password, disabled");
    assert!(
        right.body.contains("Your account is disabled"),
        "{}",
        right.body
    );
    assert!(!right.body.contains("username or password is wrong"));
}

async fn the_dashboard_charts_have_axes_and_say_when_there_is_no_activity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    let home = b.get("/").await;
    home.expect(StatusCode::OK, "dashboard");
    assert!(
        home.body
            .contains("Token validations per day: no activity yet"),
        "{}",
        home.body
    );
    assert!(home.body.contains(">No activity yet</text>"));
    assert!(
        home.body
            .contains(r#"class="label" text-anchor="end">0</text>"#),
        "a y axis from 0"
    );
}

// ---------------------------------------------------------------- item 7

/// Names in the order a list shows them.
fn order(body: &str, names: &[&str]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = names
        .iter()
        .filter_map(|n| {
            body.find(&format!("\">{n}</a>"))
                .map(|i| (i, (*n).to_owned()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

/// The first pager link with `rel`, unescaped.
fn link(body: &str, rel: &str) -> String {
    let end = body
        .find(&format!(r#"" rel="{rel}">"#))
        .unwrap_or_else(|| panic!("no {rel} link: {body}"));
    let start = body[..end].rfind(r#"href=""#).expect("href") + 6;
    body[start..end].replace("&amp;", "&").replace("&#38;", "&")
}

async fn all_tokens_counts_sorts_and_goes_back_a_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let b = Browser::signed_in(&app, "boss").await;
    for (name, days) in [("tok-a", "7"), ("tok-b", "90"), ("tok-c", "30")] {
        let res = b
            .submit(
                "/tokens/new",
                "/tokens/new",
                &[("name", name), ("scopes", "profile"), ("lifetime", days)],
            )
            .await;
        res.expect(StatusCode::SEE_OTHER, name);
    }
    // Used: b when it was made, c later; a never.
    app.sql("UPDATE tokens SET last_used_at = created_at WHERE name = 'tok-b'")
        .await;
    app.sql("UPDATE tokens SET last_used_at = expires_at WHERE name = 'tok-c'")
        .await;
    let names = ["tok-a", "tok-b", "tok-c"];

    let all = b.get("/admin/tokens").await;
    all.expect(StatusCode::OK, "all tokens");
    assert!(all.body.contains(">3 tokens<"), "{}", all.body);
    assert_eq!(
        order(&all.body, &names),
        ["tok-c", "tok-b", "tok-a"],
        "newest first"
    );
    for (sort, want) in [
        ("created_asc", ["tok-a", "tok-b", "tok-c"]),
        ("expires", ["tok-a", "tok-c", "tok-b"]),
        ("expires_desc", ["tok-b", "tok-c", "tok-a"]),
        ("last_used", ["tok-c", "tok-b", "tok-a"]),
        ("last_used_asc", ["tok-a", "tok-b", "tok-c"]),
    ] {
        let page = b.get(&format!("/admin/tokens?sort={sort}")).await;
        page.expect(StatusCode::OK, sort);
        assert_eq!(order(&page.body, &names), want, "{sort}");
        assert!(
            page.body
                .contains(&format!(r#"<option value="{sort}" selected>"#))
        );
    }

    // Two a page, soonest expiry first: page 2 links back to page 1, and
    // the links keep the order and the filters.
    let p1 = b
        .get("/admin/tokens?sort=expires&status=active&limit=2")
        .await;
    p1.expect(StatusCode::OK, "page 1");
    assert_eq!(order(&p1.body, &names), ["tok-a", "tok-c"]);
    assert!(p1.body.contains("3 tokens, showing 1–2"), "{}", p1.body);
    assert!(!p1.body.contains("Previous page"));
    let next = link(&p1.body, "next");
    assert!(
        next.contains("sort=expires")
            && next.contains("status=active")
            && next.contains("limit=2")
            && next.contains("page=2"),
        "{next}"
    );
    let p2 = b.get(&next).await;
    p2.expect(StatusCode::OK, "page 2");
    assert_eq!(order(&p2.body, &names), ["tok-b"]);
    assert!(p2.body.contains("3 tokens, showing 3–3"), "{}", p2.body);
    assert!(!p2.body.contains("Next page"));
    let back = b.get(&link(&p2.body, "prev")).await;
    assert_eq!(
        order(&back.body, &names),
        ["tok-a", "tok-c"],
        "back to page 1"
    );
}

// ---------------------------------------------------------------- item 10

async fn my_tokens_search_sort_and_row_actions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let b = Browser::signed_in(&app, "alice").await;
    let (_, laptop) = b.create_token("Laptop CLI", &["profile"]).await;
    b.create_token("ci-deploy", &["profile"]).await;
    let (_, old) = b.create_token("old-laptop", &["profile"]).await;
    b.submit(
        &format!("/tokens/{old}/revoke"),
        &format!("/tokens/{old}/revoke"),
        &[],
    )
    .await
    .expect(StatusCode::SEE_OTHER, "revoked");

    let found = b.get("/tokens?q=LAPTOP").await;
    found.expect(StatusCode::OK, "search");
    assert!(
        found
            .body
            .contains(r#"<input id="q" name="q" type="search" value="LAPTOP">"#)
    );
    assert_eq!(
        order(&found.body, &["Laptop CLI", "ci-deploy", "old-laptop"]),
        ["old-laptop", "Laptop CLI"]
    );
    assert!(found.body.contains(">2 tokens<"), "{}", found.body);
    let none = b.get("/tokens?q=nothing-like-it").await;
    assert!(none.body.contains("No tokens match this filter."));

    let oldest = b.get("/tokens?sort=created_asc").await;
    assert_eq!(
        order(&oldest.body, &["Laptop CLI", "ci-deploy", "old-laptop"]),
        ["Laptop CLI", "ci-deploy", "old-laptop"]
    );

    // Row actions on active tokens only.
    let list = b.get("/tokens").await;
    assert!(
        list.body
            .contains(&format!(r#"href="/tokens/{laptop}/revoke""#))
    );
    assert!(
        list.body
            .contains(&format!(r#"href="/tokens/{laptop}/regenerate""#))
    );
    assert!(
        !list
            .body
            .contains(&format!(r#"href="/tokens/{old}/revoke""#)),
        "a revoked token offers no revoke"
    );
    assert!(
        !list
            .body
            .contains(&format!(r#"href="/tokens/{old}/regenerate""#))
    );
    b.get(&format!("/tokens/{laptop}/regenerate"))
        .await
        .expect(StatusCode::OK, "regenerate confirmation");
}

// ---------------------------------------------------------------- item 13

async fn scope_descriptions_on_a_machine_users_page_speak_of_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_machine("robot", &["profile", "tokens:read"]);
    let b = Browser::signed_in(&app, "boss").await;
    let id = machine_id(&b, "robot").await;
    let page = b.get(&format!("/admin/machine-users/{id}")).await;
    page.expect(StatusCode::OK, "machine user");
    assert!(!page.body.contains("your own"), "{}", page.body);
    assert!(page.body.contains("Read its own profile"));
    let new = b.get("/admin/machine-users/new").await;
    new.expect(StatusCode::OK, "new machine user form");
    assert!(!new.body.contains("your own"));
    // A person's own form still speaks to them.
    assert!(
        b.get("/tokens/new")
            .await
            .body
            .contains("Read your own profile")
    );
}

both_backends!(
    refusals_sit_next_to_their_field_and_keep_what_was_typed,
    error_pages_keep_the_navigation_when_signed_in,
    sign_in_returns_to_the_page_wanted_and_never_to_another_site,
    a_disabled_account_is_named_only_to_someone_with_its_password,
    the_dashboard_charts_have_axes_and_say_when_there_is_no_activity,
    all_tokens_counts_sorts_and_goes_back_a_page,
    my_tokens_search_sort_and_row_actions,
    scope_descriptions_on_a_machine_users_page_speak_of_it,
);
