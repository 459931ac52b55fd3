//! Client assertions for the `private_key_jwt` tests, made with RustCrypto
//! (`p256`, `rsa`, `ed25519-dalek`) and assembled by hand: a different
//! library and code path than the server's verifier (`jsonwebtoken` on
//! aws-lc-rs), so a mistake shared by both cannot pass unnoticed.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::common::{Api, TestApp};

/// A 2048-bit RSA test key (generated once with `openssl genpkey`).
const RSA_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDUGfyEEP9mST+4\n\
TrkxN9k3qx5YUtO9ePImFvdRt0aHsggaegV63Ivvc6L1ak7WqZH/JNE6sYG8u215\n\
ne8uia1YUm1Lr3ZQVjr6KTdntB+znldXgWNZfBgNEA+wzb+2zSZQIBXCiSjPf/3v\n\
WuWFMGJQgcztiKR8YJ7I2819ZmBK6YAgglGiI/Fb2nwzaWLwsu8ALoTXiWLRHmAi\n\
NstPh/60VG/ZMbFfe+KEbD1Y671a/CNTR0jfdACLF6qgLf0Hp791UmcaX2TdnUq2\n\
4dkB+cdZ5+gXedgP7EyhdzplDdAaEwFrWtsQDySRP62/J6KAV7NkP6383mMtVcb7\n\
sj2H1Fi1AgMBAAECggEATjDGRml9vdeDBg7/doWALmWG6kiehlrv6drNkfJereeT\n\
1S7mlkR30e5vRMnMBpa8m7KW72xAx7LQyOTQJ/fZT5YTdLNaioM/erl3E2Pzy+Oz\n\
jy7D0VlOBILHRgaThnBaj29EllK6GMS2eGap9k+/7q3rPiYBfVihMKrXNkNnfDWs\n\
K0Ks8RXqQF/sz/KYWNiGHb05YNKamGnOUJtTcma0A68vS46saTROvCYMQUc5ZInS\n\
ATKwFbGi1YlZnGCvm8tuXlA5lLQ70tNy+5kdJWCK8ZIN/bqnhu8mPZPQQ1Po0t7W\n\
3La9gcK6kcpY65GAo1rQPQmvbEDrjFmvtOUGYlyUgQKBgQD5/BsoFs6EIfIbcv1o\n\
RShjbx66UUSs/mf2zxji2uh1qeWgKvtDXXK6M+nyU/GknkBhEPamseqY0Jh85eGu\n\
AjnlIWBvLAIQ6WvqMAGlIQEZ3uL7hKRxW0TlJyIqhdDXjkooHO9Jb+cDDD+zabcw\n\
aj+s+5XbJV6g0hLjXEQ68MZlAwKBgQDZNIVsIdoNteaK97JrHvx8Eo1XmXf1c7m7\n\
GbYb2WPKXyrLqtfp2wjnYJBx72iw2zdIE3kjnWmcjED3wSPU/gWmWLUFcRmtZPE7\n\
EcR5vmkTsEkVGFYxdFQxF2LRPMcvEJ6zYJYDojBOvOUT3v4Me4Za7KCJXp2vOlDV\n\
OiqVq14R5wKBgCsIvVwPYQnaFiWni/wxO5yyemW0q8/kE92nFS+oY7AtyTvjalHU\n\
enWXjkSLMuQV4htTokJcCni4ICgQIuOjune5YTKCLvDeXhd4oC/fGKNtfUGzOePR\n\
xHB2ZilP0/3nnth88qx/uRMLPsQSBNku0TtkLA4HxtyEjX/aWFyVKnIlAoGAWPox\n\
+fT4HYu5kI4dsdI0viLfcdY1lQA+Qo4q0sfAIGPR5TLsVilbQWWGZpYbfe+fetA3\n\
XMacP/wYlSWypwsUh2tpZHxLd4OVaoxBv1moM9+QYKrijEnKP34EBhDuy7H0QSk8\n\
6uoi/e5VrUk5KyXjCRZMQVnYILMz79VvInbcB1sCgYEA5poIuG6/CCdfis/GCMzp\n\
Tyd+E0QE6dFxhbmhuaz/5ooNh4qvJ4xCGscmGd1s0pc7xA84HvC8mz1L5KOYnuy+\n\
gSa2ID1D4Ie2Bs0QwktUe4U26L935TFDwtrgcmk611LSO18gPUZo6vGqZ+hcT+2h\n\
U8JVil3+UV+ZwA0rtpc3Fac=\n\
-----END PRIVATE KEY-----\n";

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key of one of the supported types.
pub enum Key {
    Ec(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed(ed25519_dalek::SigningKey),
}

impl Key {
    /// A P-256 key derived from `seed` (any seed gives a valid scalar here).
    pub fn ec(seed: u8) -> Self {
        let mut bytes = [seed; 32];
        bytes[0] = 0x42;
        Self::Ec(p256::ecdsa::SigningKey::from_slice(&bytes).expect("P-256 scalar"))
    }

    pub fn rsa() -> Self {
        use rsa::pkcs8::DecodePrivateKey;
        Self::Rsa(Box::new(
            rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).expect("RSA test key"),
        ))
    }

    pub fn ed(seed: u8) -> Self {
        Self::Ed(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    /// The public JWK, with `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Ec(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256", "kid": kid,
                       "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            Self::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                json!({"kty": "RSA", "kid": kid, "n": b64(&k.n().to_bytes_be()), "e": b64(&k.e().to_bytes_be())})
            }
            Self::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                                  "x": b64(k.verifying_key().as_bytes())}),
        }
    }

    /// A compact JWS over `claims` with `header` (which names `alg`); the
    /// signature follows `alg` for this key's type.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let alg = header["alg"].as_str().unwrap_or("");
        let signature: Vec<u8> = match (self, alg) {
            (Self::Ec(k), _) => {
                use p256::ecdsa::{Signature, signature::Signer};
                let sig: Signature = k.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
            (Self::Rsa(k), "PS256") => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                let key = rsa::pss::BlindedSigningKey::<rsa::sha2::Sha256>::new((**k).clone());
                key.sign_with_rng(&mut rsa::rand_core::OsRng, input.as_bytes())
                    .to_vec()
            }
            (Self::Rsa(k), _) => {
                use rsa::signature::{SignatureEncoding, Signer};
                let key = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new((**k).clone());
                key.sign(input.as_bytes()).to_vec()
            }
            (Self::Ed(k), _) => {
                use ed25519_dalek::Signer;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    /// The natural algorithm of this key.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Ec(_) => "ES256",
            Self::Rsa(_) => "RS256",
            Self::Ed(_) => "EdDSA",
        }
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of a good assertion from `client` for `aud`, valid 5 minutes.
pub fn claims(client: &str, aud: &str) -> Value {
    let now = now();
    json!({"iss": client, "sub": client, "aud": aud, "iat": now, "exp": now + 300,
           "jti": uuid::Uuid::new_v4().to_string()})
}

/// A good assertion: `key` as `kid`, its natural algorithm.
pub fn assertion(key: &Key, kid: &str, client: &str, aud: &str) -> String {
    key.sign(
        &json!({"alg": key.alg(), "kid": kid, "typ": "JWT"}),
        &claims(client, aud),
    )
}

/// The server's metadata (issuer and endpoint URLs).
pub async fn metadata(app: &TestApp) -> Value {
    app.client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json")
}

/// A machine user with client credentials on, allowed `scopes`; its id.
pub async fn machine(api: &Api, admin: &str, username: &str, scopes: &[&str]) -> String {
    let r = api
        .post(
            "/api/v1/machine-users",
            admin,
            &json!({"username": username, "scopes": scopes,
                    "client_credentials": {"enabled": true, "access_token_ttl_minutes": 10}}),
        )
        .await;
    r.expect(201, "create machine user");
    r.body["id"].as_str().expect("id").to_owned()
}

/// Registers `keys` (with their kids) for the machine user `id`.
pub async fn register(api: &Api, admin: &str, id: &str, keys: &[(&Key, &str)]) {
    let set = json!({"keys": keys.iter().map(|(k, kid)| k.jwk(kid)).collect::<Vec<_>>()});
    api.call(
        reqwest::Method::PUT,
        &format!("/api/v1/machine-users/{id}/jwks"),
        Some(admin),
        Some(&set),
    )
    .await
    .expect(200, "register keys");
}

/// `POST path` with a form and a client assertion; status and JSON body.
pub async fn post_with_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    let res = app
        .client
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT (no verification: the test reads what it was given).
pub fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64")).expect("json")
}
