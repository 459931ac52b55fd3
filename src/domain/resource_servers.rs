//! Resource servers (RFC 8707, RFC 9068 §3): the APIs that consume tokens,
//! each with an identifier URI and the registered scopes it owns. A token
//! asked for one carries its identifier as `aud` and only its scopes
//! (`issuance`); a scope belongs to at most one resource server.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Actor, Error, ScopeSet, audit, clock, is_unique_violation};
use crate::storage::{
    Db, WriteTransactions,
    entities::{resource_server, resource_server_scope, scope},
};

/// The longest identifier accepted.
const MAX_IDENTIFIER: usize = 2048;
const MAX_NAME: usize = 200;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResourceServer {
    pub id: Uuid,
    /// An absolute URI without a fragment: the `aud` of its tokens.
    pub identifier: String,
    pub name: String,
    /// Registered scopes it owns, by name.
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a create or a change asks for (`None`: keep as is).
#[derive(Debug, Default)]
pub struct ResourceServerInput {
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// A resource server as issuance needs it: the `aud` and the scopes it owns.
#[derive(Debug, Clone)]
pub struct Target {
    pub identifier: String,
    pub scopes: ScopeSet,
}

/// An absolute URI without a fragment (RFC 8707 §2), kept exactly as given
/// (no normalisation: it must equal the `aud` a resource server checks).
pub fn parse_identifier(raw: &str, field: &'static str) -> Result<String, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if raw.len() > MAX_IDENTIFIER {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_IDENTIFIER} characters"),
        ));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(field, "must not contain spaces"));
    }
    let url = url::Url::parse(raw).map_err(|e| {
        Error::invalid(
            field,
            format!("must be an absolute URI such as https://api.example.com ({e})"),
        )
    })?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(Error::invalid(
            field,
            "must not have a fragment (#…) (RFC 8707 §2)",
        ));
    }
    Ok(raw.to_owned())
}

fn parse_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            format!("must be 1 to {MAX_NAME} characters without control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Every resource server, by identifier (a deployment has few).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<ResourceServer>, Error> {
    let rows = resource_server::Entity::find()
        .order_by_asc(resource_server::Column::Identifier)
        .all(db)
        .await?;
    let owned = resource_server_scope::Entity::find()
        .order_by_asc(resource_server_scope::Column::Scope)
        .all(db)
        .await?;
    let mut scopes: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in owned {
        scopes
            .entry(row.resource_server_id)
            .or_default()
            .push(row.scope);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let owned = scopes.remove(&r.id).unwrap_or_default();
            view(r, owned)
        })
        .collect())
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<ResourceServer, Error> {
    let row = resource_server::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("resource server"))?;
    let scopes = scopes_of(db, id).await?;
    Ok(view(row, scopes))
}

/// The resource server with this identifier, if one is registered.
pub async fn target(db: &impl ConnectionTrait, identifier: &str) -> Result<Option<Target>, Error> {
    let Some(row) = resource_server::Entity::find()
        .filter(resource_server::Column::Identifier.eq(identifier))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Target {
        identifier: row.identifier,
        scopes: ScopeSet::from_names(scopes_of(db, row.id).await?),
    }))
}

async fn scopes_of(db: &impl ConnectionTrait, id: Uuid) -> Result<Vec<String>, Error> {
    Ok(resource_server_scope::Entity::find()
        .filter(resource_server_scope::Column::ResourceServerId.eq(id))
        .order_by_asc(resource_server_scope::Column::Scope)
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.scope)
        .collect())
}

fn view(row: resource_server::Model, scopes: Vec<String>) -> ResourceServer {
    ResourceServer {
        id: row.id,
        identifier: row.identifier,
        name: row.name,
        scopes,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

pub async fn create(
    db: &Db,
    actor: &Actor,
    input: ResourceServerInput,
) -> Result<ResourceServer, Error> {
    actor.require_admin()?;
    let identifier = parse_identifier(
        input
            .identifier
            .as_deref()
            .ok_or_else(|| Error::invalid("identifier", "is required"))?,
        "identifier",
    )?;
    let name = parse_name(
        input
            .name
            .as_deref()
            .ok_or_else(|| Error::invalid("name", "is required"))?,
    )?;
    let scopes = input.scopes.unwrap_or_default();
    let actor = actor.clone();
    let id = db
        .write
        .write_transaction::<_, Uuid, Error>(|tx| {
            Box::pin(async move {
                let now = clock::now();
                let id = Uuid::now_v7();
                resource_server::ActiveModel {
                    id: Set(id),
                    identifier: Set(identifier.clone()),
                    name: Set(name.clone()),
                    created_at: Set(now),
                    created_by: Set(actor.id()),
                    updated_at: Set(now),
                }
                .insert(tx)
                .await
                .map_err(duplicate_identifier)?;
                let owned = assign_scopes(tx, id, &scopes).await?;
                audit::record(
                    tx,
                    &actor,
                    "resource_server.create",
                    "resource_server",
                    Some(id.to_string()),
                    json!({"identifier": identifier, "name": name, "scopes": owned}),
                )
                .await?;
                Ok(id)
            })
        })
        .await?;
    get(&db.read, id).await
}

pub async fn update(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: ResourceServerInput,
) -> Result<ResourceServer, Error> {
    actor.require_admin()?;
    let identifier = input
        .identifier
        .as_deref()
        .map(|raw| parse_identifier(raw, "identifier"))
        .transpose()?;
    let name = input.name.as_deref().map(parse_name).transpose()?;
    let scopes = input.scopes;
    let actor = actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                let current = resource_server::Entity::find_by_id(id)
                    .one(tx)
                    .await?
                    .ok_or(Error::NotFound("resource server"))?;
                let mut row: resource_server::ActiveModel = current.into();
                if let Some(identifier) = &identifier {
                    row.identifier = Set(identifier.clone());
                }
                if let Some(name) = &name {
                    row.name = Set(name.clone());
                }
                row.updated_at = Set(clock::now());
                row.update(tx).await.map_err(duplicate_identifier)?;
                let owned = match &scopes {
                    Some(scopes) => {
                        resource_server_scope::Entity::delete_many()
                            .filter(resource_server_scope::Column::ResourceServerId.eq(id))
                            .exec(tx)
                            .await?;
                        Some(assign_scopes(tx, id, scopes).await?)
                    }
                    None => None,
                };
                audit::record(
                    tx,
                    &actor,
                    "resource_server.update",
                    "resource_server",
                    Some(id.to_string()),
                    json!({"identifier": identifier, "name": name, "scopes": owned}),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
    get(&db.read, id).await
}

/// Removes a resource server; its scopes stay registered and belong to none.
/// Tokens issued for it keep their `aud` until they expire or are revoked.
pub async fn delete(db: &Db, actor: &Actor, id: Uuid) -> Result<(), Error> {
    actor.require_admin()?;
    let actor = actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                let current = resource_server::Entity::find_by_id(id)
                    .one(tx)
                    .await?
                    .ok_or(Error::NotFound("resource server"))?;
                resource_server_scope::Entity::delete_many()
                    .filter(resource_server_scope::Column::ResourceServerId.eq(id))
                    .exec(tx)
                    .await?;
                resource_server::Entity::delete_by_id(id).exec(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "resource_server.delete",
                    "resource_server",
                    Some(id.to_string()),
                    json!({"identifier": current.identifier, "name": current.name}),
                )
                .await?;
                Ok(())
            })
        })
        .await
        .map_err(Error::from)
}

/// Gives `server` the scopes named: each must be a registered (not
/// built-in) scope that no other resource server owns.
async fn assign_scopes(
    tx: &impl ConnectionTrait,
    server: Uuid,
    names: &[String],
) -> Result<Vec<String>, Error> {
    let wanted = ScopeSet::from_names(names.iter().map(|s| s.trim().to_owned()));
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let known: HashMap<String, bool> = scope::Entity::find()
        .filter(scope::Column::Name.is_in(wanted.to_vec()))
        .all(tx)
        .await?
        .into_iter()
        .map(|s| (s.name, s.builtin))
        .collect();
    for name in wanted.iter() {
        match known.get(name) {
            None => {
                return Err(Error::invalid("scopes", format!("unknown scope {name:?}")));
            }
            Some(true) => {
                return Err(Error::invalid(
                    "scopes",
                    format!(
                        "{name} is a built-in scope of Tessera's own API; a resource server owns registered scopes only"
                    ),
                ));
            }
            Some(false) => {}
        }
    }
    let taken = resource_server_scope::Entity::find()
        .filter(resource_server_scope::Column::Scope.is_in(wanted.to_vec()))
        .filter(resource_server_scope::Column::ResourceServerId.ne(server))
        .one(tx)
        .await?;
    if let Some(taken) = taken {
        let owner = resource_server::Entity::find_by_id(taken.resource_server_id)
            .one(tx)
            .await?
            .map_or_else(String::new, |s| s.identifier);
        return Err(Error::conflict(format!(
            "scope {} already belongs to the resource server {owner}: a scope belongs to at most one",
            taken.scope
        )));
    }
    let rows = wanted
        .iter()
        .map(|name| resource_server_scope::ActiveModel {
            scope: Set(name.to_owned()),
            resource_server_id: Set(server),
        });
    resource_server_scope::Entity::insert_many(rows)
        .exec_without_returning(tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict("a scope was given to another resource server meanwhile: try again")
            } else {
                e.into()
            }
        })?;
    Ok(wanted.to_vec())
}

fn duplicate_identifier(e: sea_orm::DbErr) -> Error {
    if is_unique_violation(&e) {
        Error::conflict("a resource server with this identifier exists")
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_absolute_uris_without_fragments() {
        for ok in [
            "https://api.example.com",
            "https://billing.example.com/v1",
            "urn:example:billing",
        ] {
            assert_eq!(parse_identifier(ok, "identifier").unwrap(), ok);
        }
        for bad in [
            "",
            "billing",
            "/relative/path",
            "https://api.example.com/#frag",
            "https://api.example.com#",
            "https://api example.com",
        ] {
            assert!(parse_identifier(bad, "identifier").is_err(), "{bad:?}");
        }
    }
}
