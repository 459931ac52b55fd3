//! `/machine-users`: the machine users a person manages without being an
//! admin (INTERFACE §12). What they may do is decided by the domain
//! (`principals::authorize`); these pages only offer it.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::guard::Posted;
use super::{
    page::{Layout, fmt_opt, fmt_time, parse_id, query, render, see_other},
    reveal::{self, Reveal},
    rotation::{REGENERATE_MESSAGE, RotatePage, grace_from, old_token_fact},
    session::SignedIn,
    views::{ScopeChoice, TokenRow, lifetime_from, presets, scope_choices, token_reveal},
};
use crate::{
    domain::{
        PageRequest, TokenKind, TokenStatus,
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
            web::post().to(secret_delete),
        )
        .route("/machine-users/{id}/tokens", web::post().to(token_create))
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
    secrets: Vec<(String, String, String)>,
    can_add_secret: bool,
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
    let max = state.policy().max_token_lifetime;
    render(&DetailPage {
        l: Layout::new(&me, "machine-users").with_notice(query(&req)?.get("notice")),
        id: m.id.to_string(),
        username: m.username.clone(),
        scopes: m.scopes.join(" "),
        can_add_secret: m.secrets.len() < principals::MAX_ACTIVE_SECRETS,
        secrets: m
            .secrets
            .iter()
            .map(|s| {
                (
                    s.id.to_string(),
                    s.hint.clone().unwrap_or_default(),
                    format!(
                        "created {}; last used {}",
                        fmt_time(s.created_at),
                        fmt_opt(s.last_used_at)
                    ),
                )
            })
            .collect(),
        token_scopes: scope_choices(&state, &owner, &[]).await?,
        tokens: toks.items.iter().map(TokenRow::from).collect(),
        presets: presets(max),
        max_days: max / 86400,
        secret_nonce: reveal::nonce(&state, &me).await?,
        token_nonce: reveal::nonce(&state, &me).await?,
        errors: Default::default(),
    })
}

fn back(id: uuid::Uuid) -> String {
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
    if view.status != TokenStatus::Active || view.replaced_by.is_some() {
        return Err(crate::domain::Error::conflict(
            "only an active token that was not regenerated already can be regenerated",
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
