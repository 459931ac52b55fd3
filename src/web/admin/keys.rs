//! Signing keys: the list and rotation.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::{self, signing_keys},
    http::errors::WebError,
    state::AppState,
    web::page::{Layout, fmt_opt, fmt_time, query, render, see_other},
};

pub struct KeyRow {
    pub kid: String,
    pub alg: &'static str,
    pub active: bool,
    /// `active`, `next` or `retired`.
    pub state: &'static str,
    /// For a `next` key: when it starts signing.
    pub signs_from: String,
    pub created: String,
    pub retired: String,
    pub retires_after: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    l: Layout,
    rows: Vec<KeyRow>,
    alg: &'static str,
}

pub(super) async fn keys_page(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    signing_keys::promote_due(&state.db).await?;
    let rows = signing_keys::list(&state.db.read)
        .await
        .map_err(domain::Error::unexpected)?
        .into_iter()
        .map(|k| KeyRow {
            kid: k.kid,
            alg: k.alg.as_str(),
            active: k.state == signing_keys::KeyState::Active,
            state: k.state.as_str(),
            signs_from: k.activates_at.map(fmt_time).unwrap_or_default(),
            created: fmt_time(k.created_at),
            retired: fmt_opt(k.retired_at),
            retires_after: k.retires_after.map(fmt_time).unwrap_or_default(),
        })
        .collect();
    render(&KeysPage {
        l: Layout::new(&me, "keys").with_notice(query(&req)?.get("notice")),
        rows,
        alg: state.settings.signing_alg.as_str(),
    })
}

pub(super) async fn keys_rotate(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    // "" signs at once; otherwise how long the new key is published first.
    let publish_for = match form.text("publish_for") {
        None => None,
        Some(raw) => Some(
            raw.parse::<crate::duration::Dur>()
                .map_err(|e| domain::Error::invalid("publish for", e))?,
        ),
    };
    let rotated = signing_keys::rotate(
        &state.db,
        &state.master,
        state.settings.signing_alg,
        &me.actor(),
        publish_for,
    )
    .await?;
    state
        .tokens
        .reload_keys()
        .await
        .map_err(domain::Error::unexpected)?;
    Ok(see_other(if rotated.activates_at.is_some() {
        "/admin/keys?notice=key-published"
    } else {
        "/admin/keys?notice=rotated"
    }))
}
