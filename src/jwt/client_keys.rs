//! Clients' public keys and the assertions they sign (`private_key_jwt`,
//! RFC 7523 §2.2, OpenID Connect Core §9). A leaf like the rest of `jwt`:
//! it validates a JWK Set, turns it into decoding keys, and checks one
//! assertion against them; which client holds which keys, and whether a
//! `jti` was seen before, are decided above it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::CLOCK_LEEWAY_SECS;

/// Keys a client may register at once: enough to rotate, few enough to try.
pub const MAX_KEYS: usize = 5;
/// The longest an assertion may live (`exp` after `iat`, or after now):
/// stock client libraries sign for up to an hour.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// The longest `jti` remembered.
pub const MAX_JTI_LEN: usize = 256;
/// What `token_endpoint_auth_signing_alg_values_supported` lists.
pub const ALGORITHMS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// Why a JWK Set was refused, in words that name the key and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(String);

fn err(at: usize, message: impl std::fmt::Display) -> JwksError {
    JwksError(format!("keys[{at}]: {message}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    /// EC P-256: ES256.
    P256,
    /// RSA: RS256 or PS256.
    Rsa,
    /// OKP Ed25519: EdDSA.
    Ed25519,
}

impl KeyType {
    fn allows(self, alg: Algorithm) -> bool {
        match self {
            Self::P256 => alg == Algorithm::ES256,
            Self::Rsa => matches!(alg, Algorithm::RS256 | Algorithm::PS256),
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

fn b64(key: &Map<String, Value>, member: &str, at: usize) -> Result<Vec<u8>, JwksError> {
    let raw = key
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| err(at, format!("\"{member}\" is required (a base64url string)")))?;
    URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .map_err(|_| err(at, format!("\"{member}\" is not base64url")))
}

/// A member as stored: base64url without padding (RFC 7515 §2), which is how
/// the verifier decodes it; `b64` accepted it padded.
fn unpadded(value: &Value) -> Value {
    json!(value.as_str().unwrap_or_default().trim_end_matches('='))
}

fn string<'a>(
    key: &'a Map<String, Value>,
    member: &str,
    at: usize,
) -> Result<Option<&'a str>, JwksError> {
    match key.get(member) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(at, format!("\"{member}\" must be a string"))),
    }
}

/// Validates a JWK Set of public signing keys and returns it as stored: each
/// key with only its public members (`kty`, `crv`, `x`, `y`, `n`, `e`, `kid`,
/// `alg`, `use`). Refused: a private member, a key type other than EC P-256,
/// RSA of 2048 to 8192 bits or Ed25519, more than [`MAX_KEYS`] keys, and a
/// missing or repeated `kid` when there is more than one key.
pub fn validate_jwks(set: &Value) -> Result<Value, JwksError> {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError("a JWK Set is an object {\"keys\": [...]}".into()))?;
    if keys.is_empty() {
        return Err(JwksError(
            "keys: the set holds no key (to remove the keys, DELETE them)".into(),
        ));
    }
    if keys.len() > MAX_KEYS {
        return Err(JwksError(format!(
            "keys: at most {MAX_KEYS} keys, this set has {}",
            keys.len()
        )));
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut kids: Vec<String> = Vec::new();
    for (at, key) in keys.iter().enumerate() {
        let key = key
            .as_object()
            .ok_or_else(|| err(at, "a key is a JSON object"))?;
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
            return Err(err(
                at,
                format!(
                    "holds the private member \"{private}\": register the public key only, and keep the private key with the client"
                ),
            ));
        }
        let kty = string(key, "kty", at)?.ok_or_else(|| err(at, "\"kty\" is required"))?;
        let mut public = Map::new();
        let kind = match kty {
            "EC" => {
                let crv = string(key, "crv", at)?.unwrap_or("");
                if crv != "P-256" {
                    return Err(err(at, format!("unsupported EC curve {crv:?}: use P-256")));
                }
                let (x, y) = (b64(key, "x", at)?, b64(key, "y", at)?);
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if x.len() != 32
                    || y.len() != 32
                    || aws_lc_rs::signature::ParsedPublicKey::new(
                        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                        &point,
                    )
                    .is_err()
                {
                    return Err(err(at, "\"x\" and \"y\" are not a point on P-256"));
                }
                for m in ["crv", "x", "y"] {
                    public.insert(m.into(), unpadded(&key[m]));
                }
                KeyType::P256
            }
            "RSA" => {
                let n = b64(key, "n", at)?;
                let e = b64(key, "e", at)?;
                let n = &n[n.iter().take_while(|b| **b == 0).count()..];
                let bits = n.first().map_or(0, |top| {
                    (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
                });
                if bits < MIN_RSA_BITS {
                    return Err(err(
                        at,
                        format!(
                            "an RSA key of {bits} bits is too small: use at least {MIN_RSA_BITS}"
                        ),
                    ));
                }
                if bits > MAX_RSA_BITS {
                    return Err(err(
                        at,
                        format!("an RSA key of {bits} bits is larger than {MAX_RSA_BITS}"),
                    ));
                }
                let e_ok = !e.is_empty() && e.len() <= 8 && e.last().is_some_and(|b| b & 1 == 1);
                if !e_ok || e.iter().all(|b| *b == 0) || e == [1] {
                    return Err(err(at, "\"e\" is not a usable RSA public exponent"));
                }
                for m in ["n", "e"] {
                    public.insert(m.into(), unpadded(&key[m]));
                }
                KeyType::Rsa
            }
            "OKP" => {
                let crv = string(key, "crv", at)?.unwrap_or("");
                if crv != "Ed25519" {
                    return Err(err(
                        at,
                        format!("unsupported OKP curve {crv:?}: use Ed25519"),
                    ));
                }
                let x = b64(key, "x", at)?;
                if aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ED25519, &x)
                    .is_err()
                {
                    return Err(err(at, "\"x\" is not an Ed25519 public key"));
                }
                for m in ["crv", "x"] {
                    public.insert(m.into(), unpadded(&key[m]));
                }
                KeyType::Ed25519
            }
            other => {
                return Err(err(
                    at,
                    format!("unsupported key type {other:?}: use EC (P-256), RSA or OKP (Ed25519)"),
                ));
            }
        };
        public.insert("kty".into(), json!(kty));
        if let Some(alg) = string(key, "alg", at)? {
            let fits = alg
                .parse::<Algorithm>()
                .ok()
                .filter(|a| ALGORITHMS.contains(&alg) && kind.allows(*a));
            if fits.is_none() {
                return Err(err(at, format!("\"alg\" {alg:?} does not fit a {kty} key")));
            }
            public.insert("alg".into(), json!(alg));
        }
        if let Some(usage) = string(key, "use", at)? {
            if usage != "sig" {
                return Err(err(
                    at,
                    format!("\"use\" is {usage:?}: only signing keys (\"sig\")"),
                ));
            }
            public.insert("use".into(), json!(usage));
        }
        match string(key, "kid", at)? {
            Some("") => return Err(err(at, "\"kid\" must not be empty")),
            Some(kid) if kid.len() > 256 => {
                return Err(err(at, "\"kid\" is longer than 256 characters"));
            }
            Some(kid) => {
                if kids.iter().any(|k| k == kid) {
                    return Err(err(at, format!("\"kid\" {kid:?} is used twice")));
                }
                kids.push(kid.to_owned());
                public.insert("kid".into(), json!(kid));
            }
            None if keys.len() > 1 => {
                return Err(err(
                    at,
                    "\"kid\" is required when the set has more than one key",
                ));
            }
            None => {}
        }
        out.push(Value::Object(public));
    }
    Ok(json!({"keys": out}))
}

/// One registered key, ready to verify with.
pub struct ClientKey {
    kid: Option<String>,
    kind: KeyType,
    decoding: DecodingKey,
    alg: Option<Algorithm>,
}

/// A client's keys, parsed once (the caller caches them).
#[derive(Default)]
pub struct ClientKeys(Vec<ClientKey>);

impl ClientKeys {
    /// Parses a set stored by [`validate_jwks`].
    pub fn parse(stored: &str) -> anyhow::Result<Self> {
        let set: Value = serde_json::from_str(stored)?;
        let mut keys = Vec::new();
        for key in set["keys"].as_array().into_iter().flatten() {
            // Sets stored before keys were kept unpadded may hold padding.
            let s = |m: &str| key[m].as_str().unwrap_or_default().trim_end_matches('=');
            let (kind, decoding) = match s("kty") {
                "EC" => (
                    KeyType::P256,
                    DecodingKey::from_ec_components(s("x"), s("y"))?,
                ),
                "RSA" => (
                    KeyType::Rsa,
                    DecodingKey::from_rsa_components(s("n"), s("e"))?,
                ),
                "OKP" => (KeyType::Ed25519, DecodingKey::from_ed_components(s("x"))?),
                other => anyhow::bail!("stored key of type {other:?}"),
            };
            keys.push(ClientKey {
                kid: key["kid"].as_str().map(str::to_owned),
                kind,
                decoding,
                alg: key["alg"].as_str().and_then(|a| a.parse().ok()),
            });
        }
        Ok(Self(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys that may have signed with `alg`: the one `kid` names, or
    /// without a `kid` every key that signs with `alg` (a client rotating its
    /// key holds two, and some libraries send no `kid`).
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<&ClientKey>, Refusal> {
        let fits = |k: &&ClientKey| k.kind.allows(alg) && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => {
                let key = self
                    .0
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .ok_or(Refusal::UnknownKey)?;
                if fits(&key) {
                    Ok(vec![key])
                } else {
                    Err(Refusal::Algorithm)
                }
            }
            None if self.0.is_empty() => Err(Refusal::UnknownKey),
            None => {
                let keys: Vec<_> = self.0.iter().filter(fits).collect();
                if keys.is_empty() {
                    Err(Refusal::Algorithm)
                } else {
                    Ok(keys)
                }
            }
        }
    }
}

/// An assertion that verified: what the caller still checks (the `jti`, once).
#[derive(Debug)]
pub struct Assertion {
    pub jti: String,
    pub exp: i64,
}

/// Why an assertion was refused: for the debug log only; the client is told
/// `invalid_client` whatever it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    UnknownKey,
    /// `none`, HMAC, or an algorithm the key's type does not sign with.
    Algorithm,
    /// A bad signature, or `iss`, `sub` or `aud` not as required.
    SignatureOrClaims,
    Expired,
    TooLongLived,
    NotYetValid,
    BadJti,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(deserialize_with = "numeric_date")]
    exp: i64,
    #[serde(default, deserialize_with = "optional_numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "optional_numeric_date")]
    nbf: Option<i64>,
    jti: String,
}

/// A NumericDate is any JSON number of seconds, fractions allowed (RFC 7519
/// §2): taken to the whole second below (`as` saturates far out of range;
/// JSON has no NaN).
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    f64::deserialize(d).map(|seconds| seconds.floor() as i64)
}

/// [`numeric_date`], or `null` for absent.
fn optional_numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<f64>::deserialize(d).map(|seconds| seconds.map(|s| s.floor() as i64))
}

/// The client an assertion says it is from (`iss`, which must equal `sub`),
/// read without verifying anything: only to find the keys to verify with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Who {
        iss: String,
        sub: String,
    }
    let who: Who = jsonwebtoken::dangerous::insecure_decode(assertion)
        .ok()?
        .claims;
    (who.iss == who.sub).then_some(who.iss)
}

/// Whether the JWS header holds a `crit` member, whatever its value.
fn names_crit(jws: &str) -> bool {
    let Some(head) = jws.split('.').next() else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .is_some_and(|header| header.contains_key("crit"))
}

/// Checks an assertion from `client_id` (RFC 7523 §3): a signature by one of
/// `keys` with an algorithm that fits the key (never chosen by the token
/// alone), `iss` = `sub` = `client_id`, `aud` one of `audiences` (a string
/// or an array holding one), `exp` in the future and at most an hour after
/// `iat` (or now), `nbf`/`iat` not ahead by more than the clock leeway, and
/// a `jti`.
pub fn verify_assertion(
    assertion: &str,
    keys: &ClientKeys,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<Assertion, Refusal> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| Refusal::Malformed)?;
    // RFC 7515 §4.1.11: an extension marked critical that Tessera does not
    // understand (it understands none) refuses the JWS; so does a `crit`
    // that is not even a list (`null`, which the parsed header drops).
    if header.crit.is_some() || names_crit(assertion) {
        return Err(Refusal::Malformed);
    }
    let candidates = keys.candidates(header.kid.as_deref(), header.alg)?;
    let mut validation = Validation::new(header.alg);
    // `exp` is strict, as for Tessera's own tokens; `nbf` and `iat` get the
    // leeway below.
    validation.leeway = 0;
    validation.validate_nbf = false;
    validation.set_issuer(&[client_id]);
    validation.set_audience(audiences);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let mut verified = None;
    for key in candidates {
        match jsonwebtoken::decode::<Claims>(assertion, &key.decoding, &validation) {
            Ok(data) => {
                verified = Some(data.claims);
                break;
            }
            // The signature verified (it is checked first); the time did not.
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                return Err(Refusal::Expired);
            }
            Err(_) => {}
        }
    }
    let claims = verified.ok_or(Refusal::SignatureOrClaims)?;
    if claims.sub != client_id {
        return Err(Refusal::SignatureOrClaims);
    }
    if claims.exp <= now {
        return Err(Refusal::Expired);
    }
    // `iat` is the client's to choose: a far past one must not overflow.
    let start = claims.iat.unwrap_or(now);
    if claims
        .exp
        .checked_sub(start)
        .is_none_or(|lifetime| lifetime > MAX_ASSERTION_LIFETIME_SECS)
    {
        return Err(Refusal::TooLongLived);
    }
    let latest_start = now + CLOCK_LEEWAY_SECS;
    if claims.iat.is_some_and(|t| t > latest_start) || claims.nbf.is_some_and(|t| t > latest_start)
    {
        return Err(Refusal::NotYetValid);
    }
    // A control character (NUL above all) cannot be stored in PostgreSQL text.
    if claims.jti.is_empty()
        || claims.jti.len() > MAX_JTI_LEN
        || claims.jti.chars().any(char::is_control)
    {
        return Err(Refusal::BadJti);
    }
    Ok(Assertion {
        jti: claims.jti,
        exp: claims.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(set: Value) -> String {
        validate_jwks(&set).unwrap_err().to_string()
    }

    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn sets_are_refused_with_a_reason() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y});
        assert!(validate_jwks(&json!({"keys": [ec]})).is_ok());
        let mut private = ec.clone();
        private["d"] = json!("AAAA");
        assert!(refused(json!({"keys": [private]})).contains("private member \"d\""));
        assert!(refused(json!({"keys": [{"kty": "oct", "k": "AAAA"}]})).contains("\"k\""));
        assert!(
            refused(json!({"keys": [{"kty": "EC", "crv": "P-384", "x": P256_X, "y": P256_Y}]}))
                .contains("P-384")
        );
        let small = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        assert!(
            refused(json!({"keys": [{"kty": "RSA", "n": small, "e": "AQAB"}]}))
                .contains("1024 bits")
        );
        assert!(refused(json!({"keys": [ec.clone(), ec.clone()]})).contains("kid"));
        let with = |kid: &str| {
            let mut k = ec.clone();
            k["kid"] = json!(kid);
            k
        };
        assert!(refused(json!({"keys": [with("a"), with("a")]})).contains("used twice"));
        assert!(
            refused(
                json!({"keys": [with("1"), with("2"), with("3"), with("4"), with("5"), with("6")]})
            )
            .contains("at most 5")
        );
        let mut off = ec.clone();
        off["y"] = json!(P256_X);
        assert!(refused(json!({"keys": [off]})).contains("not a point"));
        let mut hs = ec;
        hs["alg"] = json!("HS256");
        assert!(refused(json!({"keys": [hs]})).contains("alg"));
    }

    #[test]
    fn padded_members_are_stored_unpadded_and_parse() {
        let key = crate::jwt::keys::generate(crate::kinds::KeyAlg::EdDsa).unwrap();
        let x = key.jwk["x"].as_str().unwrap();
        let padded = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": format!("{x}=")}]});
        let stored = validate_jwks(&padded).unwrap();
        assert_eq!(stored["keys"][0]["x"], json!(x));
        assert_eq!(ClientKeys::parse(&stored.to_string()).unwrap().0.len(), 1);
        // A set stored with its padding, before it was dropped, parses too.
        assert_eq!(ClientKeys::parse(&padded.to_string()).unwrap().0.len(), 1);
    }

    #[test]
    fn assertion_times_and_jti_are_checked_without_overflow() {
        let key = crate::jwt::keys::generate(crate::kinds::KeyAlg::EdDsa).unwrap();
        let stored = validate_jwks(&json!({"keys": [key.jwk.clone()]})).unwrap();
        let keys = ClientKeys::parse(&stored.to_string()).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let verify_json = |exp: Value, iat: Value, jti: &str| {
            let claims = json!({"iss": "cli-one", "sub": "cli-one", "aud": "https://t/token",
                "exp": exp, "iat": iat, "jti": jti});
            let assertion = key.sign_jwt(claims.to_string().as_bytes()).unwrap();
            verify_assertion(&assertion, &keys, "cli-one", &["https://t/token"], now)
        };
        let verify = |exp: i64, iat: i64, jti: &str| verify_json(json!(exp), json!(iat), jti);
        assert!(verify(now + 60, now, "one").is_ok());
        // NumericDates with fractions (RFC 7519 §2), as some libraries send.
        let ok = verify_json(json!(now as f64 + 60.5), json!(now as f64 - 0.25), "frac").unwrap();
        assert_eq!(ok.exp, now + 60);
        // `null` is absent, as before.
        assert!(verify_json(json!(now + 60), Value::Null, "null").is_ok());
        assert!(matches!(
            verify_json(json!(now as f64 - 0.5), json!(now - 60), "late"),
            Err(Refusal::Expired)
        ));
        // Past any whole number of seconds: jsonwebtoken refuses it first.
        assert!(matches!(
            verify_json(json!(1e300), json!(now), "far"),
            Err(Refusal::SignatureOrClaims)
        ));
        assert!(matches!(
            verify(i64::MAX, i64::MIN, "two"),
            Err(Refusal::TooLongLived)
        ));
        assert!(matches!(
            verify(now + 60, now, "th\u{0}ree"),
            Err(Refusal::BadJti)
        ));
    }
}
