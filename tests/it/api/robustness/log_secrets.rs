//! No secret reaches the log, even with every crate logging at TRACE.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    both_backends,
    common::{ADMIN_PASSWORD, Api, Backend, TEST_MASTER_KEY, TestApp, token_request, web::Browser},
};

/// Passwords, client secrets, access tokens, personal and machine tokens,
/// session cookies and wrong guesses at any of them, sent every way a client
/// sends them, are absent from a TRACE log.
async fn no_secret_is_logged_even_at_trace(backend: Backend) {
    let api = Api {
        // Everything, sea-orm's statements named on their own too.
        app: TestApp::spawn_with(
            backend,
            &[(
                "TESSERA_LOG",
                "trace,sea_orm::database=trace,sea_orm::driver=trace",
            )],
        )
        .await,
    };
    let admin = api.admin();
    let mut secrets = vec![admin.clone(), ADMIN_PASSWORD.to_owned()];
    if backend == Backend::Postgres {
        secrets.push(TEST_MASTER_KEY.to_owned());
    }

    // A user whose password is set through the API: not even its hash may
    // be logged.
    api.post(
        "/api/v1/users",
        &admin,
        &json!({"username": "bob", "password": "bob's long password"}),
    )
    .await
    .expect(201, "user");
    secrets.extend(["bob's long password".to_owned(), "$argon2".to_owned()]);

    // A machine user's client secret, made through the API, and its tokens.
    let made = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "svc", "scopes": ["profile"], "client_credentials": {"enabled": true}}),
        )
        .await;
    made.expect(201, "machine user");
    let machine = made.header("location").unwrap().to_owned();
    let secret = api.post_empty(&format!("{machine}/secrets"), &admin).await;
    secret.expect(201, "client secret");
    let secret = secret.body["client_secret"].as_str().unwrap().to_owned();
    let access = api.app.access_token("svc", &secret).await;
    assert_eq!(api.app.me_status(&access).await, 200);
    let wrong = format!("{secret}x");
    assert_eq!(
        api.app
            .client_credentials("svc", &wrong, None)
            .await
            .status(),
        401
    );
    // The secret in the body, and the token in a query (refused).
    let form = api
        .app
        .client
        .post(api.app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let query = api
        .app
        .client
        .get(api.app.url(&format!("/api/v1/me?access_token={access}")))
        .send()
        .await
        .unwrap();
    assert!(query.status().is_client_error());
    // Introspected by a resource server that may (the admin's token lacks
    // `introspect`, and a 403 comes before the token is read), its own
    // client secret in a Basic header.
    let rs_secret = api.app.create_machine("gateway", &["introspect"]);
    let introspected = api
        .app
        .client
        .post(api.app.url("/oauth2/introspect"))
        .basic_auth("gateway", Some(&rs_secret))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(introspected.status(), 200, "introspection");
    let answer: serde_json::Value = introspected.json().await.unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    let machine_token = api
        .post(
            &format!("{machine}/tokens"),
            &admin,
            &token_request("nightly", &["profile"]),
        )
        .await;
    machine_token.expect(201, "machine token");
    let machine_token = machine_token.body["token"].as_str().unwrap().to_owned();
    assert_eq!(api.app.me_status(&machine_token).await, 200);

    // A personal token made through the API, and a wrong guess at one.
    let pat = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("mine", &["profile"]),
        )
        .await;
    pat.expect(201, "personal token");
    let pat = pat.body["token"].as_str().unwrap().to_owned();
    assert_eq!(api.app.me_status(&pat).await, 200);
    // One character of the signature changed.
    let at = pat.len() - 10;
    let other = if &pat[at..=at] == "A" { "B" } else { "A" };
    let wrong_pat = format!("{}{other}{}", &pat[..at], &pat[at + 1..]);
    assert_eq!(api.app.me_status(&wrong_pat).await, 401);

    // A password sign-in, its session, a wrong password and a token made in
    // the browser.
    let browser = Browser::new(&api.app);
    browser
        .login("admin", "not the password at all")
        .await
        .expect(StatusCode::UNAUTHORIZED, "wrong password");
    // The session cookie is set by the sign-in's redirect (and by nothing
    // after it).
    let signed_in = browser.login("admin", ADMIN_PASSWORD).await;
    signed_in.expect(StatusCode::SEE_OTHER, "sign-in");
    let cookies: Vec<String> = signed_in
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next().unwrap().split_once('='))
        .filter(|(name, _)| name.trim() == "tessera_session")
        .map(|(_, value)| value.to_owned())
        .collect();
    assert!(
        cookies.len() == 1 && cookies[0].len() >= 16,
        "the sign-in sets the session cookie: {:?}",
        signed_in.headers
    );
    let (web_token, _) = browser.create_token("from-the-web", &["profile"]).await;
    // The session's CSRF token, in every signed-in page's forms.
    let csrf = browser
        .get("/")
        .await
        .expect(StatusCode::OK, "dashboard")
        .csrf();

    secrets.extend([
        secret,
        access,
        wrong,
        machine_token,
        pat,
        wrong_pat,
        web_token,
        rs_secret,
        csrf,
    ]);
    secrets.push("not the password at all".to_owned());
    secrets.extend(cookies);

    // Shut down, so the last flush's statements are in the log too.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &api.app.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    api.app
        .log
        .line_with("stopped", std::time::Duration::from_secs(30))
        .expect("the server stops");
    let log = api.app.log.text();
    assert!(!api.app.log.truncated(), "the whole log was read");
    // The log is really at TRACE: requests and statements are in it.
    assert!(log.contains("TRACE"), "{log}");
    assert!(log.contains("INSERT INTO"), "statements are logged");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "{secret} is in the log");
    }
}

both_backends!(no_secret_is_logged_even_at_trace);
