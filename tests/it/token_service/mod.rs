//! The token service and the OAuth 2.0 endpoints: RFC 6749 §4.4 and §5.2,
//! RFC 7662, RFC 7009, RFC 8414, RFC 7517, RFC 9068, on both backends.

mod invalidation;
mod multi_instance;
mod phased_keys;

use crate::{
    both_backends,
    common::{self, Api, Backend, Reply, TestApp},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

fn parts(jwt: &str) -> (Value, Value, Vec<u8>) {
    let mut it = jwt.split('.');
    let header =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let sig = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (header, claims, sig)
}

/// Verifies a JWT against a JWKS with RustCrypto — a different implementation
/// from the aws-lc-rs signer — and returns the claims.
fn verify_with_jwks(jwt: &str, jwks: &Value) -> Result<Value, String> {
    let (header, claims, sig) = parts(jwt);
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or("kid not in JWKS")?;
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], header["alg"]);
    let signing_input = &jwt[..jwt.rfind('.').unwrap()];
    let b = |name: &str| URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap();
    match header["alg"].as_str().unwrap() {
        "ES256" => {
            use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier};
            let mut point = vec![4u8];
            point.extend(b("x"));
            point.extend(b("y"));
            let vk = VerifyingKey::from_sec1_bytes(&point).map_err(|e| e.to_string())?;
            let sig = Signature::from_slice(&sig).map_err(|e| e.to_string())?;
            vk.verify(signing_input.as_bytes(), &sig)
                .map_err(|e| e.to_string())?;
        }
        "EdDSA" => {
            use ed25519_dalek::{Signature, Verifier, VerifyingKey};
            let vk =
                VerifyingKey::from_bytes(&b("x").try_into().unwrap()).map_err(|e| e.to_string())?;
            let sig = Signature::from_slice(&sig).map_err(|e| e.to_string())?;
            vk.verify(signing_input.as_bytes(), &sig)
                .map_err(|e| e.to_string())?;
        }
        "RS256" => {
            use rsa::{
                BigUint, Pkcs1v15Sign, RsaPublicKey,
                sha2::{Digest, Sha256},
            };
            let pk = RsaPublicKey::new(
                BigUint::from_bytes_be(&b("n")),
                BigUint::from_bytes_be(&b("e")),
            )
            .map_err(|e| e.to_string())?;
            let hashed = Sha256::digest(signing_input.as_bytes());
            pk.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &sig)
                .map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unexpected alg {other}")),
    }
    Ok(claims)
}

async fn jwks(app: &TestApp) -> Value {
    app.client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn client_credentials_issue_rfc9068_jwts_verifiable_with_the_jwks(backend: Backend) {
    for alg in ["ES256", "RS256", "EdDSA"] {
        let app = TestApp::spawn_with(backend, &[("TESSERA_SIGNING_ALG", alg)]).await;
        let secret = app.create_machine("billing-sync", &["profile", "introspect"]);
        let res = app
            .client_credentials("billing-sync", &secret, Some("profile"))
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["pragma"], "no-cache");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "profile");
        let jwt = body["access_token"].as_str().unwrap();
        let (header, _, _) = parts(jwt);
        assert_eq!(header["typ"], "at+jwt", "{alg}");
        assert_eq!(header["alg"], alg);
        let claims =
            verify_with_jwks(jwt, &jwks(&app).await).unwrap_or_else(|e| panic!("{alg}: {e}"));
        let public = "http://127.0.0.1:8080";
        assert_eq!(claims["iss"], public);
        assert_eq!(claims["aud"], public);
        assert_eq!(claims["client_id"], "billing-sync");
        assert_eq!(claims["scope"], "profile");
        assert_eq!(claims["token_kind"], "client_credentials");
        for c in ["sub", "exp", "iat", "nbf", "jti"] {
            assert!(!claims[c].is_null(), "{alg}: claim {c} missing");
        }
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );

        // client_secret_post works too, and without `scope` the client gets all its scopes.
        let res = post_form(
            &app,
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "billing-sync"),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["scope"], "introspect profile");

        // The token works on the API.
        let me: Value = app
            .get_bearer("/api/v1/me", jwt)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "billing-sync");
        assert_eq!(me["type"], "machine");
        assert_eq!(me["role"], Value::Null);
        assert_eq!(me["scopes"], json!(["profile"]));
        assert_eq!(me["token"]["kind"], "client_credentials");
    }
}

async fn token_endpoint_errors_follow_rfc_6749(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("client-a", &["profile"]);
    let url = app.url("/oauth2/token");
    let c = &app.client;
    let cc = [("grant_type", "client_credentials")];

    struct Case {
        what: &'static str,
        res: reqwest::Response,
        status: u16,
        error: &'static str,
        basic_challenge: bool,
    }
    let mut repeated = reqwest::Client::new()
        .post(&url)
        .basic_auth("client-a", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded");
    repeated = repeated.body("grant_type=client_credentials&grant_type=client_credentials");
    let cases = vec![
        Case {
            what: "no client authentication",
            res: c.post(&url).form(&cc).send().await.unwrap(),
            status: 401,
            error: "invalid_client",
            basic_challenge: false,
        },
        Case {
            what: "wrong secret over Basic",
            res: c
                .post(&url)
                .basic_auth("client-a", Some("tsc_wrong"))
                .form(&cc)
                .send()
                .await
                .unwrap(),
            status: 401,
            error: "invalid_client",
            basic_challenge: true,
        },
        Case {
            what: "unknown client",
            res: c
                .post(&url)
                .basic_auth("nobody", Some(&secret))
                .form(&cc)
                .send()
                .await
                .unwrap(),
            status: 401,
            error: "invalid_client",
            basic_challenge: true,
        },
        Case {
            what: "wrong secret in the form",
            res: c
                .post(&url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "client-a"),
                    ("client_secret", "nope"),
                ])
                .send()
                .await
                .unwrap(),
            status: 401,
            error: "invalid_client",
            basic_challenge: false,
        },
        Case {
            what: "malformed Basic header",
            res: c
                .post(&url)
                .header("authorization", "Basic !!!not-base64")
                .form(&cc)
                .send()
                .await
                .unwrap(),
            status: 401,
            error: "invalid_client",
            basic_challenge: true,
        },
        Case {
            what: "Basic without a colon",
            res: c
                .post(&url)
                .header(
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode("client-a")
                    ),
                )
                .form(&cc)
                .send()
                .await
                .unwrap(),
            status: 401,
            error: "invalid_client",
            basic_challenge: true,
        },
        Case {
            what: "missing grant_type",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[("scope", "profile")])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "unsupported grant",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[("grant_type", "password")])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "unsupported_grant_type",
            basic_challenge: false,
        },
        Case {
            what: "repeated parameter",
            res: repeated.send().await.unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "JSON instead of a form",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .json(&json!({"grant_type": "client_credentials"}))
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "two authentication methods",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "client-a"),
                    ("client_secret", &secret),
                ])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "scope not allowed",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "profile introspect"),
                ])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_scope",
            basic_challenge: false,
        },
        Case {
            what: "admin scope",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "admin:write"),
                ])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_scope",
            basic_challenge: false,
        },
        Case {
            what: "non-UTF-8 body",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b"grant_type=client_credentials&scope=\xff\xfe".to_vec())
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "percent-encoded non-UTF-8",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=%ff")
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
    ];
    for case in cases {
        let status = case.res.status().as_u16();
        let challenge = case
            .res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            case.res
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{}",
            case.what
        );
        let body: Value = case
            .res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", case.what));
        assert_eq!(status, case.status, "{}: {body}", case.what);
        assert_eq!(body["error"], case.error, "{}", case.what);
        assert!(body["error_description"].is_string(), "{}", case.what);
        assert_eq!(
            challenge.as_deref().is_some_and(|c| c.starts_with("Basic")),
            case.basic_challenge,
            "{}: {challenge:?}",
            case.what
        );
    }
}

async fn token_request_bodies_over_64_kib_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("client-a", &["profile"]);
    let url = app.url("/oauth2/token");
    let c = &app.client;
    let huge = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(70 * 1024)
    );
    let res = c
        .post(&url)
        .basic_auth("client-a", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

async fn introspection_reports_active_tokens_to_authorised_callers_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs_secret = app.create_machine("resource-server", &["introspect"]);
    let client_secret = app.create_machine("client-b", &["profile"]);
    let token = app.access_token("client-b", &client_secret).await;
    let url = "/oauth2/introspect";

    // Unauthenticated: 401.
    let res = post_form(&app, url, &[("token", &token)], None).await;
    assert_eq!(res.status(), 401);
    // Authenticated without `introspect`: 403.
    let res = post_form(
        &app,
        url,
        &[("token", &token)],
        Some(("client-b", &client_secret)),
    )
    .await;
    assert_eq!(res.status(), 403);
    // A Bearer token without `introspect`: 403; with a bad Bearer token: 401.
    let res = app
        .client
        .post(app.url(url))
        .bearer_auth(&token)
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(app.url(url))
        .bearer_auth("not-a-token")
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // The resource server sees the token active, with RFC 7662's fields.
    let res = post_form(
        &app,
        url,
        &[("token", &token), ("token_type_hint", "access_token")],
        Some(("resource-server", &rs_secret)),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "client-b");
    assert_eq!(body["username"], "client-b");
    assert_eq!(body["scope"], "profile");
    assert_eq!(body["token_type"], "Bearer");
    let (_, claims, _) = parts(&token);
    for field in ["exp", "iat", "nbf", "sub", "aud", "iss", "jti"] {
        assert_eq!(body[field], claims[field], "{field}");
    }
    // A Bearer token holding `introspect` may introspect too.
    let rs_token = app.access_token("resource-server", &rs_secret).await;
    let body: Value = app
        .client
        .post(app.url(url))
        .bearer_auth(&rs_token)
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);

    // Garbage, tampered and missing tokens.
    for bad in ["garbage", &format!("{token}x"), &token.replace('.', "")] {
        let body: Value = post_form(
            &app,
            url,
            &[("token", bad)],
            Some(("resource-server", &rs_secret)),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(body, json!({"active": false}), "{bad}");
    }
    let res = post_form(&app, url, &[], Some(("resource-server", &rs_secret))).await;
    assert_eq!(res.status(), 400);

    // Revoked (RFC 7009 by its own client): inactive, and refused by the API.
    let res = post_form(
        &app,
        "/oauth2/revoke",
        &[("token", &token)],
        Some(("client-b", &client_secret)),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = post_form(
        &app,
        url,
        &[("token", &token)],
        Some(("resource-server", &rs_secret)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body, json!({"active": false}));
    let res = app.get_bearer("/api/v1/me", &token).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

async fn revocation_follows_rfc_7009(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.create_machine("client-a", &["profile"]);
    let b = app.create_machine("client-b", &["profile"]);
    let token_a = app.access_token("client-a", &a).await;
    // Unknown tokens: 200.
    let res = post_form(
        &app,
        "/oauth2/revoke",
        &[("token", "unknown")],
        Some(("client-b", &b)),
    )
    .await;
    assert_eq!(res.status(), 200);
    // Another client's token: 200, but it stays valid.
    let res = post_form(
        &app,
        "/oauth2/revoke",
        &[("token", &token_a)],
        Some(("client-b", &b)),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.get_bearer("/api/v1/me", &token_a).await.status(), 200);
    // No client authentication: 401; no token: 400.
    assert_eq!(
        post_form(&app, "/oauth2/revoke", &[("token", &token_a)], None)
            .await
            .status(),
        401
    );
    assert_eq!(
        post_form(&app, "/oauth2/revoke", &[], Some(("client-a", &a)))
            .await
            .status(),
        400
    );
    // Its own client revokes it: refused from then on, even though it was cached.
    let res = post_form(
        &app,
        "/oauth2/revoke",
        &[("token", &token_a), ("token_type_hint", "access_token")],
        Some(("client-a", &a)),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.get_bearer("/api/v1/me", &token_a).await.status(), 401);
}

async fn bearer_authentication_follows_rfc_6750(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("client-a", &["introspect"]);
    let token = app.access_token("client-a", &secret).await;

    let res = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera""#
    );
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let res = app.get_bearer("/api/v1/me", "nonsense").await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    // A valid token lacking `profile`: 403 naming the scope.
    let res = app.get_bearer("/api/v1/me", &token).await;
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(r#"scope="profile""#),
        "{challenge}"
    );
}

async fn forged_tokens_are_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("client-a", &["profile"]);
    let token = app.access_token("client-a", &secret).await;
    assert_eq!(app.get_bearer("/api/v1/me", &token).await.status(), 200);
    let (header, claims, sig) = parts(&token);
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let body = token.split('.').nth(1).unwrap();

    let mut none = header.clone();
    none["alg"] = json!("none");
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = json!("no-such-key");
    let mut jwt_typ = header.clone();
    jwt_typ["typ"] = json!("JWT");
    let mut more_scope = claims.clone();
    more_scope["scope"] = json!("profile admin:write");
    let sig_b64 = URL_SAFE_NO_PAD.encode(&sig);
    let hmac_sig = {
        use aws_lc_rs::hmac;
        let jwks = jwks(&app).await;
        let key = hmac::Key::new(hmac::HMAC_SHA256, jwks["keys"][0].to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(hmac::sign(&key, format!("{}.{body}", enc(&hs)).as_bytes()))
    };
    let forged = [
        ("alg none", format!("{}.{body}.", enc(&none))),
        (
            "HS256 with the public key",
            format!("{}.{body}.{hmac_sig}", enc(&hs)),
        ),
        (
            "unknown kid",
            format!("{}.{body}.{sig_b64}", enc(&unknown_kid)),
        ),
        ("typ JWT", format!("{}.{body}.{sig_b64}", enc(&jwt_typ))),
        (
            "claims changed",
            format!(
                "{}.{}.{sig_b64}",
                token.split('.').next().unwrap(),
                enc(&more_scope)
            ),
        ),
        ("signature cut", token[..token.len() - 4].to_owned()),
    ];
    for (what, jwt) in forged {
        let res = app.get_bearer("/api/v1/me", &jwt).await;
        assert_eq!(res.status(), 401, "{what} must be rejected");
    }

    // A token from an instance with another issuer or audience (same database,
    // same keys) is refused here.
    let mut app = app;
    for (var, value) in [
        ("TESSERA_PUBLIC_URL", "https://other.example"),
        ("TESSERA_AUDIENCE", "https://api.other.example"),
    ] {
        let other = app.start_another(&[(var, value)]);
        let res = app
            .client
            .post(format!("http://{other}/oauth2/token"))
            .basic_auth("client-a", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let foreign: Value = res.json().await.unwrap();
        let foreign = foreign["access_token"].as_str().unwrap();
        assert_eq!(
            app.get_bearer("/api/v1/me", foreign).await.status(),
            401,
            "{var}={value} must be refused"
        );
    }
}

async fn key_rotation_keeps_old_tokens_valid_and_retires_unused_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("client-a", &["profile"]);
    let old_token = app.access_token("client-a", &secret).await;
    let old_kid = parts(&old_token).0["kid"].as_str().unwrap().to_owned();

    // Rotate twice: the middle key signs nothing, so it drops out at once; the
    // first key still verifies a live token, so it stays.
    let middle = app.db.cli_ok(&["keys", "rotate"], None);
    let newest = app.db.cli_ok(&["keys", "rotate"], None);
    let listing = app.db.cli_ok(&["keys", "list"], None);
    assert!(
        listing.contains(&old_kid) && listing.contains(&middle) && listing.contains(&newest),
        "{listing}"
    );

    // The running server picks the rotation up by itself (within its reload
    // interval). Nothing is signed until it publishes the newest key, so the
    // middle key (active for a moment on PostgreSQL, where the first rotation
    // is heard at once) signs nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !jwks(&app).await.to_string().contains(newest.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was not published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let new_token = loop {
        let t = app.access_token("client-a", &secret).await;
        if parts(&t).0["kid"] == newest.as_str() {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let keys = jwks(&app).await;
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&newest.as_str()), "{kids:?}");
    assert!(
        kids.contains(&old_kid.as_str()),
        "a key with live tokens stays published: {kids:?}"
    );
    assert!(
        !kids.contains(&middle.as_str()),
        "a retired key that signed nothing drops out: {kids:?}"
    );
    verify_with_jwks(&old_token, &keys).unwrap();
    verify_with_jwks(&new_token, &keys).unwrap();
    assert_eq!(
        app.get_bearer("/api/v1/me", &old_token).await.status(),
        200,
        "the old token still works"
    );
    assert_eq!(app.get_bearer("/api/v1/me", &new_token).await.status(), 200);
}

both_backends!(
    client_credentials_issue_rfc9068_jwts_verifiable_with_the_jwks,
    token_endpoint_errors_follow_rfc_6749,
    token_request_bodies_over_64_kib_are_refused,
    introspection_reports_active_tokens_to_authorised_callers_only,
    revocation_follows_rfc_7009,
    bearer_authentication_follows_rfc_6750,
    forged_tokens_are_rejected,
    key_rotation_keeps_old_tokens_valid_and_retires_unused_keys,
);

mod postgres_only {
    use super::*;

    /// Two instances on one PostgreSQL database: a token revoked through one
    /// is refused by the other within a second.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revocation_reaches_the_other_instance_within_a_second() {
        if !common::postgres::available() {
            return;
        }
        let mut app = TestApp::spawn(Backend::Postgres).await;
        let other = app.start_another(&[]);
        let secret = app.create_machine("client-a", &["profile"]);
        let token = app.access_token("client-a", &secret).await;
        let on_other = |t: String| {
            let c = app.client.clone();
            let url = format!("http://{other}/api/v1/me");
            async move { c.get(url).bearer_auth(t).send().await.unwrap().status() }
        };
        // The other instance has validated (and cached) the token.
        assert_eq!(on_other(token.clone()).await, 200);
        assert_eq!(on_other(token.clone()).await, 200);
        let res = post_form(
            &app,
            "/oauth2/revoke",
            &[("token", &token)],
            Some(("client-a", &secret)),
        )
        .await;
        assert_eq!(res.status(), 200);
        let revoked_at = std::time::Instant::now();
        loop {
            if on_other(token.clone()).await == 401 {
                break;
            }
            assert!(
                revoked_at.elapsed() < std::time::Duration::from_secs(1),
                "still accepted a second after revocation"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn discovery_metadata_lists_endpoints_and_scopes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let meta: Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = meta["issuer"].as_str().unwrap();
    assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth2/token"));
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{issuer}/oauth2/introspect")
    );
    assert_eq!(
        meta["revocation_endpoint"],
        format!("{issuer}/oauth2/revoke")
    );
    assert_eq!(meta["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(meta["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert!(meta["response_types_supported"].is_array());
    let scopes = meta["scopes_supported"].as_array().unwrap();
    for s in [
        "profile",
        "tokens:read",
        "tokens:write",
        "admin:read",
        "admin:write",
        "introspect",
    ] {
        assert!(scopes.contains(&json!(s)), "{s}");
    }
}

#[tokio::test]
async fn metrics_count_requests_issued_tokens_and_validations() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let secret = app.create_machine("client-m", &["profile"]);
    let token = app.access_token("client-m", &secret).await;
    assert_eq!(app.get_bearer("/api/v1/me", &token).await.status(), 200);
    assert_eq!(app.get_bearer("/api/v1/me", "bogus").await.status(), 401);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"tessera_tokens_issued_total{kind="client_credentials"} 1"#,
        r#"tessera_token_validations_total{result="valid"} 1"#,
        r#"tessera_token_validations_total{result="invalid"} 1"#,
        r#"tessera_http_requests_total{method="POST",route="/oauth2/token",status="200"} 1"#,
        r#"tessera_http_request_duration_seconds_count{method="GET",route="/api/v1/me"} 2"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

/// A machine user with client credentials on (tokens for 10 minutes), made
/// through the management API; returns its id.
async fn api_machine(api: &Api, admin: &str, username: &str, scopes: &[&str]) -> String {
    let body = json!({"username": username, "scopes": scopes, "client_credentials": {"enabled": true, "access_token_ttl_minutes": 10}});
    let created = api.post("/api/v1/machine-users", admin, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn new_secret(api: &Api, admin: &str, id: &str) -> Reply {
    api.post_empty(&format!("/api/v1/machine-users/{id}/secrets"), admin)
        .await
}

async fn patch_machine(api: &Api, admin: &str, id: &str, body: Value) {
    let res = api
        .patch(&format!("/api/v1/machine-users/{id}"), admin, &body)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

async fn two_client_secrets_rotate_without_downtime(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let id = api_machine(&api, &admin, "rotating", &["profile"]).await;
    let first = new_secret(&api, &admin, &id).await;
    assert_eq!(first.status, 201);
    let second = new_secret(&api, &admin, &id).await;
    assert_eq!(second.status, 201);
    let third = new_secret(&api, &admin, &id).await;
    assert_eq!(third.status, 409, "a third secret is refused");
    let first_secret = first.body["client_secret"].as_str().unwrap();
    let second_secret = second.body["client_secret"].as_str().unwrap();
    // Both work at once; the TTL is the machine user's.
    let res: Value = app
        .client_credentials("rotating", first_secret, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["expires_in"], 600);
    app.access_token("rotating", second_secret).await;
    // Removing the old one stops it at once (it was cached), the new one goes on.
    let removed = api
        .delete(
            &format!(
                "/api/v1/machine-users/{id}/secrets/{}",
                first.body["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        app.client_credentials("rotating", first_secret, None)
            .await
            .status(),
        401
    );
    app.access_token("rotating", second_secret).await;
    // A slot is free again.
    assert_eq!(new_secret(&api, &admin, &id).await.status, 201);
}

async fn machine_user_changes_take_effect_on_the_next_request(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write"]);
    let id = api_machine(&api, &admin, "changing", &["profile", "introspect"]).await;
    let secret = new_secret(&api, &admin, &id).await.body["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = app.access_token("changing", &secret).await;
    let me: Value = app
        .get_bearer("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["scopes"], json!(["introspect", "profile"]));

    // Narrowing the allowed scopes narrows the live token.
    patch_machine(&api, &admin, &id, json!({"scopes": ["profile"]})).await;
    let me: Value = app
        .get_bearer("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["scopes"], json!(["profile"]));
    // Client credentials off: the grant is refused, existing tokens live on.
    patch_machine(
        &api,
        &admin,
        &id,
        json!({"client_credentials": {"enabled": false}}),
    )
    .await;
    let res = app.client_credentials("changing", &secret, None).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    // Disabled: its token is refused and introspects inactive; it cannot authenticate.
    patch_machine(
        &api,
        &admin,
        &id,
        json!({"enabled": false, "client_credentials": {"enabled": true}}),
    )
    .await;
    assert_eq!(app.me_status(&token).await, 401);
    let rs = app.create_machine("resource-server", &["introspect"]);
    let body: Value = post_form(
        app,
        "/oauth2/introspect",
        &[("token", &token)],
        Some(("resource-server", &rs)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body, json!({"active": false}));
    assert_eq!(
        app.client_credentials("changing", &secret, None)
            .await
            .status(),
        401
    );
    // Enabled again: the token works again (it was never revoked).
    patch_machine(&api, &admin, &id, json!({"enabled": true})).await;
    assert_eq!(app.me_status(&token).await, 200);
    // Deleted: its tokens die with it.
    let deleted = api
        .delete(&format!("/api/v1/machine-users/{id}"), &admin)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(app.me_status(&token).await, 401);
    assert_eq!(
        app.client_credentials("changing", &secret, None)
            .await
            .status(),
        401
    );
}

async fn a_disabled_or_demoted_owner_loses_power_at_once(backend: Backend) {
    let api = Api::spawn(backend).await;
    let app = &api.app;
    let admin = app.admin_token(&["admin:read", "admin:write", "profile"]);
    app.create_user("carol", true);
    let carol = app.token_for("carol", &["profile", "admin:read"]);
    let me = api.get("/api/v1/me", &carol).await;
    assert_eq!(me.body["scopes"], json!(["admin:read", "profile"]));
    let carol_id = me.body["id"].as_str().unwrap().to_owned();
    // Demoted: admin:read is gone from the live token.
    let demoted = api
        .patch(
            &format!("/api/v1/users/{carol_id}"),
            &admin,
            &json!({"role": "user"}),
        )
        .await;
    assert_eq!(demoted.status, 200);
    let me = api.get("/api/v1/me", &carol).await;
    assert_eq!(me.body["scopes"], json!(["profile"]));
    assert_eq!(api.get("/api/v1/users", &carol).await.status, 403);
    // Disabled: the token is refused.
    let disabled = api
        .patch(
            &format!("/api/v1/users/{carol_id}"),
            &admin,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(app.me_status(&carol).await, 401);
}

both_backends!(
    two_client_secrets_rotate_without_downtime,
    machine_user_changes_take_effect_on_the_next_request,
    a_disabled_or_demoted_owner_loses_power_at_once,
);
