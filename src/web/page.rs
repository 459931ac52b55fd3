//! What every page handler shares: the frame for a signed-in person, rendering,
//! redirects, form and query parsing, and how times are shown.

use actix_web::{HttpResponse, http::StatusCode, http::header};
use askama::Template;
use time::OffsetDateTime;

use super::session::SignedIn;
pub use crate::http::page::Layout;
use crate::{
    domain::clock,
    http::{
        errors::WebError,
        page::{NavUser, html_response},
    },
};

impl Layout {
    pub fn new(me: &SignedIn, section: &'static str) -> Self {
        Self {
            user: Some(NavUser {
                username: me.session.principal.username.clone(),
                is_admin: me.session.is_admin(),
                manages: me.manages,
            }),
            csrf: me.session.csrf_token.clone(),
            notice: None,
            section,
            leak_alert: me.leak_alert,
            expiring: me.expiring.clone(),
        }
    }

    pub fn with_notice(mut self, code: Option<&str>) -> Self {
        self.notice = code.and_then(notice_text);
        self
    }
}

/// Notices shown after a redirect, chosen from a fixed list so nothing a
/// visitor puts in the URL is echoed.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "revoked" => "The token was revoked. It stops working at once.",
        "created" => "Created.",
        "already-sent" => {
            "That form was already sent, so nothing new was made. This is what it made."
        }
        "updated" => "Saved.",
        "unsaved" => {
            "You were signed out, so what you sent was not saved. Sign in, and send it again."
        }
        "already-regenerated" => {
            "That token was regenerated already: this is its replacement. Regenerate this one for a new value."
        }
        "deleted" => "Deleted.",
        "secret-removed" => "The client secret was removed. It stops working at once.",
        "rotated" => {
            "A new signing key is active. Older keys keep verifying until their tokens expire."
        }
        "key-published" => {
            "A new signing key is published in the JWKS; it starts signing at the time shown."
        }
        "password" => "The password was changed; the user's browser sessions were ended.",
        "role-admin" => "They are now an administrator.",
        "role-user" => "They are no longer an administrator.",
        "enabled" => "The account is enabled: they can sign in again.",
        "disabled" => {
            "The account is disabled: they were signed out and their tokens stopped working."
        }
        "signed-out" => "You have signed out.",
        "email-saved" => "Your e-mail address was saved.",
        "email-removed" => "Your e-mail address was removed.",
        "pinged" => "A ping is on its way; its delivery shows below in a moment.",
        _ => return None,
    })
}

/// Renders a page with status 200.
pub fn render(t: &impl Template) -> Result<HttpResponse, WebError> {
    render_status(StatusCode::OK, t)
}

pub fn render_status(status: StatusCode, t: &impl Template) -> Result<HttpResponse, WebError> {
    let body = t
        .render()
        .map_err(|e| WebError::Domain(crate::domain::Error::Internal(e.into())))?;
    Ok(html_response(status, body))
}

/// 303 See Other to `to` (after a successful POST).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A form body (`application/x-www-form-urlencoded`), keeping repeated keys
/// (checkboxes) in order.
pub struct FormData(Vec<(String, String)>);

/// The fields a form may send more than once: lists of checkboxes.
const LISTS: [&str; 2] = ["scopes", "events"];

impl FormData {
    /// A form as a browser posts it: `application/x-www-form-urlencoded`,
    /// read as every body is ([`crate::http::body`]), then [`Self::parse`]d.
    pub fn posted(
        req: &actix_web::HttpRequest,
        body: crate::http::body::Body,
    ) -> Result<Self, WebError> {
        use crate::http::body::BodyError;
        let body = body.0.map_err(|e| match e {
            BodyError::TooLarge => WebError::PayloadTooLarge,
            BodyError::TimedOut => WebError::RequestTimeout,
            BodyError::Unreadable => {
                WebError::BadRequest("The form could not be read: it ended early.".into())
            }
        })?;
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        if !essence.is_some_and(|e| e.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
            return Err(WebError::UnsupportedMediaType);
        }
        Self::parse(&body)
    }

    /// Form-urlencoded pairs, strictly: every name and value UTF-8 once
    /// decoded (not replaced with U+FFFD), no NUL anywhere (PostgreSQL
    /// rejects it), and no field twice but the lists of checkboxes.
    pub fn parse(body: &[u8]) -> Result<Self, WebError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let key = decoded(key)
                .ok_or_else(|| WebError::BadRequest("A field name is not valid UTF-8.".into()))?;
            let value = decoded(value).ok_or_else(|| {
                WebError::BadRequest(format!("{} is not valid UTF-8 text.", field(&key)))
            })?;
            if key.contains('\0') || value.contains('\0') {
                return Err(WebError::BadRequest(format!(
                    "{} contains a NUL character, which no field may hold.",
                    field(&key)
                )));
            }
            if !LISTS.contains(&key.as_str()) && !seen.insert(key.clone()) {
                return Err(WebError::BadRequest(format!(
                    "{} was sent more than once.",
                    field(&key)
                )));
            }
            pairs.push((key, value));
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, trimmed; `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// "The field “name”" when `key` looks like a field name, else "A field": a
/// page never repeats arbitrary text from a URL, which anyone could craft to
/// put their words on this site.
fn field(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 32
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if plain {
        format!("The field “{key}”")
    } else {
        "A field".to_owned()
    }
}

/// One form-urlencoded name or value (`+` is a space), or `None` when its
/// bytes are not UTF-8.
fn decoded(raw: &[u8]) -> Option<String> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The status of a page: 400 when it is shown again with a refused form's
/// error, 200 otherwise.
pub fn refused_if<E>(error: &Option<E>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// A query string, for filters.
pub fn query(req: &actix_web::HttpRequest) -> Result<FormData, WebError> {
    FormData::parse(req.query_string().as_bytes())
}

pub fn parse_id(raw: &str) -> Result<uuid::Uuid, WebError> {
    uuid::Uuid::parse_str(raw).map_err(|_| WebError::NotFound)
}

/// `2026-11-22 17:05 UTC`.
pub fn fmt_time(t: OffsetDateTime) -> String {
    // Stored times are UTC already; never panic on one that is not.
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

pub fn fmt_opt(t: Option<OffsetDateTime>) -> String {
    t.map(fmt_time).unwrap_or_else(|| "never".to_owned())
}

pub fn relative(t: OffsetDateTime) -> String {
    crate::domain::sessions::relative(t, clock::now())
}

/// How long ago a past moment was. A moment stored a hair later than this
/// request's clock reads "just now", never "in less than a minute".
pub fn ago(t: OffsetDateTime) -> String {
    let now = clock::now();
    crate::domain::sessions::relative(t.min(now), now)
}

/// A link to the next page of a list, keeping the other query parameters.
pub fn next_link(path: &str, params: &[(&str, &str)], cursor: Option<&String>) -> Option<String> {
    let cursor = cursor?;
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if !v.is_empty() {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair("cursor", cursor);
    Some(format!("{path}?{}", ser.finish()))
}
