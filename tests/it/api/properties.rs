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

use crate::{
    both_backends,
    common::{Api, Backend},
};

/// What the OpenAPI document says a client may send: every operation (with
/// its path and query parameter names) and every property name of every
/// schema, so generated requests follow the document's shapes often enough
/// to get past the first check.
struct Shapes {
    routes: Vec<(String, String)>,
    query_keys: Vec<String>,
    fields: Vec<String>,
}

fn shapes(doc: &Value) -> Shapes {
    let mut routes = Vec::new();
    let mut query_keys = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            routes.push((method.to_uppercase(), path.clone()));
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" {
                    query_keys.push(p["name"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let mut fields = Vec::new();
    for schema in doc["components"]["schemas"].as_object().unwrap().values() {
        if let Some(props) = schema["properties"].as_object() {
            fields.extend(props.keys().cloned());
        }
    }
    query_keys.sort();
    query_keys.dedup();
    fields.sort();
    fields.dedup();
    assert!(routes.len() >= 20 && !query_keys.is_empty() && !fields.is_empty());
    Shapes {
        routes,
        query_keys,
        fields,
    }
}

fn json_value(fields: Vec<String>) -> impl Strategy<Value = Value> {
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
            "x@y.z",
            "a\u{0}b",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(
                prop_oneof![prop::sample::select(fields.clone()), any::<String>()],
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

fn body(fields: Vec<String>) -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::None),
        6 => json_value(fields).prop_map(Body::Json),
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

fn query(keys: Vec<String>) -> impl Strategy<Value = String> {
    vec(
        (
            prop::sample::select(keys),
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
            q.append_pair(&k, &v);
        }
        q.finish()
    })
}

type Case = (usize, String, String, Body, bool);

fn request(shapes: &Shapes) -> impl Strategy<Value = Case> + use<> {
    (
        0..shapes.routes.len(),
        segment(),
        query(shapes.query_keys.clone()),
        body(shapes.fields.clone()),
        any::<bool>(),
    )
}

/// The route with every path parameter (`{id}`, `{token_id}`, `{name}`, …)
/// replaced by the generated segment.
fn fill(template: &str, seg: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').expect("a closed path parameter");
        out.push_str(&rest[..open]);
        out.push_str(seg);
        rest = &rest[close + 1..];
    }
    out + rest
}

async fn send(
    api: &Api,
    routes: &[(String, String)],
    tokens: &[String; 2],
    case: &Case,
) -> Result<(), String> {
    let (route, seg, query, body, as_admin) = case;
    let (method, template) = &routes[*route];
    let mut url = api.app.url(&fill(template, seg));
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let token = &tokens[usize::from(*as_admin)];
    let mut req = api
        .app
        .client
        .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
        .timeout(std::time::Duration::from_secs(20))
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
    let doc = api
        .app
        .client
        .get(api.app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let shapes = shapes(&doc);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        // Every shrink step is a request: keep a failure's report quick.
        max_shrink_iters: 256,
        max_shrink_time: 30_000,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&request(&shapes), |case| {
        let outcome = tokio::task::block_in_place(|| {
            handle.block_on(send(&api, &shapes.routes, &tokens, &case))
        });
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
