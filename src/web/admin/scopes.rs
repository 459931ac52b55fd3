//! Registered scopes: the list, creation, changes and deletion.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::shared::is_user_error;
use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::scopes,
    http::errors::WebError,
    state::AppState,
    web::{
        page::{Layout, query, render, render_status, see_other},
        session::SignedIn,
        views::ConfirmPage,
    },
};

pub struct ScopeRow {
    pub name: String,
    pub description: String,
    pub builtin: bool,
}

#[derive(Template)]
#[template(path = "admin_scopes.html")]
struct ScopesPage {
    l: Layout,
    error: Option<String>,
    rows: Vec<ScopeRow>,
    name: String,
    description: String,
}

/// The scopes page; after a refused change, with the reason in words (and
/// status 400, like the other forms of the console).
async fn scopes_view(
    state: &AppState,
    me: &SignedIn,
    notice: Option<&str>,
    error: Option<String>,
    name: String,
    description: String,
) -> Result<HttpResponse, WebError> {
    let rows = scopes::list(&state.db.read)
        .await?
        .into_iter()
        .map(|s| ScopeRow {
            name: s.name,
            description: s.description,
            builtin: s.builtin,
        })
        .collect();
    let status = crate::web::page::refused_if(&error);
    render_status(
        status,
        &ScopesPage {
            l: Layout::new(me, "scopes").with_notice(notice),
            error,
            rows,
            name,
            description,
        },
    )
}

pub(super) async fn scopes_page(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    scopes_view(
        &state,
        &me,
        query(&req)?.get("notice"),
        None,
        String::new(),
        String::new(),
    )
    .await
}

pub(super) async fn scope_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let name = form.get("name").unwrap_or("").to_owned();
    let description = form.get("description").unwrap_or("").to_owned();
    match scopes::create(&state.db, &me.actor(), &name, Some(&description)).await {
        Ok(_) => Ok(see_other("/admin/scopes?notice=created")),
        Err(e) if is_user_error(&e) => {
            let message = WebError::Domain(e).message();
            scopes_view(&state, &me, None, Some(message), name, description).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn scope_update(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let description = form.get("description").unwrap_or("");
    match scopes::update(&state.db, &me.actor(), &path, description).await {
        Ok(_) => Ok(see_other("/admin/scopes?notice=updated")),
        Err(e) if is_user_error(&e) => {
            let message = WebError::Domain(e).message();
            let empty = String::new;
            scopes_view(&state, &me, None, Some(message), empty(), empty()).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn scope_delete_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let scope = scopes::get(&state.db.read, &path).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "scopes"),
        title: format!("Delete scope “{}”?", scope.name),
        message: "Tokens can no longer be given this scope. A scope that a machine user is allowed or an active token holds cannot be deleted: the page will name those machine users and count those tokens.".into(),
        action: format!("/admin/scopes/{}/delete", scope.name),
        button: "Delete scope",
        cancel: "/admin/scopes".into(),
        danger: true,
        nonce: None,
        fields: vec![],
    })
}

pub(super) async fn scope_delete(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    match scopes::delete(&state.db, &me.actor(), &path).await {
        Ok(()) => Ok(see_other("/admin/scopes?notice=deleted")),
        Err(e) if is_user_error(&e) => {
            let message = WebError::Domain(e).message();
            let empty = String::new;
            scopes_view(&state, &me, None, Some(message), empty(), empty()).await
        }
        Err(e) => Err(e.into()),
    }
}
