//! The frame every HTML page shares (who is signed in, the sign-out form's
//! CSRF token, a notice) and the error page, so the one error mapping
//! (`errors`) can render it. The web pages build on these (`crate::web`).

use actix_web::{HttpResponse, http::StatusCode, http::header};
use askama::Template;

/// What every page's frame needs: who is signed in, the CSRF token for the
/// sign-out form, and a one-line notice after an action.
#[derive(Default)]
pub struct Layout {
    pub user: Option<NavUser>,
    pub csrf: String,
    pub notice: Option<&'static str>,
    pub section: &'static str,
    /// A token or client secret of this person (or of a machine user they
    /// look after) was reported leaked in the last 7 days.
    pub leak_alert: bool,
    /// "2 tokens expire within 7 days…" while something of theirs does (§9).
    pub expiring: Option<String>,
}

pub struct NavUser {
    pub username: String,
    pub is_admin: bool,
    /// Manages at least one machine user.
    pub manages: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    l: Layout,
    title: &'a str,
    message: &'a str,
}

/// What an error page said, kept on the response so that the web layer
/// (which knows the session) can draw it again inside the signed-in frame.
#[derive(Clone)]
pub struct ErrorShown {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

/// The HTML error page (used by `WebError`), without navigation.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    framed_error_page(Layout::default(), status, title, message)
}

/// The error page inside a frame: the navigation and sign-out button when
/// `l` has a user.
pub fn framed_error_page(
    l: Layout,
    status: StatusCode,
    title: &str,
    message: &str,
) -> HttpResponse {
    let page = ErrorPage { l, title, message };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("{title}: the error page could not be rendered"));
    html_response(status, body)
}

pub fn html_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(body)
}
