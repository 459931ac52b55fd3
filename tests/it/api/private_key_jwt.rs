//! INTERFACE §11, `private_key_jwt`: a machine user registers public keys
//! and authenticates at the token, introspection and revocation endpoints
//! with assertions signed by RustCrypto (see `client_assertions`); every
//! refusal is the same `invalid_client`; a `jti` is accepted once, also
//! across instances; bad JWK Sets are 400s naming the problem.

use reqwest::Method;
use serde_json::{Value, json};

use super::client_assertions::{
    ASSERTION_TYPE, Key, assertion, b64, claims, jwt_claims, machine, metadata, now,
    post_with_assertion, register,
};
use crate::{
    both_backends,
    common::{Api, Backend, TestApp},
};

/// A generous failure limit: these tests fail on purpose many times.
const MANY_FAILURES: (&str, &str) = ("TESSERA_AUTH_FAILURES_PER_IP", "1000/1m");

async fn spawn(backend: Backend) -> (Api, String) {
    let api = Api {
        app: TestApp::spawn_with(backend, &[MANY_FAILURES]).await,
    };
    let admin = api.admin();
    (api, admin)
}

fn url(meta: &Value, endpoint: &str) -> String {
    meta[endpoint].as_str().expect(endpoint).to_owned()
}

async fn assertions_of_every_key_type_work_at_every_endpoint(backend: Backend) {
    let (api, admin) = spawn(backend).await;
    let app = &api.app;
    let meta = metadata(app).await;
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{meta}");
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "RS256", "PS256", "EdDSA"])
    );
    let (token_url, introspect_url, revoke_url, issuer) = (
        url(&meta, "token_endpoint"),
        url(&meta, "introspection_endpoint"),
        url(&meta, "revocation_endpoint"),
        url(&meta, "issuer"),
    );
    let id = machine(&api, &admin, "keyed", &["profile", "introspect"]).await;
    let (ec, rsa, ed) = (Key::ec(1), Key::rsa(), Key::ed(2));
    register(
        &api,
        &admin,
        &id,
        &[(&ec, "ec-1"), (&rsa, "rsa-1"), (&ed, "ed-1")],
    )
    .await;
    // A secret next to the keys keeps working (a client may migrate).
    let secret = api
        .post_empty(&format!("/api/v1/machine-users/{id}/secrets"), &admin)
        .await;
    let secret = secret.body["client_secret"].as_str().unwrap().to_owned();

    let mut tokens = Vec::new();
    for (key, kid, alg) in [
        (&ec, "ec-1", "ES256"),
        (&rsa, "rsa-1", "RS256"),
        (&rsa, "rsa-1", "PS256"),
        (&ed, "ed-1", "EdDSA"),
    ] {
        let jwt = key.sign(
            &json!({"alg": alg, "kid": kid}),
            &claims("keyed", &token_url),
        );
        let (status, body) = post_with_assertion(
            app,
            "/oauth2/token",
            &jwt,
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, 200, "{alg}: {body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt_claims(&token)["client_id"], "keyed", "{alg}");
        tokens.push(token);
    }
    // `aud` may also be the issuer, or an array holding the endpoint; the
    // `client_id` parameter may come along when it matches.
    for (aud, extra) in [
        (json!(issuer), vec![]),
        (json!(["https://elsewhere.example", token_url]), vec![]),
        (json!(token_url), vec![("client_id", "keyed")]),
    ] {
        let mut c = claims("keyed", "");
        c["aud"] = aud.clone();
        let jwt = ec.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &c);
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(extra);
        let (status, body) = post_with_assertion(app, "/oauth2/token", &jwt, &form).await;
        assert_eq!(status, 200, "aud {aud}: {body}");
    }

    // Introspection and revocation with assertions for their own URLs.
    let (status, body) = post_with_assertion(
        app,
        "/oauth2/introspect",
        &assertion(&ed, "ed-1", "keyed", &introspect_url),
        &[("token", &tokens[0])],
    )
    .await;
    assert_eq!(
        (status, body["active"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let (status, body) = post_with_assertion(
        app,
        "/oauth2/revoke",
        &assertion(&rsa, "rsa-1", "keyed", &revoke_url),
        &[("token", &tokens[0])],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let res = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth("keyed", Some(&secret))
        .form(&[("token", tokens[0].as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], false, "revoked with an assertion: {body}");
    assert_eq!(
        app.access_token("keyed", &secret).await.split('.').count(),
        3,
        "the secret still works next to the keys"
    );

    // The keys go: assertions stop working at once; the secret does not.
    api.delete(&format!("/api/v1/machine-users/{id}/jwks"), &admin)
        .await
        .expect(204, "remove keys");
    let (status, _) = post_with_assertion(
        app,
        "/oauth2/token",
        &assertion(&ec, "ec-1", "keyed", &token_url),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401, "keys removed");
    app.access_token("keyed", &secret).await;
}

/// What a refusal case sends: its name, the assertion, extra form fields.
type Case = (&'static str, String, Vec<(&'static str, &'static str)>);

/// HS256 keyed with `secret` (what an attacker does with a public key).
fn hs256(secret: &[u8], claims: &Value, kid: &str) -> String {
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

async fn every_refusal_is_the_same_invalid_client(backend: Backend) {
    let (api, admin) = spawn(backend).await;
    let app = &api.app;
    let meta = metadata(app).await;
    let (token_url, revoke_url) = (
        url(&meta, "token_endpoint"),
        url(&meta, "revocation_endpoint"),
    );
    let id = machine(&api, &admin, "keyed", &["profile"]).await;
    let (ec, ed) = (Key::ec(1), Key::ed(2));
    register(&api, &admin, &id, &[(&ec, "ec-1"), (&ed, "ed-1")]).await;
    // Another client, whose key is registered under the same kid.
    let other_id = machine(&api, &admin, "other", &["profile"]).await;
    let theirs = Key::ec(9);
    register(&api, &admin, &other_id, &[(&theirs, "ec-1")]).await;
    // A client without keys.
    machine(&api, &admin, "keyless", &["profile"]).await;

    let header = json!({"alg": "ES256", "kid": "ec-1"});
    let good = || claims("keyed", &token_url);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good();
        f(&mut c);
        ec.sign(&header, &c)
    };
    let replayed = ec.sign(&header, &good());
    let (status, body) = post_with_assertion(
        app,
        "/oauth2/token",
        &replayed,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "the first use of an assertion: {body}");
    let jwk_json = ec.jwk("ec-1").to_string();
    let x = b64(&{
        let Key::Ec(k) = &ec else { unreachable!() };
        k.verifying_key()
            .to_encoded_point(false)
            .x()
            .unwrap()
            .to_vec()
    });
    let tampered = {
        let jwt = ec.sign(&header, &good());
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut c = good();
        c["sub"] = json!("keyed");
        c["scope"] = json!("admin:write");
        parts[1] = b64(c.to_string().as_bytes());
        parts.join(".")
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string().as_bytes()),
        b64(good().to_string().as_bytes())
    );
    let cases: Vec<Case> = vec![
        ("replayed", replayed, vec![]),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now() - 600);
                c["exp"] = json!(now() - 5);
            }),
            vec![],
        ),
        (
            "valid over an hour after iat",
            with(&|c| c["exp"] = json!(now() + 3700)),
            vec![],
        ),
        (
            "valid over an hour, no iat",
            with(&|c| {
                c.as_object_mut().unwrap().remove("iat");
                c["exp"] = json!(now() + 3700);
            }),
            vec![],
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            vec![],
        ),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            vec![],
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(now() + 600)),
            vec![],
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("https://elsewhere.example/oauth2/token")),
            vec![],
        ),
        (
            "aud of another endpoint",
            with(&|c| c["aud"] = json!(revoke_url)),
            vec![],
        ),
        ("wrong iss", with(&|c| c["iss"] = json!("other")), vec![]),
        ("wrong sub", with(&|c| c["sub"] = json!("other")), vec![]),
        (
            "iss and sub of another client",
            with(&|c| {
                c["iss"] = json!("other");
                c["sub"] = json!("other");
            }),
            vec![],
        ),
        (
            "signed with another client's key",
            theirs.sign(&header, &good()),
            vec![],
        ),
        (
            "unknown kid",
            ec.sign(&json!({"alg": "ES256", "kid": "nope"}), &good()),
            vec![],
        ),
        (
            "no kid, signed by another client's key",
            theirs.sign(&json!({"alg": "ES256"}), &good()),
            vec![],
        ),
        ("alg none", unsigned, vec![]),
        (
            "crit null",
            ec.sign(
                &json!({"alg": "ES256", "kid": "ec-1", "crit": null}),
                &good(),
            ),
            vec![],
        ),
        (
            "a critical extension it does not understand (RFC 7515 §4.1.11)",
            ec.sign(
                &json!({"alg": "ES256", "kid": "ec-1", "crit": ["x-unknown"], "x-unknown": 1}),
                &good(),
            ),
            vec![],
        ),
        (
            "HS256 keyed with the public JWK",
            hs256(jwk_json.as_bytes(), &good(), "ec-1"),
            vec![],
        ),
        (
            "HS256 keyed with x",
            hs256(x.as_bytes(), &good(), "ec-1"),
            vec![],
        ),
        (
            "EdDSA key with alg ES256",
            ed.sign(&json!({"alg": "ES256", "kid": "ed-1"}), &good()),
            vec![],
        ),
        (
            "EC key with alg EdDSA",
            ed.sign(&json!({"alg": "EdDSA", "kid": "ec-1"}), &good()),
            vec![],
        ),
        ("tampered claims", tampered, vec![]),
        (
            "client_id of another client",
            ec.sign(&header, &good()),
            vec![("client_id", "other")],
        ),
        (
            "a client without keys",
            Key::ec(3).sign(&json!({"alg": "ES256"}), &claims("keyless", &token_url)),
            vec![],
        ),
        ("not a JWT", "not-a-jwt".to_owned(), vec![]),
    ];
    for (what, jwt, extra) in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(extra);
        let (status, body) = post_with_assertion(app, "/oauth2/token", &jwt, &form).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(
            body,
            json!({"error": "invalid_client", "error_description": "client authentication failed"}),
            "{what}: the answer does not say which check failed"
        );
    }
    // A wrong assertion type, and an assertion next to a secret.
    let jwt = assertion(&ec, "ec-1", "keyed", &token_url);
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "wrong client_assertion_type");
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth("keyed", Some("tsc_x"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "two methods at once");
    // The good assertion itself was never used, so it still works once.
    let (status, body) = post_with_assertion(
        app,
        "/oauth2/token",
        &jwt,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A disabled client is refused.
    api.patch(
        &format!("/api/v1/machine-users/{id}"),
        &admin,
        &json!({"enabled": false}),
    )
    .await
    .expect(200, "disable");
    let (status, _) = post_with_assertion(
        app,
        "/oauth2/token",
        &assertion(&ec, "ec-1", "keyed", &token_url),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401, "disabled client");
}

/// Failed assertions count against the address like failed secrets.
async fn failed_assertions_are_throttled(backend: Backend) {
    let api = Api {
        app: TestApp::spawn_with(backend, &[("TESSERA_AUTH_FAILURES_PER_IP", "3/1m")]).await,
    };
    let admin = api.admin();
    let app = &api.app;
    let token_url = url(&metadata(app).await, "token_endpoint");
    let id = machine(&api, &admin, "keyed", &["profile"]).await;
    let ec = Key::ec(1);
    register(&api, &admin, &id, &[(&ec, "ec-1")]).await;
    let wrong = Key::ec(5);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _) = post_with_assertion(
            app,
            "/oauth2/token",
            &assertion(&wrong, "ec-1", "keyed", &token_url),
            &[("grant_type", "client_credentials")],
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

async fn jwks_bad_input_is_refused_naming_the_problem(backend: Backend) {
    let (api, admin) = spawn(backend).await;
    let id = machine(&api, &admin, "keyed", &["profile"]).await;
    let path = format!("/api/v1/machine-users/{id}/jwks");
    let ec = Key::ec(1).jwk("a");
    let with = |member: &str, value: Value| {
        let mut k = ec.clone();
        k[member] = value;
        k
    };
    let mut no_kid = Key::ec(3).jwk("y");
    no_kid.as_object_mut().unwrap().remove("kid");
    let small_rsa = json!({"kty": "RSA", "kid": "a", "n": b64(&[0xc5; 128]), "e": "AQAB"});
    let cases = [
        (
            "private EC key",
            json!({"keys": [with("d", json!("AAAA"))]}),
            "private member \"d\"",
        ),
        (
            "private RSA member",
            json!({"keys": [{"kty": "RSA", "n": b64(&[0xc5; 256]), "e": "AQAB", "p": "AAAA"}]}),
            "private member \"p\"",
        ),
        (
            "symmetric key",
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "private member \"k\"",
        ),
        (
            "unsupported kty",
            json!({"keys": [{"kty": "XYZ"}]}),
            "unsupported key type",
        ),
        (
            "P-384",
            json!({"keys": [with("crv", json!("P-384"))]}),
            "P-384",
        ),
        ("small RSA", json!({"keys": [small_rsa]}), "1024 bits"),
        (
            "too many",
            json!({"keys": (0..6).map(|i| with("kid", json!(format!("k{i}")))).collect::<Vec<_>>()}),
            "at most 5",
        ),
        (
            "kid twice",
            json!({"keys": [ec.clone(), ec.clone()]}),
            "used twice",
        ),
        (
            "no kid with two keys",
            json!({"keys": [Key::ec(2).jwk("x"), no_kid]}),
            "kid",
        ),
        (
            "not a point",
            json!({"keys": [with("y", ec["x"].clone())]}),
            "not a point",
        ),
        (
            "HMAC alg",
            json!({"keys": [with("alg", json!("HS256"))]}),
            "alg",
        ),
        ("no keys", json!({"keys": []}), "no key"),
        ("not a set", json!([ec.clone()]), "JWK Set"),
    ];
    for (what, body, says) in cases {
        let r = api
            .call(Method::PUT, &path, Some(&admin), Some(&body))
            .await;
        r.expect(400, what);
        assert_eq!(r.body["field"], "jwks", "{what}");
        assert!(
            r.body["detail"].as_str().unwrap_or("").contains(says),
            "{what}: {}",
            r.body["detail"]
        );
    }
    api.get(&path, &admin).await.expect(200, "nothing stored");
    assert_eq!(api.get(&path, &admin).await.body, json!({"keys": []}));

    // A good set is stored with its public members only.
    let mut good = Key::ec(1).jwk("a");
    good["use"] = json!("sig");
    good["x5u"] = json!("https://example.com/ignored");
    let r = api
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(&json!({"keys": [good]})),
        )
        .await;
    r.expect(200, "good set");
    let stored = &api.get(&path, &admin).await.body;
    assert_eq!(stored, &r.body);
    assert_eq!(stored["keys"][0]["kid"], "a");
    assert!(stored["keys"][0].get("x5u").is_none(), "{stored}");

    // Scopes and missing machine users.
    let reader = api.user("reader", &["profile"]);
    api.get(&path, &reader)
        .await
        .expect(403, "without admin:read");
    api.get(
        "/api/v1/machine-users/00000000-0000-0000-0000-000000000000/jwks",
        &admin,
    )
    .await
    .expect(404, "no such machine user");
    // The change is audited.
    let audit = api
        .get("/api/v1/audit?action=client_keys.update", &admin)
        .await;
    assert_eq!(
        audit.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        audit.text
    );
}

const GRANT: &[(&str, &str)] = &[("grant_type", "client_credentials")];

/// The same assertion sent many times at once, so that the copies meet in
/// one group-commit batch: one token, the rest `invalid_client`; another
/// assertion in flight alongside is not affected.
async fn one_assertion_sent_at_once_buys_one_token(backend: Backend) {
    let (api, admin) = spawn(backend).await;
    let app = &api.app;
    let token_url = url(&metadata(app).await, "token_endpoint");
    let id = machine(&api, &admin, "racer", &["profile"]).await;
    let ec = Key::ec(7);
    register(&api, &admin, &id, &[(&ec, "ec-7")]).await;
    let jwt = assertion(&ec, "ec-7", "racer", &token_url);
    let other = assertion(&ec, "ec-7", "racer", &token_url);
    let mut sends: Vec<_> = (0..16)
        .map(|_| post_with_assertion(app, "/oauth2/token", &jwt, GRANT))
        .collect();
    sends.push(post_with_assertion(app, "/oauth2/token", &other, GRANT));
    let answers = futures_util::future::join_all(sends).await;
    let (other_status, _) = answers.last().expect("answers");
    assert_eq!(
        *other_status, 200,
        "a different assertion in the same batch"
    );
    let same = &answers[..16];
    let ok: Vec<_> = same.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(ok.len(), 1, "exactly one use of one assertion: {same:?}");
    for (status, body) in same.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
    }
    // The token bought is recorded: it is accepted (validation reads its
    // record), and revoked by the next assertion.
    let token = ok[0].1["access_token"].as_str().expect("token");
    let me = |token: String| {
        let client = app.client.clone();
        let url = app.url("/api/v1/me");
        async move {
            let res = client.get(url).bearer_auth(token).send().await.expect("me");
            res.status().as_u16()
        }
    };
    assert_eq!(me(token.to_owned()).await, 200);
    let revoke_url = url(&metadata(app).await, "revocation_endpoint");
    let third = assertion(&ec, "ec-7", "racer", &revoke_url);
    let form = [("token", token)];
    let (status, body) = post_with_assertion(app, "/oauth2/revoke", &third, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(token.to_owned()).await, 401);
    // A replay at an endpoint that issues nothing is refused just the same.
    let (status, body) = post_with_assertion(app, "/oauth2/revoke", &third, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}

/// A client rotating its key holds two, and some libraries (authlib's
/// `PrivateKeyJWT`) send no `kid`: each key that signs with the assertion's
/// algorithm is tried.
async fn an_assertion_without_a_kid_is_checked_against_every_fitting_key(backend: Backend) {
    let (api, admin) = spawn(backend).await;
    let app = &api.app;
    let token_url = url(&metadata(app).await, "token_endpoint");
    let id = machine(&api, &admin, "rotating", &["profile"]).await;
    let (old, new, ed) = (Key::ec(4), Key::ec(5), Key::ed(6));
    register(
        &api,
        &admin,
        &id,
        &[(&old, "old"), (&new, "new"), (&ed, "ed")],
    )
    .await;
    let cc = [("grant_type", "client_credentials")];
    for (key, what) in [
        (&old, "the old key"),
        (&new, "the new key"),
        (&ed, "the Ed25519 key"),
    ] {
        let jwt = key.sign(&json!({"alg": key.alg()}), &claims("rotating", &token_url));
        let (status, body) = post_with_assertion(app, "/oauth2/token", &jwt, &cc).await;
        assert_eq!(status, 200, "{what}: {body}");
    }
    // Neither key signed this one.
    let stranger = Key::ec(7).sign(&json!({"alg": "ES256"}), &claims("rotating", &token_url));
    let (status, body) = post_with_assertion(app, "/oauth2/token", &stranger, &cc).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

both_backends!(
    an_assertion_without_a_kid_is_checked_against_every_fitting_key,
    one_assertion_sent_at_once_buys_one_token,
    assertions_of_every_key_type_work_at_every_endpoint,
    every_refusal_is_the_same_invalid_client,
    failed_assertions_are_throttled,
    jwks_bad_input_is_refused_naming_the_problem,
);

/// A `jti` used at one instance is refused at another sharing the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_refused_on_another_instance() {
    if !crate::common::postgres::available() {
        return;
    }
    let mut api = Api {
        app: TestApp::spawn_with(Backend::Postgres, &[MANY_FAILURES]).await,
    };
    let admin = api.admin();
    let second = api.app.start_another(&[MANY_FAILURES]);
    let app = &api.app;
    let token_url = url(&metadata(app).await, "token_endpoint");
    let id = machine(&api, &admin, "keyed", &["profile"]).await;
    let ec = Key::ec(1);
    register(&api, &admin, &id, &[(&ec, "ec-1")]).await;
    let post = |base: String, jwt: String| {
        let client = app.client.clone();
        async move {
            client
                .post(format!("{base}/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", jwt.as_str()),
                ])
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    let (first, other) = (format!("http://{}", app.addr), format!("http://{second}"));
    for (a, b) in [(&first, &other), (&other, &first)] {
        let jwt = assertion(&ec, "ec-1", "keyed", &token_url);
        assert_eq!(post(a.clone(), jwt.clone()).await, 200, "first use at {a}");
        assert_eq!(post(b.clone(), jwt.clone()).await, 401, "replay at {b}");
        assert_eq!(post(a.clone(), jwt).await, 401, "replay at {a}");
    }
}
