//! Users: the list (a list only), creation, and a page per user with their
//! tokens and recent activity, where role, status and password change.
//! Demoting or disabling someone is confirmed first; nobody demotes or
//! disables themselves here (another administrator has to).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::shared::is_user_error;
use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::{
        self, PageRequest, Role, TokenKind, audit, principals,
        tokens::{self, TokenFilter},
    },
    http::errors::WebError,
    state::AppState,
    web::{
        fields::FieldErrors,
        page::{
            FormData, Layout, fmt_opt, fmt_time, next_link, parse_id, query, render, render_status,
        },
        reveal,
        session::SignedIn,
        views::{ConfirmPage, TokenRow},
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

impl UserRow {
    fn new(u: &principals::User, me: &SignedIn) -> Self {
        Self {
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
        }
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    l: Layout,
    errors: FieldErrors,
    rows: Vec<UserRow>,
    next: Option<String>,
    username: String,
    email: String,
    role: String,
    nonce: String,
}

async fn users_page(
    state: &AppState,
    me: &SignedIn,
    cursor: Option<&str>,
    notice: Option<&str>,
    refused: Option<(FieldErrors, &FormData)>,
) -> Result<HttpResponse, WebError> {
    let page = PageRequest::parse(Some("100"), cursor)?;
    let found = principals::list_users(&state.db.read, page).await?;
    let (status, errors, username, email, role, nonce) = match refused {
        Some((errors, form)) => (
            StatusCode::BAD_REQUEST,
            errors,
            form.get("username").unwrap_or("").to_owned(),
            form.get("email").unwrap_or("").to_owned(),
            form.get("role").unwrap_or("user").to_owned(),
            form.get("nonce").unwrap_or("").to_owned(),
        ),
        None => (
            StatusCode::OK,
            FieldErrors::default(),
            String::new(),
            String::new(),
            "user".to_owned(),
            reveal::nonce(state, me).await?,
        ),
    };
    render_status(
        status,
        &UsersPage {
            l: Layout::new(me, "users").with_notice(notice),
            errors,
            rows: found.items.iter().map(|u| UserRow::new(u, me)).collect(),
            next: next_link("/admin/users", &[], found.next_cursor.as_ref()),
            username,
            email,
            role,
            nonce,
        },
    )
}

pub(super) async fn users(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let q = query(&req)?;
    users_page(&state, &me, q.text("cursor"), q.get("notice"), None).await
}

pub(super) async fn user_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let result = match Role::parse(form.get("role").unwrap_or("user")) {
        Ok(role) => {
            principals::create_user(
                &state.db,
                &me.actor(),
                principals::NewUser {
                    username,
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
        Ok(user) => {
            let url = format!("/admin/users/{}", user.id);
            reveal::done(&state, &me, &form, &url, "created").await
        }
        Err(e) if is_user_error(&e) => {
            reveal::release(&state, &me, &form).await?;
            let errors = FieldErrors::from_domain(&e, "username");
            users_page(&state, &me, None, None, Some((errors, &form))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub struct ActivityRow {
    pub at: String,
    pub action: String,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    l: Layout,
    error: Option<String>,
    u: UserRow,
    tokens: Vec<TokenRow>,
    activity: Vec<ActivityRow>,
}

async fn user_page(
    state: &AppState,
    me: &SignedIn,
    id: uuid::Uuid,
    notice: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let user = principals::get_user(&state.db.read, id).await?;
    let filter = TokenFilter {
        owner_id: Some(id),
        kind: Some(TokenKind::Personal),
        ..Default::default()
    };
    let toks = tokens::list(&state.db.read, &filter, PageRequest::default()).await?;
    let events = audit::list(
        &state.db.read,
        &audit::AuditFilter {
            actor: Some(user.username.clone()),
            ..Default::default()
        },
        PageRequest::parse(Some("10"), None)?,
    )
    .await?;
    let status = crate::web::page::refused_if(&error);
    render_status(
        status,
        &UserPage {
            l: Layout::new(me, "users").with_notice(notice),
            error,
            u: UserRow::new(&user, me),
            tokens: toks.items.iter().map(TokenRow::from).collect(),
            activity: events
                .items
                .iter()
                .map(|e| ActivityRow {
                    at: super::audit::fmt_seconds(e.at),
                    action: super::audit::describe_action(&e.action).to_owned(),
                })
                .collect(),
        },
    )
}

pub(super) async fn user(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    user_page(&state, &me, id, query(&req)?.get("notice"), None).await
}

/// A change that takes something away from a person: to oneself it is
/// refused (another administrator has to do it).
fn refuse_self(me: &SignedIn, id: uuid::Uuid, op: &str, value: &str) -> Option<String> {
    let takes_away = matches!((op, value), ("role", "user") | ("enabled", "false"));
    (takes_away && id == me.session.principal.id).then(|| {
        "You cannot remove your own administrator role or disable your own account: ask another administrator to do it.".to_owned()
    })
}

/// The confirmation page of a role change or a disable (a GET form leads here).
pub(super) async fn user_change_page(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let q = query(&req)?;
    let user = principals::get_user(&state.db.read, id).await?;
    let (op, value) = match (q.get("op"), q.get("role"), q.get("enabled")) {
        (Some("role"), Some(r @ ("user" | "admin")), _) => ("role", r),
        (Some("enabled"), _, Some(e @ ("true" | "false"))) => ("enabled", e),
        _ => {
            return Err(WebError::BadRequest(
                "Choose a role, or enable or disable the account.".into(),
            ));
        }
    };
    if let Some(message) = refuse_self(&me, id, op, value) {
        return user_page(&state, &me, id, None, Some(message)).await;
    }
    let (title, message, button) = match (op, value) {
        ("role", "admin") => (
            format!("Make “{}” an administrator?", user.username),
            "They can then manage every user, machine user, token, scope and signing key, and read the audit log.",
            "Make administrator",
        ),
        ("role", _) => (
            format!("Remove administrator role from “{}”?", user.username),
            "They keep their own tokens but lose the admin console and admin scopes at once.",
            "Remove administrator role",
        ),
        (_, "false") => (
            format!("Disable “{}”?", user.username),
            "They are signed out everywhere and their tokens stop working at once. You can enable the account again later.",
            "Disable account",
        ),
        _ => (
            format!("Enable “{}”?", user.username),
            "They can sign in again; their tokens that have not expired or been revoked work again.",
            "Enable account",
        ),
    };
    render(&ConfirmPage {
        l: Layout::new(&me, "users"),
        title,
        message: message.into(),
        action: format!("/admin/users/{id}"),
        button,
        cancel: format!("/admin/users/{id}"),
        danger: value == "false" || (op == "role" && value == "user"),
        nonce: None,
        fields: vec![("op".into(), op.into()), (op.into(), value.into())],
    })
}

pub(super) async fn user_update(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let op = form.get("op").unwrap_or("");
    if let Some(message) = refuse_self(&me, id, op, form.get(op).unwrap_or("")) {
        return user_page(&state, &me, id, None, Some(message)).await;
    }
    let (patch, notice) = match op {
        "role" => {
            let role = Role::parse(form.get("role").unwrap_or(""))?;
            let notice = if role == Role::Admin {
                "role-admin"
            } else {
                "role-user"
            };
            (
                principals::UserPatch {
                    role: Some(role),
                    ..Default::default()
                },
                notice,
            )
        }
        "enabled" => {
            let enabled = match form.get("enabled") {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(WebError::BadRequest("enabled must be true or false".into())),
            };
            (
                principals::UserPatch {
                    enabled: Some(enabled),
                    ..Default::default()
                },
                if enabled { "enabled" } else { "disabled" },
            )
        }
        "password" => (
            principals::UserPatch {
                password: Some(form.get("password").unwrap_or("").to_owned()),
                ..Default::default()
            },
            "password",
        ),
        _ => return Err(WebError::BadRequest("unknown change".into())),
    };
    match principals::update_user(&state.db, &me.actor(), id, patch).await {
        Ok(_) => Ok(crate::web::page::see_other(&format!(
            "/admin/users/{id}?notice={notice}"
        ))),
        Err(e) if is_user_error(&e) => {
            let message = WebError::Domain(e).message();
            user_page(&state, &me, id, None, Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}
