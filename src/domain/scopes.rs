//! Scopes: the built-in ones and those an admin registers for downstream APIs.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde::Serialize;
use serde_json::json;

use super::{Actor, BUILTIN_SCOPES, Error, ScopeSet, audit, is_unique_violation, valid_scope_name};
use crate::storage::{Db, entities::scope};

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
    if set.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = set.to_vec();
    let known = scope::Entity::find()
        .filter(scope::Column::Name.is_in(names))
        .all(db)
        .await?;
    if let Some(unknown) = set.iter().find(|s| !known.iter().any(|k| k.name == *s)) {
        return Err(Error::invalid(
            "scopes",
            format!("unknown scope {unknown:?}"),
        ));
    }
    Ok(())
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
        .transaction::<_, scope::Model, Error>(|tx| {
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
