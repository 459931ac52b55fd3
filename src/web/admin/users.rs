//! Users: the list, creation and changes to role, status, password and address.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::shared::is_user_error;
use crate::{
    domain::{self, PageRequest, Role, principals},
    http::errors::WebError,
    state::AppState,
    web::{
        page::{
            FormData, Layout, fmt_opt, fmt_time, next_link, parse_id, query, render_status,
            see_other,
        },
        session::{SignedIn, check_csrf},
    },
};

pub struct UserRow {
    pub id: String,
    pub username: String,
    pub is_admin: bool,
    pub enabled: bool,
    pub created: String,
    pub last_login: String,
    pub is_me: bool,
    pub email: String,
    pub auth: &'static str,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    l: Layout,
    error: Option<String>,
    rows: Vec<UserRow>,
    next: Option<String>,
    username: String,
}

async fn users_page(
    state: &AppState,
    me: &SignedIn,
    cursor: Option<&str>,
    notice: Option<&str>,
    error: Option<String>,
    username: String,
) -> Result<HttpResponse, WebError> {
    let page = PageRequest::parse(Some("100"), cursor)?;
    let found = principals::list_users(&state.db.read, page).await?;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(
        status,
        &UsersPage {
            l: Layout::new(me, "users").with_notice(notice),
            error,
            rows: found
                .items
                .iter()
                .map(|u| UserRow {
                    id: u.id.to_string(),
                    username: u.username.clone(),
                    is_admin: u.role == Role::Admin,
                    enabled: u.enabled,
                    created: fmt_time(u.created_at),
                    last_login: fmt_opt(u.last_login_at),
                    is_me: u.id == me.session.principal.id,
                    email: u.email.clone().unwrap_or_default(),
                    auth: match u.auth {
                        domain::AuthMethod::Password => "password",
                        domain::AuthMethod::Oidc => "single sign-on",
                    },
                })
                .collect(),
            next: next_link("/admin/users", &[], found.next_cursor.as_ref()),
            username,
        },
    )
}

pub(super) async fn users(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let q = query(&req)?;
    users_page(
        &state,
        &me,
        q.text("cursor"),
        q.get("notice"),
        None,
        String::new(),
    )
    .await
}

pub(super) async fn user_create(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let role = Role::parse(form.get("role").unwrap_or("user"));
    let result = match role {
        Ok(role) => {
            principals::create_user(
                &state.db,
                &me.actor(),
                principals::NewUser {
                    username: username.clone(),
                    password: form.get("password").unwrap_or("").to_owned(),
                    role,
                    email: form.get("email").map(str::to_owned),
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other("/admin/users?notice=created")),
        Err(e) if is_user_error(&e) => {
            let message = WebError::Domain(e).message();
            users_page(&state, &me, None, None, Some(message), username).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn user_update(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    let mut notice = "updated";
    let patch = match form.get("op") {
        Some("role") => principals::UserPatch {
            role: Some(Role::parse(form.get("role").unwrap_or(""))?),
            ..Default::default()
        },
        Some("enabled") => principals::UserPatch {
            enabled: Some(match form.get("enabled") {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(WebError::BadRequest("enabled must be true or false".into())),
            }),
            ..Default::default()
        },
        Some("password") => {
            notice = "password";
            principals::UserPatch {
                password: Some(form.get("password").unwrap_or("").to_owned()),
                ..Default::default()
            }
        }
        _ => return Err(WebError::BadRequest("unknown change".into())),
    };
    match principals::update_user(&state.db, &me.actor(), id, patch).await {
        Ok(_) => Ok(see_other(&format!("/admin/users?notice={notice}"))),
        Err(e) if is_user_error(&e) => {
            let message = WebError::Domain(e).message();
            users_page(&state, &me, None, None, Some(message), String::new()).await
        }
        Err(e) => Err(e.into()),
    }
}
