//! The audit log (admins).

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;

use super::support::{PageQuery, Problem};
use crate::{
    domain::{
        Error, Page,
        audit::{self, AuditEvent, AuditFilter},
        clock,
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
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

/// Stored times are UTC whole seconds; compare like with like.
fn timestamp(raw: Option<&str>, field: &'static str) -> Result<Option<OffsetDateTime>, Error> {
    raw.map(|t| clock::parse_rfc3339(t).map_err(|why| Error::invalid(field, why)))
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_past_the_calendar_name_their_field() {
        let e = timestamp(Some("9999-12-31T23:30:00-01:00"), "until").unwrap_err();
        assert!(matches!(e, Error::Invalid { field: "until", .. }), "{e:?}");
        assert!(timestamp(None, "since").unwrap().is_none());
    }

    proptest! {
        #[test]
        fn any_text_is_a_time_or_names_its_field(raw in any::<String>()) {
            match timestamp(Some(&raw), "since") {
                Ok(t) => prop_assert!(t.is_some()),
                Err(e) => {
                    let named = matches!(e, Error::Invalid { field: "since", .. });
                    prop_assert!(named, "{e:?}");
                }
            }
        }
    }
}
