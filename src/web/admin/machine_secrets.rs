//! A machine user's client secrets on the admin console: generate (shown
//! once), confirm removal, remove.

use actix_web::{HttpResponse, web};

use super::machine_users::token_endpoint;
use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::principals,
    http::errors::WebError,
    secret::Secret,
    state::AppState,
    web::{
        page::{Layout, fmt_time, parse_id, render, see_other},
        reveal::{self, Reveal},
        views::ConfirmPage,
    },
};

pub(super) async fn secret_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let m = principals::get_machine_user(&state.db.read, id).await?;
    let secret = reveal::unless_refused(
        &state,
        &me,
        &form,
        principals::create_secret(&state.db, &me.context(state.policy()), id, None).await,
    )
    .await?;
    let mut facts = vec![
        ("Client ID".to_owned(), m.username.clone()),
        ("Token endpoint".to_owned(), token_endpoint(&state)),
        ("Created".to_owned(), fmt_time(secret.created_at)),
        ("Listed as".to_owned(), secret.hint.clone()),
    ];
    if !m.client_credentials.enabled {
        facts.push((
            "Note".to_owned(),
            "Client credentials are off for this machine user: turn them on before using the secret at the token endpoint.".into(),
        ));
    }
    let page = Reveal {
        title: format!("Client secret for “{}”", m.username),
        what: "client secret".into(),
        facts,
        done_url: format!("/admin/machine-users/{id}"),
        done_label: "Back to the machine user".into(),
        section: "machine-users".into(),
        item_url: None,
        example: Some(format!(
            "curl -u '{}:THE_SECRET' -d grant_type=client_credentials {}",
            m.username,
            token_endpoint(&state)
        )),
    };
    reveal::reveal(
        &state,
        &me,
        &form,
        page,
        Secret::new(secret.client_secret.into_exposed()),
    )
    .await
}

pub(super) async fn secret_delete_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let secret_id = parse_id(&path.1)?;
    let m = principals::get_machine_user(&state.db.read, id).await?;
    let secret = m.secret(secret_id)?;
    render(&ConfirmPage::remove_secret(
        Layout::new(&me, "machine-users"),
        &m.username,
        secret,
        format!("/admin/machine-users/{id}/secrets/{secret_id}/delete"),
        format!("/admin/machine-users/{id}"),
    ))
}

pub(super) async fn secret_delete(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let secret = parse_id(&path.1)?;
    principals::delete_secret(&state.db, &me.context(state.policy()), id, secret).await?;
    Ok(see_other(&format!(
        "/admin/machine-users/{id}?notice=secret-removed"
    )))
}
