//! Delegated managers of machine users (INTERFACE §12): people who are not
//! admins but look after a machine user's secrets and tokens. [`authorize`]
//! is the one place that decides who may see or manage a machine user;
//! every domain function acting on one calls it.
//!
//! A machine user is *orphaned* when neither its creator nor any of its
//! managers is an enabled user. A creator that is unknown (`created_by`
//! null: made on the command line, before creators were recorded, or whose
//! creator's row is gone) counts as gone, so such a machine user is orphaned
//! until someone is named to look after it.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    domain::{Context, Error, Page, PageRequest, PrincipalKind, PrincipalRef, clock},
    storage::entities::{machine_user_manager, principal},
};

/// What a caller wants to do with a machine user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// See it, its secrets and its tokens.
    See,
    /// Create and remove its client secrets and keys; issue, regenerate and
    /// revoke its machine tokens.
    Manage,
}

/// The machine user, when the caller may do `need` with it: the command
/// line; an admin whose token (if any) holds `admin:read` / `admin:write`;
/// or one of its managers whose token (if any) holds `tokens:read` /
/// `tokens:write`. Its settings, scopes, managers and deletion stay with
/// admins (`Actor::require_admin`).
pub async fn authorize(
    db: &impl ConnectionTrait,
    ctx: &Context,
    machine_id: Uuid,
    need: Need,
) -> Result<principal::Model, Error> {
    let holds = |scope: &str| ctx.token.as_ref().is_none_or(|t| t.scopes.contains(scope));
    let (admin_scope, manager_scope) = match need {
        Need::See => ("admin:read", "tokens:read"),
        Need::Manage => ("admin:write", "tokens:write"),
    };
    // The caller first: someone who may not act learns nothing, not even
    // whether the machine user exists.
    let allowed = match ctx.actor.principal.as_ref() {
        None => true,
        Some(_) if ctx.actor.is_admin && holds(admin_scope) => true,
        Some(me) => holds(manager_scope) && is_manager(db, machine_id, me.id).await?,
    };
    if !allowed {
        return Err(Error::Forbidden(format!(
            "only administrators (with {admin_scope}) and the machine user's managers (with {manager_scope}) may do this"
        )));
    }
    principal::Entity::find_by_id(machine_id)
        .one(db)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
        .ok_or(Error::NotFound("machine user"))
}

pub async fn is_manager(
    db: &impl ConnectionTrait,
    machine_id: Uuid,
    user_id: Uuid,
) -> Result<bool, Error> {
    Ok(
        machine_user_manager::Entity::find_by_id((machine_id, user_id))
            .one(db)
            .await?
            .is_some(),
    )
}

/// The machine users `user_id` manages.
pub async fn managed_by(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<Uuid>, Error> {
    Ok(machine_user_manager::Entity::find()
        .filter(machine_user_manager::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.machine_user_id)
        .collect())
}

/// Who looks after each machine user: its managers by name, and whether any
/// of them or its creator is an enabled user.
pub struct Keepers {
    pub managers: HashMap<Uuid, Vec<PrincipalRef>>,
    enabled: HashSet<Uuid>,
}

impl Keepers {
    pub async fn of(
        db: &impl ConnectionTrait,
        machines: &[principal::Model],
    ) -> Result<Self, Error> {
        let ids: Vec<Uuid> = machines.iter().map(|m| m.id).collect();
        let links = if ids.is_empty() {
            Vec::new()
        } else {
            machine_user_manager::Entity::find()
                .filter(machine_user_manager::Column::MachineUserId.is_in(ids))
                .all(db)
                .await?
        };
        let people: HashSet<Uuid> = links
            .iter()
            .map(|l| l.user_id)
            .chain(machines.iter().filter_map(|m| m.created_by))
            .collect();
        let rows: Vec<(Uuid, String, bool, PrincipalKind)> = if people.is_empty() {
            Vec::new()
        } else {
            principal::Entity::find()
                .select_only()
                .column(principal::Column::Id)
                .column(principal::Column::Username)
                .column(principal::Column::Enabled)
                .column(principal::Column::Kind)
                .filter(principal::Column::Id.is_in(people))
                .order_by_asc(principal::Column::Username)
                .into_tuple()
                .all(db)
                .await?
        };
        let names: HashMap<Uuid, String> = rows.iter().map(|r| (r.0, r.1.clone())).collect();
        let enabled = rows
            .iter()
            .filter(|r| r.2 && r.3 == PrincipalKind::User)
            .map(|r| r.0)
            .collect();
        let mut managers: HashMap<Uuid, Vec<PrincipalRef>> = HashMap::new();
        for l in links {
            if let Some(username) = names.get(&l.user_id) {
                managers
                    .entry(l.machine_user_id)
                    .or_default()
                    .push(PrincipalRef {
                        id: l.user_id,
                        username: username.clone(),
                    });
            }
        }
        for list in managers.values_mut() {
            list.sort_by(|a, b| a.username.cmp(&b.username));
        }
        Ok(Self { managers, enabled })
    }

    pub fn orphaned(&self, m: &principal::Model) -> bool {
        let creator = m.created_by.is_some_and(|c| self.enabled.contains(&c));
        let manager = self
            .managers
            .get(&m.id)
            .is_some_and(|list| list.iter().any(|p| self.enabled.contains(&p.id)));
        !creator && !manager
    }
}

/// SQL for "no enabled user among the creator and the managers" on the
/// `principals` row being listed.
const ORPHANED: &str = "NOT EXISTS (SELECT 1 FROM principals c WHERE c.id = principals.created_by \
     AND c.enabled AND c.kind = 'user') \
     AND NOT EXISTS (SELECT 1 FROM machine_user_managers mm JOIN principals u ON u.id = mm.user_id \
     WHERE mm.machine_user_id = principals.id AND u.enabled AND u.kind = 'user')";

/// Which machine users a list shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineUserFilter {
    pub orphaned: Option<bool>,
    /// Only those this user manages.
    pub managed_by: Option<Uuid>,
}

/// Machine users, newest first.
pub(super) async fn list_rows(
    db: &impl ConnectionTrait,
    filter: MachineUserFilter,
    page: PageRequest,
) -> Result<Page<principal::Model>, Error> {
    let mut q =
        principal::Entity::find().filter(principal::Column::Kind.eq(PrincipalKind::Machine));
    match filter.orphaned {
        Some(true) => q = q.filter(Expr::cust(ORPHANED)),
        Some(false) => q = q.filter(Expr::cust(format!("NOT ({ORPHANED})"))),
        None => {}
    }
    if let Some(user) = filter.managed_by {
        q = q.filter(principal::Column::Id.is_in(managed_by(db, user).await?));
    }
    if let Some(cursor) = page.cursor {
        q = q.filter(principal::Column::Id.lt(cursor));
    }
    let rows = q
        .order_by_desc(principal::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |m| m.id))
}

/// Replaces the managers of a machine user inside `tx`: each name must be an
/// enabled user (not a machine user); otherwise 400 naming them all.
/// Returns the change for the audit record, or `None` when nothing changed.
pub(super) async fn replace(
    tx: &impl ConnectionTrait,
    machine_id: Uuid,
    usernames: &[String],
) -> Result<Option<serde_json::Value>, Error> {
    let wanted: Vec<String> = {
        let mut seen = HashSet::new();
        usernames
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| seen.insert(u.clone()))
            .collect()
    };
    let found = if wanted.is_empty() {
        Vec::new()
    } else {
        principal::Entity::find()
            .filter(principal::Column::Username.is_in(wanted.clone()))
            .all(tx)
            .await?
    };
    let bad: Vec<&str> = wanted
        .iter()
        .filter(|name| {
            !found
                .iter()
                .any(|p| &p.username == *name && p.kind == PrincipalKind::User && p.enabled)
        })
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(Error::invalid(
            "managers",
            format!("not enabled users: {}", bad.join(", ")),
        ));
    }
    let before: HashSet<Uuid> = machine_user_manager::Entity::find()
        .filter(machine_user_manager::Column::MachineUserId.eq(machine_id))
        .all(tx)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let after: HashSet<Uuid> = found.iter().map(|p| p.id).collect();
    if before == after {
        return Ok(None);
    }
    machine_user_manager::Entity::delete_many()
        .filter(machine_user_manager::Column::MachineUserId.eq(machine_id))
        .exec(tx)
        .await?;
    if !found.is_empty() {
        let now = clock::now();
        machine_user_manager::Entity::insert_many(found.iter().map(|p| {
            machine_user_manager::ActiveModel {
                machine_user_id: Set(machine_id),
                user_id: Set(p.id),
                added_at: Set(now),
            }
        }))
        .exec_without_returning(tx)
        .await?;
    }
    let mut names: Vec<&str> = found.iter().map(|p| p.username.as_str()).collect();
    names.sort_unstable();
    Ok(Some(json!(names)))
}
