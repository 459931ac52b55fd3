//! Every token, whoever holds it: the filtered list, one token, revocation.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::{
        TokenKind, TokenStatus,
        token_browse::{TokenSort, browse},
        tokens::{self, Access, TokenFilter},
    },
    http::errors::WebError,
    state::AppState,
    web::{
        page::{Layout, parse_id, query, render, see_other},
        token_list::{Pager, SortChoice, page_number, page_size, sort_choices},
        views::{ConfirmPage, TokenRow},
    },
};

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct AllTokensPage {
    l: Layout,
    rows: Vec<TokenRow>,
    owner: String,
    kind: String,
    status: String,
    q: String,
    sorts: Vec<SortChoice>,
    pager: Pager,
}

pub(super) async fn all_tokens(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let q = query(&req)?;
    let filter = TokenFilter {
        owner: q.text("owner").map(str::to_owned),
        kind: q.text("kind").map(TokenKind::parse).transpose()?,
        status: q.text("status").map(TokenStatus::parse).transpose()?,
        q: q.text("q").map(str::to_owned),
        hide_client_credentials: true,
        ..Default::default()
    };
    let sort = TokenSort::parse(q.text("sort"))?;
    let (per_page, limit) = page_size(&q)?;
    let found = browse(&state.db.read, &filter, sort, page_number(&q)?, per_page).await?;
    let owner = q.text("owner").unwrap_or("").to_owned();
    let kind = filter.kind.map(|k| k.as_str()).unwrap_or("").to_owned();
    let status = filter.status.map(|s| s.as_str()).unwrap_or("").to_owned();
    let text = q.text("q").unwrap_or("").to_owned();
    // The default order is left out of the links.
    let sort_param = if sort == TokenSort::default() {
        ""
    } else {
        sort.as_str()
    };
    render(&AllTokensPage {
        l: Layout::new(&me, "all-tokens").with_notice(q.get("notice")),
        rows: found.items.iter().map(TokenRow::from).collect(),
        pager: Pager::new(
            "/admin/tokens",
            &[
                ("owner", &owner),
                ("kind", &kind),
                ("status", &status),
                ("q", &text),
                ("sort", sort_param),
                ("limit", &limit),
            ],
            &found,
        ),
        sorts: sort_choices(sort),
        owner,
        kind,
        status,
        q: text,
    })
}

#[derive(Template)]
#[template(path = "token.html")]
struct AdminTokenPage {
    l: Layout,
    t: TokenRow,
    admin_view: bool,
    usage: crate::web::usage_view::UsageView,
}

pub(super) async fn admin_token(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Any).await?;
    let usage = crate::domain::usage::history(
        &state.db.read,
        id,
        Access::Any,
        &crate::domain::usage::WHOLE,
    )
    .await?;
    render(&AdminTokenPage {
        l: Layout::new(&me, "all-tokens").with_notice(query(&req)?.get("notice")),
        t: TokenRow::from(&view),
        admin_view: true,
        usage: usage.into(),
    })
}

pub(super) async fn admin_revoke_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Any).await?;
    render(&ConfirmPage::revoke(
        Layout::new(&me, "all-tokens"),
        format!("Revoke “{}” of {}?", view.name, view.owner.username),
        format!("/admin/tokens/{id}/revoke"),
        format!("/admin/tokens/{id}"),
    ))
}

pub(super) async fn admin_revoke(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    tokens::revoke(&state.db, &me.actor(), id, Access::Any).await?;
    Ok(see_other(&format!("/admin/tokens/{id}?notice=revoked")))
}
