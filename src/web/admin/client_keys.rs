//! A machine user's public keys (`private_key_jwt`) on its page: save a JWK
//! Set from the textarea, or remove the keys.

use actix_web::{HttpResponse, web};

use super::{machine_users::machine_user_page, shared::is_user_error};
use crate::{
    domain::{self, client_keys},
    http::errors::WebError,
    state::AppState,
    web::{
        page::{FormData, parse_id, see_other},
        session::{SignedIn, check_csrf},
    },
};

pub(super) async fn jwks_save(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    let saved = match serde_json::from_str::<serde_json::Value>(form.get("jwks").unwrap_or("")) {
        Ok(set) => client_keys::put(&state.db, &me.context(state.policy()), id, &set).await,
        Err(e) => Err(domain::Error::invalid(
            "jwks",
            format!("is not JSON ({e}): paste a JWK Set such as {{\"keys\": [...]}}"),
        )),
    };
    match saved {
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
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    client_keys::delete(&state.db, &me.context(state.policy()), id).await?;
    Ok(see_other(&format!(
        "/admin/machine-users/{id}?notice=deleted"
    )))
}
