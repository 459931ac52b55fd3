//! The audit log, filtered by actor, action and days.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::Date;

use crate::web::guard::Admin;
use crate::{
    domain::{self, PageRequest, audit},
    http::errors::WebError,
    state::AppState,
    web::page::{Layout, next_link, query, render},
};

pub struct AuditRow {
    pub at: String,
    /// RFC 3339, for the local-time enhancement.
    pub at_iso: String,
    pub actor: String,
    /// A link to the actor's other events, when there is an actor.
    pub actor_link: String,
    pub action: String,
    pub action_text: &'static str,
    pub target: String,
    pub target_link: String,
    pub ip: String,
    pub details: String,
}

/// `2026-11-22 17:05:03 UTC`.
pub fn fmt_seconds(t: time::OffsetDateTime) -> String {
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An action in words.
pub fn describe_action(action: &str) -> &'static str {
    match action {
        "session.login" => "signed in",
        "session.login_failed" => "failed to sign in",
        "session.logout" => "signed out",
        "user.create" => "created a user",
        "user.update" => "changed a user",
        "token.create" => "created a token",
        "token.regenerate" => "regenerated a token",
        "token.revoke" => "revoked a token",
        "machine_user.create" => "created a machine user",
        "machine_user.update" => "changed a machine user",
        "machine_user.delete" => "deleted a machine user",
        "client_secret.create" => "made a client secret",
        "client_secret.delete" => "removed a client secret",
        "scope.create" => "registered a scope",
        "scope.update" => "changed a scope",
        "scope.delete" => "deleted a scope",
        "key.rotate" => "rotated the signing key",
        _ => "",
    }
}

/// The details object as `name: laptop · kind: personal`, never raw JSON.
fn describe_details(details: &serde_json::Value) -> String {
    use serde_json::Value;
    let Value::Object(map) = details else {
        return match details {
            Value::Null => String::new(),
            other => other.to_string(),
        };
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" "),
                Value::Object(_) => describe_details(v),
                other => other.to_string(),
            };
            format!("{}: {v}", k.replace('_', " "))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// What the event was about, in words, and where it lives.
fn target_of(e: &audit::AuditEvent) -> (String, String) {
    let id = e.target_id.clone().unwrap_or_default();
    let name = ["name", "username"]
        .iter()
        .find_map(|k| e.details.get(*k).and_then(|v| v.as_str()))
        .map(str::to_owned);
    let (what, link) = match e.target_type.as_str() {
        "token" => ("token", format!("/admin/tokens/{id}")),
        "user" => ("user", format!("/admin/users/{id}")),
        "machine_user" => ("machine user", format!("/admin/machine-users/{id}")),
        "scope" => ("scope", "/admin/scopes".to_owned()),
        "signing_key" => ("signing key", "/admin/keys".to_owned()),
        other => (other, String::new()),
    };
    let label = match name {
        Some(n) => format!("{what} “{n}”"),
        None if id.is_empty() => what.to_owned(),
        None => format!("{what} {}", id.get(..8).unwrap_or(&id)),
    };
    let link = if id.is_empty() && link.contains("/admin/tokens/") {
        String::new()
    } else {
        link
    };
    (label, link)
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    l: Layout,
    rows: Vec<AuditRow>,
    actor: String,
    action: String,
    since: String,
    until: String,
    next: Option<String>,
}

/// A `YYYY-MM-DD` day in years 1 to 9999 (a signed year such as `-4800`
/// parses, but PostgreSQL cannot compare a timestamp that far back: a 500).
fn parse_day(raw: Option<&str>, field: &'static str) -> Result<Option<Date>, WebError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    raw.map(|r| {
        Date::parse(r, &fmt)
            .ok()
            .filter(|d| (1..=9999).contains(&d.year()))
            .ok_or_else(|| {
                WebError::Domain(domain::Error::invalid(
                    field,
                    "is not a date (YYYY-MM-DD, years 1 to 9999)",
                ))
            })
    })
    .transpose()
}

pub(super) async fn audit_page(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let q = query(&req)?;
    let since = parse_day(q.text("since"), "since")?;
    let until = parse_day(q.text("until"), "until")?;
    let filter = audit::AuditFilter {
        actor: q.text("actor").map(str::to_owned),
        action: q.text("action").map(str::to_owned),
        since: since.map(|d| d.midnight().assume_utc()),
        // "until" includes the whole day.
        until: until.map(|d| d.with_time(time::macros::time!(23:59:59)).assume_utc()),
    };
    let page = PageRequest::parse(Some("50"), q.text("cursor"))?;
    let found = audit::list(&state.db.read, &filter, page).await?;
    let actor = q.text("actor").unwrap_or("").to_owned();
    let action = q.text("action").unwrap_or("").to_owned();
    let since_s = q.text("since").unwrap_or("").to_owned();
    let until_s = q.text("until").unwrap_or("").to_owned();
    render(&AuditPage {
        l: Layout::new(&me, "audit"),
        rows: found
            .items
            .iter()
            .map(|e| {
                let (target, target_link) = target_of(e);
                AuditRow {
                    at: fmt_seconds(e.at),
                    at_iso: e
                        .at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    actor: e
                        .actor
                        .as_ref()
                        .map(|a| a.username.clone())
                        // No one signed in: a failed sign-in, or the command line.
                        .unwrap_or_else(|| {
                            if e.action.starts_with("session.") {
                                "not signed in".into()
                            } else {
                                "command line".into()
                            }
                        }),
                    actor_link: e
                        .actor
                        .as_ref()
                        .map(|a| {
                            form_urlencoded::Serializer::new(String::from("/admin/audit?"))
                                .append_pair("actor", &a.username)
                                .finish()
                        })
                        .unwrap_or_default(),
                    action: e.action.clone(),
                    action_text: describe_action(&e.action),
                    target,
                    target_link,
                    ip: e.ip.clone().unwrap_or_default(),
                    details: describe_details(&e.details),
                }
            })
            .collect(),
        next: next_link(
            "/admin/audit",
            &[
                ("actor", &actor),
                ("action", &action),
                ("since", &since_s),
                ("until", &until_s),
            ],
            found.next_cursor.as_ref(),
        ),
        actor,
        action,
        since: since_s,
        until: until_s,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Audit filter dates: a day in years 1 to 9999, or a message naming
        /// the field; "until" then reaches the day's last second without overflow.
        #[test]
        fn any_day_text_is_a_day_or_names_its_field(raw in "-?[0-9]{0,6}-[0-9]{0,3}-[0-9]{0,3}|.{0,12}") {
            match parse_day(Some(&raw), "until") {
                Ok(Some(d)) => {
                    prop_assert!((1..=9999).contains(&d.year()));
                    let _ = d.with_time(time::macros::time!(23:59:59)).assume_utc();
                }
                Ok(None) => prop_assert!(false, "a value was given"),
                Err(e) => prop_assert!(e.message().starts_with("until"), "{}", e.message()),
            }
        }
    }
}
