//! Helpers shared by several admin areas.

use crate::{
    domain,
    web::{fields::FieldErrors, page::FormData},
};

/// A domain error the admin fixes by changing the form (re-rendered with the
/// message) rather than an error page.
pub(super) fn is_user_error(e: &domain::Error) -> bool {
    matches!(
        e,
        domain::Error::Invalid { .. } | domain::Error::Conflict(_)
    )
}

/// What the machine-token form holds: empty for a fresh form.
pub struct TokenForm {
    pub errors: FieldErrors,
    pub name: String,
    pub audience: String,
    /// The scopes ticked; `None` ticks every scope offered.
    pub scopes: Option<Vec<String>>,
    pub lifetime: String,
    pub expires_on: String,
    pub nonce: String,
}

impl Default for TokenForm {
    fn default() -> Self {
        Self {
            errors: FieldErrors::default(),
            name: String::new(),
            audience: String::new(),
            scopes: None,
            lifetime: "30".into(),
            expires_on: String::new(),
            nonce: String::new(),
        }
    }
}

impl TokenForm {
    pub fn refused(form: &FormData, e: &domain::Error) -> Self {
        Self {
            errors: FieldErrors::from_domain(e, "name"),
            name: form.get("name").unwrap_or("").to_owned(),
            audience: form.get("audience").unwrap_or("").to_owned(),
            scopes: Some(form.all("scopes")),
            lifetime: form.get("lifetime").unwrap_or("").to_owned(),
            expires_on: form.get("expires_on").unwrap_or("").to_owned(),
            nonce: form.get("nonce").unwrap_or("").to_owned(),
        }
    }
}
