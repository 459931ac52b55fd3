//! Property tests over request shapes: whatever JSON, bytes, paths and
//! queries a client sends to any route, the answer is never a 5xx and every
//! error is problem+json.

use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    test_runner::{Config, TestRunner},
};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::{Api, both_backends, common::Backend};

/// Field names the API knows, so generated objects often get past the first key.
const FIELDS: &[&str] = &[
    "name",
    "description",
    "scopes",
    "expires_in_seconds",
    "expires_at",
    "username",
    "password",
    "role",
    "enabled",
    "display_name",
    "contact_email",
    "client_credentials",
    "access_token_ttl_minutes",
];

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens/{id}"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("POST", "/api/v1/tokens/{id}/regenerate"),
    ("GET", "/api/v1/machine-users"),
    ("POST", "/api/v1/machine-users"),
    ("GET", "/api/v1/machine-users/{id}"),
    ("PATCH", "/api/v1/machine-users/{id}"),
    ("POST", "/api/v1/machine-users/{id}/secrets"),
    ("DELETE", "/api/v1/machine-users/{id}/secrets/{id}"),
    ("POST", "/api/v1/machine-users/{id}/tokens"),
    ("GET", "/api/v1/admin/tokens"),
    ("DELETE", "/api/v1/admin/tokens/{id}"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{id}"),
    ("GET", "/api/v1/scopes"),
    ("POST", "/api/v1/scopes"),
    ("GET", "/api/v1/audit"),
];

const QUERY_KEYS: &[&str] = &[
    "limit", "cursor", "owner", "kind", "status", "q", "actor", "action", "since", "until",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "profile",
            "admin:write",
            "user",
            "admin",
            "2030-01-01T00:00:00Z",
            "x@y.z"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(
                prop_oneof![
                    prop::sample::select(FIELDS).prop_map(str::to_owned),
                    any::<String>()
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Bytes(Option<String>, Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::None),
        6 => json_value().prop_map(Body::Json),
        2 => (
            prop::option::of(prop::sample::select(vec![
                "application/json",
                "text/plain",
                "application/merge-patch+json",
                "multipart/form-data",
            ]).prop_map(str::to_owned)),
            vec(any::<u8>(), 0..256),
        )
            .prop_map(|(ct, b)| Body::Bytes(ct, b)),
    ]
}

/// A path segment: a real-looking uuid, or anything at all, percent-encoded.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        vec(any::<u8>(), 0..24)
            .prop_map(|b| { b.iter().map(|x| format!("%{x:02X}")).collect::<String>() }),
    ]
}

fn query() -> impl Strategy<Value = String> {
    vec(
        (
            prop::sample::select(QUERY_KEYS),
            prop_oneof![
                any::<String>(),
                any::<i64>().prop_map(|n| n.to_string()),
                Just("\u{0}".to_owned()),
            ],
        ),
        0..4,
    )
    .prop_map(|pairs| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            q.append_pair(k, &v);
        }
        q.finish()
    })
}

fn request() -> impl Strategy<Value = (usize, String, String, Body, bool)> {
    (0..ROUTES.len(), segment(), query(), body(), any::<bool>())
}

async fn send(
    api: &Api,
    tokens: &[String; 2],
    case: &(usize, String, String, Body, bool),
) -> Result<(), String> {
    let (route, seg, query, body, as_admin) = case;
    let (method, template) = ROUTES[*route];
    let mut url = api.app.url(&template.replace("{id}", seg));
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let token = &tokens[usize::from(*as_admin)];
    let mut req = api
        .app
        .client
        .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
        .bearer_auth(token);
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Bytes(ct, bytes) => {
            let req = req.body(bytes.clone());
            match ct {
                Some(ct) => req.header("content-type", ct),
                None => req,
            }
        }
    };
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    if status.is_server_error() {
        return Err(format!("{method} {url} -> {status}: {text}"));
    }
    if status.is_client_error() && ct != "application/problem+json" {
        return Err(format!("{method} {url} -> {status} as {ct:?}: {text}"));
    }
    Ok(())
}

async fn no_request_shape_gives_a_server_error(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let user = api.user("alice", &["profile", "tokens:read", "tokens:write"]);
    let tokens = [user, admin];
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&request(), |case| {
        let outcome = tokio::task::block_in_place(|| handle.block_on(send(&api, &tokens, &case)));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // And the server is still healthy afterwards.
    api.get("/api/v1/me", &tokens[1])
        .await
        .expect(200, "still up");
}

both_backends!(no_request_shape_gives_a_server_error);
