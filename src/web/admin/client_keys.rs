//! A machine user's public keys (`private_key_jwt`) on its page: save a JWK
//! Set from the textarea, or remove the keys.

use actix_web::{HttpResponse, web};

use super::{machine_users::machine_user_page, shared::is_user_error};
use crate::web::guard::AdminPosted;
use crate::{
    domain::client_keys,
    http::errors::WebError,
    state::AppState,
    web::page::{parse_id, see_other},
};

pub(super) async fn jwks_save(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let text = form.get("jwks").unwrap_or("");
    match client_keys::put_text(&state.db, &me.context(state.policy()), id, text).await {
        Ok(_) => Ok(see_other(&format!(
            "/admin/machine-users/{id}?notice=updated"
        ))),
        Err(e) if is_user_error(&e) => {
            machine_user_page(&state, &me, id, None, Some(WebError::Domain(e).message())).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn jwks_delete(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    client_keys::delete(&state.db, &me.context(state.policy()), id).await?;
    Ok(see_other(&format!(
        "/admin/machine-users/{id}?notice=deleted"
    )))
}
