//! The token service and the OAuth 2.0 endpoints: RFC 6749 §4.4 and §5.2,
//! RFC 7662, RFC 7009, RFC 8414, RFC 7517, RFC 9068, on both backends, one
//! module per area. Here: discovery metadata, metrics, and the helpers the
//! areas share.

mod invalidation;
mod issuing;
mod machine_changes;
mod multi_instance;
mod outage;
mod phased_keys;
mod recording;
mod validating;

use crate::common::{Backend, TestApp};
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

/// Another method at an OAuth endpoint is a 405 naming the right one
/// (RFC 9110 §15.5.6), in the endpoints' JSON error shape; HEAD works where
/// GET does.
#[tokio::test]
async fn a_wrong_method_at_an_oauth_endpoint_is_405_with_allow() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let cases = [
        (reqwest::Method::GET, "/oauth2/token", "POST"),
        (reqwest::Method::PUT, "/oauth2/introspect", "POST"),
        (reqwest::Method::DELETE, "/oauth2/revoke", "POST"),
        (reqwest::Method::POST, "/.well-known/jwks.json", "GET, HEAD"),
        (
            reqwest::Method::POST,
            "/.well-known/oauth-authorization-server",
            "GET, HEAD",
        ),
    ];
    for (method, path, allow) in cases {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: Value = res.json().await.expect("a JSON error");
        assert_eq!(body["error"], "invalid_request", "{method} {path}: {body}");
    }
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "HEAD {path}");
    }
}

#[tokio::test]
async fn metrics_count_requests_issued_tokens_and_validations() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let secret = app.create_machine("client-m", &["profile", "introspect"]);
    let token = app.access_token("client-m", &secret).await;
    assert_eq!(app.get_bearer("/api/v1/me", &token).await.status(), 200);
    assert_eq!(app.get_bearer("/api/v1/me", "bogus").await.status(), 401);
    // Introspections are validations too: one of a live token, one of junk.
    for introspected in [token.as_str(), "junk"] {
        let res = app
            .client
            .post(app.url("/oauth2/introspect"))
            .basic_auth("client-m", Some(&secret))
            .form(&[("token", introspected)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
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
        r#"tessera_token_validations_total{result="valid"} 2"#,
        r#"tessera_token_validations_total{result="invalid"} 2"#,
        r#"tessera_http_requests_total{method="POST",route="/oauth2/token",status="200"} 1"#,
        r#"tessera_http_request_duration_seconds_count{method="GET",route="/api/v1/me"} 2"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
