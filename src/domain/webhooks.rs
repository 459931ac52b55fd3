//! Webhooks (INTERFACE §9): subscriptions of other systems to events, their
//! signing secrets (sealed under the master key: they must be recovered to
//! sign), the fan-out of events to subscribers and the delivery log.

use base64::{Engine, engine::general_purpose::STANDARD};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Actor, Error, Page, PageRequest, audit, clock, outbox, principals, tokens,
    webhook_events::{CHANNEL_EVENT, EVENTS},
};
use crate::{
    jwt::keys as sealing,
    secret::{MasterKey, Secret, random_bytes},
    storage::{
        Db, WriteTransactions,
        entities::{outbox as outbox_row, token, webhook, webhook_delivery},
    },
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<webhook::Model> for Webhook {
    fn from(m: webhook::Model) -> Self {
        Self {
            id: m.id,
            url: m.url,
            events: m.events.split_whitespace().map(str::to_owned).collect(),
            description: m.description,
            enabled: m.enabled,
            created_at: m.created_at,
        }
    }
}

/// A new webhook with its secret: the one response that shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    #[serde(serialize_with = "crate::secret::serde_exposed::serialize")]
    #[schema(value_type = String)]
    pub secret: Secret<String>,
}

/// Fields to set; for a create, `url` and `events` are required.
#[derive(Debug, Default)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    /// The `webhook-id` header: the same on every attempt of one message.
    pub message_id: String,
    pub event: String,
    pub attempt: i32,
    pub status: Option<i32>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<webhook_delivery::Model> for Delivery {
    fn from(m: webhook_delivery::Model) -> Self {
        Self {
            id: m.id,
            message_id: message_id(m.message_id),
            event: m.event,
            attempt: m.attempt,
            status: m.status,
            error: m.error,
            at: m.at,
            next_attempt_at: m.next_attempt_at,
        }
    }
}

/// `msg_…`: the Standard Webhooks message id of an outbox row.
pub fn message_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

fn parse_url(raw: &str) -> Result<String, Error> {
    let raw = raw.trim();
    // The parser would drop tabs and line breaks silently, storing another
    // URL than the one given.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "url",
            "must not contain spaces or control characters",
        ));
    }
    // The URL standard mends `http:///x`, `http:x` and backslashes into a
    // host, which would store a URL nobody gave: the host comes after `//`.
    let authority = raw.split_once(':').map_or("", |(_, rest)| rest);
    if !authority.starts_with("//") || authority[2..].starts_with(['/', '\\']) {
        return Err(Error::invalid(
            "url",
            "must be an http:// or https:// URL naming a host",
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|e| Error::invalid("url", format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("url", "must be an http:// or https:// URL"));
    }
    // A password here would be shown to every reader of webhooks and kept in
    // the audit log; receivers check the signature instead.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            "url",
            "must not contain a user name or password (receivers check the webhook-signature header)",
        ));
    }
    // Measured as stored: percent-encoding and punycode can make it longer.
    let url = url.to_string();
    if url.len() > 2048 {
        return Err(Error::invalid("url", "must be at most 2048 characters"));
    }
    Ok(url)
}

fn parse_events(names: &[String]) -> Result<String, Error> {
    let mut events: Vec<&str> = Vec::new();
    for name in names {
        let name = name.trim();
        let known = EVENTS.iter().find(|e| **e == name).ok_or_else(|| {
            Error::invalid(
                "events",
                format!("unknown event {name:?}; known: {}", EVENTS.join(", ")),
            )
        })?;
        if !events.contains(known) {
            events.push(known);
        }
    }
    if events.is_empty() {
        return Err(Error::invalid("events", "choose at least one event"));
    }
    Ok(events.join(" "))
}

fn seal_context(id: Uuid) -> String {
    format!("webhook:{id}")
}

/// The signing key of a webhook (the decoded bytes of its `whsec_` secret).
pub fn signing_key(master: &MasterKey, hook: &webhook::Model) -> Result<Vec<u8>, Error> {
    sealing::open(master, &seal_context(hook.id), &hook.secret_sealed).map_err(Error::Internal)
}

pub async fn create(
    db: &Db,
    master: &MasterKey,
    actor: &Actor,
    input: WebhookInput,
) -> Result<CreatedWebhook, Error> {
    actor.require_admin()?;
    let url = parse_url(
        input
            .url
            .as_deref()
            .ok_or(Error::invalid("url", "is required"))?,
    )?;
    let events = parse_events(
        input
            .events
            .as_deref()
            .ok_or(Error::invalid("events", "is required"))?,
    )?;
    let description = super::parse_description(input.description.as_deref(), "description")?;
    let id = Uuid::now_v7();
    let key = random_bytes::<32>();
    let secret = Secret::new(format!("whsec_{}", STANDARD.encode(key)));
    let row = webhook::ActiveModel {
        id: Set(id),
        url: Set(url.clone()),
        events: Set(events.clone()),
        description: Set(description),
        enabled: Set(input.enabled.unwrap_or(true)),
        secret_sealed: Set(sealing::seal(master, &seal_context(id), &key)),
        created_at: Set(clock::now()),
        created_by: Set(actor.id()),
    };
    let actor = actor.clone();
    let created = db
        .write
        .write_transaction::<_, webhook::Model, Error>(|tx| {
            Box::pin(async move {
                let created = row.insert(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "webhook.create",
                    "webhook",
                    Some(id.to_string()),
                    json!({"url": url, "events": events}),
                )
                .await?;
                Ok(created)
            })
        })
        .await?;
    Ok(CreatedWebhook {
        webhook: created.into(),
        secret,
    })
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<webhook::Model, Error> {
    webhook::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("webhook"))
}

/// Newest first.
pub async fn list(db: &impl ConnectionTrait, page: PageRequest) -> Result<Page<Webhook>, Error> {
    let mut q = webhook::Entity::find();
    if let Some(cursor) = page.cursor {
        q = q.filter(webhook::Column::Id.lt(cursor));
    }
    let rows = q
        .order_by_desc(webhook::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |m| m.id).map(Webhook::from))
}

pub async fn update(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: WebhookInput,
) -> Result<Webhook, Error> {
    actor.require_admin()?;
    let url = input.url.as_deref().map(parse_url).transpose()?;
    let events = input.events.as_deref().map(parse_events).transpose()?;
    let description = input
        .description
        .as_deref()
        .map(|d| super::parse_description(Some(d), "description"))
        .transpose()?;
    let actor = actor.clone();
    let updated = db
        .write
        .write_transaction::<_, webhook::Model, Error>(|tx| {
            Box::pin(async move {
                let mut row = find(tx, id).await?.into_active_model();
                let mut changed = serde_json::Map::new();
                if let Some(url) = url {
                    changed.insert("url".into(), json!(url));
                    row.url = Set(url);
                }
                if let Some(events) = events {
                    changed.insert("events".into(), json!(events));
                    row.events = Set(events);
                }
                if let Some(description) = description {
                    row.description = Set(description);
                }
                if let Some(enabled) = input.enabled {
                    changed.insert("enabled".into(), json!(enabled));
                    row.enabled = Set(enabled);
                }
                let updated = row.update(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "webhook.update",
                    "webhook",
                    Some(id.to_string()),
                    Value::Object(changed),
                )
                .await?;
                Ok(updated)
            })
        })
        .await?;
    Ok(updated.into())
}

/// Deletes a webhook with its undelivered messages and its delivery log.
pub async fn delete(db: &Db, actor: &Actor, id: Uuid) -> Result<(), Error> {
    actor.require_admin()?;
    let actor = actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                let found = find(tx, id).await?;
                outbox_row::Entity::delete_many()
                    .filter(outbox_row::Column::WebhookId.eq(id))
                    .exec(tx)
                    .await?;
                webhook_delivery::Entity::delete_many()
                    .filter(webhook_delivery::Column::WebhookId.eq(id))
                    .exec(tx)
                    .await?;
                webhook::Entity::delete_by_id(id).exec(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "webhook.delete",
                    "webhook",
                    Some(id.to_string()),
                    json!({"url": found.url}),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(())
}

/// Newest first.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    id: Uuid,
    page: PageRequest,
) -> Result<Page<Delivery>, Error> {
    find(db, id).await?;
    let mut q = webhook_delivery::Entity::find().filter(webhook_delivery::Column::WebhookId.eq(id));
    if let Some(cursor) = page.cursor {
        q = q.filter(webhook_delivery::Column::Id.lt(cursor));
    }
    let rows = q
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |m| m.id).map(Delivery::from))
}

/// Queues a `ping` for this webhook alone.
pub async fn ping(db: &Db, actor: &Actor, id: Uuid) -> Result<(), Error> {
    actor.require_admin()?;
    let hook = find(&db.read, id).await?;
    if !hook.enabled {
        return Err(Error::conflict(
            "the webhook is disabled: enable it to ping it",
        ));
    }
    let body = envelope("ping", clock::now(), json!({"webhook_id": id}));
    outbox_row::Entity::insert(outbox::row(
        outbox::CHANNEL_WEBHOOK,
        Some(id),
        None,
        "ping",
        None,
        body,
    ))
    .exec_without_returning(&db.write)
    .await?;
    Ok(())
}

/// `{type, timestamp, data}` (Standard Webhooks).
fn envelope(event: &str, at: OffsetDateTime, data: Value) -> String {
    json!({"type": event, "timestamp": clock::rfc3339(at), "data": data}).to_string()
}

/// Queues `event` for every enabled webhook that subscribes to it, in the
/// caller's transaction; returns how many.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    event: &str,
    at: OffsetDateTime,
    data: &Value,
) -> Result<usize, Error> {
    let hooks: Vec<(Uuid, String)> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Id)
        .column(webhook::Column::Events)
        .filter(webhook::Column::Enabled.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    let mut queued = 0;
    for (id, events) in hooks {
        if !events.split_whitespace().any(|e| e == event) {
            continue;
        }
        let body = envelope(event, at, data.clone());
        outbox_row::Entity::insert(outbox::row(
            outbox::CHANNEL_WEBHOOK,
            Some(id),
            None,
            event,
            None,
            body,
        ))
        .exec_without_returning(db)
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// A token as webhook data: the Token JSON of §4 (never the secret).
pub async fn token_data(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Value>, Error> {
    let Some(row) = token::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let view = tokens::views(db, vec![row]).await?.pop();
    Ok(view.map(|v| serde_json::to_value(v).unwrap_or(Value::Null)))
}

/// The data of an audited event, read now.
async fn event_data(
    db: &impl ConnectionTrait,
    event: &str,
    stored: &Value,
) -> Result<Value, Error> {
    let target = stored["target_id"].as_str().unwrap_or_default();
    let details = &stored["details"];
    let uuid = Uuid::parse_str(target).ok();
    match (stored["target_type"].as_str(), uuid) {
        (Some("token"), Some(id)) => {
            let mut data = token_data(db, id).await?.unwrap_or(json!({"id": id}));
            if event == "token.regenerated"
                && let Some(new_id) = details["new_token"]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                && let Some(new) = token_data(db, new_id).await?
            {
                data["new_token"] = new;
            }
            Ok(data)
        }
        (Some("machine_user"), Some(id)) => {
            let username = principals::find(db, id).await?.map(|p| p.username);
            Ok(json!({
                "machine_user": {"id": id, "username": username},
                "secret_id": details["secret_id"],
                "hint": details["hint"],
            }))
        }
        (Some("signing_key"), _) => Ok(json!({"kid": target, "alg": details["alg"]})),
        _ => Ok(json!({"target_id": target})),
    }
}

/// Fans audited events out to their subscribers: each `event` row is taken
/// by deleting it, in the transaction that queues its deliveries, so it is
/// fanned out once however many instances look. Returns how many were.
pub async fn expand(db: &Db, limit: u64) -> Result<usize, Error> {
    let rows = outbox::due(&db.read, &[CHANNEL_EVENT], limit).await?;
    let mut done = 0;
    for row in rows {
        let expanded = db
            .write
            .write_transaction::<_, bool, Error>(|tx| {
                Box::pin(async move {
                    let res = outbox_row::Entity::delete_by_id(row.id).exec(tx).await?;
                    if res.rows_affected != 1 {
                        return Ok(false);
                    }
                    let stored: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
                    let at = stored["at"]
                        .as_str()
                        .and_then(|t| clock::parse_rfc3339(t).ok())
                        .unwrap_or(row.created_at);
                    let data = event_data(tx, &row.event, &stored).await?;
                    enqueue(tx, &row.event, at, &data).await?;
                    Ok(true)
                })
            })
            .await?;
        done += usize::from(expanded);
    }
    Ok(done)
}

/// Each webhook with its latest deliveries, for the admin page.
pub async fn overview(
    db: &impl ConnectionTrait,
    recent: u64,
) -> Result<Vec<(Webhook, Vec<Delivery>)>, Error> {
    let hooks = webhook::Entity::find()
        .order_by_desc(webhook::Column::Id)
        .limit(200)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let latest = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(hook.id))
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(recent)
            .all(db)
            .await?;
        out.push((
            hook.into(),
            latest.into_iter().map(Delivery::from).collect(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_and_events_must_exist() {
        for bad in [
            "ftp://h.example/",
            "mailto:a@b.example",
            "not a url",
            "http://",
        ] {
            assert!(
                matches!(parse_url(bad), Err(Error::Invalid { field: "url", .. })),
                "{bad}"
            );
        }
        assert_eq!(
            parse_url(" https://h.example/in ").unwrap(),
            "https://h.example/in"
        );
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&["ping", "token.expiring", "ping"])).unwrap(),
            "ping token.expiring"
        );
        for bad in [&[][..], &["token.exploded"][..]] {
            assert!(matches!(
                parse_events(&names(bad)),
                Err(Error::Invalid {
                    field: "events",
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_new_webhook_hides_its_secret_from_debug() {
        let created = CreatedWebhook {
            webhook: Webhook {
                id: Uuid::nil(),
                url: "https://h.example/".into(),
                events: vec!["ping".into()],
                description: String::new(),
                enabled: true,
                created_at: clock::now(),
            },
            secret: Secret::new("whsec_c2VjcmV0LWJ5dGVz".into()),
        };
        assert!(!format!("{created:?}").contains("c2VjcmV0"));
        assert_eq!(
            serde_json::to_value(&created).unwrap()["secret"],
            "whsec_c2VjcmV0LWJ5dGVz"
        );
    }
}
