//! The machine-token form on the admin's machine-user page: a token issued
//! for a machine user, or the page again with what was typed and the
//! refusal next to its field.

use actix_web::{HttpResponse, web};

use super::{machine_users::machine_user_page_with, shared::TokenForm};
use crate::web::guard::AdminPosted;
use crate::{
    domain::{
        issuance::{Issued, Request, issue},
        principals,
        tokens::NewToken,
    },
    http::errors::WebError,
    state::AppState,
    web::{
        page::parse_id,
        reveal,
        views::{lifetime_from, token_reveal},
    },
};

pub(super) async fn machine_token_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    // Only machine users: this form must not issue a person's token.
    principals::get_machine_user(&state.db.read, id).await?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let result = match lifetime_from(&form) {
        Ok(lifetime) => {
            let request = Request::Named {
                owner_id: id,
                new: NewToken {
                    audience: form.text("audience").map(str::to_owned),
                    name: form.get("name").unwrap_or("").to_owned(),
                    description: form.get("description").map(str::to_owned),
                    scopes: Some(form.all("scopes")),
                    lifetime,
                },
            };
            issue(&state.issuer(), &me.context(state.policy()), request)
                .await
                .and_then(Issued::into_view)
                .map_err(WebError::from)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(view) => {
            let (mut page, secret) = token_reveal(
                &view,
                format!(
                    "Machine token “{}” for “{}”",
                    view.name, view.owner.username
                ),
                format!("/admin/machine-users/{id}"),
                "Back to the machine user",
                "machine-users",
            );
            page.item_url = Some(format!("/admin/tokens/{}", view.id));
            reveal::reveal(&state, &me, &form, page, secret).await
        }
        Err(WebError::Domain(e)) if super::shared::is_user_error(&e) => {
            reveal::release(&state, &me, &form).await?;
            let refused = TokenForm::refused(&form, &e);
            machine_user_page_with(&state, &me, id, None, None, Some(refused)).await
        }
        Err(e) => Err(e),
    }
}
