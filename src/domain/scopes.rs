//! Scopes: the built-in ones and those an admin registers for downstream APIs.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, LikeExpr},
};
use serde::Serialize;
use serde_json::json;

use super::{
    Actor, BUILTIN_SCOPES, Error, PrincipalKind, ScopeSet, audit, clock, is_unique_violation,
    valid_scope_name,
};
use crate::storage::{
    Db, WriteTransactions,
    entities::{principal, scope, token},
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Scope {
    pub name: String,
    pub description: String,
    pub builtin: bool,
}

impl From<scope::Model> for Scope {
    fn from(m: scope::Model) -> Self {
        Self {
            name: m.name,
            description: m.description,
            builtin: m.builtin,
        }
    }
}

/// Built-in first, then registered ones by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Scope>, Error> {
    let rows = scope::Entity::find()
        .order_by_desc(scope::Column::Builtin)
        .order_by_asc(scope::Column::Name)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Scope::from).collect())
}

/// Every scope in `set` exists; the error names the first that does not.
pub async fn require_known(db: &impl ConnectionTrait, set: &ScopeSet) -> Result<(), Error> {
    check_known(db, set, false).await
}

/// Inside a write transaction: like [`require_known`], and the scopes stay
/// locked until it ends, so a concurrent [`delete`] cannot remove a scope that
/// the transaction is handing out (it waits, then counts the new holder).
pub async fn require_known_locked(tx: &impl ConnectionTrait, set: &ScopeSet) -> Result<(), Error> {
    check_known(tx, set, true).await
}

async fn check_known(db: &impl ConnectionTrait, set: &ScopeSet, lock: bool) -> Result<(), Error> {
    let known = existing(db, set, lock).await?;
    if let Some(unknown) = set.iter().find(|s| !known.contains(s)) {
        return Err(Error::invalid(
            "scopes",
            format!("unknown scope {unknown:?}"),
        ));
    }
    Ok(())
}

/// The scopes of `set` that exist.
pub async fn existing(
    db: &impl ConnectionTrait,
    set: &ScopeSet,
    lock: bool,
) -> Result<ScopeSet, Error> {
    if set.is_empty() {
        return Ok(ScopeSet::default());
    }
    let mut q = scope::Entity::find()
        .select_only()
        .column(scope::Column::Name)
        .filter(scope::Column::Name.is_in(set.to_vec()));
    if lock {
        q = q.lock_shared();
    }
    let names: Vec<String> = q.into_tuple().all(db).await?;
    Ok(ScopeSet::from_names(names))
}

pub async fn create(
    db: &Db,
    actor: &Actor,
    name: &str,
    description: Option<&str>,
) -> Result<Scope, Error> {
    actor.require_admin()?;
    let name = name.trim();
    if !valid_scope_name(name) {
        return Err(Error::invalid(
            "name",
            "must be 1–64 characters of a-z, 0-9, ':', '.', '_' and '-'",
        ));
    }
    if name == "." || name == ".." {
        // A URL path cannot name it: /api/v1/scopes/.. is /api/v1.
        return Err(Error::invalid("name", "may not be \".\" or \"..\""));
    }
    if BUILTIN_SCOPES.contains(&name) || name.starts_with("admin:") {
        return Err(Error::invalid(
            "name",
            "may not be a built-in name or start with admin:",
        ));
    }
    let description = super::parse_description(description, "description")?;
    let model = scope::ActiveModel {
        name: Set(name.to_owned()),
        description: Set(description),
        builtin: Set(false),
    };
    let actor = actor.clone();
    let created = db
        .write
        .write_transaction::<_, scope::Model, Error>(|tx| {
            Box::pin(async move {
                let created = model.insert(tx).await.map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::conflict("a scope with this name exists")
                    } else {
                        e.into()
                    }
                })?;
                audit::record(
                    tx,
                    &actor,
                    "scope.create",
                    "scope",
                    Some(created.name.clone()),
                    json!({"description": created.description}),
                )
                .await?;
                Ok(created)
            })
        })
        .await?;
    Ok(created.into())
}

/// One scope; a name that is not even well-formed names nothing.
pub async fn get(db: &impl ConnectionTrait, name: &str) -> Result<Scope, Error> {
    find(db, name, false)
        .await?
        .map(Scope::from)
        .ok_or(Error::NotFound("scope"))
}

async fn find(
    db: &impl ConnectionTrait,
    name: &str,
    lock: bool,
) -> Result<Option<scope::Model>, Error> {
    if !valid_scope_name(name) {
        return Ok(None);
    }
    let mut q = scope::Entity::find_by_id(name.to_owned());
    if lock {
        q = q.lock_exclusive();
    }
    Ok(q.one(db).await?)
}

/// A registered scope, locked for change; built-in scopes are part of the
/// contract and cannot be changed or deleted.
async fn find_registered(tx: &impl ConnectionTrait, name: &str) -> Result<scope::Model, Error> {
    let current = find(tx, name, true)
        .await?
        .ok_or(Error::NotFound("scope"))?;
    if current.builtin {
        return Err(Error::conflict(format!(
            "{name} is a built-in scope: it cannot be changed or deleted"
        )));
    }
    Ok(current)
}

/// Changes a registered scope's description.
pub async fn update(db: &Db, actor: &Actor, name: &str, description: &str) -> Result<Scope, Error> {
    actor.require_admin()?;
    let description = super::parse_description(Some(description), "description")?;
    let name = name.to_owned();
    let actor = actor.clone();
    let updated = db
        .write
        .write_transaction::<_, scope::Model, Error>(|tx| {
            Box::pin(async move {
                let current = find_registered(tx, &name).await?;
                let before = current.description.clone();
                let mut m = current.into_active_model();
                m.description = Set(description.clone());
                let updated = m.update(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "scope.update",
                    "scope",
                    Some(name),
                    json!({"description": description, "previous_description": before}),
                )
                .await?;
                Ok(updated)
            })
        })
        .await?;
    Ok(updated.into())
}

/// Deletes a registered scope nobody uses: no machine user may be allowed
/// it and no active token may hold it (409 otherwise, with the holders
/// counted). Expired and revoked tokens keep their record of it.
pub async fn delete(db: &Db, actor: &Actor, name: &str) -> Result<(), Error> {
    actor.require_admin()?;
    let name = name.to_owned();
    let actor = actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                // The exclusive lock makes token creation (which locks the
                // scopes it grants, shared) wait, so the counts stay true.
                let current = find_registered(tx, &name).await?;
                let allowed = || {
                    principal::Entity::find()
                        .filter(principal::Column::Kind.eq(PrincipalKind::Machine))
                        .filter(holds(principal::Column::Scopes, &name))
                };
                let machines = allowed().count(tx).await?;
                // The page names them, so the admin knows where to look.
                let named: Vec<String> = allowed()
                    .order_by_asc(principal::Column::Username)
                    .select_only()
                    .column(principal::Column::Username)
                    .limit(NAMED)
                    .into_tuple()
                    .all(tx)
                    .await?;
                // Tokens in a grace period still work, so they count.
                let tokens = token::Entity::find()
                    .filter(
                        sea_orm::Condition::any()
                            .add(token::Column::RevokedAt.is_null())
                            .add(token::Column::RevokedAt.gt(clock::now())),
                    )
                    .filter(token::Column::ExpiresAt.gt(clock::now()))
                    .filter(holds(token::Column::Scopes, &name))
                    .count(tx)
                    .await?;
                if machines > 0 || tokens > 0 {
                    return Err(Error::conflict(in_use(&name, machines, &named, tokens)));
                }
                scope::Entity::delete_by_id(name.clone()).exec(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "scope.delete",
                    "scope",
                    Some(name),
                    json!({"description": current.description}),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(())
}

/// A space-separated scope column holds `name` as a whole word. `_` is a
/// wildcard in LIKE and may appear in names, so it is escaped.
fn holds(column: impl sea_orm::ColumnTrait, name: &str) -> Condition {
    let escaped = name
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let like = |pattern: String| Expr::col(column).like(LikeExpr::new(pattern).escape('\\'));
    Condition::any()
        .add(Expr::col(column).eq(name))
        .add(like(format!("{escaped} %")))
        .add(like(format!("% {escaped}")))
        .add(like(format!("% {escaped} %")))
}

/// Machine users named when a scope in use is refused deletion.
const NAMED: u64 = 5;

fn in_use(name: &str, machines: u64, named: &[String], tokens: u64) -> String {
    let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut holders = Vec::new();
    let mut remedies = Vec::new();
    if machines > 0 {
        let more = if machines > named.len() as u64 {
            ", …"
        } else {
            ""
        };
        holders.push(format!(
            "{} ({}{more})",
            count(
                machines,
                "machine user is allowed it",
                "machine users are allowed it",
            ),
            named.join(", ")
        ));
        remedies.push("take it from those machine users");
    }
    if tokens > 0 {
        holders.push(count(
            tokens,
            "active token holds it",
            "active tokens hold it",
        ));
        remedies.push("revoke those tokens (or let them expire)");
    }
    format!(
        "{name} is in use: {}. To delete it, first {}.",
        holders.join(" and "),
        remedies.join(" and ")
    )
}
