//! Clock leeway: a token issued by an instance whose clock runs a little
//! ahead (`iat`/`nbf` seconds in the future) is accepted; one from much
//! further ahead is not, and an expired token stays expired.

use serde_json::json;
use tessera::{
    config::{MasterKey, Settings, SettingsArgs},
    domain::{ScopeSet, TokenKind, clock, principals, signing_keys as keys, tokens::record_row},
    jwt::Minted,
    secret::Digest,
    storage::{Db, entities::token},
};

use crate::{
    both_backends,
    common::{Api, Backend},
};

/// Signs and records a personal token of `username` as if issued `ahead`
/// seconds from now, expiring `lasts` seconds after that.
async fn forge(api: &Api, username: &str, ahead: i64, lasts: i64) -> String {
    use sea_orm::EntityTrait;
    let db = Db::connect(&api.app.db.url).await.expect("database");
    let master = match api.app.db.backend {
        Backend::Sqlite => {
            let text = std::fs::read_to_string(api.app.db.dir.path().join("master.key"))
                .expect("master.key");
            MasterKey::from_base64(&text).unwrap()
        }
        Backend::Postgres => MasterKey::from_base64(crate::common::TEST_MASTER_KEY).unwrap(),
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
    let jwt = ring.active.sign_jwt(claims.to_string().as_bytes()).unwrap();
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

async fn me(api: &Api, jwt: &str) -> u16 {
    api.app
        .get_bearer("/api/v1/me", jwt)
        .await
        .status()
        .as_u16()
}

async fn tokens_from_a_clock_slightly_ahead_are_accepted(backend: Backend) {
    let api = Api::spawn(backend).await;
    api.app.create_user("alice", false);
    let leeway = tessera::token_service::CLOCK_LEEWAY_SECS;
    assert!((30..=300).contains(&leeway), "a small leeway: {leeway}");

    let slightly_ahead = forge(&api, "alice", 30, 3600).await;
    assert_eq!(me(&api, &slightly_ahead).await, 200, "30 s ahead");
    let far_ahead = forge(&api, "alice", 600, 3600).await;
    assert_eq!(me(&api, &far_ahead).await, 401, "10 minutes ahead");
    // No leeway at the other end: expired a few seconds ago is expired.
    let just_expired = forge(&api, "alice", -3605, 3600).await;
    assert_eq!(me(&api, &just_expired).await, 401, "expired 5 s ago");
}

both_backends!(tokens_from_a_clock_slightly_ahead_are_accepted);
