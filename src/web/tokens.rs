//! The personal-access-token pages every user has.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::guard::Posted;
use super::{
    fields::FieldErrors,
    page::{Layout, parse_id, query, render, render_status, see_other},
    reveal,
    rotation::{REGENERATE_MESSAGE, RotatePage, grace_from, old_token_fact},
    session::SignedIn,
    token_list::{Pager, SortChoice, page_number, page_size, sort_choices},
    views::{
        ConfirmPage, ScopeChoice, TokenRow, lifetime_from, presets, scope_choices, token_reveal,
    },
};
use crate::{
    domain::{
        self, TokenStatus,
        issuance::{Issued, Request, issue},
        token_browse::{TokenSort, browse},
        tokens::{self, Access, NewToken, TokenFilter},
    },
    http::errors::WebError,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(list))
        .route("/tokens/new", web::get().to(new_page))
        .route("/tokens/new", web::post().to(create))
        .route("/tokens/{id}", web::get().to(detail))
        .route("/tokens/{id}/revoke", web::get().to(revoke_page))
        .route("/tokens/{id}/revoke", web::post().to(revoke))
        .route("/tokens/{id}/regenerate", web::get().to(regenerate_page))
        .route("/tokens/{id}/regenerate", web::post().to(regenerate));
}

// ---------------------------------------------------------------- dashboard

// ---------------------------------------------------------------- list

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    l: Layout,
    rows: Vec<TokenRow>,
    status: String,
    q: String,
    sorts: Vec<SortChoice>,
    pager: Pager,
    /// Any filter or search is in force (the empty list says so).
    filtered: bool,
}

async fn list(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let q = query(&req)?;
    let status = q.text("status").map(TokenStatus::parse).transpose()?;
    let text = q.text("q").unwrap_or("").to_owned();
    let filter = TokenFilter {
        owner_id: Some(me.session.principal.id),
        status,
        q: (!text.is_empty()).then(|| text.clone()),
        ..Default::default()
    };
    let sort = TokenSort::parse(q.text("sort"))?;
    let (per_page, limit) = page_size(&q)?;
    let found = browse(&state.db.read, &filter, sort, page_number(&q)?, per_page).await?;
    let status_str = status.map(|s| s.as_str()).unwrap_or("").to_owned();
    let sort_param = if sort == TokenSort::default() {
        ""
    } else {
        sort.as_str()
    };
    render(&TokensPage {
        l: Layout::new(&me, "tokens").with_notice(q.get("notice")),
        rows: found.items.iter().map(TokenRow::from).collect(),
        pager: Pager::new(
            "/tokens",
            &[
                ("status", &status_str),
                ("q", &text),
                ("sort", sort_param),
                ("limit", &limit),
            ],
            &found,
        ),
        filtered: status.is_some() || !text.is_empty(),
        sorts: sort_choices(sort),
        status: status_str,
        q: text,
    })
}

// ---------------------------------------------------------------- new

#[derive(Template)]
#[template(path = "token_new.html")]
struct NewTokenPage {
    l: Layout,
    errors: FieldErrors,
    name: String,
    description: String,
    audience: String,
    scopes: Vec<ScopeChoice>,
    presets: Vec<u32>,
    lifetime: String,
    expires_on: String,
    max_days: i64,
    nonce: String,
}

async fn new_page(me: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let max = state.policy().max_token_lifetime;
    render(&NewTokenPage {
        l: Layout::new(&me, "tokens"),
        errors: FieldErrors::default(),
        name: String::new(),
        description: String::new(),
        audience: String::new(),
        scopes: scope_choices(&state, &me.session.principal, &["profile".to_owned()]).await?,
        lifetime: presets(max)
            .into_iter()
            .find(|d| *d == 30)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "custom".into()),
        presets: presets(max),
        expires_on: String::new(),
        max_days: max / 86400,
        nonce: reveal::nonce(&state, &me).await?,
    })
}

async fn create(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let chosen = form.all("scopes");
    let max = state.policy().max_token_lifetime;
    let result = match lifetime_from(&form) {
        Ok(lifetime) => {
            let request = Request::Named {
                owner_id: me.session.principal.id,
                new: NewToken {
                    audience: form.text("audience").map(str::to_owned),
                    name: form.get("name").unwrap_or("").to_owned(),
                    description: form.get("description").map(str::to_owned),
                    scopes: Some(chosen.clone()),
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
                format!("Token “{}” created", view.name),
                "/tokens".into(),
                "Back to your tokens",
                "tokens",
            );
            page.item_url = Some(format!("/tokens/{}", view.id));
            reveal::reveal(&state, &me, &form, page, secret).await
        }
        Err(WebError::Domain(e @ (domain::Error::Invalid { .. } | domain::Error::Conflict(_)))) => {
            reveal::release(&state, &me, &form).await?;
            render_status(
                StatusCode::BAD_REQUEST,
                &NewTokenPage {
                    l: Layout::new(&me, "tokens"),
                    errors: FieldErrors::from_domain(&e, "name"),
                    name: form.get("name").unwrap_or("").to_owned(),
                    description: form.get("description").unwrap_or("").to_owned(),
                    audience: form.get("audience").unwrap_or("").to_owned(),
                    scopes: scope_choices(&state, &me.session.principal, &chosen).await?,
                    presets: presets(max),
                    lifetime: form.get("lifetime").unwrap_or("").to_owned(),
                    expires_on: form.get("expires_on").unwrap_or("").to_owned(),
                    max_days: max / 86400,
                    nonce: form.get("nonce").unwrap_or("").to_owned(),
                },
            )
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- one token

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    l: Layout,
    t: TokenRow,
    admin_view: bool,
    usage: super::usage_view::UsageView,
}

async fn detail(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let access = Access::Own(me.session.principal.id);
    let view = tokens::get(&state.db.read, id, access).await?;
    let usage =
        crate::domain::usage::history(&state.db.read, id, access, &crate::domain::usage::WHOLE)
            .await?;
    render(&TokenPage {
        l: Layout::new(&me, "tokens").with_notice(query(&req)?.get("notice")),
        t: TokenRow::from(&view),
        admin_view: false,
        usage: usage.into(),
    })
}

async fn revoke_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Own(me.session.principal.id)).await?;
    render(&ConfirmPage::revoke(
        Layout::new(&me, "tokens"),
        format!("Revoke “{}”?", view.name),
        format!("/tokens/{id}/revoke"),
        format!("/tokens/{id}"),
    ))
}

async fn revoke(
    Posted { me, form: _ }: Posted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    tokens::revoke(
        &state.db,
        &me.actor(),
        id,
        Access::Own(me.session.principal.id),
    )
    .await?;
    Ok(see_other(&format!("/tokens/{id}?notice=revoked")))
}

/// To the page of the token that replaced the one asked about.
fn already_regenerated(replacement: uuid::Uuid) -> HttpResponse {
    see_other(&format!("/tokens/{replacement}?notice=already-regenerated"))
}

async fn regenerate_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Own(me.session.principal.id)).await?;
    if let Some(replacement) = view.replaced_by {
        return Ok(already_regenerated(replacement));
    }
    render(&RotatePage {
        l: Layout::new(&me, "tokens"),
        title: format!("Regenerate “{}”?", view.name),
        message: REGENERATE_MESSAGE.into(),
        action: format!("/tokens/{id}/regenerate"),
        button: "Regenerate token",
        cancel: format!("/tokens/{id}"),
        nonce: reveal::nonce(&state, &me).await?,
        only_now: false,
    })
}

async fn regenerate(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let grace = grace_from(&form)?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    // A form sent again after Back, or from a second tab: the token has its
    // replacement already, which is where the person wants to be.
    let own = Access::Own(me.session.principal.id);
    if let Some(replacement) = tokens::get(&state.db.read, id, own).await?.replaced_by {
        reveal::release(&state, &me, &form).await?;
        return Ok(already_regenerated(replacement));
    }
    let request = Request::Regenerate {
        token_id: id,
        access: Access::Own(me.session.principal.id),
        grace_seconds: grace,
    };
    let view = reveal::unless_refused(
        &state,
        &me,
        &form,
        issue(&state.issuer(), &me.context(state.policy()), request).await,
    )
    .await?
    .into_view()?;
    let (mut page, secret) = token_reveal(
        &view,
        format!("Token “{}” regenerated", view.name),
        format!("/tokens/{}", view.id),
        "The new token's page",
        "tokens",
    );
    page.facts.push(old_token_fact(grace));
    reveal::reveal(&state, &me, &form, page, secret).await
}
