//! The audit log: who did what to what, when and from where. Events are
//! written in the same transaction as the change they describe.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Actor, Error, Page, PageRequest, clock};
use crate::storage::entities::audit_event;

pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: Option<String>,
    mut details: Value,
) -> Result<(), Error> {
    if let (Some(token), Value::Object(map)) = (actor.token_id, &mut details) {
        map.insert("via_token".into(), json!(token));
    }
    // Webhook subscribers hear of it from the same transaction (§9).
    super::webhook_events::on_audit(db, action, target_type, target_id.as_deref(), &details)
        .await?;
    let event = audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(clock::now()),
        actor_id: Set(actor.principal.as_ref().map(|p| p.id)),
        actor_username: Set(actor.principal.as_ref().map(|p| p.username.clone())),
        action: Set(action.to_owned()),
        target_type: Set(target_type.to_owned()),
        target_id: Set(target_id),
        ip: Set(actor.ip.clone()),
        details: Set(details.to_string()),
    };
    audit_event::Entity::insert(event)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Option<super::PrincipalRef>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub details: Value,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(m: audit_event::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            actor: match (m.actor_id, m.actor_username) {
                (Some(id), Some(username)) => Some(super::PrincipalRef { id, username }),
                _ => None,
            },
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            ip: m.ip,
            details: serde_json::from_str(&m.details).unwrap_or(Value::Null),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// Newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    page: PageRequest,
) -> Result<Page<AuditEvent>, Error> {
    let mut q = audit_event::Entity::find();
    // A blank filter (an empty form field) is no filter; usernames are
    // lowercase, so "Alice " finds alice's events, as the token list does.
    let given = |f: &Option<String>| {
        f.as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
    };
    if let Some(actor) = given(&filter.actor) {
        q = q.filter(audit_event::Column::ActorUsername.eq(actor.to_lowercase()));
    }
    if let Some(action) = given(&filter.action) {
        q = q.filter(audit_event::Column::Action.eq(action));
    }
    if let Some(since) = filter.since {
        q = q.filter(audit_event::Column::At.gte(since));
    }
    if let Some(until) = filter.until {
        q = q.filter(audit_event::Column::At.lte(until));
    }
    if let Some(cursor) = page.cursor {
        q = q.filter(audit_event::Column::Id.lt(cursor));
    }
    let rows = q
        .order_by_desc(audit_event::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |m| m.id).map(AuditEvent::from))
}
