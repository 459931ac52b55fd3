//! The audit log, filtered by actor, action and days.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::Date;

use crate::{
    domain::{self, PageRequest, audit},
    http::errors::WebError,
    state::AppState,
    web::{
        page::{Layout, fmt_time, next_link, query, render},
        session::SignedIn,
    },
};

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub details: String,
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
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
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
            .map(|e| AuditRow {
                at: fmt_time(e.at),
                actor: e
                    .actor
                    .as_ref()
                    .map(|a| a.username.clone())
                    .unwrap_or_else(|| "system".into()),
                action: e.action.clone(),
                target: format!(
                    "{} {}",
                    e.target_type,
                    e.target_id.clone().unwrap_or_default()
                ),
                ip: e.ip.clone().unwrap_or_default(),
                details: if e.details.as_object().is_some_and(|m| m.is_empty()) {
                    String::new()
                } else {
                    e.details.to_string()
                },
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
