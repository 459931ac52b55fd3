//! Newtypes and closed enums that carry the rules of INTERFACE.md §3, parsed
//! once at the edge so the rest of the code never re-checks a string.

use std::{collections::BTreeSet, fmt};

use serde::Serialize;

use super::error::Error;
pub use crate::kinds::{AuthMethod, PrincipalKind, Role, TokenKind, TokenStatus};

/// 3–64 characters of `[a-z0-9._-]`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok_len = (3..=64).contains(&raw.len());
        let ok_first = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::invalid(
                "username",
                "must be 3–64 characters of lowercase letters, digits, '-', '_' and '.', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err(Error::invalid("role", "must be \"admin\" or \"user\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

impl TokenKind {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "personal" => Ok(Self::Personal),
            "machine" => Ok(Self::Machine),
            "client_credentials" => Ok(Self::ClientCredentials),
            _ => Err(Error::invalid(
                "kind",
                "must be personal, machine or client_credentials",
            )),
        }
    }
}

impl TokenStatus {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "active" => Ok(Self::Active),
            "expired" => Ok(Self::Expired),
            "revoked" => Ok(Self::Revoked),
            _ => Err(Error::invalid(
                "status",
                "must be active, expired or revoked",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

pub const BUILTIN_SCOPES: [&str; 6] = [
    "profile",
    "tokens:read",
    "tokens:write",
    "admin:read",
    "admin:write",
    "introspect",
];

/// A scope name: `[a-z0-9:._-]`, 1–64 characters.
pub fn valid_scope_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '.' | '_' | '-')
        })
}

pub fn is_admin_scope(name: &str) -> bool {
    name.starts_with("admin:")
}

/// A set of scope names, kept sorted so it prints the same way every time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// From a space-separated string as stored and as in the `scope` claim.
    pub fn from_stored(raw: &str) -> Self {
        Self(raw.split_ascii_whitespace().map(str::to_owned).collect())
    }

    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn retain(&mut self, keep: impl FnMut(&String) -> bool) {
        self.0.retain(keep);
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    /// As one space-separated string, the `scope` of RFC 6749 §3.3, written
    /// straight into the output: `#[serde(serialize_with = "ScopeSet::spaced")]`.
    pub fn spaced<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

/// A list of names, as `/me` shows them.
impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.0)
    }
}

/// A token's name: 1–100 characters, no control characters.
pub fn parse_token_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be 1–100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A description: at most 500 characters, on several lines if need be, but
/// no other control character (an escape sequence would reach every
/// terminal and page that shows it).
pub fn parse_description(raw: Option<&str>, field: &'static str) -> Result<String, Error> {
    let text = raw.unwrap_or("").trim();
    if text.chars().count() > 500 {
        return Err(Error::invalid(field, "must be at most 500 characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_shared_namespace_rules() {
        for ok in ["abc", "a.b-c_d", "0day", &"a".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            "ab",
            "Abc",
            "-abc",
            ".abc",
            "a b",
            "abc!",
            "ümlaut",
            &"a".repeat(65),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn scope_sets_print_sorted_and_space_separated() {
        let set = ScopeSet::from_stored("tokens:read profile  profile");
        assert_eq!(set.to_string(), "profile tokens:read");
    }

    #[test]
    fn scope_names_are_checked() {
        assert!(valid_scope_name("orders:read"));
        assert!(!valid_scope_name("Orders"));
        assert!(!valid_scope_name(""));
        assert!(!valid_scope_name("a b"));
    }

    #[test]
    fn descriptions_keep_line_breaks_but_no_other_control_character() {
        assert_eq!(
            parse_description(Some(" first line\r\n\tsecond "), "d").unwrap(),
            "first line\r\n\tsecond"
        );
        for bad in ["\u{1b}[31mred", "a\u{0}b", "bell\u{7}", "del\u{7f}"] {
            assert!(parse_description(Some(bad), "d").is_err(), "{bad:?}");
        }
    }
}
