//! `/machine-users`: the machine users a person manages without being an
//! admin (INTERFACE §12). What they may do is decided by the domain
//! (`principals::authorize`); these pages only offer it.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::guard::Posted;
use super::{
    page::{Layout, parse_id, query, render, render_status, see_other},
    reveal::{self, Reveal},
    rotation::{self, REGENERATE_MESSAGE, RotatePage, grace_from, old_token_fact},
    session::SignedIn,
    views::{
        ConfirmPage, ScopeChoice, SecretRow, TokenRow, lifetime_from, presets, scope_choices,
        token_reveal,
    },
};
use crate::{
    domain::{
        PageRequest, TokenKind, TokenStatus, client_keys,
        issuance::{Request, issue},
        principals,
        tokens::{self, Access, NewToken},
    },
    http::errors::WebError,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/machine-users", web::get().to(list))
        .route("/machine-users/{id}", web::get().to(detail))
        .route("/machine-users/{id}/secrets", web::post().to(secret_create))
        .route(
            "/machine-users/{id}/secrets/{secret}/delete",
            web::get().to(secret_delete_page),
        )
        .route(
            "/machine-users/{id}/secrets/{secret}/delete",
            web::post().to(secret_delete),
        )
        .route(
            "/machine-users/{id}/secrets/{secret}/rotate",
            web::get().to(secret_rotate_page),
        )
        .route(
            "/machine-users/{id}/secrets/{secret}/rotate",
            web::post().to(secret_rotate),
        )
        .route("/machine-users/{id}/jwks", web::post().to(jwks_save))
        .route(
            "/machine-users/{id}/jwks/delete",
            web::post().to(jwks_delete),
        )
        .route("/machine-users/{id}/tokens", web::post().to(token_create))
        .route(
            "/machine-users/{id}/tokens/{token}/revoke",
            web::get().to(token_revoke_page),
        )
        .route(
            "/machine-users/{id}/tokens/{token}/revoke",
            web::post().to(token_revoke),
        )
        .route(
            "/machine-users/{id}/tokens/{token}/regenerate",
            web::get().to(token_regenerate_page),
        )
        .route(
            "/machine-users/{id}/tokens/{token}/regenerate",
            web::post().to(token_regenerate),
        );
}

#[derive(Template)]
#[template(path = "managed_machine_users.html")]
struct ListPage {
    l: Layout,
    rows: Vec<(String, String, String)>,
}

async fn list(me: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let ctx = me.context(state.policy());
    let found =
        principals::list_machine_users_for(&state.db.read, &ctx, None, PageRequest::default())
            .await?;
    render(&ListPage {
        l: Layout::new(&me, "machine-users"),
        rows: found
            .items
            .into_iter()
            .map(|m| (m.id.to_string(), m.username, m.scopes.join(" ")))
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "managed_machine_user.html")]
struct DetailPage {
    l: Layout,
    id: String,
    username: String,
    scopes: String,
    secrets: Vec<SecretRow>,
    can_add_secret: bool,
    /// The registered JWK Set, pretty-printed ("" when there is none).
    jwks: String,
    key_count: usize,
    /// A refused JWK Set, said at the top.
    error: Option<String>,
    token_scopes: Vec<ScopeChoice>,
    tokens: Vec<TokenRow>,
    presets: Vec<u32>,
    max_days: i64,
    secret_nonce: String,
    token_nonce: String,
    /// The lifetime fieldset marks its refusal (none on this page yet).
    errors: super::fields::FieldErrors,
}

async fn detail(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    // Reminders link here for everyone who looks after a machine user; an
    // admin has the fuller page.
    if me.session.is_admin() {
        return Ok(see_other(&format!("/admin/machine-users/{id}")));
    }
    detail_page(&state, &me, id, query(&req)?.get("notice"), None).await
}

async fn detail_page(
    state: &AppState,
    me: &SignedIn,
    id: Uuid,
    notice: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let ctx = me.context(state.policy());
    let m = principals::view_machine_user(&state.db.read, &ctx, id).await?;
    let owner = principals::find(&state.db.read, id)
        .await?
        .ok_or(WebError::NotFound)?;
    // Asked by kind: the client-credentials records (one an hour from a
    // typical client, kept a month) would fill the page otherwise.
    let toks = tokens::list_machine_tokens(
        &state.db.read,
        &ctx,
        id,
        Some(TokenKind::Machine),
        PageRequest::default(),
    )
    .await?;
    let jwks = client_keys::get(&state.db.read, &ctx, id).await?;
    let key_count = jwks["keys"].as_array().map_or(0, Vec::len);
    let max = state.policy().max_token_lifetime;
    let status = crate::web::page::refused_if(&error);
    render_status(
        status,
        &DetailPage {
            l: Layout::new(me, "machine-users").with_notice(notice),
            id: m.id.to_string(),
            username: m.username.clone(),
            scopes: m.scopes.join(" "),
            can_add_secret: m.secrets.len() < principals::MAX_ACTIVE_SECRETS,
            secrets: m.secrets.iter().map(SecretRow::from).collect(),
            jwks: if key_count == 0 {
                String::new()
            } else {
                serde_json::to_string_pretty(&jwks).unwrap_or_default()
            },
            key_count,
            error,
            token_scopes: scope_choices(state, &owner, &[]).await?,
            tokens: toks.items.iter().map(TokenRow::from).collect(),
            presets: presets(max),
            max_days: max / 86400,
            secret_nonce: reveal::nonce(state, me).await?,
            token_nonce: reveal::nonce(state, me).await?,
            errors: Default::default(),
        },
    )
}

/// The machine user, when this person may manage it (or a refusal).
async fn managed(
    state: &AppState,
    me: &SignedIn,
    id: Uuid,
) -> Result<principals::MachineUser, WebError> {
    let ctx = me.context(state.policy());
    principals::authorize(&state.db.read, &ctx, id, principals::Need::Manage).await?;
    Ok(principals::view_machine_user(&state.db.read, &ctx, id).await?)
}

fn back(id: Uuid) -> String {
    format!("/machine-users/{id}")
}

async fn secret_create(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    // Who may act is decided before the form's nonce is used.
    principals::authorize(
        &state.db.read,
        &me.context(state.policy()),
        id,
        principals::Need::Manage,
    )
    .await?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let created = principals::create_secret(&state.db, &me.context(state.policy()), id, None).await;
    let secret = reveal::unless_refused(&state, &me, &form, created).await?;
    let page = Reveal {
        title: "New client secret".into(),
        what: "client secret".into(),
        facts: vec![("Listed as".into(), secret.hint.clone())],
        done_url: back(id),
        done_label: "Back to the machine user".into(),
        section: "machine-users".into(),
        item_url: None,
        example: None,
    };
    reveal::reveal(
        &state,
        &me,
        &form,
        page,
        crate::secret::Secret::new(secret.client_secret.into_exposed()),
    )
    .await
}

async fn secret_delete_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let secret_id = parse_id(&path.1)?;
    let m = managed(&state, &me, id).await?;
    let secret = m.secret(secret_id)?;
    render(&ConfirmPage::remove_secret(
        Layout::new(&me, "machine-users"),
        &m.username,
        secret,
        format!("{}/secrets/{secret_id}/delete", back(id)),
        back(id),
    ))
}

async fn secret_rotate_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let secret = parse_id(&path.1)?;
    let m = managed(&state, &me, id).await?;
    rotation::secret_rotate_page_for(&state, &me, &m, secret, &back(id)).await
}

async fn secret_rotate(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let replaces = parse_id(&path.1)?;
    // Who may act is decided before the form's nonce is used.
    let m = managed(&state, &me, id).await?;
    rotation::secret_rotate_for(&state, &me, &form, &m, replaces, &back(id)).await
}

async fn jwks_save(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let text = form.get("jwks").unwrap_or("");
    match client_keys::put_text(&state.db, &me.context(state.policy()), id, text).await {
        Ok(_) => Ok(see_other(&format!("{}?notice=updated", back(id)))),
        Err(e @ (crate::domain::Error::Invalid { .. } | crate::domain::Error::Conflict(_))) => {
            detail_page(&state, &me, id, None, Some(WebError::Domain(e).message())).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn jwks_delete(
    Posted { me, form: _ }: Posted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    client_keys::delete(&state.db, &me.context(state.policy()), id).await?;
    Ok(see_other(&format!("{}?notice=deleted", back(id))))
}

async fn secret_delete(
    Posted { me, form: _ }: Posted,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let secret = parse_id(&path.1)?;
    principals::delete_secret(&state.db, &me.context(state.policy()), id, secret).await?;
    Ok(see_other(&format!("{}?notice=secret-removed", back(id))))
}

async fn token_create(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let ctx = me.context(state.policy());
    // Only machine users this person may manage: never a person's token.
    principals::authorize(&state.db.read, &ctx, id, principals::Need::Manage).await?;
    // Read before the form is claimed: a bad lifetime must leave it usable.
    let lifetime = lifetime_from(&form)?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let request = Request::Named {
        owner_id: id,
        new: NewToken {
            name: form.get("name").unwrap_or("").to_owned(),
            description: form.get("description").map(str::to_owned),
            scopes: Some(form.all("scopes")),
            lifetime,
            audience: None,
        },
    };
    let issued = issue(&state.issuer(), &ctx, request).await;
    let view = reveal::unless_refused(&state, &me, &form, issued)
        .await?
        .into_view()?;
    let (page, secret) = token_reveal(
        &view,
        format!("Machine token “{}”", view.name),
        back(id),
        "Back to the machine user",
        "machine-users",
    );
    reveal::reveal(&state, &me, &form, page, secret).await
}

async fn token_revoke_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, view) = managed_token(&state, &me, &path).await?;
    render(&ConfirmPage::revoke(
        Layout::new(&me, "machine-users"),
        format!("Revoke “{}” of {}?", view.name, view.owner.username),
        format!("{}/tokens/{}/revoke", back(id), view.id),
        back(id),
    ))
}

async fn token_revoke(
    Posted { me, form: _ }: Posted,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path.0)?;
    let token = parse_id(&path.1)?;
    tokens::revoke_machine_token(&state.db, &me.context(state.policy()), id, token).await?;
    Ok(see_other(&format!("{}?notice=revoked", back(id))))
}

/// `{id}/tokens/{token}`: the person may manage this machine user, and the
/// token is one of its machine tokens (a client-credentials token is renewed
/// at the token endpoint, not here).
async fn managed_token(
    state: &AppState,
    me: &SignedIn,
    path: &(String, String),
) -> Result<(uuid::Uuid, tokens::TokenView), WebError> {
    let id = parse_id(&path.0)?;
    let token = parse_id(&path.1)?;
    let ctx = me.context(state.policy());
    principals::authorize(&state.db.read, &ctx, id, principals::Need::Manage).await?;
    let view = tokens::get(&state.db.read, token, Access::Machine(id)).await?;
    if view.kind != TokenKind::Machine {
        return Err(WebError::NotFound);
    }
    Ok((id, view))
}

async fn token_regenerate_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, view) = managed_token(&state, &me, &path).await?;
    // What regenerating would refuse is said before the choice is offered.
    // An expired token may be renewed (INTERFACE §3); a revoked or already
    // replaced one may not.
    if view.status == TokenStatus::Revoked || view.replaced_by.is_some() {
        return Err(crate::domain::Error::conflict(
            "a revoked token, or one regenerated already, cannot be regenerated",
        )
        .into());
    }
    render(&RotatePage {
        l: Layout::new(&me, "machine-users"),
        title: format!("Regenerate “{}” of {}?", view.name, view.owner.username),
        message: REGENERATE_MESSAGE.into(),
        action: format!("{}/tokens/{}/regenerate", back(id), view.id),
        button: "Regenerate token",
        cancel: back(id),
        nonce: reveal::nonce(&state, &me).await?,
        only_now: false,
    })
}

async fn token_regenerate(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    // Who may act, and on what, is decided before the form's nonce is used.
    let (id, view) = managed_token(&state, &me, &path).await?;
    let grace = grace_from(&form)?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let request = Request::Regenerate {
        token_id: view.id,
        access: Access::Machine(id),
        grace_seconds: grace,
    };
    let issued = issue(&state.issuer(), &me.context(state.policy()), request).await;
    let view = reveal::unless_refused(&state, &me, &form, issued)
        .await?
        .into_view()?;
    let (mut page, secret) = token_reveal(
        &view,
        format!(
            "Machine token “{}” of “{}” regenerated",
            view.name, view.owner.username
        ),
        back(id),
        "Back to the machine user",
        "machine-users",
    );
    page.facts.push(old_token_fact(grace));
    reveal::reveal(&state, &me, &form, page, secret).await
}
