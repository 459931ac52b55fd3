//! The admin console: machine users, users, every token, scopes, signing keys
//! and the audit log. Every handler starts with the admin check.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use time::Date;

use super::{
    page::{
        FormData, Layout, fmt_opt, fmt_time, next_link, parse_id, query, relative, render,
        render_status, see_other,
    },
    session::{SignedIn, check_csrf},
    views::{
        ConfirmPage, ScopeChoice, SecretPage, TokenRow, lifetime_from, presets, scope_choices,
        secret_response,
    },
};
use crate::{
    domain::{
        self, PageRequest, Role, TokenKind, TokenStatus, audit, is_admin_scope,
        issuance::{Issued, Request, issue},
        principals, scopes, signing_keys,
        tokens::{self, Access, NewToken, TokenFilter},
    },
    http::errors::WebError,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin_home))
        .route("/admin/machine-users", web::get().to(machine_users))
        .route(
            "/admin/machine-users/new",
            web::get().to(machine_user_new_page),
        )
        .route(
            "/admin/machine-users/new",
            web::post().to(machine_user_create),
        )
        .route("/admin/machine-users/{id}", web::get().to(machine_user))
        .route(
            "/admin/machine-users/{id}",
            web::post().to(machine_user_update),
        )
        .route(
            "/admin/machine-users/{id}/enabled",
            web::post().to(machine_user_enabled),
        )
        .route(
            "/admin/machine-users/{id}/client-credentials",
            web::post().to(machine_user_cc),
        )
        .route(
            "/admin/machine-users/{id}/delete",
            web::get().to(machine_user_delete_page),
        )
        .route(
            "/admin/machine-users/{id}/delete",
            web::post().to(machine_user_delete),
        )
        .route(
            "/admin/machine-users/{id}/secrets",
            web::post().to(secret_create),
        )
        .route(
            "/admin/machine-users/{id}/secrets/{secret}/delete",
            web::post().to(secret_delete),
        )
        .route(
            "/admin/machine-users/{id}/tokens",
            web::post().to(machine_token_create),
        )
        .route("/admin/users", web::get().to(users))
        .route("/admin/users", web::post().to(user_create))
        .route("/admin/users/{id}", web::post().to(user_update))
        .route("/admin/tokens", web::get().to(all_tokens))
        .route("/admin/tokens/{id}", web::get().to(admin_token))
        .route(
            "/admin/tokens/{id}/revoke",
            web::get().to(admin_revoke_page),
        )
        .route("/admin/tokens/{id}/revoke", web::post().to(admin_revoke))
        .route("/admin/scopes", web::get().to(scopes_page))
        .route("/admin/scopes", web::post().to(scope_create))
        .route("/admin/scopes/{name}", web::post().to(scope_update))
        .route(
            "/admin/scopes/{name}/delete",
            web::get().to(scope_delete_page),
        )
        .route("/admin/scopes/{name}/delete", web::post().to(scope_delete))
        .route("/admin/keys", web::get().to(keys_page))
        .route("/admin/keys/rotate", web::post().to(keys_rotate))
        .route("/admin/audit", web::get().to(audit_page));
}

async fn admin_home(me: SignedIn) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    Ok(see_other("/admin/machine-users"))
}

// ---------------------------------------------------------------- chart

// ---------------------------------------------------------------- machine users

pub struct MachineRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub scopes: String,
    pub enabled: bool,
    pub cc_enabled: bool,
    pub secrets: usize,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin_machine_users.html")]
struct MachineUsersPage {
    l: Layout,
    rows: Vec<MachineRow>,
    next: Option<String>,
}

async fn machine_users(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let q = query(&req)?;
    let page = PageRequest::parse(Some("50"), q.text("cursor"))?;
    let found = principals::list_machine_users(&state.db.read, page).await?;
    render(&MachineUsersPage {
        l: Layout::new(&me, "machine-users").with_notice(q.get("notice")),
        rows: found
            .items
            .iter()
            .map(|m| MachineRow {
                id: m.id.to_string(),
                username: m.username.clone(),
                display_name: m.display_name.clone(),
                scopes: m.scopes.join(" "),
                enabled: m.enabled,
                cc_enabled: m.client_credentials.enabled,
                secrets: m.secrets.len(),
                created: fmt_time(m.created_at),
            })
            .collect(),
        next: next_link("/admin/machine-users", &[], found.next_cursor.as_ref()),
    })
}

/// Scopes a machine user may be allowed: every scope except `admin:*`.
async fn machine_scope_choices(
    state: &AppState,
    chosen: &[String],
) -> Result<Vec<ScopeChoice>, WebError> {
    Ok(scopes::list(&state.db.read)
        .await?
        .into_iter()
        .filter(|s| !is_admin_scope(&s.name))
        .map(|s| ScopeChoice {
            checked: chosen.contains(&s.name),
            name: s.name,
            description: s.description,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin_machine_user_new.html")]
struct MachineUserNewPage {
    l: Layout,
    error: Option<String>,
    username: String,
    display_name: String,
    description: String,
    contact_email: String,
    scopes: Vec<ScopeChoice>,
}

async fn machine_user_new_page(
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    render(&MachineUserNewPage {
        l: Layout::new(&me, "machine-users"),
        error: None,
        username: String::new(),
        display_name: String::new(),
        description: String::new(),
        contact_email: String::new(),
        scopes: machine_scope_choices(&state, &[]).await?,
    })
}

fn machine_input(form: &FormData) -> principals::MachineUserInput {
    principals::MachineUserInput {
        username: None,
        display_name: Some(form.get("display_name").unwrap_or("").to_owned()),
        description: Some(form.get("description").unwrap_or("").to_owned()),
        contact_email: Some(form.get("contact_email").unwrap_or("").to_owned()),
        scopes: Some(form.all("scopes")),
        ..Default::default()
    }
}

fn is_user_error(e: &domain::Error) -> bool {
    matches!(
        e,
        domain::Error::Invalid { .. } | domain::Error::Conflict(_)
    )
}

async fn machine_user_create(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let mut input = machine_input(&form);
    input.username = Some(form.get("username").unwrap_or("").trim().to_owned());
    match principals::create_machine_user(&state.db, &me.actor(), input).await {
        Ok(m) => Ok(see_other(&format!(
            "/admin/machine-users/{}?notice=created",
            m.id
        ))),
        Err(e) if is_user_error(&e) => render_status(
            StatusCode::BAD_REQUEST,
            &MachineUserNewPage {
                l: Layout::new(&me, "machine-users"),
                error: Some(WebError::Domain(e).message()),
                username: form.get("username").unwrap_or("").to_owned(),
                display_name: form.get("display_name").unwrap_or("").to_owned(),
                description: form.get("description").unwrap_or("").to_owned(),
                contact_email: form.get("contact_email").unwrap_or("").to_owned(),
                scopes: machine_scope_choices(&state, &form.all("scopes")).await?,
            },
        ),
        Err(e) => Err(e.into()),
    }
}

pub struct SecretRow {
    pub id: String,
    /// `tsc_DEBK…xQgw`, or empty for a secret made before hints were recorded.
    pub hint: String,
    pub created: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "admin_machine_user.html")]
struct MachineUserPage {
    l: Layout,
    error: Option<String>,
    id: String,
    username: String,
    display_name: String,
    description: String,
    contact_email: String,
    enabled: bool,
    cc_enabled: bool,
    ttl: i32,
    created: String,
    created_by: String,
    scopes: Vec<ScopeChoice>,
    token_scopes: Vec<ScopeChoice>,
    secrets: Vec<SecretRow>,
    can_add_secret: bool,
    tokens: Vec<TokenRow>,
    presets: Vec<u32>,
    max_days: i64,
}

async fn machine_user_page(
    state: &AppState,
    me: &SignedIn,
    id: uuid::Uuid,
    notice: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let m = principals::get_machine_user(&state.db.read, id).await?;
    let owner = principals::find(&state.db.read, id)
        .await?
        .ok_or(WebError::NotFound)?;
    // Machine tokens only, filtered in the query: the client-credentials
    // tokens it mints would otherwise fill the page.
    let filter = TokenFilter {
        owner_id: Some(id),
        kind: Some(TokenKind::Machine),
        ..Default::default()
    };
    let toks = tokens::list(&state.db.read, &filter, PageRequest::default()).await?;
    let max = state.settings.max_token_lifetime.seconds.min(365 * 86400);
    let page = MachineUserPage {
        l: Layout::new(me, "machine-users").with_notice(notice),
        error: error.clone(),
        id: m.id.to_string(),
        username: m.username.clone(),
        display_name: m.display_name.clone(),
        description: m.description.clone(),
        contact_email: m.contact_email.clone(),
        enabled: m.enabled,
        cc_enabled: m.client_credentials.enabled,
        ttl: m.client_credentials.access_token_ttl_minutes,
        created: fmt_time(m.created_at),
        created_by: m
            .created_by
            .as_ref()
            .map(|p| p.username.clone())
            .unwrap_or_else(|| "command line".into()),
        scopes: machine_scope_choices(state, &m.scopes).await?,
        token_scopes: scope_choices(state, &owner, &[]).await?,
        can_add_secret: m.secrets.len() < principals::MAX_ACTIVE_SECRETS,
        secrets: m
            .secrets
            .iter()
            .map(|s| SecretRow {
                id: s.id.to_string(),
                hint: s.hint.clone().unwrap_or_default(),
                created: format!("{} ({})", fmt_time(s.created_at), relative(s.created_at)),
                last_used: fmt_opt(s.last_used_at),
            })
            .collect(),
        tokens: toks
            .items
            .iter()
            .filter(|t| t.kind == TokenKind::Machine)
            .map(TokenRow::from)
            .collect(),
        presets: presets(max),
        max_days: max / 86400,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(status, &page)
}

async fn machine_user(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = parse_id(&path)?;
    machine_user_page(&state, &me, id, query(&req)?.get("notice"), None).await
}

/// Runs an update; a validation error re-renders the page with the message.
async fn apply_machine_update(
    state: &AppState,
    me: &SignedIn,
    id: uuid::Uuid,
    input: principals::MachineUserInput,
) -> Result<HttpResponse, WebError> {
    match principals::update_machine_user(&state.db, &me.actor(), id, input).await {
        Ok(_) => Ok(see_other(&format!(
            "/admin/machine-users/{id}?notice=updated"
        ))),
        Err(e) if is_user_error(&e) => {
            machine_user_page(state, me, id, None, Some(WebError::Domain(e).message())).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn machine_user_update(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    apply_machine_update(&state, &me, id, machine_input(&form)).await
}

async fn machine_user_enabled(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    let enabled = match form.get("enabled") {
        Some("true") => true,
        Some("false") => false,
        _ => return Err(WebError::BadRequest("enabled must be true or false".into())),
    };
    let input = principals::MachineUserInput {
        enabled: Some(enabled),
        ..Default::default()
    };
    apply_machine_update(&state, &me, id, input).await
}

async fn machine_user_cc(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    let ttl = form.text("ttl").unwrap_or("");
    let Ok(ttl) = ttl.parse::<i64>() else {
        return machine_user_page(
            &state,
            &me,
            id,
            None,
            Some("access-token lifetime: must be a whole number of minutes from 1 to 1440".into()),
        )
        .await;
    };
    let input = principals::MachineUserInput {
        cc_enabled: Some(form.checked("cc_enabled")),
        cc_ttl_minutes: Some(ttl),
        ..Default::default()
    };
    apply_machine_update(&state, &me, id, input).await
}

async fn machine_user_delete_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = parse_id(&path)?;
    let m = principals::get_machine_user(&state.db.read, id).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "machine-users"),
        title: format!("Delete machine user “{}”?", m.username),
        message: "Its client secrets and every token it holds stop working at once and are deleted with it. The audit log keeps the record. This cannot be undone.".into(),
        action: format!("/admin/machine-users/{id}/delete"),
        button: "Delete machine user",
        cancel: format!("/admin/machine-users/{id}"),
        danger: true,
    })
}

async fn machine_user_delete(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    principals::delete_machine_user(&state.db, &me.actor(), id).await?;
    Ok(see_other("/admin/machine-users?notice=deleted"))
}

async fn secret_create(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    let m = principals::get_machine_user(&state.db.read, id).await?;
    let secret = principals::create_secret(&state.db, &me.actor(), id).await?;
    let mut facts = vec![
        ("Client ID", m.username.clone()),
        ("Created", fmt_time(secret.created_at)),
        ("Listed as", secret.hint.clone()),
    ];
    if !m.client_credentials.enabled {
        facts.push((
            "Note",
            "Client credentials are off for this machine user: turn them on before using the secret at /oauth2/token.".into(),
        ));
    }
    secret_response(&SecretPage {
        l: Layout::new(&me, "machine-users"),
        title: format!("Client secret for “{}”", m.username),
        what: "client secret",
        secret: secret.client_secret.into_exposed(),
        facts,
        back_url: format!("/admin/machine-users/{id}"),
        back_label: "Back to the machine user",
    })
}

async fn secret_delete(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path.0)?;
    let secret = parse_id(&path.1)?;
    principals::delete_secret(&state.db, &me.actor(), id, secret).await?;
    Ok(see_other(&format!(
        "/admin/machine-users/{id}?notice=secret-removed"
    )))
}

async fn machine_token_create(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    // Only machine users: this form must not issue a person's token.
    principals::get_machine_user(&state.db.read, id).await?;
    let result = match lifetime_from(&form) {
        Ok(lifetime) => {
            let request = Request::Named {
                owner_id: id,
                new: NewToken {
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
        Ok(view) => secret_response(&SecretPage {
            l: Layout::new(&me, "machine-users"),
            title: format!(
                "Machine token “{}” for “{}”",
                view.name, view.owner.username
            ),
            what: "machine token",
            secret: view.exposed_token().to_owned(),
            facts: vec![
                ("Name", view.name.clone()),
                ("Scopes", view.scopes.join(" ")),
                ("Expires", fmt_time(view.expires_at)),
                ("Listed as", view.hint.clone().unwrap_or_default()),
            ],
            back_url: format!("/admin/machine-users/{id}"),
            back_label: "Back to the machine user",
        }),
        Err(WebError::Domain(e)) if is_user_error(&e) => {
            machine_user_page(&state, &me, id, None, Some(WebError::Domain(e).message())).await
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- users

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

async fn users(
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

async fn user_create(
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

async fn user_update(
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

// ---------------------------------------------------------------- all tokens

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct AllTokensPage {
    l: Layout,
    rows: Vec<TokenRow>,
    owner: String,
    kind: String,
    status: String,
    q: String,
    next: Option<String>,
}

async fn all_tokens(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let q = query(&req)?;
    let filter = TokenFilter {
        owner: q.text("owner").map(str::to_owned),
        kind: q.text("kind").map(TokenKind::parse).transpose()?,
        status: q.text("status").map(TokenStatus::parse).transpose()?,
        q: q.text("q").map(str::to_owned),
        ..Default::default()
    };
    let page = PageRequest::parse(Some("50"), q.text("cursor"))?;
    let found = tokens::list(&state.db.read, &filter, page).await?;
    let owner = q.text("owner").unwrap_or("").to_owned();
    let kind = filter.kind.map(|k| k.as_str()).unwrap_or("").to_owned();
    let status = filter.status.map(|s| s.as_str()).unwrap_or("").to_owned();
    let text = q.text("q").unwrap_or("").to_owned();
    render(&AllTokensPage {
        l: Layout::new(&me, "all-tokens").with_notice(q.get("notice")),
        rows: found.items.iter().map(TokenRow::from).collect(),
        next: next_link(
            "/admin/tokens",
            &[
                ("owner", &owner),
                ("kind", &kind),
                ("status", &status),
                ("q", &text),
            ],
            found.next_cursor.as_ref(),
        ),
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
}

async fn admin_token(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Any).await?;
    render(&AdminTokenPage {
        l: Layout::new(&me, "all-tokens").with_notice(query(&req)?.get("notice")),
        t: TokenRow::from(&view),
        admin_view: true,
    })
}

async fn admin_revoke_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Any).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "all-tokens"),
        title: format!("Revoke “{}” of {}?", view.name, view.owner.username),
        message: "Anything using this token loses access at once. This cannot be undone; the token stays listed as revoked.".into(),
        action: format!("/admin/tokens/{id}/revoke"),
        button: "Revoke token",
        cancel: format!("/admin/tokens/{id}"),
        danger: true,
    })
}

async fn admin_revoke(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    tokens::revoke(&state.db, &me.actor(), id, Access::Any).await?;
    Ok(see_other(&format!("/admin/tokens/{id}?notice=revoked")))
}

// ---------------------------------------------------------------- scopes

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
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
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

async fn scopes_page(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
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

async fn scope_create(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
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

async fn scope_update(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
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

async fn scope_delete_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let scope = scopes::get(&state.db.read, &path).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "scopes"),
        title: format!("Delete scope “{}”?", scope.name),
        message: "Tokens can no longer be given this scope. A scope that a machine user is allowed or an active token holds cannot be deleted: the page will say which.".into(),
        action: format!("/admin/scopes/{}/delete", scope.name),
        button: "Delete scope",
        cancel: "/admin/scopes".into(),
        danger: true,
    })
}

async fn scope_delete(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
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

// ---------------------------------------------------------------- keys

pub struct KeyRow {
    pub kid: String,
    pub alg: &'static str,
    pub active: bool,
    pub created: String,
    pub retired: String,
    pub retires_after: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    l: Layout,
    rows: Vec<KeyRow>,
    alg: &'static str,
}

async fn keys_page(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let rows = signing_keys::list(&state.db.read)
        .await
        .map_err(domain::Error::Internal)?
        .into_iter()
        .map(|k| KeyRow {
            kid: k.kid,
            alg: k.alg.as_str(),
            active: k.state == signing_keys::KeyState::Active,
            created: fmt_time(k.created_at),
            retired: fmt_opt(k.retired_at),
            retires_after: k.retires_after.map(fmt_time).unwrap_or_default(),
        })
        .collect();
    render(&KeysPage {
        l: Layout::new(&me, "keys").with_notice(query(&req)?.get("notice")),
        rows,
        alg: state.settings.signing_alg.as_str(),
    })
}

async fn keys_rotate(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    signing_keys::rotate(
        &state.db,
        &state.master,
        state.settings.signing_alg,
        &me.actor(),
    )
    .await
    .map_err(domain::Error::Internal)?;
    state
        .tokens
        .reload_keys()
        .await
        .map_err(domain::Error::Internal)?;
    Ok(see_other("/admin/keys?notice=rotated"))
}

// ---------------------------------------------------------------- audit

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    l: Layout,
    rows: Vec<AuditRow>,
    actor: String,
    action: String,
    since: String,
    until: String,
    next: Option<String>,
}

/// A `YYYY-MM-DD` day in years 1 to 9999 (a signed year such as `-4800`
/// parses, but PostgreSQL cannot compare a timestamp that far back: a 500).
fn parse_day(raw: Option<&str>, field: &'static str) -> Result<Option<Date>, WebError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    raw.map(|r| {
        Date::parse(r, &fmt)
            .ok()
            .filter(|d| (1..=9999).contains(&d.year()))
            .ok_or_else(|| {
                WebError::Domain(domain::Error::invalid(
                    field,
                    "is not a date (YYYY-MM-DD, years 1 to 9999)",
                ))
            })
    })
    .transpose()
}

async fn audit_page(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let q = query(&req)?;
    let since = parse_day(q.text("since"), "since")?;
    let until = parse_day(q.text("until"), "until")?;
    let filter = audit::AuditFilter {
        actor: q.text("actor").map(str::to_owned),
        action: q.text("action").map(str::to_owned),
        since: since.map(|d| d.midnight().assume_utc()),
        // "until" includes the whole day.
        until: until.map(|d| d.with_time(time::macros::time!(23:59:59)).assume_utc()),
    };
    let page = PageRequest::parse(Some("50"), q.text("cursor"))?;
    let found = audit::list(&state.db.read, &filter, page).await?;
    let actor = q.text("actor").unwrap_or("").to_owned();
    let action = q.text("action").unwrap_or("").to_owned();
    let since_s = q.text("since").unwrap_or("").to_owned();
    let until_s = q.text("until").unwrap_or("").to_owned();
    render(&AuditPage {
        l: Layout::new(&me, "audit"),
        rows: found
            .items
            .iter()
            .map(|e| AuditRow {
                at: fmt_time(e.at),
                actor: e
                    .actor
                    .as_ref()
                    .map(|a| a.username.clone())
                    .unwrap_or_else(|| "system".into()),
                action: e.action.clone(),
                target: format!(
                    "{} {}",
                    e.target_type,
                    e.target_id.clone().unwrap_or_default()
                ),
                ip: e.ip.clone().unwrap_or_default(),
                details: if e.details.as_object().is_some_and(|m| m.is_empty()) {
                    String::new()
                } else {
                    e.details.to_string()
                },
            })
            .collect(),
        next: next_link(
            "/admin/audit",
            &[
                ("actor", &actor),
                ("action", &action),
                ("since", &since_s),
                ("until", &until_s),
            ],
            found.next_cursor.as_ref(),
        ),
        actor,
        action,
        since: since_s,
        until: until_s,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Audit filter dates: a day in years 1 to 9999, or a message naming
        /// the field; "until" then reaches the day's last second without overflow.
        #[test]
        fn any_day_text_is_a_day_or_names_its_field(raw in "-?[0-9]{0,6}-[0-9]{0,3}-[0-9]{0,3}|.{0,12}") {
            match parse_day(Some(&raw), "until") {
                Ok(Some(d)) => {
                    prop_assert!((1..=9999).contains(&d.year()));
                    let _ = d.with_time(time::macros::time!(23:59:59)).assume_utc();
                }
                Ok(None) => prop_assert!(false, "a value was given"),
                Err(e) => prop_assert!(e.message().starts_with("until"), "{}", e.message()),
            }
        }
    }
}
