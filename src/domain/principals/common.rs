//! What users, machine users and client authentication share: lookups,
//! permissions, the blank principal row and e-mail parsing.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::{
    domain::{
        Actor, AuthMethod, Error, Page, PageRequest, PrincipalKind, PrincipalRef, Role, Username,
        clock, is_admin_scope, is_unique_violation,
    },
    storage::entities::principal,
};

pub const DEFAULT_CC_TTL_MINUTES: i32 = 60;

// ---------------------------------------------------------------- permissions

/// The scopes a principal may hold right now: an admin holds everything, a
/// user everything but `admin:*`, a machine user its allowed scopes (never
/// `admin:*`); a disabled principal holds nothing.
pub fn permits(p: &principal::Model, scope: &str) -> bool {
    if !p.enabled {
        return false;
    }
    match p.kind {
        // INTERFACE §3: only `admin:*` is kept for admins. `introspect` tells
        // no more of a token than `/api/v1/me` tells its holder.
        PrincipalKind::User => p.role == Some(Role::Admin) || !is_admin_scope(scope),
        PrincipalKind::Machine => {
            !is_admin_scope(scope) && p.scopes.split_ascii_whitespace().any(|s| s == scope)
        }
    }
}

pub fn is_admin(p: &principal::Model) -> bool {
    p.enabled && p.kind == PrincipalKind::User && p.role == Some(Role::Admin)
}

// ---------------------------------------------------------------- lookups

pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<principal::Model>, Error> {
    // No username holds NUL, and PostgreSQL refuses it in a query parameter.
    if username.contains('\0') {
        return Ok(None);
    }
    Ok(principal::Entity::find()
        .filter(principal::Column::Username.eq(username))
        .one(db)
        .await?)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<principal::Model>, Error> {
    Ok(principal::Entity::find_by_id(id).one(db).await?)
}

pub async fn refs(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<PrincipalRef>, Error> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, String)> = principal::Entity::find()
        .select_only()
        .column(principal::Column::Id)
        .column(principal::Column::Username)
        .filter(principal::Column::Id.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, username)| PrincipalRef { id, username })
        .collect())
}

pub async fn any_admin(db: &impl ConnectionTrait) -> Result<bool, Error> {
    Ok(principal::Entity::find()
        .filter(principal::Column::Kind.eq(PrincipalKind::User))
        .filter(principal::Column::Role.eq(Role::Admin))
        .filter(principal::Column::Enabled.eq(true))
        .one(db)
        .await?
        .is_some())
}

pub(in crate::domain) fn blank(
    kind: PrincipalKind,
    username: Username,
    actor: &Actor,
) -> principal::ActiveModel {
    let now = clock::now();
    principal::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind),
        username: Set(username.as_str().to_owned()),
        enabled: Set(true),
        role: Set(None),
        password_hash: Set(None),
        display_name: Set(String::new()),
        description: Set(String::new()),
        contact_email: Set(String::new()),
        scopes: Set(String::new()),
        cc_enabled: Set(false),
        cc_ttl_minutes: Set(DEFAULT_CC_TTL_MINUTES),
        created_at: Set(now),
        created_by: Set(actor.id()),
        updated_at: Set(now),
        last_login_at: Set(None),
        email: Set(None),
        // People sign in with a password unless single sign-on says
        // otherwise; machine users never sign in.
        auth: Set((kind == PrincipalKind::User).then_some(AuthMethod::Password)),
    }
}

pub(in crate::domain) fn duplicate_username(e: sea_orm::DbErr) -> Error {
    if is_unique_violation(&e) {
        Error::conflict("username is already taken")
    } else {
        e.into()
    }
}

pub(super) async fn list_kind(
    db: &impl ConnectionTrait,
    kind: PrincipalKind,
    page: PageRequest,
) -> Result<Page<principal::Model>, Error> {
    let mut q = principal::Entity::find().filter(principal::Column::Kind.eq(kind));
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

/// A plausible e-mail address, trimmed, or `None` for a blank: one that the
/// mailer (lettre) can send to (RFC 5321: a dot-atom or quoted local part,
/// a host name or address literal), with a local part of at most 64
/// characters, a dotted domain, at most 254 characters in all, no spaces or
/// control characters. Whether mail arrives is for the mail server to say.
pub fn parse_email(raw: &str, field: &'static str) -> Result<Option<String>, Error> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            (1..=64).contains(&local.len())
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| !label.is_empty())
        })
        && email.parse::<lettre::Address>().is_ok();
    if valid {
        Ok(Some(email.to_owned()))
    } else {
        Err(Error::invalid(
            field,
            "must be an e-mail address such as name@example.com, at most 254 characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_email;

    #[test]
    fn e_mail_addresses_are_ones_the_mailer_can_send_to() {
        for ok in [
            "alice@example.com",
            "a.b+tag@mail.example.co.uk",
            "\"quoted\"@example.com",
            "o'brien@example.ie",
        ] {
            assert_eq!(
                parse_email(&format!(" {ok} "), "email")
                    .ok()
                    .flatten()
                    .as_deref(),
                Some(ok),
                "{ok}"
            );
        }
        assert_eq!(parse_email("  ", "email").ok(), Some(None), "blank");
        for bad in [
            "\"><svg/onload=alert(1)>@x.y",
            "<alice@example.com>",
            "a..b@example.com",
            ".alice@example.com",
            "alice@example",
            "alice@exa mple.com",
            "alice@@example.com",
            "Alice <alice@example.com>",
            "alice@example..com",
        ] {
            assert!(parse_email(bad, "email").is_err(), "{bad}");
        }
    }
}
