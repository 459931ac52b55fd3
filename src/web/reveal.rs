//! POST → 303 → GET for every form that creates something, and the one page
//! that shows a new secret once.
//!
//! A create form carries a one-time nonce (`nonce_field`); its handler calls
//! `claim` first (a resubmission is answered without creating anything),
//! `release` when it refuses the input, and ends with `done` (303 to what was
//! made) or `reveal` (303 to `/shown/{nonce}`, which opens the sealed secret
//! once: Reload and Back find it gone). Nothing secret is in a URL or cookie.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::{
    page::{FormData, Layout, render, see_other},
    session::SignedIn,
};
use crate::{
    domain::reveals::{self, Claim, Shown},
    http::errors::WebError,
    secret::Secret,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/shown/{nonce}", web::get().to(show));
}

/// A fresh nonce for a create form shown to `me`.
pub async fn nonce(state: &AppState, me: &SignedIn) -> Result<String, WebError> {
    Ok(reveals::issue(&state.db, &me.session.key).await?)
}

/// Claims the form's nonce. `Some(response)` means the form was sent before:
/// answer with it and create nothing.
pub async fn claim(
    state: &AppState,
    me: &SignedIn,
    form: &FormData,
) -> Result<Option<HttpResponse>, WebError> {
    let Some(nonce) = form.text("nonce") else {
        return Err(stale());
    };
    match reveals::claim(&state.db, &me.session.key, nonce).await? {
        Claim::Fresh => Ok(None),
        // Sent twice before the first answer arrived (a double click, Back and
        // Reload): the browser shows this answer, so it leads to the secret.
        Claim::Done { unseen: true, .. } => Ok(Some(see_other(&format!("/shown/{nonce}")))),
        Claim::Done { done_url, .. } => {
            Ok(Some(see_other(&with_notice(&done_url, "already-sent"))))
        }
        Claim::Busy => Err(WebError::Domain(crate::domain::Error::conflict(
            "This form was already sent and is still being handled, or failed. Open the list in a moment to see whether it made anything.",
        ))),
        Claim::Unknown => Err(stale()),
    }
}

fn stale() -> WebError {
    WebError::BadRequest(
        "This form is out of date (it was opened in an earlier sign-in, or long ago). Open it again and send it once more."
            .into(),
    )
}

/// The form was refused and made nothing: its nonce may be sent again.
pub async fn release(state: &AppState, me: &SignedIn, form: &FormData) -> Result<(), WebError> {
    if let Some(nonce) = form.text("nonce") {
        reveals::release(&state.db, &me.session.key, nonce).await?;
    }
    Ok(())
}

/// `result` of the form's action: on a refusal the nonce is freed (nothing
/// was made, so the corrected form may be sent again).
pub async fn unless_refused<T, E: Into<WebError>>(
    state: &AppState,
    me: &SignedIn,
    form: &FormData,
    result: Result<T, E>,
) -> Result<T, WebError> {
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            release(state, me, form).await?;
            Err(e.into())
        }
    }
}

/// Records what the form made and answers 303 to it.
pub async fn done(
    state: &AppState,
    me: &SignedIn,
    form: &FormData,
    done_url: &str,
    notice: &str,
) -> Result<HttpResponse, WebError> {
    let nonce = form.text("nonce").unwrap_or("");
    reveals::finish(
        &state.db,
        &state.master,
        &me.session.key,
        nonce,
        done_url,
        None,
    )
    .await?;
    Ok(see_other(&with_notice(done_url, notice)))
}

/// What the shown-once page says around the secret (nothing secret).
#[derive(Serialize, Deserialize, Default)]
pub struct Reveal {
    pub title: String,
    /// "personal access token", "client secret"…
    pub what: String,
    pub facts: Vec<(String, String)>,
    /// Where what was made lives; the "Done" button goes there.
    pub done_url: String,
    pub done_label: String,
    /// The menu entry to highlight.
    pub section: String,
    /// The page of what was made, when it is not `done_url`.
    #[serde(default)]
    pub item_url: Option<String>,
    /// Optional lines shown under the facts, e.g. a curl example.
    #[serde(default)]
    pub example: Option<String>,
}

/// Keeps `secret` sealed for one showing and answers 303 to the page that
/// shows it.
pub async fn reveal(
    state: &AppState,
    me: &SignedIn,
    form: &FormData,
    page: Reveal,
    secret: Secret<String>,
) -> Result<HttpResponse, WebError> {
    let nonce = form.text("nonce").unwrap_or("");
    let json = serde_json::to_string(&page)
        .map_err(|e| WebError::Domain(crate::domain::Error::Internal(e.into())))?;
    reveals::finish(
        &state.db,
        &state.master,
        &me.session.key,
        nonce,
        &page.done_url,
        Some((json, &secret)),
    )
    .await?;
    Ok(see_other(&format!("/shown/{nonce}")))
}

fn with_notice(url: &str, notice: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}notice={notice}")
}

fn section(name: &str) -> &'static str {
    match name {
        "tokens" => "tokens",
        "machine-users" => "machine-users",
        "users" => "users",
        "webhooks" => "webhooks",
        "all-tokens" => "all-tokens",
        _ => "",
    }
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    l: Layout,
    p: Reveal,
    /// `None` once shown.
    secret: Option<String>,
}

async fn show(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    match reveals::take(&state.db, &state.master, &me.session.key, &path).await? {
        Shown::Now { page, secret } => {
            let p: Reveal = serde_json::from_str(&page).unwrap_or_default();
            render(&SecretPage {
                l: Layout::new(&me, section(&p.section)),
                p,
                secret: Some(secret.into_exposed()),
            })
        }
        Shown::Gone { page, done_url } => {
            let mut p: Reveal = page
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default();
            if p.done_url.is_empty() {
                p.done_url = done_url.unwrap_or_else(|| "/".into());
                p.done_label = "Continue".into();
            }
            if p.what.is_empty() {
                p.what = "secret".into();
            }
            render(&SecretPage {
                l: Layout::new(&me, section(&p.section)),
                p,
                secret: None,
            })
        }
        Shown::Unknown => Err(WebError::NotFound),
    }
}
