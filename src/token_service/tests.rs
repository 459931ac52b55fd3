//! The token service against a real SQLite file: validation, leeway, key
//! reloads and the usage flush.

use super::*;
use crate::{
    config::SettingsArgs,
    domain::{
        Actor,
        principals::{self, MachineUserInput},
        tokens::record_row,
    },
};
use sea_orm::ActiveModelTrait;

async fn service() -> (tempfile::TempDir, Arc<TokenService>, principal::Model) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
    let settings = Settings::load(&SettingsArgs {
        database_url: Some(url.clone().into()),
        ..Default::default()
    })
    .unwrap();
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let svc = TokenService::start(db.clone(), &settings, MasterKey([1; 32]))
        .await
        .unwrap();
    let input = MachineUserInput {
        username: Some("svc-1".into()),
        scopes: Some(vec!["profile".into()]),
        ..Default::default()
    };
    let m = principals::create_machine_user(&db, &Actor::system(), input)
        .await
        .unwrap();
    let owner = principals::find(&db.read, m.id).await.unwrap().unwrap();
    (dir, svc, owner)
}

async fn record(svc: &TokenService, owner: &principal::Model, minted: &Minted) {
    let row = record_row(
        minted,
        TokenKind::Machine,
        owner.id,
        &minted.jti,
        String::new(),
        &ScopeSet::from_stored("profile"),
        None,
    );
    row.insert(&svc.db.write).await.unwrap();
}

#[tokio::test]
async fn recorded_tokens_validate_and_expired_ones_do_not() {
    let (_dir, svc, owner) = service().await;
    let scopes = ScopeSet::from_stored("profile");
    let live = svc
        .signer
        .mint(
            owner.id,
            &owner.username,
            TokenKind::Machine,
            scopes.to_string(),
            600,
        )
        .unwrap();
    record(&svc, &owner, &live).await;
    let info = svc.validate(&live.token).await.unwrap();
    assert_eq!(info.scopes.to_string(), "profile");
    assert_eq!(info.username, "svc-1");

    let expired = svc
        .signer
        .mint(
            owner.id,
            &owner.username,
            TokenKind::Machine,
            scopes.to_string(),
            -30,
        )
        .unwrap();
    record(&svc, &owner, &expired).await;
    assert_eq!(
        svc.validate(&expired.token).await.unwrap_err(),
        Rejection::Expired
    );

    // Signed by us but never recorded: refused.
    let unrecorded = svc
        .signer
        .mint(
            owner.id,
            &owner.username,
            TokenKind::Machine,
            scopes.to_string(),
            600,
        )
        .unwrap();
    assert_eq!(
        svc.validate(&unrecorded.token).await.unwrap_err(),
        Rejection::Unknown
    );
}

#[tokio::test]
async fn tokens_not_yet_valid_are_refused() {
    let (_dir, svc, owner) = service().await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "iss": svc.issuer(), "aud": svc.audience(), "sub": owner.id.to_string(), "exp": now + 7200,
        "iat": now, "nbf": now + 3600, "jti": "x", "client_id": "svc-1", "scope": "profile", "token_kind": "machine",
    });
    let token = svc
        .ring()
        .active
        .sign_jwt(claims.to_string().as_bytes())
        .unwrap();
    assert_eq!(svc.verify(&token).await.unwrap_err(), Rejection::Invalid);
}

/// Signs claims valid for an hour, with `nbf` and `iat` as given.
fn signed(svc: &TokenService, owner: &principal::Model, nbf: i64, iat: i64) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "iss": svc.issuer(), "aud": svc.audience(), "sub": owner.id.to_string(), "exp": now + 3600,
        "iat": iat, "nbf": nbf, "jti": "x", "client_id": "svc-1", "scope": "profile", "token_kind": "machine",
    });
    svc.ring()
        .active
        .sign_jwt(claims.to_string().as_bytes())
        .unwrap()
}

#[tokio::test]
async fn nbf_and_iat_get_a_small_leeway_and_exp_none() {
    let (_dir, svc, owner) = service().await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for (nbf, iat, ok, what) in [
        (now + 30, now + 30, true, "30 s ahead"),
        (now + 30, now, true, "nbf 30 s ahead"),
        (now, now + 30, true, "iat 30 s ahead"),
        (now + 600, now, false, "nbf 10 minutes ahead"),
        (now, now + 600, false, "iat 10 minutes ahead"),
        (i64::MAX, i64::MAX, false, "nbf and iat at the end of time"),
    ] {
        let result = svc.verify(&signed(&svc, &owner, nbf, iat)).await;
        assert_eq!(result.is_ok(), ok, "{what}: {result:?}");
    }
    let expired = svc.signer.mint(
        owner.id,
        &owner.username,
        TokenKind::Machine,
        "profile".to_owned(),
        -5,
    );
    assert_eq!(
        svc.verify(&expired.unwrap().token).await.unwrap_err(),
        Rejection::Expired,
        "expired 5 s ago"
    );
}

#[tokio::test]
async fn lifetimes_past_the_calendar_are_an_error_not_a_panic() {
    let (_dir, svc, owner) = service().await;
    let scopes = ScopeSet::from_stored("profile");
    for secs in [i64::MAX, i64::MIN, 400 * 365 * 86_400 * 25] {
        assert!(
            svc.signer
                .mint(
                    owner.id,
                    &owner.username,
                    TokenKind::Machine,
                    scopes.to_string(),
                    secs
                )
                .is_err(),
            "{secs}"
        );
    }
}

/// Whatever header, claims and signature a client sends: refused, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_jwt_is_refused_without_panic() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use proptest::{
        collection::{btree_map, vec},
        prelude::*,
        test_runner::{Config, TestRunner},
    };
    let (_dir, svc, _owner) = service().await;
    let value = prop_oneof![
        prop::sample::select(vec![
            "ES256", "RS256", "EdDSA", "HS256", "none", "at+jwt", ""
        ])
        .prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    let names = prop::sample::select(vec![
        "alg", "typ", "kid", "crit", "jku", "b64", "exp", "nbf", "iat", "iss", "aud", "sub",
    ]);
    let part = prop_oneof![
        btree_map(names, value, 0..6).prop_map(|m| serde_json::to_vec(&m).unwrap()),
        vec(any::<u8>(), 0..64),
    ]
    .prop_map(|b| URL_SAFE_NO_PAD.encode(b));
    let strategy = (part.clone(), part.clone(), part, "[ -~]{0,40}");
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    runner
        .run(&strategy, |(header, claims, sig, raw)| {
            let jwt = format!("{header}.{claims}.{sig}");
            let (a, b) = tokio::task::block_in_place(|| {
                handle.block_on(async { (svc.verify(&jwt).await, svc.verify(&raw).await) })
            });
            prop_assert!(a.is_err() && b.is_err(), "{jwt} / {raw}");
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn usage_that_cannot_be_written_is_kept_for_the_next_flush() {
    let (_dir, svc, owner) = service().await;
    let scopes = ScopeSet::from_stored("profile");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let minted = svc
            .signer
            .mint(
                owner.id,
                &owner.username,
                TokenKind::Machine,
                scopes.to_string(),
                600,
            )
            .unwrap();
        record(&svc, &owner, &minted).await;
        ids.push(minted.id);
    }
    for (n, id) in ids.iter().enumerate() {
        svc.usage.touch_token(*id, Some(&format!("10.0.0.{n}")));
    }
    // The read-only connection refuses every write.
    assert!(svc.usage.flush(&svc.db.read).await.is_err());
    svc.usage.touch_token(ids[0], Some("10.0.0.9"));
    svc.usage.flush(&svc.db.write).await.unwrap();
    for (n, id) in ids.iter().enumerate() {
        let row = token::Entity::find_by_id(*id)
            .one(&svc.db.read)
            .await
            .unwrap()
            .unwrap();
        let ip = if n == 0 {
            "10.0.0.9".to_owned()
        } else {
            format!("10.0.0.{n}")
        };
        assert_eq!(row.last_used_ip.as_deref(), Some(ip.as_str()), "token {n}");
        assert!(row.last_used_at.is_some(), "token {n}");
    }
}

fn with_kid(kid: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
    format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_elsewhere_is_found_by_every_concurrent_request() {
    let (_dir, svc, owner) = service().await;
    for _ in 0..3 {
        // Another process rotates: this service has not heard of the key.
        signing_keys::rotate(
            &svc.db,
            &svc.master,
            crate::kinds::KeyAlg::Es256,
            &crate::domain::Actor::system(),
            None,
        )
        .await
        .unwrap();
        let ring = signing_keys::load_ring(&svc.db.read, &svc.master, None)
            .await
            .unwrap();
        assert!(!svc.ring().by_kid.contains_key(&ring.active.kid));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "iss": svc.issuer(), "aud": svc.audience(), "sub": owner.id.to_string(), "exp": now + 600,
            "iat": now, "nbf": now, "jti": "x", "client_id": "svc-1", "scope": "profile", "token_kind": "machine",
        });
        let token = ring.active.sign_jwt(claims.to_string().as_bytes()).unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (svc, token) = (svc.clone(), token.clone());
                tokio::spawn(async move { svc.verify(&token).await.map(|_| ()) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kids_cannot_make_the_service_reload_often() {
    let (_dir, svc, _owner) = service().await;
    let before = svc.reloads.load(std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..500)
        .map(|n| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.verify(&with_kid(&format!("random-{n}"))).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err(), Rejection::Invalid);
    }
    let reloads = svc.reloads.load(std::sync::atomic::Ordering::Relaxed) - before;
    let slots = started.elapsed().as_millis() / MIN_KEY_RELOAD_GAP.as_millis();
    assert!(
        u128::from(reloads) <= slots + 1,
        "{reloads} reloads in {slots} intervals"
    );
}

/// A token that expired before it was ever cached is still identified (by
/// its verified `jti`), and its refused use lands on it at the flush.
#[tokio::test]
async fn a_refused_expired_token_is_recorded_by_its_jti() {
    let (_dir, svc, owner) = service().await;
    let minted = svc
        .signer
        .mint(
            owner.id,
            &owner.username,
            TokenKind::Machine,
            "profile".into(),
            1,
        )
        .unwrap();
    record(&svc, &owner, &minted).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refusal = svc.check(&minted.token).await.unwrap_err();
    assert_eq!(refusal.rejection, Rejection::Expired);
    assert_eq!(refusal.token, Some(usage::Seen::Jti(minted.jti.clone())));
    refusal.record(
        &svc.usage,
        usage::UseOf {
            ip: Some([192, 0, 2, 7].into()),
            user_agent: Some("late/1"),
            via: history::Via::Api,
            client_id: None,
            refused: None,
        },
    );
    svc.usage.flush(&svc.db.write).await.unwrap();
    let rows = crate::storage::entities::token_use::Entity::find()
        .all(&svc.db.read)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].token_id, minted.id);
    assert_eq!(rows[0].reason.as_deref(), Some("expired"));
    assert_eq!(rows[0].outcome, "refused");
    assert_eq!(rows[0].ip.as_deref(), Some("192.0.2.7"));
}

/// The buffer keeps at most 100 uses per token and a fixed number in all.
#[test]
fn the_usage_buffer_is_bounded() {
    let tracker = usage::UsageTracker::default();
    let one = Uuid::now_v7();
    for _ in 0..150 {
        tracker.touch_token(one, Some("192.0.2.1"));
    }
    assert_eq!(tracker.buffered(), history::PER_TOKEN);
    for _ in 0..(usage::MAX_BUFFERED_USES / history::PER_TOKEN + 5) {
        let id = Uuid::new_v4();
        for _ in 0..history::PER_TOKEN {
            tracker.touch_token(id, None);
        }
    }
    assert_eq!(tracker.buffered(), usage::MAX_BUFFERED_USES);
}
