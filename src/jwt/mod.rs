//! JWTs as Tessera issues them (RFC 9068, INTERFACE §5): keys, claims, signing
//! and verifying. A leaf: it knows nothing of the database or the domain.
//! Which tokens exist, who owns them and what they may do is decided above it
//! (`domain` issues, `token_service` validates).

pub mod client_keys;
pub mod keys;

use std::sync::{Arc, RwLock};

use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{clock, kinds::TokenKind, secret::Digest};
use keys::{KeyRing, LoadedKey};

/// A token's `nbf` and `iat` may lie this far in the future, so instances
/// whose clocks differ a little accept each other's fresh tokens. `exp` gets
/// no leeway: an expired token is refused at once.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

/// The claims of INTERFACE.md §5.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub token_kind: TokenKind,
}

/// A freshly signed token, not yet recorded.
pub struct Minted {
    /// The record's id; the `jti` is its text form, so both index append-only.
    pub id: Uuid,
    pub token: String,
    pub jti: String,
    pub kid: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub digest: Digest,
    /// The resource server this token is for (its `aud`); `None`: the
    /// default audience.
    pub audience: Option<String>,
}

/// Why a signature or its claims were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT at all.
    Malformed,
    /// A bad signature, algorithm, `typ`, `iss`, `aud`, or a token not yet valid.
    Invalid,
    Expired,
    /// Signed with a key this ring does not hold (yet).
    UnknownKid(String),
}

/// Signs with the active key of a ring and verifies with any key in it. The
/// ring is replaced whole when keys are reloaded.
pub struct Signer {
    issuer: String,
    audience: String,
    ring: RwLock<Arc<KeyRing>>,
}

impl Signer {
    pub fn new(issuer: String, audience: String, ring: KeyRing) -> Self {
        Self {
            issuer,
            audience,
            ring: RwLock::new(Arc::new(ring)),
        }
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().expect("key ring lock").clone()
    }

    pub fn replace_ring(&self, ring: KeyRing) {
        *self.ring.write().expect("key ring lock") = Arc::new(ring);
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs a token for `subject` (known to clients as `client_id`) with the
    /// active key and the default audience. The caller records it before
    /// handing it out.
    pub fn mint(
        &self,
        subject: Uuid,
        client_id: &str,
        kind: TokenKind,
        scope: String,
        lifetime_secs: i64,
    ) -> anyhow::Result<Minted> {
        self.mint_for(None, subject, client_id, kind, scope, lifetime_secs)
    }

    /// As [`Signer::mint`], for one resource server (RFC 8707) when
    /// `audience` names it.
    pub fn mint_for(
        &self,
        audience: Option<&str>,
        subject: Uuid,
        client_id: &str,
        kind: TokenKind,
        scope: String,
        lifetime_secs: i64,
    ) -> anyhow::Result<Minted> {
        let ring = self.ring();
        let issued_at = clock::now();
        let key = ring.signing_key(issued_at);
        let expires_at = issued_at
            .checked_add(time::Duration::seconds(lifetime_secs))
            .filter(|t| clock::checked_utc(*t).is_some())
            .ok_or_else(|| anyhow::anyhow!("token lifetime out of range: {lifetime_secs} s"))?;
        let id = Uuid::now_v7();
        let jti = id.to_string();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: audience.unwrap_or(&self.audience).to_owned(),
            exp: expires_at.unix_timestamp(),
            iat: issued_at.unix_timestamp(),
            nbf: issued_at.unix_timestamp(),
            jti: jti.clone(),
            client_id: client_id.to_owned(),
            scope,
            token_kind: kind,
        };
        let payload = serde_json::to_vec(&claims)?;
        let token = key.sign_jwt(&payload)?;
        let digest = Digest::of(&token);
        Ok(Minted {
            id,
            token,
            jti,
            kid: key.kid.clone(),
            issued_at,
            expires_at,
            digest,
            audience: audience.map(str::to_owned),
        })
    }

    /// Signature and claims. Rejects `alg: none`, HMAC, an algorithm other
    /// than the key's, a wrong `typ` or `iss`, and tokens outside their
    /// validity window; a kid not in the ring is `UnknownKid`, so the caller
    /// may reload keys and try again. `aud` must be present but may be the
    /// default audience or a resource server's: the caller compares it with
    /// the token's record (`token_service`).
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // RFC 7515 §4.1.11: Tessera understands no critical extension.
        if header.typ.as_deref() != Some("at+jwt") || header.crit.is_some() {
            return Err(VerifyError::Invalid);
        }
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let key = self
            .ring()
            .by_kid
            .get(&kid)
            .cloned()
            .ok_or(VerifyError::UnknownKid(kid))?;
        if header.alg != key.alg.jwt_algorithm() {
            return Err(VerifyError::Invalid);
        }
        self.verify_with(token, &key, true)
    }

    /// The claims of a token [`Self::verify`] refused as `Expired`: its
    /// signature and other claims checked as usual, only `exp` ignored, so
    /// the refused use can be pinned on the token it names.
    pub fn expired_claims(&self, token: &str) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self.ring().by_kid.get(header.kid.as_deref()?).cloned()?;
        if header.typ.as_deref() != Some("at+jwt")
            || header.crit.is_some()
            || header.alg != key.alg.jwt_algorithm()
        {
            return None;
        }
        self.verify_with(token, &key, false).ok()
    }

    fn verify_with(&self, token: &str, key: &LoadedKey, exp: bool) -> Result<Claims, VerifyError> {
        let mut validation = Validation::new(key.alg.jwt_algorithm());
        validation.validate_exp = exp;
        // `exp` is strict; `nbf` and `iat` get CLOCK_LEEWAY_SECS, checked below
        // (the library's leeway would stretch `exp` too, and it ignores `iat`).
        validation.leeway = 0;
        validation.validate_nbf = false;
        validation.set_issuer(&[&self.issuer]);
        // Resource servers are the domain's; the record says which `aud` is right.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]);
        let claims = match jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation) {
            Ok(data) => data.claims,
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                return Err(VerifyError::Expired);
            }
            Err(_) => return Err(VerifyError::Invalid),
        };
        let latest_start = OffsetDateTime::now_utc().unix_timestamp() + CLOCK_LEEWAY_SECS;
        if claims.nbf > latest_start || claims.iat > latest_start {
            return Err(VerifyError::Invalid);
        }
        Ok(claims)
    }
}
