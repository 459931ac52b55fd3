//! Property tests at the HTTP edge, one request per case: HTTP Basic
//! headers, form bodies, Bearer tokens (JWT headers and claims included),
//! scope strings, lifetimes and dates. Whatever a client sends, the answer is
//! a success or a 4xx that says what was wrong; never a 5xx, never a hang.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, TestRunner},
};
use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{Api, Backend},
};

#[derive(Debug, Clone)]
enum Case {
    /// `Authorization: <value>` at the token endpoint.
    Basic(String),
    /// A form body at one of the OAuth endpoints.
    Form(&'static str, Vec<u8>),
    /// `Authorization: Bearer <token>` at `/api/v1/me`.
    Bearer(String),
    /// `scope=` at the token endpoint, as a working client.
    Scope(String),
    /// `scopes` in a token request.
    Scopes(Vec<String>),
    /// `expires_at` in a token request.
    ExpiresAt(String),
    /// `expires_in_seconds` in a token request.
    ExpiresIn(i64),
    /// `since` or `until` in the audit log.
    AuditDate(&'static str, String),
}

/// Visible ASCII and spaces: what a header value may carry.
fn header_text() -> impl Strategy<Value = String> {
    "[ -~]{0,80}"
}

/// RFC 3339-shaped text, in and out of range, and anything else.
fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u32..=9999,
            0u32..=13,
            0u32..=32,
            0u32..=24,
            0u32..=60,
            0u32..=60,
            prop_oneof![
                Just("Z".to_owned()),
                (prop::bool::ANY, 0u32..=25, 0u32..=60).prop_map(|(neg, h, m)| format!(
                    "{}{h:02}:{m:02}",
                    if neg { '-' } else { '+' }
                )),
            ],
        )
            .prop_map(|(y, mo, d, h, mi, s, off)| format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{off}"
            )),
        "[0-9T:Z+.-]{0,30}",
        any::<String>(),
    ]
}

fn jwt_part() -> impl Strategy<Value = String> {
    prop_oneof![
        // A JSON object with the header's and claims' names.
        prop::collection::btree_map(
            prop::sample::select(vec![
                "alg", "typ", "kid", "crit", "jku", "x5u", "iss", "aud", "exp", "nbf", "iat",
                "sub", "jti", "scope",
            ]),
            prop_oneof![
                Just(json!("ES256")),
                Just(json!("none")),
                Just(json!("HS256")),
                Just(json!("at+jwt")),
                any::<i64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
                Just(json!(["a", 1])),
            ],
            0..6,
        )
        .prop_map(|m| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&m).unwrap())),
        vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        "[A-Za-z0-9_=+/-]{0,40}",
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let form_bytes = prop_oneof![
        vec(any::<u8>(), 0..200),
        vec(
            (
                prop::sample::select(vec![
                    "grant_type",
                    "client_id",
                    "client_secret",
                    "scope",
                    "token",
                    "token_type_hint",
                    "x",
                ]),
                prop_oneof![
                    Just("client_credentials".to_owned()),
                    Just("robot".to_owned()),
                    any::<String>()
                ],
            ),
            0..5,
        )
        .prop_map(|pairs| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                s.append_pair(k, &v);
            }
            s.finish().into_bytes()
        }),
    ];
    prop_oneof![
        prop_oneof![
            header_text().prop_map(|t| format!("Basic {t}")),
            vec(any::<u8>(), 0..80).prop_map(|b| format!("Basic {}", STANDARD.encode(b))),
            ("[ -~]{0,20}", "[ -~]{0,20}")
                .prop_map(|(i, s)| format!("Basic {}", STANDARD.encode(format!("{i}:{s}")))),
            header_text(),
        ]
        .prop_map(Case::Basic),
        (
            prop::sample::select(vec![
                "/oauth2/token",
                "/oauth2/introspect",
                "/oauth2/revoke"
            ]),
            form_bytes
        )
            .prop_map(|(p, b)| Case::Form(p, b)),
        prop_oneof![
            header_text(),
            (jwt_part(), jwt_part(), jwt_part()).prop_map(|(h, c, s)| format!("{h}.{c}.{s}")),
        ]
        .prop_map(Case::Bearer),
        prop_oneof![
            "[ -~]{0,40}",
            "(profile|introspect|admin:write|x)( (profile|introspect)){0,3}"
        ]
        .prop_map(Case::Scope),
        vec(prop_oneof![any::<String>(), "[a-z:]{0,12}"], 0..4).prop_map(Case::Scopes),
        date().prop_map(Case::ExpiresAt),
        prop_oneof![any::<i64>(), 0i64..40_000_000].prop_map(Case::ExpiresIn),
        (prop::sample::select(vec!["since", "until"]), date())
            .prop_map(|(f, d)| Case::AuditDate(f, d)),
    ]
}

static NAMES: AtomicUsize = AtomicUsize::new(0);

fn token_request(extra: (&str, Value)) -> Value {
    let n = NAMES.fetch_add(1, Ordering::Relaxed);
    let mut body =
        json!({"name": format!("prop-{n}"), "scopes": ["profile"], "expires_in_seconds": 3600});
    body[extra.0] = extra.1;
    body
}

async fn send(api: &Api, admin: &str, secret: &str, case: &Case) -> Result<(), String> {
    let client = &api.app.client;
    let form_ct = "application/x-www-form-urlencoded";
    let req = match case {
        Case::Basic(value) => client
            .post(api.app.url("/oauth2/token"))
            .header("authorization", value)
            .header("content-type", form_ct)
            .body("grant_type=client_credentials"),
        Case::Form(path, body) => client
            .post(api.app.url(path))
            .header("content-type", form_ct)
            .body(body.clone()),
        Case::Bearer(token) => client
            .get(api.app.url("/api/v1/me"))
            .header("authorization", format!("Bearer {token}")),
        Case::Scope(scope) => client
            .post(api.app.url("/oauth2/token"))
            .basic_auth("robot", Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)]),
        Case::Scopes(scopes) => client
            .post(api.app.url("/api/v1/tokens"))
            .bearer_auth(admin)
            .json(&token_request(("scopes", json!(scopes)))),
        Case::ExpiresAt(at) => {
            let mut body = token_request(("expires_at", json!(at)));
            body.as_object_mut().unwrap().remove("expires_in_seconds");
            client
                .post(api.app.url("/api/v1/tokens"))
                .bearer_auth(admin)
                .json(&body)
        }
        Case::ExpiresIn(s) => client
            .post(api.app.url("/api/v1/tokens"))
            .bearer_auth(admin)
            .json(&token_request(("expires_in_seconds", json!(s)))),
        Case::AuditDate(field, at) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(field, at)
                .finish();
            client
                .get(api.app.url(&format!("/api/v1/audit?{q}")))
                .bearer_auth(admin)
        }
    };
    let res = req
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| format!("{case:?}: no answer: {e}"))?;
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if status.is_server_error() {
        return Err(format!("{case:?} -> {status}: {text}"));
    }
    if status.is_client_error() {
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let says = body["error"]
            .as_str()
            .or(body["detail"].as_str())
            .unwrap_or("");
        if says.is_empty() {
            return Err(format!("{case:?} -> {status} without a reason: {text}"));
        }
        // A refused lifetime or date names its field.
        let field = match case {
            Case::ExpiresAt(_) => Some("expires_at"),
            Case::ExpiresIn(_) => Some("expires_in_seconds"),
            Case::AuditDate(f, _) => Some(*f),
            _ => None,
        };
        if let Some(field) = field
            && body["field"] != field
        {
            return Err(format!(
                "{case:?} -> {status} does not name {field}: {text}"
            ));
        }
    }
    Ok(())
}

async fn no_input_to_a_parser_gives_a_server_error(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let secret = api.app.create_machine("robot", &["profile", "introspect"]);
    let mut runner = TestRunner::new(Config {
        cases: 192,
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 30_000,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&case(), |case| {
        let outcome =
            tokio::task::block_in_place(|| handle.block_on(send(&api, &admin, &secret, &case)));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    api.get("/api/v1/me", &admin).await.expect(200, "still up");
}

both_backends!(no_input_to_a_parser_gives_a_server_error);
