//! Leak reports (INTERFACE §12): anyone may send strings found in the wild;
//! every live token among them is revoked and every live client secret
//! removed, in one transaction, and the owners are told. The caller learns
//! nothing: the API answers the same whatever was found.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use super::{Actor, Error, PrincipalKind, audit, clock, tokens::mark_revoked};
use crate::{
    secret::Digest,
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{client_secret, leak_report, principal, token},
    },
};

/// How long the owners' notice in the app lasts after a report.
pub const NOTICE_DAYS: i64 = 7;

/// A reported string whose signature verified as one of ours: its `jti` and
/// the digest of the whole string.
pub struct Verified {
    pub jti: String,
    pub digest: Digest,
}

/// What a report revoked or removed (for logs and tests; never shown to the
/// reporter).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub tokens: usize,
    pub secrets: usize,
}

/// Revokes the live tokens among `verified` and removes the client secrets
/// whose digest is among `digests` (the digests of every reported string).
/// Both lookups run whatever was reported, so the work does not depend much
/// on what is found.
pub async fn report(
    db: &Db,
    reporter_ip: Option<String>,
    verified: Vec<Verified>,
    digests: Vec<Digest>,
    email: bool,
) -> Result<Outcome, Error> {
    let actor = Actor::anonymous(reporter_ip.clone());
    let outcome = db
        .write
        .write_transaction::<_, Outcome, Error>(|tx| {
            Box::pin(async move {
                let now = clock::now();
                let mut outcome = Outcome::default();
                let jtis: Vec<String> = verified.iter().map(|v| v.jti.clone()).collect();
                let rows = token::Entity::find()
                    .filter(token::Column::Jti.is_in(jtis))
                    // A token in its grace period is still live.
                    .filter(
                        Condition::any()
                            .add(token::Column::RevokedAt.is_null())
                            .add(token::Column::RevokedAt.gt(now)),
                    )
                    .filter(token::Column::ExpiresAt.gt(now))
                    .all(tx)
                    .await?;
                for row in rows {
                    let genuine = verified
                        .iter()
                        .any(|v| v.jti == row.jti && v.digest.matches_hex(&row.digest));
                    if !genuine || !mark_revoked(tx, &actor, row.id, now, false).await? {
                        continue;
                    }
                    audit::record(
                        tx,
                        &actor,
                        "token.revoke",
                        "token",
                        Some(row.id.to_string()),
                        json!({"name": row.name, "kind": row.kind.as_str(), "hint": row.hint,
                               "reason": "leaked", "reporter_ip": reporter_ip}),
                    )
                    .await?;
                    remember(tx, row.owner_id, "token", row.id, row.hint.clone()).await?;
                    notify_owner(
                        tx,
                        row.owner_id,
                        "token",
                        row.id,
                        row.hint.as_deref(),
                        email,
                    )
                    .await?;
                    outcome.tokens += 1;
                }
                let hexes: Vec<String> = digests.iter().map(|d| d.to_hex()).collect();
                let secrets = client_secret::Entity::find()
                    .filter(client_secret::Column::Digest.is_in(hexes))
                    .all(tx)
                    .await?;
                for s in secrets {
                    let gone = client_secret::Entity::delete_by_id(s.id).exec(tx).await?;
                    if gone.rows_affected == 0 {
                        continue;
                    }
                    audit::record(
                        tx,
                        &actor,
                        "client_secret.delete",
                        "machine_user",
                        Some(s.machine_user_id.to_string()),
                        json!({"secret_id": s.id, "hint": s.hint,
                               "reason": "leaked", "reporter_ip": reporter_ip}),
                    )
                    .await?;
                    remember(tx, s.machine_user_id, "client_secret", s.id, s.hint.clone()).await?;
                    notify_owner(
                        tx,
                        s.machine_user_id,
                        "client_secret",
                        s.id,
                        s.hint.as_deref(),
                        email,
                    )
                    .await?;
                    outcome.secrets += 1;
                }
                if outcome != Outcome::default() {
                    announce(tx, Change::Auth).await?;
                }
                Ok(outcome)
            })
        })
        .await?;
    if outcome != Outcome::default() {
        db.changes.changed(Change::Auth);
    }
    Ok(outcome)
}

/// The record the in-app notice is computed from.
async fn remember(
    tx: &impl ConnectionTrait,
    owner: Uuid,
    kind: &str,
    target: Uuid,
    hint: Option<String>,
) -> Result<(), Error> {
    leak_report::Entity::insert(leak_report::ActiveModel {
        id: Set(Uuid::now_v7()),
        principal_id: Set(owner),
        kind: Set(kind.to_owned()),
        target_id: Set(target),
        hint: Set(hint),
        at: Set(clock::now()),
    })
    .exec_without_returning(tx)
    .await?;
    Ok(())
}

/// Tells the owner of a leaked token or client secret: the audit event
/// `leak.notify` always, and an e-mail (through the outbox) to the owner, or
/// for a machine user its contact address and managers (else the admins),
/// when e-mail is configured. The webhook `token.leaked` comes from the
/// `token.revoke` audit event with `reason: "leaked"` written just before.
pub async fn notify_owner(
    tx: &impl ConnectionTrait,
    owner: Uuid,
    kind: &str,
    target: Uuid,
    hint: Option<&str>,
    email: bool,
) -> Result<(), Error> {
    audit::record(
        tx,
        &Actor::system(),
        "leak.notify",
        kind,
        Some(target.to_string()),
        json!({"owner_id": owner, "hint": hint}),
    )
    .await?;
    if !email {
        return Ok(());
    }
    let what = if kind == "token" {
        "token"
    } else {
        "client secret"
    };
    let (done, hint) = (
        if kind == "token" {
            "revoked"
        } else {
            "removed"
        },
        hint.unwrap_or("unknown"),
    );
    let subject = format!("A Tessera {what} was reported leaked ({hint})");
    let body = format!(
        "Someone reported a Tessera {what} (ending {hint}) as found in the wild.\n\
         It has been {done}: it no longer works anywhere.\n\n\
         If it was in use, create a replacement and update the systems that used it.\n\
         The audit log has the details of the report.\n"
    );
    for to in super::reminders::recipients(tx, owner).await? {
        super::outbox::enqueue_mail(tx, &to, "token.leaked", subject.clone(), body.clone(), None)
            .await?;
    }
    Ok(())
}

/// Whether a token or client secret of `principal` (or of a machine user it
/// manages) was reported leaked in the last [`NOTICE_DAYS`] days: the notice
/// every page shows.
/// `managed` are the machine users the person manages.
pub async fn recent_for(
    db: &impl ConnectionTrait,
    principal: Uuid,
    managed: &[Uuid],
) -> Result<bool, Error> {
    let since = clock::now() - Duration::days(NOTICE_DAYS);
    let managed: Vec<Uuid> = managed
        .iter()
        .copied()
        .chain(std::iter::once(principal))
        .collect();
    let created: Vec<Uuid> = principal::Entity::find()
        .filter(principal::Column::CreatedBy.eq(principal))
        .filter(principal::Column::Kind.eq(PrincipalKind::Machine))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let managed: Vec<Uuid> = managed.into_iter().chain(created).collect();
    Ok(leak_report::Entity::find()
        .filter(leak_report::Column::PrincipalId.is_in(managed))
        .filter(leak_report::Column::At.gt(since))
        .one(db)
        .await?
        .is_some())
}
