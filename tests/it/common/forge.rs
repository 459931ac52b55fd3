//! Tokens signed with the server's own key, straight from its database, and
//! recorded as it records them: what a token looks like when everything but
//! the one thing under test is right.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tessera::{
    config::{MasterKey, Settings, SettingsArgs},
    domain::{ScopeSet, TokenKind, clock, principals, signing_keys as keys, tokens::record_row},
    jwt::Minted,
    secret::Digest,
    storage::{Db, entities::token},
};

use super::{Backend, TestApp};

/// Signs and records a personal token of `username` as if issued `ahead`
/// seconds from now, expiring `lasts` seconds after that.
pub async fn forge(app: &TestApp, username: &str, ahead: i64, lasts: i64) -> String {
    forge_with_header(app, username, ahead, lasts, None).await
}

/// As [`forge`], signed under `header` (the key's own when `None`): a valid
/// signature and a recorded token, so only the header can be refused.
pub async fn forge_with_header(
    app: &TestApp,
    username: &str,
    ahead: i64,
    lasts: i64,
    header: Option<Value>,
) -> String {
    use sea_orm::EntityTrait;
    let db = Db::connect(&app.db.url).await.expect("database");
    let master = match app.db.backend {
        Backend::Sqlite => {
            let text =
                std::fs::read_to_string(app.db.dir.path().join("master.key")).expect("master.key");
            MasterKey::from_base64(&text).unwrap()
        }
        Backend::Postgres => MasterKey::from_base64(super::TEST_MASTER_KEY).unwrap(),
    };
    // The test servers run with the default issuer and audience.
    let settings = Settings::load(&SettingsArgs::default()).unwrap();
    let ring = keys::load_ring(&db.read, &master, None)
        .await
        .expect("keys");
    let owner = principals::find_by_username(&db.read, username)
        .await
        .unwrap()
        .expect("owner");
    let issued_at = clock::now() + time::Duration::seconds(ahead);
    let expires_at = issued_at + time::Duration::seconds(lasts);
    let id = uuid::Uuid::now_v7();
    let claims = json!({
        "iss": settings.public_url, "aud": settings.audience, "sub": owner.id.to_string(),
        "exp": expires_at.unix_timestamp(), "iat": issued_at.unix_timestamp(),
        "nbf": issued_at.unix_timestamp(), "jti": id.to_string(), "client_id": username,
        "scope": "profile", "token_kind": "personal",
    });
    let jwt = match header {
        None => ring.active.sign_jwt(claims.to_string().as_bytes()).unwrap(),
        Some(header) => {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = ring.active.sign(input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }
    };
    let minted = Minted {
        id,
        token: jwt.clone(),
        jti: id.to_string(),
        kid: ring.active.kid.clone(),
        issued_at,
        expires_at,
        digest: Digest::of(&jwt),
        audience: None,
    };
    let row = record_row(
        &minted,
        TokenKind::Personal,
        owner.id,
        &format!("forged-{id}"),
        String::new(),
        &ScopeSet::from_stored("profile"),
        None,
    );
    token::Entity::insert(row)
        .exec(&db.write)
        .await
        .expect("record");
    jwt
}
