//! Resource servers (RFC 8707): the APIs that consume tokens, with the
//! scopes each owns. List, register, change and delete.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::shared::is_user_error;
use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::{
        resource_servers::{self, ResourceServerInput},
        scopes,
    },
    http::errors::WebError,
    state::AppState,
    web::{
        page::{FormData, Layout, parse_id, query, render, render_status, see_other},
        session::SignedIn,
        views::ConfirmPage,
    },
};

pub(super) async fn resource_server_delete_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let server = resource_servers::get(&state.db.read, parse_id(&path)?).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "resource-servers"),
        title: format!("Delete resource server “{}”?", server.name),
        message: format!(
            "Tokens can no longer be asked for {} (its scopes stay registered). Tokens already issued for it are not revoked.",
            server.identifier
        ),
        action: format!("/admin/resource-servers/{}/delete", server.id),
        button: "Delete resource server",
        cancel: "/admin/resource-servers".into(),
        danger: true,
        nonce: None,
        fields: vec![],
    })
}

pub struct ServerRow {
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub scopes: String,
}

#[derive(Template)]
#[template(path = "admin_resource_servers.html")]
struct ResourceServersPage {
    l: Layout,
    error: Option<String>,
    rows: Vec<ServerRow>,
    /// Registered scopes an admin may give a resource server.
    registered: Vec<String>,
}

async fn view(
    state: &AppState,
    me: &SignedIn,
    notice: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let rows = resource_servers::list(&state.db.read)
        .await?
        .into_iter()
        .map(|s| ServerRow {
            id: s.id.to_string(),
            identifier: s.identifier,
            name: s.name,
            scopes: s.scopes.join(" "),
        })
        .collect();
    let registered = scopes::list(&state.db.read)
        .await?
        .into_iter()
        .filter(|s| !s.builtin)
        .map(|s| s.name)
        .collect();
    let status = crate::web::page::refused_if(&error);
    render_status(
        status,
        &ResourceServersPage {
            l: Layout::new(me, "resource-servers").with_notice(notice),
            error,
            rows,
            registered,
        },
    )
}

pub(super) async fn resource_servers_page(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    view(&state, &me, query(&req)?.get("notice"), None).await
}

/// The form's fields; scopes are space or comma separated.
fn input(form: &FormData) -> ResourceServerInput {
    ResourceServerInput {
        identifier: Some(form.get("identifier").unwrap_or("").to_owned()),
        name: Some(form.get("name").unwrap_or("").to_owned()),
        scopes: Some(
            form.get("scopes")
                .unwrap_or("")
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
    }
}

async fn done(
    state: &AppState,
    me: &SignedIn,
    result: Result<(), crate::domain::Error>,
    notice: &str,
) -> Result<HttpResponse, WebError> {
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/admin/resource-servers?notice={notice}"
        ))),
        Err(e) if is_user_error(&e) => {
            view(state, me, None, Some(WebError::Domain(e).message())).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn resource_server_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let result = resource_servers::create(&state.db, &me.actor(), input(&form))
        .await
        .map(|_| ());
    done(&state, &me, result, "created").await
}

pub(super) async fn resource_server_update(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let result = resource_servers::update(&state.db, &me.actor(), id, input(&form))
        .await
        .map(|_| ());
    done(&state, &me, result, "updated").await
}

pub(super) async fn resource_server_delete(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let result = resource_servers::delete(&state.db, &me.actor(), id).await;
    done(&state, &me, result, "deleted").await
}
