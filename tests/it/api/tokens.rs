//! `/api/v1/tokens`: the caller's own tokens.

use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, token_request},
};

async fn a_user_creates_reads_lists_and_revokes_own_tokens(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);

    let created = api
        .post(
            "/api/v1/tokens",
            &pat,
            &token_request("laptop", &["profile"]),
        )
        .await;
    created.expect(201, "create");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/tokens/{id}").as_str())
    );
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let secret = created.body["token"]
        .as_str()
        .expect("secret once")
        .to_owned();
    assert_eq!(created.body["kind"], "personal");
    assert_eq!(created.body["owner"]["username"], "alice");
    assert_eq!(created.body["owner"]["type"], "user");
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["scopes"], json!(["profile"]));
    assert_eq!(created.body["created_by"]["username"], "alice");
    for field in [
        "jti",
        "description",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "revoked_by",
        "replaced_by",
    ] {
        assert!(created.body.get(field).is_some(), "token has {field}");
    }

    // The new token works, with exactly its scopes.
    let me = api.get("/api/v1/me", &secret).await;
    me.expect(200, "me with new token");
    assert_eq!(me.body["scopes"], json!(["profile"]));
    assert_eq!(me.body["token"]["id"], id.as_str());

    // Read back: never the secret again.
    let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
    got.expect(200, "get");
    assert!(got.body.get("token").is_none(), "secret shown twice");
    assert!(!got.text.contains(&secret));
    let list = api.get("/api/v1/tokens", &pat).await;
    list.expect(200, "list");
    assert!(!list.text.contains(&secret), "secret in list");
    let items = list.body["items"].as_array().unwrap();
    assert!(items.iter().any(|t| t["id"] == id.as_str()));
    assert!(items.iter().all(|t| t.get("token").is_none()));
    assert!(items.iter().all(|t| t["owner"]["username"] == "alice"));

    // Revoke: 204, still listed, now revoked, and refused at once.
    api.delete(&format!("/api/v1/tokens/{id}"), &pat)
        .await
        .expect(204, "revoke");
    let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
    assert_eq!(got.body["status"], "revoked");
    assert_eq!(got.body["revoked_by"]["username"], "alice");
    let refused = api.get("/api/v1/me", &secret).await;
    refused.expect(401, "revoked token");
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    // Idempotent.
    api.delete(&format!("/api/v1/tokens/{id}"), &pat)
        .await
        .expect(204, "revoke again");
    // A revoked token cannot be regenerated.
    let again = api
        .post_empty(&format!("/api/v1/tokens/{id}/regenerate"), &pat)
        .await;
    again.expect(409, "regenerate revoked");
    assert_eq!(again.problem(), "conflict");

    // Its name is free again.
    api.post(
        "/api/v1/tokens",
        &pat,
        &token_request("laptop", &["profile"]),
    )
    .await
    .expect(201, "name reusable after revoke");
}

async fn regenerating_replaces_the_token_and_revokes_the_old_one(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let old = api
        .post(
            "/api/v1/tokens",
            &pat,
            &json!({"name": "ci", "description": "deploys", "scopes": ["profile", "tokens:read"], "expires_at": until}),
        )
        .await;
    old.expect(201, "create with expires_at");
    let old_id = old.body["id"].as_str().unwrap().to_owned();
    let old_secret = old.body["token"].as_str().unwrap().to_owned();

    let new = api
        .post_empty(&format!("/api/v1/tokens/{old_id}/regenerate"), &pat)
        .await;
    new.expect(201, "regenerate");
    let new_id = new.body["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old_id);
    assert_ne!(new.body["jti"], old.body["jti"]);
    assert_eq!(new.body["name"], "ci");
    assert_eq!(new.body["description"], "deploys");
    assert_eq!(new.body["scopes"], old.body["scopes"]);
    assert_eq!(new.header("cache-control"), Some("no-store"));
    assert_eq!(
        new.header("location"),
        Some(format!("/api/v1/tokens/{new_id}").as_str())
    );
    let new_secret = new.body["token"].as_str().unwrap();

    let old_now = api.get(&format!("/api/v1/tokens/{old_id}"), &pat).await;
    assert_eq!(old_now.body["status"], "revoked");
    assert_eq!(old_now.body["replaced_by"], new_id.as_str());
    api.get("/api/v1/me", &old_secret)
        .await
        .expect(401, "old token");
    api.get("/api/v1/me", new_secret)
        .await
        .expect(200, "new token");
}

async fn token_requests_are_validated(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    api.post(
        "/api/v1/tokens",
        &pat,
        &token_request("taken", &["profile"]),
    )
    .await
    .expect(201, "first");
    let far = (time::OffsetDateTime::now_utc() + time::Duration::days(3650))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases = [
        (
            json!({"name": "x", "scopes": ["profile"]}),
            400,
            Some("expires_in_seconds"),
            "neither lifetime",
        ),
        (
            json!({"name": "x", "scopes": ["profile"], "expires_in_seconds": 3600, "expires_at": far}),
            400,
            Some("expires_in_seconds"),
            "both lifetimes",
        ),
        (
            json!({"name": "x", "scopes": ["profile"], "expires_in_seconds": 10}),
            400,
            Some("expires_in_seconds"),
            "too short",
        ),
        (
            json!({"name": "x", "scopes": ["profile"], "expires_at": far}),
            400,
            Some("expires_at"),
            "beyond the policy maximum",
        ),
        (
            json!({"name": "x", "scopes": ["profile"], "expires_at": "tomorrow"}),
            400,
            None,
            "not a timestamp",
        ),
        (
            json!({"name": "", "scopes": ["profile"], "expires_in_seconds": 3600}),
            400,
            Some("name"),
            "empty name",
        ),
        (
            json!({"name": "x", "scopes": [], "expires_in_seconds": 3600}),
            400,
            Some("scopes"),
            "no scopes",
        ),
        (
            json!({"name": "x", "scopes": ["nope:nothing"], "expires_in_seconds": 3600}),
            400,
            Some("scopes"),
            "unknown scope",
        ),
        (
            json!({"name": "x", "scopes": ["admin:read"], "expires_in_seconds": 3600}),
            400,
            Some("scopes"),
            "admin scope for a non-admin",
        ),
        (
            json!({"name": "taken", "scopes": ["profile"], "expires_in_seconds": 3600}),
            409,
            None,
            "duplicate active name",
        ),
        (
            json!({"name": "x", "scopes": ["profile"], "expires_in_seconds": 3600, "owner": "bob"}),
            400,
            None,
            "unknown field",
        ),
        (
            json!({"name": "x", "scopes": "profile", "expires_in_seconds": 3600}),
            400,
            None,
            "scopes not a list",
        ),
        (
            json!({"name": "x", "scopes": ["profile"], "expires_in_seconds": "3600"}),
            400,
            None,
            "lifetime as a string",
        ),
    ];
    for (body, status, field, what) in cases {
        let res = api.post("/api/v1/tokens", &pat, &body).await;
        res.expect(status, what);
        if let Some(field) = field {
            assert_eq!(res.body["field"], field, "{what}: names the field");
        }
    }
    // Nothing half-written: only the first token exists.
    let ids = api.all_ids("/api/v1/tokens", &pat, 50).await;
    assert_eq!(ids.len(), 2, "the calling token and the first: {ids:?}");
}

async fn other_peoples_tokens_are_not_found(backend: Backend) {
    let api = Api::spawn(backend).await;
    let alice = api.user("alice", &["tokens:read", "tokens:write"]);
    let bob = api.user("bob", &["profile", "tokens:read", "tokens:write"]);
    let bobs = api
        .post("/api/v1/tokens", &bob, &token_request("b", &["profile"]))
        .await;
    let id = bobs.body["id"].as_str().unwrap();
    for res in [
        api.get(&format!("/api/v1/tokens/{id}"), &alice).await,
        api.delete(&format!("/api/v1/tokens/{id}"), &alice).await,
        api.post_empty(&format!("/api/v1/tokens/{id}/regenerate"), &alice)
            .await,
        api.get(
            "/api/v1/tokens/00000000-0000-0000-0000-000000000000",
            &alice,
        )
        .await,
        api.get("/api/v1/tokens/not-a-uuid", &alice).await,
    ] {
        res.expect(404, "someone else's or no token");
        assert_eq!(res.problem(), "not-found");
    }
    let still = api.get(&format!("/api/v1/tokens/{id}"), &bob).await;
    assert_eq!(still.body["status"], "active", "alice did not revoke it");
    let alices = api.all_ids("/api/v1/tokens", &alice, 50).await;
    assert!(!alices.contains(&id.to_owned()));
}

/// Regenerating hands out a new secret for the old token's scopes, so the
/// calling token must hold them all, as when creating a token.
async fn a_token_cannot_regenerate_one_with_scopes_it_lacks(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let weak = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("weak", &["tokens:write"]),
        )
        .await;
    weak.expect(201, "weak");
    let weak_secret = weak.body["token"].as_str().unwrap().to_owned();
    let weak_id = weak.body["id"].as_str().unwrap().to_owned();
    let strong = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("strong", &["profile", "admin:write"]),
        )
        .await;
    strong.expect(201, "strong");
    let strong_id = strong.body["id"].as_str().unwrap();

    let res = api
        .post_empty(
            &format!("/api/v1/tokens/{strong_id}/regenerate"),
            &weak_secret,
        )
        .await;
    res.expect(403, "regenerate a token holding admin:write");
    assert!(res.body.get("token").is_none(), "no secret: {}", res.text);
    let still = api
        .get(&format!("/api/v1/tokens/{strong_id}"), &admin)
        .await;
    assert_eq!(
        still.body["status"], "active",
        "the strong token is untouched"
    );

    // A token may regenerate one within its own scopes (here, itself).
    api.post_empty(
        &format!("/api/v1/tokens/{weak_id}/regenerate"),
        &weak_secret,
    )
    .await
    .expect(201, "regenerate itself");
}

/// Sets a token's `expires_at` to a minute ago, keeping its lifetime length.
async fn age_token(api: &Api, id: &str) {
    age_token_by(api, id, 60).await;
}

/// Makes a token an expired one that lived `minutes` minutes.
async fn age_token_by(api: &Api, id: &str, minutes: i64) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use tessera::{domain::clock, storage::entities::token};
    let db = tessera::storage::Db::connect(&api.app.db.url)
        .await
        .expect("database");
    let now = clock::now();
    token::Entity::update_many()
        .col_expr(
            token::Column::CreatedAt,
            Expr::value(now - time::Duration::minutes(minutes + 1)),
        )
        .col_expr(
            token::Column::ExpiresAt,
            Expr::value(now - time::Duration::minutes(1)),
        )
        .filter(token::Column::Id.eq(uuid::Uuid::parse_str(id).unwrap()))
        .exec(&db.write)
        .await
        .expect("age the token");
}

/// An expired token may be renewed even when a later, also expired, token
/// took its name: expired tokens do not hold names.
async fn an_expired_token_is_renewed_despite_an_expired_namesake(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let first = api
        .post("/api/v1/tokens", &pat, &token_request("ci", &["profile"]))
        .await;
    first.expect(201, "first");
    let first_id = first.body["id"].as_str().unwrap().to_owned();
    age_token(&api, &first_id).await;
    let second = api
        .post("/api/v1/tokens", &pat, &token_request("ci", &["profile"]))
        .await;
    second.expect(201, "the name is free once the first expired");
    age_token(&api, second.body["id"].as_str().unwrap()).await;

    let old = api.get(&format!("/api/v1/tokens/{first_id}"), &pat).await;
    assert_eq!(old.body["status"], "expired");
    let renewed = api
        .post_empty(&format!("/api/v1/tokens/{first_id}/regenerate"), &pat)
        .await;
    renewed.expect(201, "renew the first");
    assert_eq!(renewed.body["name"], "ci");
    assert_eq!(renewed.body["status"], "active");
    let old = api.get(&format!("/api/v1/tokens/{first_id}"), &pat).await;
    assert_eq!(old.body["status"], "revoked");
    assert_eq!(old.body["replaced_by"], renewed.body["id"]);
}

/// A renewal keeps the old lifetime length, but never beyond today's policy
/// maximum (365 days by default).
async fn a_renewal_stays_within_the_policy_maximum(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let old = api
        .post("/api/v1/tokens", &pat, &token_request("long", &["profile"]))
        .await;
    old.expect(201, "create");
    let id = old.body["id"].as_str().unwrap().to_owned();
    // As if issued for 400 days under an older, more generous policy.
    age_token_by(&api, &id, 400 * 24 * 60).await;
    let new = api
        .post_empty(&format!("/api/v1/tokens/{id}/regenerate"), &pat)
        .await;
    new.expect(201, "renew");
    let parse = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let length = parse(&new.body["expires_at"]) - parse(&new.body["created_at"]);
    assert_eq!(length.whole_days(), 365, "{}", new.text);
}

both_backends!(
    a_renewal_stays_within_the_policy_maximum,
    a_token_cannot_regenerate_one_with_scopes_it_lacks,
    an_expired_token_is_renewed_despite_an_expired_namesake,
    a_user_creates_reads_lists_and_revokes_own_tokens,
    regenerating_replaces_the_token_and_revokes_the_old_one,
    token_requests_are_validated,
    other_peoples_tokens_are_not_found
);
