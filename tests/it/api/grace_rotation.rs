//! Rotation without an outage (INTERFACE §9): regenerating with a grace
//! period, admins regenerating machine tokens (never a person's), client
//! secrets replaced in one call, and the bad input of each.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{
    both_backends,
    common::{Api, Backend, TestApp, token_request},
};

fn at(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().expect("a time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
}

/// Sleeps until just after `t` (the test's clock is the server's).
async fn wait_past(t: OffsetDateTime) {
    let left = t - OffsetDateTime::now_utc() + time::Duration::milliseconds(100);
    if left.is_positive() {
        tokio::time::sleep(left.unsigned_abs()).await;
    }
}

/// A token of alice's, named `name`, and its secret.
async fn alice_token(api: &Api, pat: &str, name: &str) -> (String, String) {
    let created = api
        .post("/api/v1/tokens", pat, &token_request(name, &["profile"]))
        .await;
    created.expect(201, "create");
    (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["token"].as_str().unwrap().to_owned(),
    )
}

async fn the_old_token_works_until_its_grace_period_ends_then_nowhere(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let (id, old) = alice_token(&api, &pat, "ci").await;
    // A resource server that introspects (made now: the grace period is short).
    let rs = api.app.create_machine("api-gw", &["introspect"]);
    // Validated once, so the cache holds it when the grace period begins.
    assert_eq!(api.app.me_status(&old).await, 200);

    let asked = OffsetDateTime::now_utc();
    let regenerated = api
        .post(
            &format!("/api/v1/tokens/{id}/regenerate"),
            &pat,
            &json!({"grace_seconds": 15}),
        )
        .await;
    regenerated.expect(201, "regenerate with a grace period");
    let new_id = regenerated.body["id"].as_str().unwrap();
    let new = regenerated.body["token"].as_str().unwrap();

    // The old token: still active, naming its replacement and its end.
    let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
    got.expect(200, "old token");
    assert_eq!(got.body["status"], "active", "{}", got.text);
    assert_eq!(got.body["replaced_by"], new_id);
    let ends = at(&got.body["revoked_at"]);
    // Whole seconds, rounded up: never a fraction of the period less.
    assert!(
        ends >= asked + time::Duration::seconds(15),
        "the whole grace period: {ends} for a regeneration asked at {asked}"
    );
    // Introspection says it stops then, not at the JWT's `exp` (an hour on):
    // a resource server may cache an active answer until `exp`.
    let said: Value = api
        .app
        .client
        .post(api.app.url("/oauth2/introspect"))
        .basic_auth("api-gw", Some(&rs))
        .form(&[("token", old.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(said["active"], true, "{said}");
    assert_eq!(said["exp"], ends.unix_timestamp(), "{said}");
    let active = api.get("/api/v1/tokens?limit=500", &pat).await;
    assert!(
        active.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str() && t["status"] == "active")
    );

    // Both values work meanwhile (validated again and again, so the cache
    // holds the old one when its grace period ends).
    for _ in 0..5 {
        assert_eq!(api.app.me_status(&old).await, 200, "old during grace");
    }
    assert_eq!(api.app.me_status(new).await, 200, "new");
    // Regenerating the old one again is refused: its successor exists.
    api.post_empty(&format!("/api/v1/tokens/{id}/regenerate"), &pat)
        .await
        .expect(409, "regenerate a token in its grace period");

    // From revoked_at on it is refused, with nothing cached keeping it alive.
    wait_past(ends).await;
    assert_eq!(api.app.me_status(&old).await, 401, "old after grace");
    assert_eq!(api.app.me_status(new).await, 200, "new after grace");
    let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
    assert_eq!(got.body["status"], "revoked");
}

async fn without_a_grace_period_the_old_token_stops_at_once(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    for (i, body) in [None, Some(json!({})), Some(json!({"grace_seconds": 0}))]
        .into_iter()
        .enumerate()
    {
        let (id, old) = alice_token(&api, &pat, &format!("ci-{i}")).await;
        assert_eq!(api.app.me_status(&old).await, 200);
        let path = format!("/api/v1/tokens/{id}/regenerate");
        let res = match &body {
            None => api.post_empty(&path, &pat).await,
            Some(b) => api.post(&path, &pat, b).await,
        };
        res.expect(201, &format!("regenerate with {body:?}"));
        assert_eq!(api.app.me_status(&old).await, 401, "{body:?}");
        let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
        assert_eq!(got.body["status"], "revoked", "{body:?}");
    }
}

async fn revoking_a_token_in_its_grace_period_stops_it_now(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let (id, old) = alice_token(&api, &pat, "ci").await;
    api.post(
        &format!("/api/v1/tokens/{id}/regenerate"),
        &pat,
        &json!({"grace_seconds": 3600}),
    )
    .await
    .expect(201, "regenerate");
    assert_eq!(api.app.me_status(&old).await, 200);
    api.delete(&format!("/api/v1/tokens/{id}"), &pat)
        .await
        .expect(204, "revoke during grace");
    assert_eq!(api.app.me_status(&old).await, 401);
    let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
    assert_eq!(got.body["status"], "revoked");
    assert!(at(&got.body["revoked_at"]) <= OffsetDateTime::now_utc());
}

async fn a_grace_period_out_of_range_or_of_the_wrong_type_is_a_400_naming_it(backend: Backend) {
    let api = Api::spawn(backend).await;
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let (id, old) = alice_token(&api, &pat, "ci").await;
    let path = format!("/api/v1/tokens/{id}/regenerate");
    for bad in [
        json!(-1),
        json!(259_201),
        json!("60"),
        json!(1.5),
        json!(true),
        json!([60]),
    ] {
        let res = api.post(&path, &pat, &json!({"grace_seconds": bad})).await;
        res.expect(400, &format!("grace_seconds {bad}"));
        assert_eq!(res.body["field"], "grace_seconds", "{bad}: {}", res.text);
    }
    api.post(&path, &pat, &json!({"grace": 60}))
        .await
        .expect(400, "unknown field");
    api.app
        .client
        .post(api.app.url(&path))
        .bearer_auth(&pat)
        .header("content-type", "text/plain")
        .body("grace_seconds=60")
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 415))
        .unwrap();
    // Nothing was regenerated.
    assert_eq!(api.app.me_status(&old).await, 200);
    let got = api.get(&format!("/api/v1/tokens/{id}"), &pat).await;
    assert_eq!(got.body["replaced_by"], Value::Null);
    // The edge of the range is accepted.
    api.post(&path, &pat, &json!({"grace_seconds": 259_200}))
        .await
        .expect(201, "72 hours");
}

async fn admins_regenerate_machine_tokens_but_never_personal_ones(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let alice_pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    api.app.create_machine("deployer", &["profile"]);
    let machine = api.get("/api/v1/machine-users", &admin).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let issued = api
        .post(
            &format!("/api/v1/machine-users/{machine}/tokens"),
            &admin,
            &token_request("deploy", &["profile"]),
        )
        .await;
    issued.expect(201, "machine token");
    let (mid, old) = (
        issued.body["id"].as_str().unwrap().to_owned(),
        issued.body["token"].as_str().unwrap().to_owned(),
    );

    let regenerated = api
        .post(
            &format!("/api/v1/admin/tokens/{mid}/regenerate"),
            &admin,
            &json!({"grace_seconds": 3600}),
        )
        .await;
    regenerated.expect(201, "admin regenerates a machine token");
    assert_eq!(regenerated.body["kind"], "machine");
    assert_eq!(regenerated.body["owner"]["username"], "deployer");
    let new_id = regenerated.body["id"].as_str().unwrap();
    assert_eq!(
        regenerated.header("location"),
        Some(format!("/api/v1/admin/tokens/{new_id}").as_str())
    );
    assert_eq!(api.app.me_status(&old).await, 200, "old one in its grace");
    let got = api
        .get(&format!("/api/v1/admin/tokens/{mid}"), &admin)
        .await;
    assert_eq!(got.body["replaced_by"], new_id);
    assert_eq!(got.body["status"], "active");
    let audit = api
        .get("/api/v1/audit?action=token.regenerate", &admin)
        .await;
    assert!(audit.text.contains(&mid), "audited: {}", audit.text);

    // Someone else's personal token: 403 (admins never mint PATs for
    // others); the admin's own may be regenerated through the admin route too.
    let (pid, _) = alice_token(&api, &alice_pat, "laptop").await;
    api.post_empty(&format!("/api/v1/admin/tokens/{pid}/regenerate"), &admin)
        .await
        .expect(403, "admin regenerates alice's personal token");
    let spare = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("spare", &["profile"]),
        )
        .await;
    spare.expect(201, "the admin's own spare token");
    let own = spare.body["id"].as_str().unwrap();
    let without_tokens_write = api.app.admin_token(&["admin:read", "admin:write"]);
    api.post_empty(
        &format!("/api/v1/admin/tokens/{own}/regenerate"),
        &without_tokens_write,
    )
    .await
    .expect(403, "one's own personal token needs tokens:write");
    let renewed = api
        .post_empty(&format!("/api/v1/admin/tokens/{own}/regenerate"), &admin)
        .await;
    renewed.expect(201, "the admin's own personal token");
    assert_eq!(renewed.body["kind"], "personal");
    assert_eq!(renewed.body["owner"]["username"], "admin");
    let got = api.get(&format!("/api/v1/tokens/{pid}"), &alice_pat).await;
    assert_eq!(got.body["status"], "active");
    assert_eq!(got.body["replaced_by"], Value::Null);
    // Without admin:write, nothing.
    api.post_empty(
        &format!("/api/v1/admin/tokens/{mid}/regenerate"),
        &alice_pat,
    )
    .await
    .expect(403, "no admin:write");
    api.post(
        &format!("/api/v1/admin/tokens/{new_id}/regenerate"),
        &admin,
        &json!({"grace_seconds": -5}),
    )
    .await
    .expect(400, "bad grace on the admin route");
}

/// The machine user's secrets as its JSON lists them.
async fn secrets(api: &Api, admin: &str, machine: &str) -> Vec<Value> {
    let m = api
        .get(&format!("/api/v1/machine-users/{machine}"), admin)
        .await;
    m.expect(200, "machine user");
    m.body["secrets"].as_array().unwrap().clone()
}

/// The machine user `deployer` (made on the command line) with its first
/// secret: the secret, the machine user's id and the secret's id.
async fn deployer(api: &Api, admin: &str) -> (String, String, String) {
    let first = api.app.create_machine("deployer", &["profile"]);
    let machine = api.get("/api/v1/machine-users", admin).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_id = secrets(api, admin, &machine).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (first, machine, first_id)
}

async fn a_client_secret_is_replaced_in_one_call_and_removed_when_its_grace_ends(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_SWEEP_EVERY", "1s")]).await;
    let api = Api { app };
    let admin = api.admin();
    let (first, machine, first_id) = deployer(&api, &admin).await;
    let path = format!("/api/v1/machine-users/{machine}/secrets");
    let second = api.post_empty(&path, &admin).await;
    second.expect(201, "second secret");
    assert_eq!(second.body["expires_at"], Value::Null);
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    // Cached by the client-authentication cache.
    api.app.access_token("deployer", &first).await;

    // One of two is replaced with a grace period only once the other is
    // gone: the old one counts towards the two until its grace ends
    // (INTERFACE §9), so no more than two ever work.
    let refused = api
        .post(
            &path,
            &admin,
            &json!({"replaces": first_id, "grace_seconds": 15}),
        )
        .await;
    refused.expect(409, "replace one of two with a grace period");
    assert!(refused.text.contains("grace_seconds 0"), "{}", refused.text);
    assert_eq!(secrets(&api, &admin, &machine).await.len(), 2, "unchanged");
    api.delete(&format!("{path}/{second_id}"), &admin)
        .await
        .expect(204, "remove the other");

    let asked = OffsetDateTime::now_utc();
    let third = api
        .post(
            &path,
            &admin,
            &json!({"replaces": first_id, "grace_seconds": 15}),
        )
        .await;
    third.expect(201, "replace the first secret");
    let third_id = third.body["id"].as_str().unwrap().to_owned();
    let third_secret = third.body["client_secret"].as_str().unwrap().to_owned();
    let listed = secrets(&api, &admin, &machine).await;
    assert_eq!(listed.len(), 2, "the old one stays until its grace ends");
    let old = listed
        .iter()
        .find(|s| s["id"] == first_id.as_str())
        .unwrap();
    let ends = at(&old["expires_at"]);
    assert!(
        ends >= asked + time::Duration::seconds(15),
        "the whole grace period: {ends} for a replacement asked at {asked}"
    );
    let new = listed
        .iter()
        .find(|s| s["id"] == third_id.as_str())
        .unwrap();
    assert!(new["expires_at"].is_null());
    // Both work meanwhile; the old one still counts towards the two.
    for s in [&first, &third_secret] {
        assert_eq!(
            api.app
                .client_credentials("deployer", s, None)
                .await
                .status(),
            200
        );
    }
    api.post_empty(&path, &admin)
        .await
        .expect(409, "a third secret while one is being replaced");
    api.post(&path, &admin, &json!({"replaces": first_id}))
        .await
        .expect(409, "replacing a secret already replaced");

    // After its grace period it never authenticates, cache or not…
    wait_past(ends).await;
    assert_eq!(
        api.app
            .client_credentials("deployer", &first, None)
            .await
            .status(),
        401,
        "old secret after its grace period"
    );
    assert_eq!(
        api.app
            .client_credentials("deployer", &third_secret, None)
            .await
            .status(),
        200
    );
    // …and the sweep deletes it, audited.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let audit = api
            .get("/api/v1/audit?action=client_secret.delete", &admin)
            .await;
        audit.expect(200, "audit");
        if audit.text.contains(&first_id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep did not remove the old secret"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(secrets(&api, &admin, &machine).await.len(), 1);

    // One of two may be replaced at once (grace 0): still two.
    let fourth = api.post_empty(&path, &admin).await;
    fourth.expect(201, "a second secret again");
    api.post(&path, &admin, &json!({"replaces": third_id}))
        .await
        .expect(201, "replace one of two at once");
    assert_eq!(
        api.app
            .client_credentials("deployer", &third_secret, None)
            .await
            .status(),
        401
    );
    assert_eq!(secrets(&api, &admin, &machine).await.len(), 2);
}

/// A secret whose grace has ended works nowhere, and is not listed while it
/// waits for the sweep (which runs at start, then here not again for an hour).
async fn a_secret_whose_grace_has_ended_is_not_listed_before_the_sweep(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_SWEEP_EVERY", "1h")]).await;
    let api = Api { app };
    let admin = api.admin();
    let (first, machine, first_id) = deployer(&api, &admin).await;
    let path = format!("/api/v1/machine-users/{machine}/secrets");
    let second = api
        .post(
            &path,
            &admin,
            &json!({"replaces": first_id, "grace_seconds": 1}),
        )
        .await;
    second.expect(201, "replace with a grace of one second");
    let listed = secrets(&api, &admin, &machine).await;
    assert_eq!(listed.len(), 2, "in its grace, the old one is listed");
    let ends = at(&listed
        .iter()
        .find(|s| s["id"] == first_id.as_str())
        .unwrap()["expires_at"]);

    wait_past(ends).await;
    let listed = secrets(&api, &admin, &machine).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], second.body["id"]);
    assert_eq!(
        api.app
            .client_credentials("deployer", &first, None)
            .await
            .status(),
        401
    );
    // Not yet swept: nothing audited as deleted.
    let audit = api
        .get("/api/v1/audit?action=client_secret.delete", &admin)
        .await;
    audit.expect(200, "audit");
    assert!(!audit.text.contains(&first_id), "{}", audit.text);
}

async fn a_replacement_is_not_replaced_while_the_secret_it_replaced_still_counts(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let (first, machine, first_id) = deployer(&api, &admin).await;
    let path = format!("/api/v1/machine-users/{machine}/secrets");
    let second = api
        .post(
            &path,
            &admin,
            &json!({"replaces": first_id, "grace_seconds": 3600}),
        )
        .await;
    second.expect(201, "replace the only secret");
    let refused = api
        .post(
            &path,
            &admin,
            &json!({"replaces": second.body["id"], "grace_seconds": 3600}),
        )
        .await;
    refused.expect(409, "replace the replacement while the first counts");
    assert!(refused.text.contains("grace"), "{}", refused.text);
    assert_eq!(secrets(&api, &admin, &machine).await.len(), 2);
    // Both still work: the refusal changed nothing.
    let second_secret = second.body["client_secret"].as_str().unwrap();
    for secret in [first.as_str(), second_secret] {
        let status = api
            .app
            .client_credentials("deployer", secret, None)
            .await
            .status();
        assert_eq!(status, 200);
    }
    // At once it may be: still two, the first in its grace and the third.
    let third = api
        .post(
            &path,
            &admin,
            &json!({"replaces": second.body["id"], "grace_seconds": 0}),
        )
        .await;
    third.expect(201, "replace the replacement at once");
    assert_eq!(secrets(&api, &admin, &machine).await.len(), 2);
    let third_secret = third.body["client_secret"].as_str().unwrap();
    for (secret, status) in [
        (first.as_str(), 200),
        (second_secret, 401),
        (third_secret, 200),
    ] {
        let got = api.app.client_credentials("deployer", secret, None).await;
        assert_eq!(got.status(), status);
    }
}

async fn bad_secret_rotations_are_400s_naming_the_field(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let (_, machine, first_id) = deployer(&api, &admin).await;
    let path = format!("/api/v1/machine-users/{machine}/secrets");
    for (body, field) in [
        (json!({"replaces": "nope"}), "replaces"),
        (json!({"replaces": 7}), "replaces"),
        (json!({"grace_seconds": 60}), "grace_seconds"),
        (
            json!({"replaces": first_id, "grace_seconds": 259_201}),
            "grace_seconds",
        ),
        (
            json!({"replaces": first_id, "grace_seconds": "1h"}),
            "grace_seconds",
        ),
    ] {
        let res = api.post(&path, &admin, &body).await;
        res.expect(400, &body.to_string());
        assert_eq!(res.body["field"], field, "{body}: {}", res.text);
    }
    api.post(&path, &admin, &json!({"replaces": uuid::Uuid::now_v7()}))
        .await
        .expect(404, "an unknown secret");
    let listed = secrets(&api, &admin, &machine).await;
    assert_eq!(listed.len(), 1, "nothing was created");
    assert!(listed[0]["expires_at"].is_null());
}

both_backends!(
    the_old_token_works_until_its_grace_period_ends_then_nowhere,
    without_a_grace_period_the_old_token_stops_at_once,
    revoking_a_token_in_its_grace_period_stops_it_now,
    a_grace_period_out_of_range_or_of_the_wrong_type_is_a_400_naming_it,
    admins_regenerate_machine_tokens_but_never_personal_ones,
    a_client_secret_is_replaced_in_one_call_and_removed_when_its_grace_ends,
    a_secret_whose_grace_has_ended_is_not_listed_before_the_sweep,
    a_replacement_is_not_replaced_while_the_secret_it_replaced_still_counts,
    bad_secret_rotations_are_400s_naming_the_field,
);

/// Two instances on one PostgreSQL: both accept the old token during its
/// grace period and both refuse it from `revoked_at` on, caches warm or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_refuse_the_old_token_from_the_end_of_its_grace_period() {
    if !crate::common::postgres::available() {
        return;
    }
    let mut app = TestApp::spawn(Backend::Postgres).await;
    let other = app.start_another(&[]);
    let api = Api { app };
    let pat = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let (id, old) = alice_token(&api, &pat, "ci").await;
    let status_on = |base: String, token: String| {
        let client = api.app.client.clone();
        async move {
            client
                .get(format!("{base}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let bases = [api.app.url(""), format!("http://{other}")];
    for base in &bases {
        assert_eq!(
            status_on(base.clone(), old.clone()).await,
            200,
            "warm {base}"
        );
    }
    let regenerated = api
        .post(
            &format!("/api/v1/tokens/{id}/regenerate"),
            &pat,
            &json!({"grace_seconds": 10}),
        )
        .await;
    regenerated.expect(201, "regenerate");
    let ends = at(&api.get(&format!("/api/v1/tokens/{id}"), &pat).await.body["revoked_at"]);
    for base in &bases {
        assert_eq!(
            status_on(base.clone(), old.clone()).await,
            200,
            "grace on {base}"
        );
    }
    wait_past(ends).await;
    for base in &bases {
        assert_eq!(
            status_on(base.clone(), old.clone()).await,
            401,
            "after grace on {base}"
        );
    }
}
