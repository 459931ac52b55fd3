//! The audit log (admins).

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::IntoParams;

use super::support::{PageQuery, Problem};
use crate::{
    app::AppState,
    domain::{
        Error, Page,
        audit::{self, AuditEvent, AuditFilter},
        clock,
    },
    http::{auth::Bearer, errors::ApiError},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The actor's username.
    pub actor: Option<String>,
    /// e.g. `token.create`.
    pub action: Option<String>,
    /// RFC 3339; events at or after.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; events at or before.
    #[param(format = DateTime)]
    pub until: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
}

fn timestamp(raw: Option<&str>, field: &'static str) -> Result<Option<OffsetDateTime>, Error> {
    raw.map(|t| {
        // Stored times are UTC whole seconds; compare like with like.
        OffsetDateTime::parse(t, &Rfc3339)
            .map(clock::truncate)
            .map_err(|_| Error::invalid(field, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}

/// Events, newest first.
#[utoipa::path(
    operation_id = "list_audit_events",
    tag = "audit",
    params(AuditQuery, PageQuery),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = Page<AuditEvent>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/audit")]
pub async fn list(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let q = query.into_inner();
    let filter = AuditFilter {
        since: timestamp(q.since.as_deref(), "since")?,
        until: timestamp(q.until.as_deref(), "until")?,
        actor: q.actor,
        action: q.action,
    };
    let page = audit::list(&state.db.read, &filter, q.page.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}
