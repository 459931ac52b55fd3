//! The one way a token comes to be. Every kind — a person's own token, a
//! machine token an admin issues, a regenerated token, a client-credentials
//! token from `/oauth2/token` — goes through [`issue`], which validates the
//! request against the caller and the policy, mints, records (committed
//! before the token is returned), counts and audits. Web pages, the API, the
//! OAuth endpoint and the CLI only parse, authorise and delegate here.

use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use super::{
    Context, Error, PrincipalKind, ScopeSet, TokenKind, audit,
    grace::check_grace,
    principals, resource_servers, scopes,
    tokens::{
        self, Access, NewToken, TokenView, duplicate_name, find_row, mark_revoked, record_row,
        release_expired_name,
    },
};
use crate::{
    jwt::Signer,
    metrics::Metrics,
    secret::{self, Secret},
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{principal, token},
        recorder::{Entry, JtiClaim, Outcome, Recorder, TokenRecord},
    },
};

/// What issuing needs besides the request: where tokens are stored, the
/// signer, the group commit for client-credentials tokens and the metrics.
pub struct Issuer<'a> {
    pub db: &'a Db,
    pub signer: &'a Signer,
    pub recorder: &'a Recorder,
    pub metrics: Option<&'a Metrics>,
}

/// What is asked for.
pub enum Request {
    /// A personal token (the owner is a user) or a machine token (a machine
    /// user), named and with a lifetime within the policy maximum.
    Named { owner_id: Uuid, new: NewToken },
    /// The same name, the scopes the owner may still hold and the same
    /// lifetime length; the old token names the new one and is revoked at
    /// once, or when `grace_seconds` (0 to [`MAX_GRACE_SECONDS`]) have passed.
    Regenerate {
        token_id: Uuid,
        access: Access,
        grace_seconds: i64,
    },
    /// RFC 6749 §4.4 for an authenticated machine user: `scope` must be a
    /// subset of its allowed scopes (absent: all of them). With `resource`
    /// (RFC 8707) the token is for that resource server: its `aud`, and
    /// only that server's scopes (absent `scope`: the allowed ones it owns).
    /// A client that authenticated with an assertion brings its `jti`: it
    /// is recorded with the token, and a replay ends in
    /// [`Error::ClientRefused`] with nothing written.
    ClientCredentials {
        machine: Arc<principal::Model>,
        jti: Option<JtiClaim>,
        scope: Option<String>,
        resource: Option<String>,
    },
}

/// A token just issued: its secret appears here only.
pub struct Issued {
    pub token: Secret<String>,
    pub scopes: ScopeSet,
    pub lifetime_secs: i64,
    /// The recorded token as lists show it (not built for client-credentials
    /// tokens, whose answer is the OAuth one).
    pub view: Option<TokenView>,
}

impl Issued {
    /// The view with its secret, for the one response that shows it.
    pub fn into_view(self) -> Result<TokenView, Error> {
        let mut view = self.view.ok_or(Error::NotFound("token"))?;
        view.token = Some(self.token);
        Ok(view)
    }
}

/// The scopes a new token gets when none are named: `profile` for a person,
/// everything it is allowed for a machine user.
pub fn default_scopes(owner: &principal::Model) -> ScopeSet {
    match owner.kind {
        PrincipalKind::User => ScopeSet::from_names(["profile".to_owned()]),
        PrincipalKind::Machine => {
            let mut all = ScopeSet::from_stored(&owner.scopes);
            all.retain(|s| principals::permits(owner, s));
            all
        }
    }
}

pub async fn issue(issuer: &Issuer<'_>, ctx: &Context, request: Request) -> Result<Issued, Error> {
    let (kind, issued) = match request {
        Request::Named { owner_id, new } => {
            refuse_client_credentials(ctx)?;
            let issued = named(issuer, ctx, owner_id, new).await?;
            (issued.view.as_ref().map(|v| v.kind), issued)
        }
        Request::Regenerate {
            token_id,
            access,
            grace_seconds,
        } => {
            refuse_client_credentials(ctx)?;
            let grace = check_grace(grace_seconds, "grace_seconds")?;
            let issued = regenerate(issuer, ctx, token_id, access, grace).await?;
            (issued.view.as_ref().map(|v| v.kind), issued)
        }
        Request::ClientCredentials {
            machine,
            jti,
            scope,
            resource,
        } => (
            Some(TokenKind::ClientCredentials),
            client_credentials(issuer, &machine, jti, scope.as_deref(), resource.as_deref())
                .await?,
        ),
    };
    if let (Some(metrics), Some(kind)) = (issuer.metrics, kind) {
        metrics.issued(kind);
    }
    Ok(issued)
}

/// A token made by a client-credentials token would outlive it and the
/// secret it came from.
fn refuse_client_credentials(ctx: &Context) -> Result<(), Error> {
    if ctx
        .token
        .as_ref()
        .is_some_and(|t| t.kind == TokenKind::ClientCredentials)
    {
        return Err(Error::Forbidden(
            "a client-credentials token cannot create or regenerate tokens: use a personal or machine token".into(),
        ));
    }
    Ok(())
}

/// A calling token may not pass on (or obtain the secret of) scopes it lacks
/// for its own owner's tokens; an admin issuing for a machine user is bound by
/// the machine user's allowed scopes instead.
fn ceiling(ctx: &Context, owner_id: Uuid) -> Option<&ScopeSet> {
    ctx.token
        .as_ref()
        .filter(|_| ctx.actor.id() == Some(owner_id))
        .map(|t| &t.scopes)
}

/// A personal or machine token, recorded and audited in one transaction.
async fn named(
    issuer: &Issuer<'_>,
    ctx: &Context,
    owner_id: Uuid,
    new: NewToken,
) -> Result<Issued, Error> {
    let (db, signer, actor) = (issuer.db, issuer.signer, &ctx.actor);
    let max_lifetime = ctx.policy.max_token_lifetime;
    let owner = principals::find(&db.read, owner_id)
        .await?
        .ok_or(Error::NotFound("owner"))?;
    if actor.id() != Some(owner.id) {
        if owner.kind == PrincipalKind::Machine {
            principals::authorize(&db.read, ctx, owner.id, principals::Need::Manage).await?;
        } else {
            actor.require_admin()?;
        }
    }
    if !owner.enabled {
        return Err(Error::conflict(format!("{} is disabled", owner.username)));
    }
    let name = super::parse_token_name(&new.name)?;
    let description = super::parse_description(new.description.as_deref(), "description")?;
    let lifetime = new.lifetime.seconds(max_lifetime)?;
    let target = match new.audience.as_deref() {
        Some(raw) => Some(find_target(&db.read, raw, "audience").await?),
        None => None,
    };
    let requested = match (new.scopes, &target) {
        (Some(names), _) => ScopeSet::from_names(names.iter().map(|s| s.trim().to_owned())),
        (None, None) => default_scopes(&owner),
        (None, Some(target)) => {
            let mut owned = default_scopes(&owner);
            owned.retain(|s| target.scopes.contains(s));
            if owned.is_empty() {
                return Err(Error::invalid(
                    "audience",
                    format!(
                        "none of the scopes {} may hold belongs to the resource server {}: name the scopes",
                        owner.username, target.identifier
                    ),
                ));
            }
            owned
        }
    };
    if let Some(target) = &target
        && let Some(foreign) = requested.iter().find(|s| !target.scopes.contains(s))
    {
        return Err(Error::invalid(
            "scopes",
            format!(
                "{foreign} does not belong to the resource server {}",
                target.identifier
            ),
        ));
    }
    if requested.is_empty() {
        return Err(Error::invalid("scopes", "choose at least one scope"));
    }
    scopes::require_known(&db.read, &requested).await?;
    if let Some(denied) = requested.iter().find(|s| !principals::permits(&owner, s)) {
        return Err(Error::invalid(
            "scopes",
            format!("{} may not hold {denied}", owner.username),
        ));
    }
    if let Some(ceiling) = ceiling(ctx, owner.id)
        && let Some(extra) = requested.iter().find(|s| !ceiling.contains(s))
    {
        return Err(Error::Forbidden(format!(
            "the calling token does not hold {extra}, so it cannot grant it"
        )));
    }
    let kind = owner_kind(&owner);
    let minted = signer
        .mint_for(
            target.as_ref().map(|t| t.identifier.as_str()),
            owner.id,
            &owner.username,
            kind,
            requested.to_string(),
            lifetime,
        )
        .map_err(Error::Internal)?;
    let row = record_row(
        &minted,
        kind,
        owner.id,
        &name,
        description,
        &requested,
        actor.id(),
    );
    let actor = actor.clone();
    let secret = minted.token;
    let scopes = requested.clone();
    let created = db
        .write
        .write_transaction::<_, token::Model, Error>(|tx| {
            Box::pin(async move {
                hold_owner(tx, owner_id).await?;
                scopes::require_known_locked(tx, &requested).await?;
                release_expired_name(tx, owner_id, &name).await?;
                let created = row.insert(tx).await.map_err(duplicate_name)?;
                crate::storage::counters::add_to_today(tx, 0, 1).await?;
                audit::record(
                    tx,
                    &actor,
                    "token.create",
                    "token",
                    Some(created.id.to_string()),
                    json!({"name": created.name, "kind": kind.as_str(), "owner": owner.username, "scopes": created.scopes, "hint": created.hint}),
                )
                .await?;
                Ok(created)
            })
        })
        .await?;
    let view = tokens::views(&db.read, vec![created]).await?.pop();
    Ok(Issued {
        token: Secret::new(secret),
        scopes,
        lifetime_secs: lifetime,
        view,
    })
}

/// A new token with the same name, scopes and lifetime length; the old one
/// points to the new one and is revoked at once, or keeps working for a grace
/// period (its `revoked_at` in the future). Nobody regenerates another
/// person's token: that would mint a token in their name. An expired token may be renewed
/// this way; a revoked one may not. The new token carries only the old one's
/// scopes that its owner may hold now (a demoted admin loses `admin:*`, a
/// narrowed machine user what it is no longer allowed, and a scope deleted
/// since is gone); when none is left the old one stays as it was (409). The
/// lifetime length is kept within today's policy maximum.
async fn regenerate(
    issuer: &Issuer<'_>,
    ctx: &Context,
    id: Uuid,
    access: Access,
    grace: i64,
) -> Result<Issued, Error> {
    let (db, signer, actor) = (issuer.db, issuer.signer, &ctx.actor);
    let max_lifetime = ctx.policy.max_token_lifetime;
    if let Access::Machine(machine_id) = access {
        principals::authorize(&db.read, ctx, machine_id, principals::Need::Manage).await?;
    }
    let old = find_row(&db.read, id, access).await?;
    if actor.id() != Some(old.owner_id) && old.kind == TokenKind::Personal {
        return Err(Error::Forbidden(
            "a personal token is regenerated by its owner only: administrators never mint one for someone else".into(),
        ));
    }
    // One's own personal token, by any route: a calling token needs
    // tokens:write for it (INTERFACE §6), admin:write is not enough.
    if old.kind == TokenKind::Personal
        && ctx
            .token
            .as_ref()
            .is_some_and(|t| !t.scopes.contains("tokens:write"))
    {
        return Err(Error::Forbidden(
            "regenerating a personal token needs a token holding tokens:write".into(),
        ));
    }
    // Any token: admins only. A machine user's own token: its managers too,
    // authorised above.
    if matches!(access, Access::Any) {
        actor.require_admin()?;
    }
    if tokens::is_revoked(old.revoked_at, super::clock::now()) {
        return Err(Error::conflict("a revoked token cannot be regenerated"));
    }
    if let Some(until) = old.revoked_at {
        return Err(Error::conflict(format!(
            "this token was regenerated already and stops working at {}: regenerate its replacement {} instead",
            super::clock::rfc3339(until),
            old.replaced_by.map(|r| r.to_string()).unwrap_or_default()
        )));
    }
    if old.kind == TokenKind::ClientCredentials {
        return Err(Error::conflict(
            "client-credentials tokens are renewed at the token endpoint",
        ));
    }
    let owner = principals::find(&db.read, old.owner_id)
        .await?
        .ok_or(Error::NotFound("owner"))?;
    if !owner.enabled {
        return Err(Error::conflict(format!("{} is disabled", owner.username)));
    }
    let held = ScopeSet::from_stored(&old.scopes);
    let mut granted = scopes::existing(&db.read, &held, false).await?;
    granted.retain(|s| principals::permits(&owner, s));
    // A token for a resource server stays for it, with only the scopes it
    // still owns; a server removed since leaves nothing to renew it for.
    if let Some(audience) = old.audience.as_deref() {
        let target = resource_servers::target(&db.read, audience)
            .await?
            .ok_or_else(|| {
                Error::conflict(format!(
                    "the resource server {audience} this token is for was removed, so it cannot be regenerated; create a new token instead"
                ))
            })?;
        let held_by_owner = !granted.is_empty();
        granted.retain(|s| target.scopes.contains(s));
        if held_by_owner && granted.is_empty() {
            return Err(Error::conflict(format!(
                "none of this token's scopes ({held}) belongs to the resource server {audience} any more, so it cannot be regenerated for it; create a new token instead"
            )));
        }
    }
    if granted.is_empty() {
        return Err(Error::conflict(format!(
            "{} may no longer hold any of this token's scopes ({held}), so it cannot be regenerated; create a new token instead",
            owner.username
        )));
    }
    if let Some(ceiling) = ceiling(ctx, owner.id)
        && let Some(extra) = granted.iter().find(|s| !ceiling.contains(s))
    {
        return Err(Error::Forbidden(format!(
            "the calling token does not hold {extra}, so it cannot regenerate a token that does"
        )));
    }
    let dropped: Vec<&str> = held.iter().filter(|s| !granted.contains(s)).collect();
    let dropped = json!(dropped);
    let lifetime = (old.expires_at - old.created_at)
        .whole_seconds()
        .clamp(60, max_lifetime.max(60));
    let minted = signer
        .mint_for(
            old.audience.as_deref(),
            owner.id,
            &owner.username,
            old.kind,
            granted.to_string(),
            lifetime,
        )
        .map_err(Error::Internal)?;
    let row = record_row(
        &minted,
        old.kind,
        owner.id,
        &old.name,
        old.description.clone(),
        &granted,
        actor.id(),
    );
    let new_id = minted.id;
    let owner_id = owner.id;
    let name = old.name.clone();
    let old_hint = old.hint.clone();
    let actor2 = actor.clone();
    let secret = minted.token;
    let scopes = granted.clone();
    let created = db
        .write
        .write_transaction::<_, token::Model, Error>(|tx| {
            Box::pin(async move {
                hold_owner(tx, owner_id).await?;
                scopes::require_known_locked(tx, &granted)
                    .await
                    .map_err(|e| match e {
                        Error::Invalid { .. } => Error::conflict(
                            "a scope of this token was deleted meanwhile: try again",
                        ),
                        other => other,
                    })?;
                let ends = super::grace::ends_after(grace);
                if !mark_revoked(tx, &actor2, id, ends, true).await? {
                    return Err(Error::conflict("a revoked token cannot be regenerated"));
                }
                release_expired_name(tx, owner_id, &name).await?;
                let created = row.insert(tx).await.map_err(duplicate_name)?;
                crate::storage::counters::add_to_today(tx, 0, 1).await?;
                token::Entity::update_many()
                    .col_expr(token::Column::ReplacedBy, Expr::value(new_id))
                    .filter(token::Column::Id.eq(id))
                    .exec(tx)
                    .await?;
                audit::record(
                    tx,
                    &actor2,
                    "token.regenerate",
                    "token",
                    Some(id.to_string()),
                    json!({"name": created.name, "new_token": new_id, "hint": created.hint, "old_hint": old_hint, "dropped_scopes": dropped, "grace_seconds": grace}),
                )
                .await?;
                announce(tx, Change::Auth).await?;
                Ok(created)
            })
        })
        .await?;
    db.changes.changed(Change::Auth);
    let view = tokens::views(&db.read, vec![created]).await?.pop();
    Ok(Issued {
        token: Secret::new(secret),
        scopes,
        lifetime_secs: lifetime,
        view,
    })
}

/// A client-credentials token: short-lived, recorded by group commit (counted
/// per batch) and not audited one by one.
async fn client_credentials(
    issuer: &Issuer<'_>,
    machine: &principal::Model,
    jti: Option<JtiClaim>,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<Issued, Error> {
    if !machine.cc_enabled {
        return Err(Error::Forbidden(
            "client credentials are turned off for this client".into(),
        ));
    }
    let target = match resource {
        Some(raw) => Some(find_target(&issuer.db.read, raw, "resource").await?),
        None => None,
    };
    let scopes = match scope {
        None => {
            let mut allowed = default_scopes(machine);
            if let Some(target) = &target {
                allowed.retain(|s| target.scopes.contains(s));
                if allowed.is_empty() {
                    return Err(Error::invalid(
                        "resource",
                        "none of the client's allowed scopes belongs to this resource server",
                    ));
                }
            }
            // A token with no scope at all is no use, and `scope` may not be
            // empty (RFC 6749 §3.3): there is no default to fall back on.
            if allowed.is_empty() {
                return Err(Error::invalid(
                    "scope",
                    "the client is allowed no scopes: an administrator must allow it one",
                ));
            }
            allowed
        }
        Some(raw) if raw.contains(|c: char| c.is_whitespace() && c != ' ') => {
            return Err(Error::invalid(
                "scope",
                "scope names are separated by spaces (RFC 6749 §3.3)",
            ));
        }
        Some(raw) => {
            let requested = ScopeSet::from_stored(raw);
            if requested.is_empty() {
                return Err(Error::invalid(
                    "scope",
                    "the scope names no scope: leave it out for all the client's allowed scopes",
                ));
            }
            if !requested.iter().all(|s| principals::permits(machine, s)) {
                return Err(Error::invalid(
                    "scope",
                    "the requested scope is not among the client's allowed scopes",
                ));
            }
            if let Some(target) = &target
                && let Some(foreign) = requested.iter().find(|s| !target.scopes.contains(s))
            {
                return Err(Error::invalid(
                    "resource",
                    format!("the scope {foreign} does not belong to this resource server"),
                ));
            }
            requested
        }
    };
    let ttl = i64::from(machine.cc_ttl_minutes) * 60;
    let minted = issuer
        .signer
        .mint_for(
            target.as_ref().map(|t| t.identifier.as_str()),
            machine.id,
            &machine.username,
            TokenKind::ClientCredentials,
            scopes.to_string(),
            ttl,
        )
        .map_err(Error::Internal)?;
    let record = TokenRecord {
        id: minted.id,
        jti: minted.jti,
        owner_id: machine.id,
        scopes: scopes.to_string(),
        digest: minted.digest.to_hex(),
        kid: minted.kid,
        created_at: minted.issued_at,
        expires_at: minted.expires_at,
        hint: secret::token_hint(&minted.token),
        audience: minted.audience,
    };
    let entry = match jti {
        Some(jti) => Entry::JtiAndToken(jti, record),
        None => Entry::Token(record),
    };
    if issuer.recorder.record(entry).await? == Outcome::Replayed {
        return Err(Error::ClientRefused);
    }
    Ok(Issued {
        token: Secret::new(minted.token),
        scopes,
        lifetime_secs: ttl,
        view: None,
    })
}

/// The owner of a token about to be written, read again inside its
/// transaction (deleted or disabled since it was first read?) and held until
/// the commit. Taken first: deleting a principal locks it before its tokens,
/// so the same order cannot deadlock.
async fn hold_owner(tx: &impl sea_orm::ConnectionTrait, owner_id: Uuid) -> Result<(), Error> {
    let owner = principal::Entity::find_by_id(owner_id)
        .lock_shared()
        .one(tx)
        .await?
        .ok_or(Error::NotFound("owner"))?;
    if !owner.enabled {
        return Err(Error::conflict(format!("{} is disabled", owner.username)));
    }
    Ok(())
}

fn owner_kind(owner: &principal::Model) -> TokenKind {
    match owner.kind {
        PrincipalKind::User => TokenKind::Personal,
        PrincipalKind::Machine => TokenKind::Machine,
    }
}

/// The resource server a request names, or a refusal naming `field`.
async fn find_target(
    db: &impl sea_orm::ConnectionTrait,
    raw: &str,
    field: &'static str,
) -> Result<resource_servers::Target, Error> {
    let identifier = resource_servers::parse_identifier(raw, field)?;
    resource_servers::target(db, &identifier)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("no resource server is registered as {identifier}"),
            )
        })
}
