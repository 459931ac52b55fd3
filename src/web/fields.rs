//! Form errors shown next to their field, in plain words. The domain names
//! the field it refuses (`domain::Error::Invalid`); a form re-rendered with
//! these keeps what was typed and marks the field.

use crate::domain;

/// The refusals of one form: per field, and any that concern no one field.
#[derive(Default)]
pub struct FieldErrors {
    fields: Vec<(&'static str, String)>,
    /// A refusal about the form as a whole (e.g. "robot is disabled").
    pub other: Option<String>,
}

impl FieldErrors {
    /// `conflict_field` is the field a duplicate is about (a token's name,
    /// a username): a conflict is shown there.
    pub fn from_domain(e: &domain::Error, conflict_field: &'static str) -> Self {
        let mut out = Self::default();
        match e {
            domain::Error::Invalid { field, message } => {
                let field = form_field(field);
                out.fields.push((field, plain(field, message)));
            }
            domain::Error::Conflict(message) if is_duplicate(message) => {
                out.fields.push((conflict_field, duplicate(conflict_field)));
            }
            // Such messages may start with a username: left as they are.
            other => out.other = Some(other.to_string()),
        }
        out
    }

    /// One field's refusal, for the template: `errors.get("name")`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.other.is_none()
    }
}

/// The domain's field names as the forms name their inputs.
fn form_field(field: &'static str) -> &'static str {
    match field {
        "expires_in_seconds" | "expires_at" | "expiry date" => "lifetime",
        "role" => "role",
        other => other,
    }
}

fn is_duplicate(message: &str) -> bool {
    message.contains("already taken") || message.contains("with this name exists")
}

fn duplicate(field: &str) -> String {
    match field {
        "name" => "An active token of this owner already has this name: choose another name, or revoke that token first.".into(),
        _ => "This username is taken: choose another one.".into(),
    }
}

/// "must be …" reads as "The name must be …."; anything else is made a sentence.
fn plain(field: &str, message: &str) -> String {
    match field {
        "username" if message.starts_with("must be") => {
            return "Use 3 to 64 characters: lowercase letters, digits, hyphens (-), underscores (_) and dots (.), starting with a letter or digit.".into();
        }
        "email" | "contact_email" if message.starts_with("must be") => {
            return "That is not an e-mail address: it should look like name@example.com.".into();
        }
        "lifetime" if message.starts_with("lifetime must be from 1 minute to ") => {
            let max = message.trim_start_matches("lifetime must be from 1 minute to ");
            return format!(
                "A token must live at least 1 minute and at most {max}: choose a lifetime in that range, or a date in the future no more than {max} away.",
                max = long_duration(max)
            );
        }
        _ => {}
    }
    if message.starts_with("must ") || message.starts_with("is ") || message.starts_with("may ") {
        let label = match field {
            "name" => "The name",
            "username" => "The username",
            "password" => "The password",
            "email" | "contact_email" => "The e-mail address",
            "display_name" => "The display name",
            "description" => "The description",
            "audience" => "The API",
            "scopes" => "The scopes",
            "lifetime" => "The date",
            _ => "This",
        };
        sentence(&format!("{label} {message}"))
    } else {
        sentence(message)
    }
}

/// `365d` → `365 days` (the domain's compact durations, in words).
fn long_duration(compact: &str) -> String {
    let (n, unit) = compact.split_at(compact.len().saturating_sub(1));
    let unit = match unit {
        "w" => "week",
        "d" => "day",
        "h" => "hour",
        "m" => "minute",
        _ => return compact.to_owned(),
    };
    let plural = if n == "1" { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

/// A capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect::<String>(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences_next_to_their_field() {
        let e = domain::Error::invalid("expires_at", "lifetime must be from 1 minute to 365d");
        let f = FieldErrors::from_domain(&e, "name");
        assert_eq!(
            f.get("lifetime"),
            Some(
                "A token must live at least 1 minute and at most 365 days: choose a lifetime in that range, or a date in the future no more than 365 days away."
            )
        );
        assert_eq!(long_duration("1w"), "1 week");
        assert_eq!(long_duration("12h"), "12 hours");
        let e = domain::Error::invalid("scopes", "choose at least one scope");
        let f = FieldErrors::from_domain(&e, "name");
        assert_eq!(f.get("scopes"), Some("Choose at least one scope."));
        let e = domain::Error::conflict("an active token with this name exists");
        assert!(FieldErrors::from_domain(&e, "name").get("name").is_some());
        let e = domain::Error::conflict("robot is disabled");
        let f = FieldErrors::from_domain(&e, "name");
        assert_eq!(f.other.as_deref(), Some("robot is disabled"));
    }
}
