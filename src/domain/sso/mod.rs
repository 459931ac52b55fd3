//! Single sign-on (INTERFACE §10): what a person the identity provider
//! vouched for may do here. The first sign-in creates the user (linked to
//! the provider's `iss` and `sub`), later ones follow a rename and set the
//! role from the groups again; the allow-list, a disabled account and a
//! username taken by someone else refuse the sign-in. The protocol itself
//! is `crate::oidc`'s; the flow state is in `flows`.

pub mod flows;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel};
use serde_json::{Map, Value, json};

use super::{
    Actor, AuthMethod, Error, PrincipalKind, PrincipalRef, Role, Username, audit, clock,
    principals,
    sessions::{self, NewSession},
};
use crate::{
    secret::MasterKey,
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{oidc_identity, principal, session},
    },
};

/// A person the provider vouched for (a verified ID token).
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub claims: Map<String, Value>,
}

/// How claims become a Tessera user: the settings of §10.
pub struct Rules<'a> {
    pub username_claim: &'a str,
    pub groups_claim: &'a str,
    pub admin_groups: &'a [String],
    /// `None`: anyone the provider signs in.
    pub allowed_groups: Option<&'a [String]>,
}

/// Why a sign-in the provider vouched for is refused here, in words.
#[derive(Debug)]
pub enum Refusal {
    /// The claim, and the names of the claims the ID token did carry.
    MissingClaim(String, Vec<String>),
    BadUsername {
        claim: String,
        value: String,
    },
    NotAllowed,
    UsernameTaken(String),
    Disabled,
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Self::MissingClaim(..) => "username claim missing",
            Self::BadUsername { .. } => "invalid username claim",
            Self::NotAllowed => "not in an allowed group",
            Self::UsernameTaken(_) => "username taken",
            Self::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingClaim(claim, present) => write!(
                f,
                "The identity provider did not send the claim {claim:?} in the ID token, and Tessera takes the username from it (TESSERA_OIDC_USERNAME_CLAIM). Ask an administrator to have the provider include it (the ID token has: {}).",
                present.join(", ")
            ),
            Self::BadUsername { claim, value } => write!(
                f,
                "The claim {claim:?} is {value:?}, which cannot be a Tessera username: usernames are 3–64 characters of lowercase letters, digits, '-', '_' and '.', starting with a letter or digit. Ask an administrator to change it at the provider or to pick another claim (TESSERA_OIDC_USERNAME_CLAIM)."
            ),
            Self::NotAllowed => f.write_str(
                "Your account at the identity provider is not in a group that may use Tessera. Ask an administrator to add you to one.",
            ),
            Self::UsernameTaken(name) => write!(
                f,
                "The username {name:?} is already taken by another Tessera account (a person or a machine user), so your sign-in cannot use it. Ask an administrator to rename one of the two."
            ),
            Self::Disabled => f.write_str(
                "Your Tessera account is disabled. Ask an administrator to enable it.",
            ),
        }
    }
}

#[derive(Debug)]
pub enum SignInError {
    Refused(Refusal),
    Other(Error),
}

impl From<Error> for SignInError {
    fn from(e: Error) -> Self {
        Self::Other(e)
    }
}

/// The group names in a claim: an array of strings, or one string.
fn groups(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    match claims.get(claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// What the claims say about the person, or why they cannot sign in.
#[derive(Debug)]
struct Claimed {
    username: Username,
    email: Option<String>,
    /// From the groups when `TESSERA_OIDC_ADMIN_GROUPS` is set; otherwise
    /// roles are Tessera's own (set by admins) and sign-in leaves them be.
    role: Option<Role>,
}

fn read_claims(identity: &Identity, rules: &Rules<'_>) -> Result<Claimed, Refusal> {
    let member = groups(&identity.claims, rules.groups_claim);
    let in_any = |list: &[String]| member.iter().any(|g| list.contains(g));
    let is_admin = in_any(rules.admin_groups);
    // The allow-list is the only way in (INTERFACE §10: "others are
    // refused"), admin groups included: list them there too.
    if let Some(allowed) = rules.allowed_groups
        && !in_any(allowed)
    {
        return Err(Refusal::NotAllowed);
    }
    let raw = match identity.claims.get(rules.username_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(Refusal::MissingClaim(
                rules.username_claim.to_owned(),
                identity.claims.keys().cloned().collect(),
            ));
        }
    };
    // ASCII lower-casing only: Unicode's would turn a KELVIN SIGN into a "k"
    // and let one name pass for another's.
    let username =
        Username::parse(&raw.to_ascii_lowercase()).map_err(|_| Refusal::BadUsername {
            claim: rules.username_claim.to_owned(),
            value: raw.chars().take(80).collect(),
        })?;
    // An unusable address is ignored: notices are optional. So is one the
    // provider says it has not verified (anyone may type any address there),
    // lest reminders and leak notices go to someone else.
    let unverified = identity.claims.get("email_verified") == Some(&Value::Bool(false));
    let email = identity
        .claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|_| !unverified)
        .and_then(|e| principals::parse_email(e, "email").ok().flatten());
    Ok(Claimed {
        username,
        email,
        role: (!rules.admin_groups.is_empty()).then_some(if is_admin {
            Role::Admin
        } else {
            Role::User
        }),
    })
}

/// Signs in a person the provider vouched for: creates or updates their
/// user, ends the browser's previous session and starts a new one, all in
/// one transaction; refusals are audited as `session.login_failed`.
pub async fn sign_in(
    db: &Db,
    master: &MasterKey,
    identity: Identity,
    rules: &Rules<'_>,
    ip: Option<String>,
    previous_cookie: Option<&str>,
) -> Result<NewSession, SignInError> {
    let claimed = read_claims(&identity, rules);
    let outcome = match claimed {
        Ok(claimed) => {
            let previous = previous_cookie.map(|c| sessions::session_key(master, c));
            let master = master.clone();
            let ip = ip.clone();
            let issuer = identity.issuer.clone();
            let subject = identity.subject.clone();
            db.write
                .write_transaction::<_, Result<(NewSession, bool), (Refusal, Option<String>)>, Error>(
                    |tx| {
                        Box::pin(async move {
                            let user =
                                match link_or_create(tx, &issuer, &subject, claimed, &ip).await? {
                                    Ok(user) => user,
                                    Err(refusal) => return Ok(Err(refusal)),
                                };
                            if let Some(previous) = previous {
                                session::Entity::delete_by_id(previous).exec(tx).await?;
                            }
                            let new = sessions::insert_session(tx, &master, user.0.id, ip.clone())
                                .await?;
                            principals::record_login(tx, user.0.id).await?;
                            audit::record(
                                tx,
                                &user_actor(&user.0, ip),
                                "session.login",
                                "user",
                                Some(user.0.id.to_string()),
                                json!({"method": "oidc", "issuer": issuer, "subject": subject}),
                            )
                            .await?;
                            Ok(Ok((new, user.1)))
                        })
                    },
                )
                .await
                .map_err(Error::from)?
        }
        Err(refusal) => Err((refusal, None)),
    };
    match outcome {
        Ok((new, rights_changed)) => {
            if rights_changed {
                db.changes.changed(Change::Auth);
            }
            Ok(new)
        }
        Err((refusal, target)) => {
            let mut details = json!({
                "method": "oidc",
                "reason": refusal.reason(),
                "issuer": identity.issuer,
                "subject": identity.subject,
            });
            if let Some(name) = identity
                .claims
                .get(rules.username_claim)
                .and_then(Value::as_str)
            {
                details["username"] = json!(name.chars().take(64).collect::<String>());
            }
            audit::record(
                &db.write,
                &Actor {
                    ip,
                    ..Actor::system()
                },
                "session.login_failed",
                "user",
                target,
                details,
            )
            .await?;
            Err(SignInError::Refused(refusal))
        }
    }
}

/// Audits a sign-in the provider did not vouch for (its token endpoint
/// refused the code, or the ID token failed verification).
pub async fn record_failure(db: &Db, ip: Option<String>, detail: &str) -> Result<(), Error> {
    audit::record(
        &db.write,
        &Actor {
            ip,
            ..Actor::system()
        },
        "session.login_failed",
        "user",
        None,
        json!({"method": "oidc", "reason": "identity provider", "detail": detail.chars().take(500).collect::<String>()}),
    )
    .await
}

fn user_actor(user: &principal::Model, ip: Option<String>) -> Actor {
    Actor {
        principal: Some(PrincipalRef {
            id: user.id,
            username: user.username.clone(),
        }),
        is_admin: principals::is_admin(user),
        ip,
        token_id: None,
    }
}

/// The linked user, updated from the claims (and whether its rights or
/// name changed), or a new one; or why not (with the user's id, if known).
async fn link_or_create(
    tx: &impl ConnectionTrait,
    issuer: &str,
    subject: &str,
    claimed: Claimed,
    ip: &Option<String>,
) -> Result<Result<(principal::Model, bool), (Refusal, Option<String>)>, Error> {
    let link = oidc_identity::Entity::find_by_id((issuer.to_owned(), subject.to_owned()))
        .one(tx)
        .await?;
    let linked = match link {
        Some(l) => principals::find(tx, l.principal_id).await?,
        None => None,
    };
    let name = claimed.username.as_str();
    let holder = principals::find_by_username(tx, name).await?;
    if let Some(user) = linked {
        let id = Some(user.id.to_string());
        if user.kind != PrincipalKind::User || !user.enabled {
            return Ok(Err((Refusal::Disabled, id)));
        }
        if holder.is_some_and(|h| h.id != user.id) {
            return Ok(Err((Refusal::UsernameTaken(name.to_owned()), id)));
        }
        let mut changed = Map::new();
        let mut m = user.clone().into_active_model();
        if user.username != name {
            changed.insert("username".into(), json!(name));
            m.username = Set(name.to_owned());
        }
        if let Some(role) = claimed.role
            && user.role != Some(role)
        {
            changed.insert("role".into(), json!(role.as_str()));
            m.role = Set(Some(role));
        }
        if claimed.email.is_some() && user.email != claimed.email {
            changed.insert("email".into(), json!(claimed.email));
            m.email = Set(claimed.email);
        }
        if changed.is_empty() {
            return Ok(Ok((user, false)));
        }
        m.updated_at = Set(clock::now());
        let updated = m.update(tx).await.map_err(principals::duplicate_username)?;
        announce(tx, Change::Auth).await?;
        changed.insert("via".into(), json!("oidc"));
        audit::record(
            tx,
            &Actor {
                ip: ip.clone(),
                ..Actor::system()
            },
            "user.update",
            "user",
            Some(updated.id.to_string()),
            Value::Object(changed),
        )
        .await?;
        return Ok(Ok((updated, true)));
    }
    if holder.is_some() {
        return Ok(Err((Refusal::UsernameTaken(name.to_owned()), None)));
    }
    let mut model = principals::blank(PrincipalKind::User, claimed.username, &Actor::system());
    let role = claimed.role.unwrap_or(Role::User);
    model.role = Set(Some(role));
    model.auth = Set(Some(AuthMethod::Oidc));
    model.email = Set(claimed.email);
    let created = model
        .insert(tx)
        .await
        .map_err(principals::duplicate_username)?;
    // A stale link (its user gone) is replaced.
    oidc_identity::Entity::delete_by_id((issuer.to_owned(), subject.to_owned()))
        .exec(tx)
        .await?;
    oidc_identity::Entity::insert(oidc_identity::ActiveModel {
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        principal_id: Set(created.id),
        created_at: Set(clock::now()),
    })
    .exec_without_returning(tx)
    .await?;
    audit::record(
        tx,
        &Actor {
            ip: ip.clone(),
            ..Actor::system()
        },
        "user.create",
        "user",
        Some(created.id.to_string()),
        json!({
            "username": created.username,
            "role": role.as_str(),
            "email": created.email,
            "via": "oidc",
        }),
    )
    .await?;
    Ok(Ok((created, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(claims: Value) -> Identity {
        Identity {
            issuer: "https://id.example".into(),
            subject: "s1".into(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn rules<'a>(admin: &'a [String], allowed: Option<&'a [String]>) -> Rules<'a> {
        Rules {
            username_claim: "preferred_username",
            groups_claim: "groups",
            admin_groups: admin,
            allowed_groups: allowed,
        }
    }

    #[test]
    fn claims_become_a_lowercased_username_and_a_role_from_groups() {
        let admin = ["ops".to_owned()];
        let c = read_claims(
            &identity(json!({"preferred_username": "Alice", "groups": ["ops", "x"], "email": "a@example.com"})),
            &rules(&admin, None),
        )
        .unwrap();
        assert_eq!(c.username.as_str(), "alice");
        assert_eq!(c.role, Some(Role::Admin));
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        let c = read_claims(
            &identity(json!({"preferred_username": "bob", "groups": "x", "email": "nope"})),
            &rules(&admin, None),
        )
        .unwrap();
        assert_eq!((c.role, c.email), (Some(Role::User), None));
        // No admin groups set: the role is left to Tessera's admins.
        let c = read_claims(
            &identity(json!({"preferred_username": "carol", "groups": ["ops"]})),
            &rules(&[], None),
        )
        .unwrap();
        assert_eq!(c.role, None);
        // U+212A KELVIN SIGN lower-cases to "k" in Unicode: refused, not "kate".
        let kelvin = read_claims(
            &identity(json!({"preferred_username": "\u{212A}ate"})),
            &rules(&admin, None),
        );
        assert!(matches!(kelvin, Err(Refusal::BadUsername { .. })));
    }

    #[test]
    fn the_allow_list_and_bad_claims_refuse() {
        let admin = ["ops".to_owned()];
        let allowed = ["staff".to_owned()];
        let r = rules(&admin, Some(&allowed));
        assert!(matches!(
            read_claims(
                &identity(json!({"preferred_username": "abc", "groups": ["x"]})),
                &r
            ),
            Err(Refusal::NotAllowed)
        ));
        // An admin group alone does not pass the allow-list.
        assert!(matches!(
            read_claims(
                &identity(json!({"preferred_username": "abc", "groups": ["ops"]})),
                &r
            ),
            Err(Refusal::NotAllowed)
        ));
        let both = read_claims(
            &identity(json!({"preferred_username": "abc", "groups": ["ops", "staff"]})),
            &r,
        )
        .unwrap();
        assert_eq!(both.role, Some(Role::Admin));
        assert!(
            read_claims(
                &identity(json!({"preferred_username": "abc", "groups": ["staff"]})),
                &r
            )
            .is_ok()
        );
        let open = rules(&admin, None);
        assert!(matches!(
            read_claims(&identity(json!({"groups": []})), &open),
            Err(Refusal::MissingClaim(c, _)) if c == "preferred_username"
        ));
        let e = read_claims(&identity(json!({"preferred_username": "a b@c"})), &open).unwrap_err();
        assert!(e.to_string().contains("preferred_username"), "{e}");
    }
}
