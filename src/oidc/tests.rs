//! The ID token checks Tessera configures: `iss` must be the configured
//! issuer and `aud` must be Tessera's client id (alone, or with no untrusted
//! other audience), before the signature is even looked at. (The end-to-end
//! paths run against a real provider in tests/it/web/sso_refusals.rs; a
//! compliant provider never sends these tokens, so they are built here.)

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use openidconnect::{ClaimsVerificationError, IdToken, Nonce};
use serde_json::json;

use super::*;
use crate::secret::Secret;

const ISSUER: &str = "https://id.example/realms/acme";

fn provider() -> Provider {
    Provider::new(
        OidcSettings {
            issuer: ISSUER.into(),
            client_id: "tessera".into(),
            client_secret: Secret::new("s3cret".into()),
            scopes: vec![],
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            admin_groups: vec![],
            allowed_groups: None,
            name: "SSO".into(),
        },
        "https://tessera.example",
    )
    .expect("provider")
}

fn metadata() -> Metadata {
    serde_json::from_value(json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "jwks_uri": format!("{ISSUER}/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .expect("metadata")
}

type Token =
    IdToken<AnyClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// An ID token with these claims and a signature no key makes.
fn token(iss: &str, aud: serde_json::Value) -> Token {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let jwt = format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
        part(
            json!({"iss": iss, "aud": aud, "sub": "s1", "exp": now + 300, "iat": now, "nonce": "n1"})
        ),
        URL_SAFE_NO_PAD.encode([7u8; 256]),
    );
    jwt.parse().expect("a JWT")
}

fn verify(t: &Token) -> Result<(), ClaimsVerificationError> {
    let p = provider();
    let client = p.client(&metadata());
    t.claims(&client.id_token_verifier(), &Nonce::new("n1".into()))
        .map(|_| ())
}

#[test]
fn an_id_token_from_another_issuer_is_refused() {
    let e = verify(&token("https://evil.example", json!("tessera"))).unwrap_err();
    assert!(
        matches!(e, ClaimsVerificationError::InvalidIssuer(_)),
        "{e:?}"
    );
}

#[test]
fn an_id_token_for_another_client_is_refused() {
    for aud in [
        json!("other-app"),
        json!(["other-app"]),
        json!(["tessera", "other-app"]),
    ] {
        let e = verify(&token(ISSUER, aud.clone())).unwrap_err();
        assert!(
            matches!(e, ClaimsVerificationError::InvalidAudience(_)),
            "{aud}: {e:?}"
        );
    }
}

#[test]
fn the_right_issuer_and_client_still_need_a_valid_signature() {
    let e = verify(&token(ISSUER, json!("tessera"))).unwrap_err();
    assert!(
        matches!(e, ClaimsVerificationError::SignatureVerification(_)),
        "{e:?}"
    );
}
