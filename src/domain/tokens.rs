//! Personal access tokens and machine tokens: create, list, read, revoke,
//! regenerate. Revoking never deletes; a revoked token stays listed.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Iterable, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, Func, LikeExpr},
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Actor, Error, Page, PageRequest, PrincipalKind, PrincipalRef, ScopeSet, TokenKind, TokenStatus,
    audit, clock, is_unique_violation, principals,
};
use crate::{
    jwt::Minted,
    secret::{self, Digest, Secret},
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{principal, token},
    },
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Owner {
    pub id: Uuid,
    pub username: String,
    #[serde(rename = "type")]
    pub kind: PrincipalKind,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub jti: String,
    pub name: String,
    pub description: String,
    pub kind: TokenKind,
    pub owner: Owner,
    pub scopes: Vec<String>,
    pub status: TokenStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: Option<PrincipalRef>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    pub last_used_ip: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<PrincipalRef>,
    pub replaced_by: Option<Uuid>,
    /// The resource server the token is for (its `aud`, RFC 8707); null
    /// for the default audience.
    pub audience: Option<String>,
    /// `…xQgw`, the token's last four characters: enough to tell tokens
    /// apart, never to use one. Null for tokens issued before hints existed.
    pub hint: Option<String>,
    /// The secret: present only in the response that creates it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret::serde_exposed::option::serialize"
    )]
    #[schema(value_type = Option<String>)]
    pub token: Option<Secret<String>>,
}

impl TokenView {
    /// The new token's secret, in the one response that creates it ("" elsewhere).
    pub fn exposed_token(&self) -> &str {
        self.token.as_ref().map_or("", |t| t.expose())
    }

    /// The end of the grace period of a regenerated token that still works.
    pub fn grace_until(&self) -> Option<OffsetDateTime> {
        self.revoked_at.filter(|t| *t > clock::now())
    }

    pub fn expires_within(&self, seconds: i64) -> bool {
        self.status == TokenStatus::Active
            && self.expires_at - clock::now() <= time::Duration::seconds(seconds)
    }
}

/// Whether `revoked_at` has come: a regenerated token's lies in the future
/// while its grace period runs, and it keeps working until then.
pub fn is_revoked(revoked_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    revoked_at.is_some_and(|t| t <= now)
}

/// Rows whose `revoked_at` has not come (never revoked, or in a grace period).
fn not_revoked(now: OffsetDateTime) -> Condition {
    Condition::any()
        .add(token::Column::RevokedAt.is_null())
        .add(token::Column::RevokedAt.gt(now))
}

pub fn status_of(row: &token::Model, now: OffsetDateTime) -> TokenStatus {
    if is_revoked(row.revoked_at, now) {
        TokenStatus::Revoked
    } else if row.expires_at <= now {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    }
}

/// Builds views, looking up every principal they mention in one query.
pub async fn views(
    db: &impl ConnectionTrait,
    rows: Vec<token::Model>,
) -> Result<Vec<TokenView>, Error> {
    let mut ids: Vec<Uuid> = rows
        .iter()
        .flat_map(|r| [Some(r.owner_id), r.created_by, r.revoked_by])
        .flatten()
        .collect();
    ids.sort();
    ids.dedup();
    let people: HashMap<Uuid, (String, PrincipalKind)> = if ids.is_empty() {
        HashMap::new()
    } else {
        principal::Entity::find()
            .select_only()
            .column(principal::Column::Id)
            .column(principal::Column::Username)
            .column(principal::Column::Kind)
            .filter(principal::Column::Id.is_in(ids))
            .into_tuple::<(Uuid, String, PrincipalKind)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(id, name, kind)| (id, (name, kind)))
            .collect()
    };
    let pref = |id: Option<Uuid>| {
        id.and_then(|id| {
            people.get(&id).map(|(username, _)| PrincipalRef {
                id,
                username: username.clone(),
            })
        })
    };
    let now = clock::now();
    Ok(rows
        .into_iter()
        .map(|r| {
            let (username, kind) = people
                .get(&r.owner_id)
                .cloned()
                .unwrap_or((String::new(), PrincipalKind::User));
            TokenView {
                status: status_of(&r, now),
                owner: Owner {
                    id: r.owner_id,
                    username,
                    kind,
                },
                created_by: pref(r.created_by),
                revoked_by: pref(r.revoked_by),
                id: r.id,
                jti: r.jti,
                name: r.name,
                description: r.description,
                kind: r.kind,
                scopes: ScopeSet::from_stored(&r.scopes).to_vec(),
                created_at: r.created_at,
                expires_at: r.expires_at,
                last_used_at: r.last_used_at,
                last_used_ip: r.last_used_ip,
                revoked_at: r.revoked_at,
                replaced_by: r.replaced_by,
                audience: r.audience,
                hint: r.hint,
                token: None,
            }
        })
        .collect())
}

/// How long a new token lives: exactly one of the two must be given.
#[derive(Debug, Clone, Copy)]
pub enum Lifetime {
    Seconds(i64),
    Until(OffsetDateTime),
}

impl Lifetime {
    pub fn from_request(seconds: Option<i64>, at: Option<OffsetDateTime>) -> Result<Self, Error> {
        match (seconds, at) {
            (Some(s), None) => Ok(Self::Seconds(s)),
            (None, Some(t)) => Ok(Self::Until(t)),
            _ => Err(Error::invalid(
                "expires_in_seconds",
                "give exactly one of expires_in_seconds and expires_at",
            )),
        }
    }

    /// Seconds from now, within 1 minute and the policy maximum.
    pub fn seconds(self, max: i64) -> Result<i64, Error> {
        let (seconds, field) = match self {
            Self::Seconds(s) => (s, "expires_in_seconds"),
            Self::Until(t) => {
                // A valid RFC 3339 time may still lie past the calendar in UTC.
                let t = clock::checked_utc(t).ok_or_else(|| {
                    Error::invalid("expires_at", "is outside the years 0000 to 9999 in UTC")
                })?;
                ((t - clock::now()).whole_seconds(), "expires_at")
            }
        };
        if seconds < 60 || seconds > max {
            return Err(Error::invalid(
                field,
                format!(
                    "lifetime must be from 1 minute to {} ",
                    crate::duration::Dur { seconds: max }
                )
                .trim_end()
                .to_owned(),
            ));
        }
        Ok(seconds)
    }
}

pub struct NewToken {
    pub name: String,
    pub description: Option<String>,
    /// `None`: the owner's default scopes (`issuance::default_scopes`).
    pub scopes: Option<Vec<String>>,
    pub lifetime: Lifetime,
    /// A resource server's identifier (RFC 8707): the token's `aud`, and
    /// its scopes must be that server's. `None`: the default audience.
    pub audience: Option<String>,
}

/// What the actor may touch.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Only tokens this principal owns (the `/api/v1/tokens` and `/tokens` views).
    Own(Uuid),
    /// Any token (admins).
    Any,
    /// Only tokens of this machine user (its admins and managers, who are
    /// authorised by `principals::authorize` first).
    Machine(Uuid),
}

pub fn record_row(
    minted: &Minted,
    kind: TokenKind,
    owner_id: Uuid,
    name: &str,
    description: String,
    scopes: &ScopeSet,
    created_by: Option<Uuid>,
) -> token::ActiveModel {
    token::ActiveModel {
        id: Set(minted.id),
        jti: Set(minted.jti.clone()),
        kind: Set(kind),
        owner_id: Set(owner_id),
        name: Set(name.to_owned()),
        // Client-credentials tokens share one name and do not reserve it.
        active_name: Set((kind != TokenKind::ClientCredentials).then(|| name.to_owned())),
        description: Set(description),
        scopes: Set(scopes.to_string()),
        digest: Set(minted.digest.to_hex()),
        kid: Set(minted.kid.clone()),
        created_at: Set(minted.issued_at),
        created_by: Set(created_by),
        expires_at: Set(minted.expires_at),
        last_used_at: Set(None),
        last_used_ip: Set(None),
        revoked_at: Set(None),
        revoked_by: Set(None),
        replaced_by: Set(None),
        hint: Set(Some(secret::token_hint(&minted.token))),
        audience: Set(minted.audience.clone()),
    }
}

pub(super) fn duplicate_name(e: sea_orm::DbErr) -> Error {
    if is_unique_violation(&e) {
        Error::conflict("an active token with this name exists")
    } else {
        e.into()
    }
}

/// An expired token no longer holds its name.
pub(super) async fn release_expired_name(
    db: &impl ConnectionTrait,
    owner_id: Uuid,
    name: &str,
) -> Result<(), Error> {
    token::Entity::update_many()
        .col_expr(
            token::Column::ActiveName,
            Expr::value(Option::<String>::None),
        )
        .filter(token::Column::OwnerId.eq(owner_id))
        .filter(token::Column::ActiveName.eq(name))
        .filter(token::Column::ExpiresAt.lte(clock::now()))
        .exec(db)
        .await?;
    Ok(())
}

pub(super) async fn find_row(
    db: &impl ConnectionTrait,
    id: Uuid,
    access: Access,
) -> Result<token::Model, Error> {
    let row = token::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("token"))?;
    match access {
        Access::Own(owner) | Access::Machine(owner) if row.owner_id != owner => {
            Err(Error::NotFound("token"))
        }
        _ => Ok(row),
    }
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid, access: Access) -> Result<TokenView, Error> {
    let row = find_row(db, id, access).await?;
    views(db, vec![row])
        .await?
        .pop()
        .ok_or(Error::NotFound("token"))
}

#[derive(Debug, Default, Clone)]
pub struct TokenFilter {
    pub owner: Option<String>,
    pub owner_id: Option<Uuid>,
    pub kind: Option<TokenKind>,
    pub status: Option<TokenStatus>,
    pub q: Option<String>,
    /// Leave out client-credentials tokens (many and short-lived, they would
    /// bury the named tokens) when no kind is chosen.
    pub hide_client_credentials: bool,
}

/// Newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &TokenFilter,
    page: PageRequest,
) -> Result<Page<TokenView>, Error> {
    let Some(mut q) = filtered(db, filter).await? else {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    };
    if let Some(cursor) = page.cursor {
        q = q.filter(token::Column::Id.lt(cursor));
    }
    let rows = q
        .order_by_desc(token::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let page = Page::from_rows(rows, page.limit, |r| r.id);
    let items = views(db, page.items).await?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// The tokens `filter` selects, unordered; `None` when it names an owner
/// that does not exist (nothing can match).
pub(super) async fn filtered(
    db: &impl ConnectionTrait,
    filter: &TokenFilter,
) -> Result<Option<sea_orm::Select<token::Entity>>, Error> {
    let mut q = token::Entity::find();
    if let Some(owner_id) = filter.owner_id {
        q = q.filter(token::Column::OwnerId.eq(owner_id));
    }
    // Usernames are lowercase: "Alice " finds alice; a blank is no filter.
    if let Some(owner) = filter
        .owner
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        match principals::find_by_username(db, &owner.to_lowercase()).await? {
            Some(p) => q = q.filter(token::Column::OwnerId.eq(p.id)),
            None => return Ok(None),
        }
    }
    if let Some(kind) = filter.kind {
        q = q.filter(token::Column::Kind.eq(kind));
    } else if filter.hide_client_credentials {
        // Every other kind, not "kind <> client_credentials": SQLite reads
        // an index for the one and every client-credentials record for the
        // other (the admin's list at a million records: 0.3 s, 3.2 s from a cold
        // cache, -> 0.014 s).
        let named = TokenKind::iter().filter(|k| *k != TokenKind::ClientCredentials);
        q = q.filter(token::Column::Kind.is_in(named));
    }
    let now = clock::now();
    q = match filter.status {
        None => q,
        Some(TokenStatus::Revoked) => q.filter(token::Column::RevokedAt.lte(now)),
        Some(TokenStatus::Active) => q
            .filter(not_revoked(now))
            .filter(token::Column::ExpiresAt.gt(now)),
        Some(TokenStatus::Expired) => q
            .filter(not_revoked(now))
            .filter(token::Column::ExpiresAt.lte(now)),
    };
    if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q = q.filter(
            Condition::all().add(
                Expr::expr(Func::lower(Expr::col(token::Column::Name)))
                    .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            ),
        );
    }
    Ok(Some(q))
}

/// Revokes a token (idempotent: revoking a revoked token changes nothing, so
/// it invalidates no cache either). A token in its grace period after being
/// regenerated stops working now rather than at the end of it.
pub async fn revoke(db: &Db, actor: &Actor, id: Uuid, access: Access) -> Result<TokenView, Error> {
    let actor2 = actor.clone();
    let (row, changed) = db
        .write
        .write_transaction::<_, (token::Model, bool), Error>(|tx| {
            Box::pin(async move {
                // The actor (named in `revoked_by`) is locked before the
                // token: deleting a principal locks it before its tokens, so
                // the same order cannot deadlock. Deleted meanwhile: its
                // tokens went with it.
                if let Some(actor_id) = actor2.id()
                    && principal::Entity::find_by_id(actor_id)
                        .lock_shared()
                        .one(tx)
                        .await?
                        .is_none()
                {
                    return Err(Error::NotFound("token"));
                }
                let row = find_row(tx, id, access).await?;
                // `mark_revoked` also settles a race with a concurrent revoke.
                let now = clock::now();
                if is_revoked(row.revoked_at, now)
                    || !mark_revoked(tx, &actor2, id, now, false).await?
                {
                    return Ok((row, false));
                }
                audit::record(
                    tx,
                    &actor2,
                    "token.revoke",
                    "token",
                    Some(id.to_string()),
                    json!({"name": row.name, "kind": row.kind.as_str(), "hint": row.hint}),
                )
                .await?;
                announce(tx, Change::Auth).await?;
                let row = token::Entity::find_by_id(id)
                    .one(tx)
                    .await?
                    .ok_or(Error::NotFound("token"))?;
                Ok((row, true))
            })
        })
        .await?;
    if changed {
        db.changes.changed(Change::Auth);
    }
    views(&db.read, vec![row])
        .await?
        .pop()
        .ok_or(Error::NotFound("token"))
}

/// Revokes a machine user's token for an admin or one of its managers.
pub async fn revoke_machine_token(
    db: &Db,
    ctx: &super::Context,
    machine_id: Uuid,
    token_id: Uuid,
) -> Result<TokenView, Error> {
    principals::authorize(&db.read, ctx, machine_id, principals::Need::Manage).await?;
    revoke(db, &ctx.actor, token_id, Access::Machine(machine_id)).await
}

/// A machine user's tokens, newest first, for an admin or one of its managers.
pub async fn list_machine_tokens(
    db: &impl ConnectionTrait,
    ctx: &super::Context,
    machine_id: Uuid,
    kind: Option<TokenKind>,
    page: PageRequest,
) -> Result<Page<TokenView>, Error> {
    principals::authorize(db, ctx, machine_id, principals::Need::See).await?;
    let filter = TokenFilter {
        owner_id: Some(machine_id),
        kind,
        ..TokenFilter::default()
    };
    list(db, &filter, page).await
}

/// What revoking by value found.
#[derive(Debug, PartialEq, Eq)]
pub enum RevokedByValue {
    Revoked,
    /// Unknown, or revoked already: nothing to do (RFC 7009 §2.2).
    Nothing,
    /// A token of another owner: refused (RFC 7009 §2.1).
    NotYours,
}

/// Revokes by the token string itself (RFC 7009): `jti` from its verified
/// claims, `digest` of the whole string, when `owner_id` holds it.
pub async fn revoke_by_value(
    db: &Db,
    actor: &Actor,
    jti: &str,
    digest: &Digest,
    owner_id: Uuid,
) -> Result<RevokedByValue, Error> {
    let row = token::Entity::find()
        .filter(token::Column::Jti.eq(jti))
        .one(&db.read)
        .await?
        .filter(|row| digest.matches_hex(&row.digest));
    Ok(match row {
        None => RevokedByValue::Nothing,
        Some(row) if row.owner_id != owner_id => RevokedByValue::NotYours,
        Some(row) if is_revoked(row.revoked_at, clock::now()) => RevokedByValue::Nothing,
        // Gone since it was read (its owner deleted): nothing to do.
        Some(row) => match revoke(db, actor, row.id, Access::Own(owner_id)).await {
            Ok(_) => RevokedByValue::Revoked,
            Err(Error::NotFound(_)) => RevokedByValue::Nothing,
            Err(e) => return Err(e),
        },
    })
}

/// Sets `revoked_at` to `at` (now, or the end of a grace period). Revoking
/// applies unless the token is revoked already (a token in its grace period is
/// revoked sooner); regenerating applies only to a token not yet revoked or
/// regenerated. Returns whether the row changed.
pub(super) async fn mark_revoked(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    at: OffsetDateTime,
    regenerating: bool,
) -> Result<bool, Error> {
    let mut unrevoked = Condition::any().add(token::Column::RevokedAt.is_null());
    if !regenerating {
        unrevoked = unrevoked.add(token::Column::RevokedAt.gt(at));
    }
    let res = token::Entity::update_many()
        .col_expr(token::Column::RevokedAt, Expr::value(at))
        .col_expr(token::Column::RevokedBy, Expr::value(actor.id()))
        .col_expr(
            token::Column::ActiveName,
            Expr::value(Option::<String>::None),
        )
        .filter(token::Column::Id.eq(id))
        .filter(unrevoked)
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const YEAR: i64 = 365 * 86_400;

    fn field(e: Error) -> &'static str {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn lifetimes_past_the_calendar_are_refused_by_field() {
        let edge = clock::parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        let past_the_end = edge
            .checked_to_offset(time::UtcOffset::from_hms(-1, 0, 0).unwrap())
            .unwrap()
            .replace_hour(23)
            .unwrap();
        assert_eq!(
            field(Lifetime::Until(past_the_end).seconds(YEAR).unwrap_err()),
            "expires_at"
        );
        assert_eq!(
            field(Lifetime::Until(edge).seconds(YEAR).unwrap_err()),
            "expires_at"
        );
    }

    proptest! {
        #[test]
        fn any_lifetime_in_seconds_is_in_range_or_named(s in any::<i64>()) {
            match Lifetime::Seconds(s).seconds(YEAR) {
                Ok(v) => prop_assert!((60..=YEAR).contains(&v)),
                Err(e) => prop_assert_eq!(field(e), "expires_in_seconds"),
            }
        }

        #[test]
        fn any_expiry_time_is_in_range_or_named(unix in -377_705_116_800i64..=253_402_300_799, offset in -86_399i32..=86_399) {
            let Ok(offset) = time::UtcOffset::from_whole_seconds(offset) else { return Ok(()) };
            let utc = OffsetDateTime::from_unix_timestamp(unix).unwrap();
            // Any local time that a client can write with any offset.
            let t = utc.date().with_time(utc.time()).assume_offset(offset);
            match Lifetime::Until(t).seconds(YEAR) {
                Ok(v) => prop_assert!((60..=YEAR).contains(&v)),
                Err(e) => prop_assert_eq!(field(e), "expires_at"),
            }
        }
    }
}
