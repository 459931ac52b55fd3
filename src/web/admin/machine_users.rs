//! Machine users: the list, creation, the detail page (edit, enable,
//! client credentials, delete), client secrets and tokens issued for them.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::shared::{TokenForm, is_user_error};
use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::{
        PageRequest, TokenKind, is_admin_scope, principals, scopes,
        tokens::{self, TokenFilter},
    },
    http::errors::WebError,
    state::AppState,
    web::{
        fields::FieldErrors,
        page::{
            FormData, Layout, fmt_time, next_link, parse_id, query, render, render_status,
            see_other,
        },
        reveal,
        session::SignedIn,
        views::{ConfirmPage, ScopeChoice, SecretRow, TokenRow, presets, scope_choices},
    },
};

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

pub(super) async fn machine_users(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
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
            description: for_machine(&s.description),
            name: s.name,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin_machine_user_new.html")]
struct MachineUserNewPage {
    l: Layout,
    errors: FieldErrors,
    /// The same refusals, for the fields the edit form shares.
    detail_errors: FieldErrors,
    username: String,
    display_name: String,
    description: String,
    contact_email: String,
    scopes: Vec<ScopeChoice>,
    nonce: String,
}

pub(super) async fn machine_user_new_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    render(&MachineUserNewPage {
        l: Layout::new(&me, "machine-users"),
        errors: FieldErrors::default(),
        detail_errors: FieldErrors::default(),
        username: String::new(),
        display_name: String::new(),
        description: String::new(),
        contact_email: String::new(),
        scopes: machine_scope_choices(&state, &[]).await?,
        nonce: reveal::nonce(&state, &me).await?,
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

pub(super) async fn machine_user_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let mut input = machine_input(&form);
    input.username = Some(form.get("username").unwrap_or("").trim().to_owned());
    match principals::create_machine_user(&state.db, &me.actor(), input).await {
        Ok(m) => {
            let url = format!("/admin/machine-users/{}", m.id);
            reveal::done(&state, &me, &form, &url, "created").await
        }
        Err(e) if is_user_error(&e) => {
            reveal::release(&state, &me, &form).await?;
            render_status(
                StatusCode::BAD_REQUEST,
                &MachineUserNewPage {
                    l: Layout::new(&me, "machine-users"),
                    errors: FieldErrors::from_domain(&e, "username"),
                    detail_errors: FieldErrors::from_domain(&e, "username"),
                    username: form.get("username").unwrap_or("").to_owned(),
                    display_name: form.get("display_name").unwrap_or("").to_owned(),
                    description: form.get("description").unwrap_or("").to_owned(),
                    contact_email: form.get("contact_email").unwrap_or("").to_owned(),
                    scopes: machine_scope_choices(&state, &form.all("scopes")).await?,
                    nonce: form.get("nonce").unwrap_or("").to_owned(),
                },
            )
        }
        Err(e) => Err(e.into()),
    }
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
    managers: String,
    orphaned: bool,
    secrets: Vec<SecretRow>,
    can_add_secret: bool,
    tokens: Vec<TokenRow>,
    presets: Vec<u32>,
    max_days: i64,
    /// The registered JWK Set, pretty-printed ("" when there is none).
    jwks: String,
    key_count: usize,
    secret_nonce: String,
    token_nonce: String,
    token_url: String,
    /// The machine-token form: what was typed and its refusals.
    t: TokenForm,
    errors: FieldErrors,
    /// The details form shows its refusal at the top (`error`).
    detail_errors: FieldErrors,
}

pub(super) async fn machine_user_page(
    state: &AppState,
    me: &SignedIn,
    id: uuid::Uuid,
    notice: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    machine_user_page_with(state, me, id, notice, error, None).await
}

/// The page; `token_form` is a refused machine-token form to show again
/// with what was typed and its errors.
pub(super) async fn machine_user_page_with(
    state: &AppState,
    me: &SignedIn,
    id: uuid::Uuid,
    notice: Option<&str>,
    error: Option<String>,
    mut token_form: Option<TokenForm>,
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
    // The same maximum issuance applies (`domain::issuance`): the policy's.
    let max = state.policy().max_token_lifetime;
    let jwks =
        crate::domain::client_keys::get(&state.db.read, &me.context(state.policy()), id).await?;
    let key_count = jwks["keys"].as_array().map_or(0, Vec::len);
    let page = MachineUserPage {
        jwks: if key_count == 0 {
            String::new()
        } else {
            serde_json::to_string_pretty(&jwks).unwrap_or_default()
        },
        key_count,
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
        token_scopes: {
            let offered = scope_choices(state, &owner, &[]).await?;
            let chosen = match token_form.as_ref().and_then(|t| t.scopes.clone()) {
                Some(chosen) => chosen,
                None => offered.iter().map(|s| s.name.clone()).collect(),
            };
            offered
                .into_iter()
                .map(|s| ScopeChoice {
                    checked: chosen.contains(&s.name),
                    description: for_machine(&s.description),
                    name: s.name,
                })
                .collect()
        },
        managers: m
            .managers
            .iter()
            .map(|p| p.username.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        orphaned: m.orphaned,
        can_add_secret: m.secrets.len() < principals::MAX_ACTIVE_SECRETS,
        secrets: m.secrets.iter().map(SecretRow::from).collect(),
        tokens: toks
            .items
            .iter()
            .filter(|t| t.kind == TokenKind::Machine)
            .map(TokenRow::from)
            .collect(),
        presets: presets(max),
        max_days: max / 86400,
        secret_nonce: reveal::nonce(state, me).await?,
        token_nonce: match &token_form {
            Some(t) => t.nonce.clone(),
            None => reveal::nonce(state, me).await?,
        },
        token_url: token_endpoint(state),
        errors: token_form
            .as_mut()
            .map(|t| std::mem::take(&mut t.errors))
            .unwrap_or_default(),
        t: token_form.take().unwrap_or_default(),
        detail_errors: FieldErrors::default(),
    };
    let status = if error.is_some() || !page.errors.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(status, &page)
}

pub(super) async fn machine_user(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
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

pub(super) async fn machine_user_update(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    apply_machine_update(&state, &me, id, machine_input(&form)).await
}

/// Replaces the managers with the usernames typed (comma or space separated).
pub(super) async fn machine_user_managers(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let names = form
        .get("managers")
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let input = principals::MachineUserInput {
        managers: Some(names),
        ..Default::default()
    };
    apply_machine_update(&state, &me, id, input).await
}

pub(super) async fn machine_user_enabled(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
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

pub(super) async fn machine_user_cc(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
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

pub(super) async fn machine_user_delete_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
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
        nonce: None,
        fields: vec![],
    })
}

pub(super) async fn machine_user_delete(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    principals::delete_machine_user(&state.db, &me.actor(), id).await?;
    Ok(see_other("/admin/machine-users?notice=deleted"))
}

/// A scope's description worded for a machine user: "Read your own
/// profile" is its own profile here, not the admin's.
fn for_machine(description: &str) -> String {
    description
        .replace("your own", "its own")
        .replace("Your own", "Its own")
        .replace("your ", "its ")
}

/// The token endpoint's full URL, for the examples on the pages.
pub(super) fn token_endpoint(state: &AppState) -> String {
    format!(
        "{}/oauth2/token",
        state.settings.public_url.trim_end_matches('/')
    )
}

pub(super) async fn machine_user_disable_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let m = principals::get_machine_user(&state.db.read, id).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "machine-users"),
        title: format!("Disable machine user “{}”?", m.username),
        message: "It can no longer get tokens, and its existing tokens stop working at their next use. You can enable it again later.".into(),
        action: format!("/admin/machine-users/{id}/enabled"),
        button: "Disable machine user",
        cancel: format!("/admin/machine-users/{id}"),
        danger: true,
        nonce: None,
        fields: vec![("enabled".into(), "false".into())],
    })
}
