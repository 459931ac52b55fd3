//! Phased key rotation (INTERFACE §9): a key published as `next` is in the
//! JWKS before any token carries it and signs from its moment on, on every
//! instance; `tessera keys rotate --publish-for` and `keys list`; automatic
//! rotation, once however many instances run.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    both_backends,
    common::{Backend, TestApp, TestDb, web::Browser},
};

async fn kids(client: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().expect("header"))
            .expect("base64"),
    )
    .expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

async fn token_from(app: &TestApp, base: &str, secret: &str) -> String {
    let res = app
        .client
        .post(format!("{base}/oauth2/token"))
        .basic_auth("client-a", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Plays a resource server against every pair of instances until every
/// instance signs with a key other than `old_kid`: each token's kid must be
/// in a JWKS fetched (from any instance) before the token was issued.
/// Returns the new kid.
async fn watch_the_switch(app: &TestApp, bases: &[String], secret: &str, old_kid: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut switched = vec![false; bases.len()];
    let mut new_kid = String::new();
    while !switched.iter().all(|s| *s) {
        assert!(
            Instant::now() < deadline,
            "no instance switched keys in time"
        );
        for (i, signer) in bases.iter().enumerate() {
            for published_by in bases {
                let known = kids(&app.client, published_by).await;
                let token = token_from(app, signer, secret).await;
                let kid = kid_of(&token);
                assert!(
                    known.contains(&kid),
                    "a token from {signer} carries kid {kid}, unknown to the JWKS of {published_by} fetched just before: {known:?}"
                );
                if kid != old_kid {
                    switched[i] = true;
                    new_kid = kid;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    new_kid
}

async fn a_published_key_is_in_the_jwks_before_any_token_carries_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    let secret = app.create_machine("client-a", &["profile"]);
    let base = app.url("");
    let old_token = token_from(&app, &base, &secret).await;
    let old_kid = kid_of(&old_token);

    // The same choice as `--publish-for`, on /admin/keys.
    let b = Browser::signed_in(&app, "boss").await;
    let page = b
        .submit(
            "/admin/keys",
            "/admin/keys/rotate",
            &[("publish_for", "8s")],
        )
        .await;
    assert_eq!(
        page.location(),
        "/admin/keys?notice=key-published",
        "{}",
        page.body
    );
    let listing = b.get("/admin/keys").await;
    assert!(listing.body.contains(">next<"), "{}", listing.body);
    assert!(listing.body.contains("signs from"), "{}", listing.body);

    // Published at once, signing nothing yet.
    let published = kids(&app.client, &base).await;
    assert_eq!(published.len(), 2, "{published:?}");
    let next_kid = published.iter().find(|k| **k != old_kid).unwrap().clone();
    assert_eq!(kid_of(&token_from(&app, &base, &secret).await), old_kid);

    let new_kid = watch_the_switch(&app, std::slice::from_ref(&base), &secret, &old_kid).await;
    assert_eq!(new_kid, next_kid);
    // Tokens of the old key keep working; the audit log has the rotation.
    assert_eq!(app.me_status(&old_token).await, 200);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'key.rotate'")
            .await,
        1
    );
    let listing = b.get("/admin/keys").await;
    listing.expect(reqwest::StatusCode::OK, "the keys page after the switch");
    assert!(
        !listing.body.contains(">next<"),
        "promoted: {}",
        listing.body
    );
}

async fn keys_rotate_with_publish_for_and_keys_list(backend: Backend) {
    let db = TestDb::new(backend);
    let first = db.cli_ok(&["keys", "list"], None);
    assert!(
        first.lines().next().unwrap().contains("SIGNS-FROM"),
        "{first}"
    );
    let kid = db.cli_ok(&["keys", "rotate", "--publish-for", "1h"], None);
    let listing = db.cli_ok(&["keys", "list"], None);
    let line = listing
        .lines()
        .find(|l| l.starts_with(kid.as_str()))
        .unwrap_or_else(|| panic!("{kid} listed: {listing}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "next", "{line}");
    let signs_from =
        time::OffsetDateTime::parse(fields[5], &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| panic!("a time: {line}"));
    let ahead = signs_from - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::minutes(55) && ahead <= time::Duration::hours(1),
        "{line}"
    );
    assert_eq!(listing.matches(" active ").count(), 1, "{listing}");

    // One key waiting is enough: a second phased rotation is refused.
    let out = db.cli(&["keys", "rotate", "--publish-for", "1h"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&kid), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for bad in ["soon", "0s", "-1h", "1y"] {
        let out = db.cli(&["keys", "rotate", &format!("--publish-for={bad}")], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("--publish-for"),
            "{bad}: {stderr}"
        );
    }

    // Rotating at once retires the waiting key too; the new one signs now.
    let now_kid = db.cli_ok(&["keys", "rotate"], None);
    let listing = db.cli_ok(&["keys", "list"], None);
    let state = |kid: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(kid))
            .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
    };
    assert_eq!(state(&now_kid).as_deref(), Some("active"), "{listing}");
    assert_eq!(state(&kid).as_deref(), Some("retired"), "{listing}");
    assert!(!listing.contains(" next "), "{listing}");
}

/// `TESSERA_KEY_ROTATE_EVERY` with the active key already that old: the
/// successor is published, then signs, once, however many instances run.
async fn automatic_rotation_happens_once_across_instances(backend: Backend) {
    let env = [
        ("TESSERA_KEY_ROTATE_EVERY", "1h"),
        // Long enough for the other instance to hear of the new key and
        // publish it on a loaded machine.
        ("TESSERA_KEY_PUBLISH_FOR", "8s"),
        ("TESSERA_SWEEP_EVERY", "1s"),
    ];
    let mut app = TestApp::spawn_with(backend, &env).await;
    let mut bases = vec![app.url("")];
    if backend == Backend::Postgres {
        let other = app.start_another(&env);
        bases.push(format!("http://{other}"));
    }
    let secret = app.create_machine("client-a", &["profile"]);
    let old_kid = kid_of(&token_from(&app, &bases[0], &secret).await);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM signing_keys").await,
        1,
        "a fresh key is not rotated"
    );
    // The active key has been signing for longer than an hour.
    app.sql("UPDATE signing_keys SET created_at = '2000-01-01T00:00:00Z'")
        .await;

    let new_kid = watch_the_switch(&app, &bases, &secret, &old_kid).await;
    assert_ne!(new_kid, old_kid);
    // A sweep records the promotion (tokens switch on the time alone).
    let promoted =
        format!("SELECT COUNT(*) FROM signing_keys WHERE state = 'active' AND kid = '{new_kid}'");
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.scalar(&promoted).await != 1 {
        assert!(Instant::now() < deadline, "the sweep recorded no promotion");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several sweeps on every instance later, still exactly one rotation.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM signing_keys").await, 2);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'key.rotate'")
            .await,
        1
    );
    assert_eq!(app.scalar(&promoted).await, 1);
}

both_backends!(
    a_published_key_is_in_the_jwks_before_any_token_carries_it,
    keys_rotate_with_publish_for_and_keys_list,
    automatic_rotation_happens_once_across_instances,
);

#[test]
fn bad_rotation_settings_stop_start_up_naming_the_setting() {
    let db = TestDb::new(Backend::Sqlite);
    for (env, named) in [
        (
            vec![("TESSERA_KEY_ROTATE_EVERY", "often")],
            "TESSERA_KEY_ROTATE_EVERY",
        ),
        (
            vec![("TESSERA_KEY_PUBLISH_FOR", "0d")],
            "TESSERA_KEY_PUBLISH_FOR",
        ),
        (vec![("TESSERA_SWEEP_EVERY", "1")], "TESSERA_SWEEP_EVERY"),
        (
            vec![
                ("TESSERA_KEY_ROTATE_EVERY", "1d"),
                ("TESSERA_KEY_PUBLISH_FOR", "2d"),
            ],
            "TESSERA_KEY_PUBLISH_FOR",
        ),
    ] {
        let out = db.cli_env(&["serve"], None, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} was accepted");
        assert!(stderr.contains(named), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr}");
    }
}
