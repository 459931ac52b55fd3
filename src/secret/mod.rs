//! `Secret<T>`: a plaintext secret (password, token, client secret, master
//! key, database password) whose `Debug` never shows it, so a `{:?}` in a
//! log line or a panic message cannot leak it. Reading it takes an explicit
//! `expose()`; the one response that shows a new secret serialises it with
//! [`serde_exposed`]. `PlainSecret` and `MasterKey` redact the same way.

mod generated;

use std::{convert::Infallible, fmt, str::FromStr};

use base64::Engine;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use generated::{Digest, PlainSecret, random_bytes, random_token, token_hint};

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// For command-line flags and environment variables (clap).
impl FromStr for Secret<String> {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self)
    }
}

/// `#[serde(with = "crate::secret::serde_exposed")]`: writes the secret
/// itself. Only for the one response that hands a new secret out.
pub mod serde_exposed {
    use super::*;

    pub fn serialize<T: Serialize, S: Serializer>(v: &Secret<T>, s: S) -> Result<S::Ok, S::Error> {
        v.0.serialize(s)
    }

    /// The same for an optional secret.
    pub mod option {
        use super::*;

        pub fn serialize<T: Serialize, S: Serializer>(
            v: &Option<Secret<T>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            v.as_ref().map(|v| &v.0).serialize(s)
        }
    }
}

/// The 32-byte master key: encrypts signing keys at rest, keys session cookies.
/// An argon2 PHC string as the principals table stores it. Not the
/// password, but a target for offline guessing: its `Debug` (and so the
/// `Debug` sea-orm derives for the whole row and its `ActiveModel`) hides it.
#[derive(Clone, PartialEq, Eq, sea_orm::DeriveValueType)]
pub struct HashedPassword(String);

impl HashedPassword {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashedPassword(<redacted>)")
    }
}

#[derive(Clone)]
pub struct MasterKey(pub [u8; 32]);

impl MasterKey {
    pub fn from_base64(raw: &str) -> anyhow::Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| {
                anyhow::anyhow!("not valid base64 (generate one with `openssl rand -base64 32`)")
            })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!(
                "must be exactly 32 bytes (generate one with `openssl rand -base64 32`)"
            )
        })?;
        Ok(Self(key))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A database URL. Its `Debug` hides the password a PostgreSQL URL may carry.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    // Cannot fail: a URL with a password has a host.
                    let _ = url.set_password(Some("<redacted>"));
                }
                // Query parameters may carry a password too (`?password=`).
                if url
                    .query()
                    .is_some_and(|q| q.to_ascii_lowercase().contains("pass"))
                {
                    url.set_query(Some("<redacted>"));
                }
                write!(f, "DatabaseUrl({:?})", url.as_str())
            }
            Err(_) => f.write_str("DatabaseUrl(<unparsable, redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("hunter2-correct-horse".to_owned());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "hunter2-correct-horse");
    }

    #[test]
    fn deserialises_transparently_and_serialises_only_on_purpose() {
        #[derive(Deserialize, Serialize)]
        struct Body {
            #[serde(serialize_with = "serde_exposed::serialize")]
            password: Secret<String>,
            #[serde(serialize_with = "serde_exposed::option::serialize")]
            token: Option<Secret<String>>,
        }
        let b: Body = serde_json::from_str(r#"{"password": "pw", "token": "t"}"#).unwrap();
        assert_eq!(b.password.expose(), "pw");
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"password":"pw","token":"t"}"#
        );
    }

    /// The values that carry a new secret out: `Debug` hides it, the JSON
    /// of the one response that creates it still holds it.
    #[test]
    fn new_tokens_and_client_secrets_hide_their_secret_from_debug() {
        use crate::domain::{
            PrincipalKind, TokenKind, TokenStatus, clock,
            principals::NewSecret,
            tokens::{Owner, TokenView},
        };
        let token = "eyJhbGciOiJFUzI1NiJ9.secret-claims.secret-signature";
        let view = TokenView {
            id: uuid::Uuid::nil(),
            jti: "jti".into(),
            name: "ci".into(),
            description: String::new(),
            kind: TokenKind::Personal,
            owner: Owner {
                id: uuid::Uuid::nil(),
                username: "alice".into(),
                kind: PrincipalKind::User,
            },
            scopes: vec!["profile".into()],
            status: TokenStatus::Active,
            created_at: clock::now(),
            created_by: None,
            expires_at: clock::now(),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            revoked_by: None,
            replaced_by: None,
            audience: None,
            hint: Some("ture".into()),
            token: Some(Secret::new(token.to_owned())),
        };
        assert!(!format!("{view:?}").contains("secret-claims"));
        assert_eq!(serde_json::to_value(&view).unwrap()["token"], token);
        assert_eq!(view.exposed_token(), token);

        let created = NewSecret {
            id: uuid::Uuid::nil(),
            client_secret: Secret::new("tsc_very-secret-value".to_owned()),
            hint: "tsc_very…alue".into(),
            created_at: clock::now(),
            expires_at: None,
        };
        assert!(!format!("{created:?}").contains("very-secret"));
        assert_eq!(
            serde_json::to_value(&created).unwrap()["client_secret"],
            "tsc_very-secret-value"
        );
    }
}
