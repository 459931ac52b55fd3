//! The dashboard and the personal-access-token pages every user has.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use time::Duration;

use super::{
    FormData, Layout, SignedIn, check_csrf, fmt_opt, fmt_time, next_link, parse_id, query,
    relative, render, render_status, see_other, session,
};
use crate::{
    app::AppState,
    domain::{
        self, PageRequest, TokenStatus, principals, scopes, stats,
        tokens::{self, Access, Lifetime, NewToken, TokenFilter, TokenView},
    },
    http::errors::WebError,
    storage::entities::principal,
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

/// A token as a table row or detail page shows it: every value a string.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: &'static str,
    pub owner: String,
    pub owner_is_machine: bool,
    pub owner_id: String,
    pub scopes: String,
    pub status: &'static str,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub expires_rel: String,
    /// Active and expiring within 14 days.
    pub warn: bool,
    pub last_used: String,
    pub last_used_ip: String,
    pub revoked: String,
    pub revoked_by: String,
    pub replaced_by: String,
    pub revoked_flag: bool,
    /// `…xQgw`, or empty for a token issued before hints were recorded.
    pub hint: String,
}

impl From<&TokenView> for TokenRow {
    fn from(t: &TokenView) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            description: t.description.clone(),
            kind: t.kind.as_str(),
            owner: t.owner.username.clone(),
            owner_is_machine: t.owner.kind == domain::PrincipalKind::Machine,
            owner_id: t.owner.id.to_string(),
            scopes: t.scopes.join(" "),
            status: t.status.as_str(),
            created: fmt_time(t.created_at),
            created_by: t
                .created_by
                .as_ref()
                .map(|p| p.username.clone())
                .unwrap_or_else(|| "command line".into()),
            expires: fmt_time(t.expires_at),
            expires_rel: match t.status {
                TokenStatus::Active => format!("expires {}", relative(t.expires_at)),
                TokenStatus::Expired => format!("expired {}", relative(t.expires_at)),
                TokenStatus::Revoked => String::new(),
            },
            warn: t.expires_within(14 * 86400),
            last_used: t
                .last_used_at
                .map(|u| format!("{} ({})", fmt_time(u), relative(u)))
                .unwrap_or_else(|| "never".into()),
            last_used_ip: t.last_used_ip.clone().unwrap_or_default(),
            revoked: fmt_opt(t.revoked_at),
            revoked_by: t
                .revoked_by
                .as_ref()
                .map(|p| p.username.clone())
                .unwrap_or_default(),
            replaced_by: t.replaced_by.map(|u| u.to_string()).unwrap_or_default(),
            revoked_flag: t.status == TokenStatus::Revoked,
            hint: t.hint.clone().unwrap_or_default(),
        }
    }
}

// ---------------------------------------------------------------- dashboard

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    l: Layout,
    expiring: Vec<TokenRow>,
    chart: Option<super::admin::Chart>,
    stale: Vec<(String, String, String)>,
}

pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let Some(me) = session::current(&req, &state).await? else {
        return Ok(see_other("/login"));
    };
    let expiring =
        stats::expiring_tokens(&state.db.read, me.session.principal.id, Duration::days(14)).await?;
    let (chart, stale) = if me.session.is_admin() {
        let issued = stats::tokens_issued_per_day(&state.db.read, 30).await?;
        let validations = super::admin::validations_per_day(&state, 30).await?;
        let stale = stats::stale_secrets(&state.db.read, Duration::days(90))
            .await?
            .into_iter()
            .map(|s| {
                (
                    s.machine_user_id.to_string(),
                    s.username,
                    format!("{} ({})", fmt_time(s.created_at), relative(s.created_at)),
                )
            })
            .collect();
        (Some(super::admin::Chart::new(&issued, &validations)), stale)
    } else {
        (None, Vec::new())
    };
    render(&Dashboard {
        l: Layout::new(&me, "home"),
        expiring: expiring.iter().map(TokenRow::from).collect(),
        chart,
        stale,
    })
}

// ---------------------------------------------------------------- list

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    l: Layout,
    rows: Vec<TokenRow>,
    status: String,
    next: Option<String>,
}

async fn list(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let q = query(&req)?;
    let status = q.text("status").map(TokenStatus::parse).transpose()?;
    let page = PageRequest::parse(Some("50"), q.text("cursor"))?;
    let filter = TokenFilter {
        owner_id: Some(me.session.principal.id),
        status,
        ..Default::default()
    };
    let found = tokens::list(&state.db.read, &filter, page).await?;
    let status_str = status.map(|s| s.as_str()).unwrap_or("").to_owned();
    render(&TokensPage {
        l: Layout::new(&me, "tokens").with_notice(q.get("notice")),
        rows: found.items.iter().map(TokenRow::from).collect(),
        next: next_link(
            "/tokens",
            &[("status", &status_str)],
            found.next_cursor.as_ref(),
        ),
        status: status_str,
    })
}

// ---------------------------------------------------------------- new

/// A scope checkbox.
pub struct ScopeChoice {
    pub name: String,
    pub description: String,
    pub checked: bool,
}

/// The lifetime presets the policy allows, plus "custom".
pub fn presets(max_seconds: i64) -> Vec<u32> {
    [7u32, 30, 60, 90, 365]
        .into_iter()
        .filter(|d| i64::from(*d) * 86400 <= max_seconds)
        .collect()
}

/// The scopes `owner` may hold, ticked where `chosen` has them.
pub async fn scope_choices(
    state: &AppState,
    owner: &principal::Model,
    chosen: &[String],
) -> Result<Vec<ScopeChoice>, WebError> {
    Ok(scopes::list(&state.db.read)
        .await?
        .into_iter()
        .filter(|s| principals::permits(owner, &s.name))
        .map(|s| ScopeChoice {
            checked: chosen.contains(&s.name),
            name: s.name,
            description: s.description,
        })
        .collect())
}

/// The lifetime chosen in a token form: a preset number of days, or a custom
/// date (the token expires at 00:00 UTC that day).
pub fn lifetime_from(form: &FormData) -> Result<Lifetime, WebError> {
    match form.get("lifetime").unwrap_or("") {
        "custom" => {
            let raw = form.text("expires_on").ok_or_else(|| {
                domain::Error::invalid("expiry date", "choose a date for a custom lifetime")
            })?;
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(raw, &fmt)
                .map_err(|_| domain::Error::invalid("expiry date", "is not a date (YYYY-MM-DD)"))?;
            Ok(Lifetime::Until(date.midnight().assume_utc()))
        }
        days => {
            let days: i64 = days.parse().map_err(|_| {
                domain::Error::invalid("lifetime", "choose one of the lifetimes offered")
            })?;
            Ok(Lifetime::Seconds(days.saturating_mul(86400)))
        }
    }
}

#[derive(Template)]
#[template(path = "token_new.html")]
struct NewTokenPage {
    l: Layout,
    error: Option<String>,
    name: String,
    description: String,
    scopes: Vec<ScopeChoice>,
    presets: Vec<u32>,
    lifetime: String,
    expires_on: String,
    max_days: i64,
}

async fn new_page(me: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let max = state.settings.max_token_lifetime.seconds;
    render(&NewTokenPage {
        l: Layout::new(&me, "tokens"),
        error: None,
        name: String::new(),
        description: String::new(),
        scopes: scope_choices(&state, &me.session.principal, &["profile".to_owned()]).await?,
        lifetime: presets(max)
            .into_iter()
            .find(|d| *d == 30)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "custom".into()),
        presets: presets(max),
        expires_on: String::new(),
        max_days: max / 86400,
    })
}

#[derive(Template)]
#[template(path = "secret.html")]
pub struct SecretPage {
    pub l: Layout,
    pub title: String,
    pub what: &'static str,
    pub secret: String,
    pub facts: Vec<(&'static str, String)>,
    pub back_url: String,
    pub back_label: &'static str,
}

/// The one response that shows a secret: never cached, never stored.
pub fn secret_response(page: &SecretPage) -> Result<HttpResponse, WebError> {
    render(page)
}

async fn create(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let chosen = form.all("scopes");
    let max = state.settings.max_token_lifetime.seconds;
    let result = match lifetime_from(&form) {
        Ok(lifetime) => tokens::create(
            &state.db,
            &state.tokens.signer,
            &me.actor(),
            me.session.principal.id,
            NewToken {
                name: form.get("name").unwrap_or("").to_owned(),
                description: form.get("description").map(str::to_owned),
                scopes: chosen.clone(),
                lifetime,
            },
            max,
            None,
        )
        .await
        .map_err(WebError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(view) => secret_response(&SecretPage {
            l: Layout::new(&me, "tokens"),
            title: format!("Token “{}” created", view.name),
            what: "personal access token",
            secret: view.exposed_token().to_owned(),
            facts: vec![
                ("Name", view.name.clone()),
                ("Scopes", view.scopes.join(" ")),
                ("Expires", fmt_time(view.expires_at)),
                ("Listed as", view.hint.clone().unwrap_or_default()),
            ],
            back_url: format!("/tokens/{}", view.id),
            back_label: "Go to the token's page",
        }),
        Err(e @ WebError::Domain(domain::Error::Invalid { .. } | domain::Error::Conflict(_))) => {
            render_status(
                StatusCode::BAD_REQUEST,
                &NewTokenPage {
                    l: Layout::new(&me, "tokens"),
                    error: Some(e.message()),
                    name: form.get("name").unwrap_or("").to_owned(),
                    description: form.get("description").unwrap_or("").to_owned(),
                    scopes: scope_choices(&state, &me.session.principal, &chosen).await?,
                    presets: presets(max),
                    lifetime: form.get("lifetime").unwrap_or("").to_owned(),
                    expires_on: form.get("expires_on").unwrap_or("").to_owned(),
                    max_days: max / 86400,
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
}

async fn detail(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Own(me.session.principal.id)).await?;
    render(&TokenPage {
        l: Layout::new(&me, "tokens").with_notice(query(&req)?.get("notice")),
        t: TokenRow::from(&view),
        admin_view: false,
    })
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub l: Layout,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
    pub danger: bool,
}

async fn revoke_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Own(me.session.principal.id)).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "tokens"),
        title: format!("Revoke “{}”?", view.name),
        message: "Anything using this token loses access at once. This cannot be undone; the token stays listed as revoked.".into(),
        action: format!("/tokens/{id}/revoke"),
        button: "Revoke token",
        cancel: format!("/tokens/{id}"),
        danger: true,
    })
}

async fn revoke(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
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

async fn regenerate_page(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&path)?;
    let view = tokens::get(&state.db.read, id, Access::Own(me.session.principal.id)).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "tokens"),
        title: format!("Regenerate “{}”?", view.name),
        message: "A new token with the same name, scopes and lifetime length replaces this one. The current token is revoked at once: update everything that uses it.".into(),
        action: format!("/tokens/{id}/regenerate"),
        button: "Regenerate token",
        cancel: format!("/tokens/{id}"),
        danger: true,
    })
}

async fn regenerate(
    me: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = FormData::parse(&body)?;
    check_csrf(&me, form.get("csrf"))?;
    let id = parse_id(&path)?;
    let view = tokens::regenerate(
        &state.db,
        &state.tokens.signer,
        &me.actor(),
        id,
        Access::Own(me.session.principal.id),
        None,
        state.settings.max_token_lifetime.seconds,
    )
    .await?;
    secret_response(&SecretPage {
        l: Layout::new(&me, "tokens"),
        title: format!("Token “{}” regenerated", view.name),
        what: "personal access token",
        secret: view.exposed_token().to_owned(),
        facts: vec![
            ("Name", view.name.clone()),
            ("Scopes", view.scopes.join(" ")),
            ("Expires", fmt_time(view.expires_at)),
            ("Listed as", view.hint.clone().unwrap_or_default()),
        ],
        back_url: format!("/tokens/{}", view.id),
        back_label: "Go to the new token's page",
    })
}
