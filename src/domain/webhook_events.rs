//! Which audited actions are webhook events, and the hook `audit::record`
//! calls inside the transaction of every change: when some enabled webhook
//! wants the event, one `event` row goes into the outbox. The sweeper later
//! turns it into one signed delivery per subscriber (`webhooks::expand`), so
//! a request pays at most one small query and one insert, and nothing when no
//! webhook is subscribed.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Error, clock};
use crate::storage::entities::{outbox, webhook};

/// Every event a webhook may subscribe to (INTERFACE §9).
pub const EVENTS: &[&str] = &[
    "token.created",
    "token.expiring",
    "token.expired",
    "token.revoked",
    "token.regenerated",
    "token.leaked",
    "client_secret.created",
    "client_secret.deleted",
    "key.rotated",
    "ping",
];

/// The outbox channel of an event still to be fanned out to its subscribers.
pub const CHANNEL_EVENT: &str = "event";

/// The webhook event an audited action announces, if any.
pub fn event_for(action: &str, details: &Value) -> Option<&'static str> {
    Some(match action {
        "token.create" => "token.created",
        "token.revoke" if details.get("reason").and_then(Value::as_str) == Some("leaked") => {
            "token.leaked"
        }
        "token.revoke" => "token.revoked",
        "token.regenerate" => "token.regenerated",
        "client_secret.create" => "client_secret.created",
        // A leaked secret is announced as a leaked token is (§12): its
        // owners are told, not only that it is gone.
        "client_secret.delete"
            if details.get("reason").and_then(Value::as_str) == Some("leaked") =>
        {
            "token.leaked"
        }
        "client_secret.delete" => "client_secret.deleted",
        "key.rotate" => "key.rotated",
        _ => return None,
    })
}

/// Whether an enabled webhook subscribes to `event`.
pub async fn subscribed(db: &impl ConnectionTrait, event: &str) -> Result<bool, Error> {
    let lists: Vec<String> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Events)
        .filter(webhook::Column::Enabled.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(lists
        .iter()
        .any(|list| list.split_whitespace().any(|e| e == event)))
}

/// Called by `audit::record`, in the same transaction.
pub async fn on_audit(
    db: &impl ConnectionTrait,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    details: &Value,
) -> Result<(), Error> {
    let Some(event) = event_for(action, details) else {
        return Ok(());
    };
    if !subscribed(db, event).await? {
        return Ok(());
    }
    let now = clock::now();
    let body = json!({
        "at": clock::rfc3339(now),
        "target_type": target_type,
        "target_id": target_id,
        "details": details,
    });
    outbox::Entity::insert(outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        channel: Set(CHANNEL_EVENT.to_owned()),
        webhook_id: Set(None),
        recipient: Set(None),
        event: Set(event.to_owned()),
        subject: Set(None),
        body: Set(body.to_string()),
        created_at: Set(now),
        attempts: Set(0),
        first_attempt_at: Set(None),
        next_attempt_at: Set(Some(now)),
        claimed_until: Set(None),
        state: Set("pending".to_owned()),
        last_error: Set(None),
        token_id: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    crate::notify::wake::soon();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaks_are_announced_as_leaks_whatever_leaked() {
        let leaked = json!({"reason": "leaked"});
        assert_eq!(event_for("token.revoke", &leaked), Some("token.leaked"));
        assert_eq!(
            event_for("client_secret.delete", &leaked),
            Some("token.leaked")
        );
        let asked = json!({});
        assert_eq!(event_for("token.revoke", &asked), Some("token.revoked"));
        assert_eq!(
            event_for("client_secret.delete", &asked),
            Some("client_secret.deleted")
        );
        assert_eq!(event_for("leak.notify", &leaked), None);
    }
}
