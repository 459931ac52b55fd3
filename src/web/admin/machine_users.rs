//! Machine users: the list, creation, the detail page (edit, enable,
//! client credentials, delete), client secrets and tokens issued for them.

use crate::secret::Secret;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::shared::is_user_error;
use crate::{
    domain::{
        PageRequest, TokenKind, is_admin_scope,
        issuance::{Issued, Request, issue},
        principals, scopes,
        tokens::{self, NewToken, TokenFilter},
    },
    http::errors::WebError,
    state::AppState,
    web::{
        page::{
            FormData, Layout, ago, fmt_opt, fmt_time, next_link, parse_id, query, render,
            render_status, see_other,
        },
        reveal::{self, Reveal},
        session::{SignedIn, check_csrf},
        views::{
            ConfirmPage, ScopeChoice, TokenRow, lifetime_from, presets, scope_choices, token_reveal,
        },
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
    nonce: String,
}

pub(super) async fn machine_user_new_page(
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
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
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
                    error: Some(WebError::Domain(e).message()),
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

pub struct SecretRow {
    pub id: String,
    /// `tsc_DEBK…xQgw`, or empty for a secret made before hints were recorded.
    pub hint: String,
    pub created: String,
    pub last_used: String,
    /// When a replaced secret stops working ("" for a current one).
    pub expires: String,
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
}

pub(super) async fn machine_user_page(
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
        token_scopes: scope_choices(state, &owner, &[]).await?,
        managers: m
            .managers
            .iter()
            .map(|p| p.username.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        orphaned: m.orphaned,
        can_add_secret: m.secrets.len() < principals::MAX_ACTIVE_SECRETS,
        secrets: m
            .secrets
            .iter()
            .map(|s| SecretRow {
                id: s.id.to_string(),
                hint: s.hint.clone().unwrap_or_default(),
                created: format!("{} ({})", fmt_time(s.created_at), ago(s.created_at)),
                last_used: fmt_opt(s.last_used_at),
                expires: s.expires_at.map(fmt_time).unwrap_or_default(),
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
        secret_nonce: reveal::nonce(state, me).await?,
        token_nonce: reveal::nonce(state, me).await?,
        token_url: token_endpoint(state),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(status, &page)
}

pub(super) async fn machine_user(
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

pub(super) async fn machine_user_update(
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

/// Replaces the managers with the usernames typed (comma or space separated).
pub(super) async fn machine_user_managers(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
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

pub(super) async fn machine_user_cc(
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

pub(super) async fn machine_user_delete_page(
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
        nonce: None,
        fields: vec![],
    })
}

pub(super) async fn machine_user_delete(
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

pub(super) async fn secret_create(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let m = principals::get_machine_user(&state.db.read, id).await?;
    let secret = reveal::unless_refused(
        &state,
        &me,
        &form,
        principals::create_secret(&state.db, &me.context(state.policy()), id, None).await,
    )
    .await?;
    let mut facts = vec![
        ("Client ID".to_owned(), m.username.clone()),
        ("Token endpoint".to_owned(), token_endpoint(&state)),
        ("Created".to_owned(), fmt_time(secret.created_at)),
        ("Listed as".to_owned(), secret.hint.clone()),
    ];
    if !m.client_credentials.enabled {
        facts.push((
            "Note".to_owned(),
            "Client credentials are off for this machine user: turn them on before using the secret at the token endpoint.".into(),
        ));
    }
    let page = Reveal {
        title: format!("Client secret for “{}”", m.username),
        what: "client secret".into(),
        facts,
        done_url: format!("/admin/machine-users/{id}"),
        done_label: "Back to the machine user".into(),
        section: "machine-users".into(),
        item_url: None,
        example: Some(format!(
            "curl -u '{}:THE_SECRET' -d grant_type=client_credentials {}",
            m.username,
            token_endpoint(&state)
        )),
    };
    reveal::reveal(
        &state,
        &me,
        &form,
        page,
        Secret::new(secret.client_secret.into_exposed()),
    )
    .await
}

/// The token endpoint's full URL, for the examples on the pages.
fn token_endpoint(state: &AppState) -> String {
    format!(
        "{}/oauth2/token",
        state.settings.public_url.trim_end_matches('/')
    )
}

pub(super) async fn secret_delete_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let id = parse_id(&path.0)?;
    let secret_id = parse_id(&path.1)?;
    let m = principals::get_machine_user(&state.db.read, id).await?;
    let secret = m
        .secrets
        .iter()
        .find(|s| s.id == secret_id)
        .ok_or(WebError::NotFound)?;
    let name = secret.hint.clone().unwrap_or_else(|| "this secret".into());
    render(&ConfirmPage {
        l: Layout::new(&me, "machine-users"),
        title: format!("Remove client secret {name} of “{}”?", m.username),
        message: format!(
            "Anything that authenticates with it (created {}) stops getting tokens at once. Tokens already issued keep working until they expire. This cannot be undone.",
            fmt_time(secret.created_at)
        ),
        action: format!("/admin/machine-users/{id}/secrets/{secret_id}/delete"),
        button: "Remove secret",
        cancel: format!("/admin/machine-users/{id}"),
        danger: true,
        nonce: None,
        fields: vec![],
    })
}

pub(super) async fn machine_user_disable_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
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

pub(super) async fn secret_delete(
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
    principals::delete_secret(&state.db, &me.context(state.policy()), id, secret).await?;
    Ok(see_other(&format!(
        "/admin/machine-users/{id}?notice=secret-removed"
    )))
}

pub(super) async fn machine_token_create(
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
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let result = match lifetime_from(&form) {
        Ok(lifetime) => {
            let request = Request::Named {
                owner_id: id,
                new: NewToken {
                    audience: form.text("audience").map(str::to_owned),
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
        Ok(view) => {
            let (mut page, secret) = token_reveal(
                &view,
                format!(
                    "Machine token “{}” for “{}”",
                    view.name, view.owner.username
                ),
                format!("/admin/machine-users/{id}"),
                "Back to the machine user",
                "machine-users",
            );
            page.item_url = Some(format!("/admin/tokens/{}", view.id));
            reveal::reveal(&state, &me, &form, page, secret).await
        }
        Err(WebError::Domain(e)) if is_user_error(&e) => {
            reveal::release(&state, &me, &form).await?;
            machine_user_page(&state, &me, id, None, Some(WebError::Domain(e).message())).await
        }
        Err(e) => Err(e),
    }
}
