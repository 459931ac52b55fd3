//! Secrets Tessera generates, and their digests. The plaintext and the digest
//! are different types; only the digest is stored, and neither `Debug` prints
//! a secret.

use std::fmt;

use aws_lc_rs::{constant_time, digest, rand};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// A freshly generated secret, shown to its owner exactly once.
pub struct PlainSecret(String);

impl PlainSecret {
    /// `prefix` + 256 random bits, base64url. The prefixes (`tsc_` for client
    /// secrets) let secret scanners recognise a leak; never change them.
    pub fn generate(prefix: &str) -> Self {
        Self(format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        ))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
    }

    /// `tsc_DEBK…xQgw`: the prefix and four characters at each end of the
    /// random part. 8 of its 43 characters leave 208 random bits unknown, so
    /// the hint tells secrets apart but cannot be used to guess one.
    pub fn hint(&self, prefix: &str) -> String {
        let random = self.0.strip_prefix(prefix).unwrap_or(&self.0);
        format!("{prefix}{}…{}", head(random, 4), tail(random, 4))
    }
}

/// A JWT's hint: `…xQgw`, its last four characters. They belong to the
/// signature, which says nothing about the header and claims and cannot
/// be completed from four characters.
pub fn token_hint(jwt: &str) -> String {
    format!("…{}", tail(jwt, 4))
}

fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn tail(s: &str, n: usize) -> &str {
    // From the end: a JWT is long, and this runs for every token issued.
    s.char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(s, |(i, _)| &s[i..])
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret(<redacted>)")
    }
}

/// SHA-256 of a high-entropy secret (client secret, token, session id).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(secret: &str) -> Self {
        let d = digest::digest(&digest::SHA256, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    pub fn to_hex(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Constant-time comparison with a stored hex digest.
    pub fn matches_hex(&self, stored: &str) -> bool {
        constant_time::verify_slices_are_equal(self.to_hex().as_bytes(), stored.as_bytes()).is_ok()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}…)", &self.to_hex()[..8])
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    rand::generate(&rand::SystemRandom::new())
        .expect("the system RNG is available")
        .expose()
}

/// A random URL-safe string (CSRF tokens, setup codes, session ids).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_carry_256_bits_and_their_prefix() {
        let s = PlainSecret::generate("tsc_");
        assert!(s.expose().starts_with("tsc_"));
        assert_eq!(s.expose().len(), 4 + 43);
        assert_ne!(s.expose(), PlainSecret::generate("tsc_").expose());
    }

    #[test]
    fn digests_match_only_their_secret() {
        let s = PlainSecret::generate("tsc_");
        let stored = s.digest().to_hex();
        assert!(Digest::of(s.expose()).matches_hex(&stored));
        assert!(!Digest::of("something else").matches_hex(&stored));
        assert!(!format!("{:?}", s).contains(s.expose()));
    }

    #[test]
    fn hints_show_a_few_characters_from_each_end() {
        let s = PlainSecret::generate("tsc_");
        let secret = s.expose();
        let hint = s.hint("tsc_");
        assert_eq!(hint.chars().count(), 4 + 4 + 1 + 4);
        assert!(hint.starts_with(&secret[..8]), "{hint} / {secret}");
        assert!(hint.ends_with(&secret[secret.len() - 4..]));
        assert_eq!(token_hint("aaa.bbb.cdefgh"), "…efgh");
        assert_eq!(token_hint("ab"), "…ab");
        assert_eq!(head("ab", 4), "ab");
    }
}
