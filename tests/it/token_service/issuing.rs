//! Issuing: client-credentials tokens as RFC 9068 JWTs that verify with the
//! published JWKS, the token endpoint's errors (RFC 6749 §5.2), and its
//! limit on request bodies.

use super::{jwks, parts, post_form, verify_with_jwks};
use crate::{
    both_backends,
    common::{Backend, TestApp},
};
use base64::Engine;
use serde_json::{Value, json};

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
    let scopeless = app.create_machine("client-none", &[]);
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
            what: "Basic with another client_id in the form",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "client-b"),
                ])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "two Authorization headers",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .basic_auth("client-b", Some("x"))
                .form(&cc)
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_request",
            basic_challenge: false,
        },
        Case {
            what: "scopes separated by a tab",
            res: c
                .post(&url)
                .basic_auth("client-a", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "profile\tprofile"),
                ])
                .send()
                .await
                .unwrap(),
            status: 400,
            error: "invalid_scope",
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
            what: "a client allowed no scope, asking for none",
            res: c
                .post(&url)
                .basic_auth("client-none", Some(&scopeless))
                .form(&cc)
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
    // In the OAuth error shape, as every refusal here (RFC 6749 §5.2).
    let body: serde_json::Value = res.json().await.expect("a JSON error");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("65536")),
        "{body}"
    );
}

/// RFC 6749 §3.2.1: a client may name itself with `client_id` beside its
/// Basic credentials, as several libraries do.
async fn basic_credentials_may_come_with_the_same_client_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("client-a", &["profile"]);
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth("client-a", Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "client-a"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
}

both_backends!(
    client_credentials_issue_rfc9068_jwts_verifiable_with_the_jwks,
    token_endpoint_errors_follow_rfc_6749,
    token_request_bodies_over_64_kib_are_refused,
    basic_credentials_may_come_with_the_same_client_id,
);
