//! `GET /api/openapi.json`: every route of the contract is documented with
//! its scope, every documented operation is served, and nothing undocumented is.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::Value;

use crate::{
    both_backends,
    common::{Api, Backend},
};

const ZERO: &str = "00000000-0000-0000-0000-000000000000";

/// INTERFACE.md §6: method, path and scope of every `/api/v1` route.
const CONTRACT: &[(&str, &str, &str)] = &[
    ("get", "/api/v1/me", "profile"),
    ("get", "/api/v1/tokens", "tokens:read"),
    ("post", "/api/v1/tokens", "tokens:write"),
    ("get", "/api/v1/tokens/{id}", "tokens:read"),
    ("delete", "/api/v1/tokens/{id}", "tokens:write"),
    ("post", "/api/v1/tokens/{id}/regenerate", "tokens:write"),
    ("get", "/api/v1/machine-users", "admin:read"),
    ("post", "/api/v1/machine-users", "admin:write"),
    ("get", "/api/v1/machine-users/{id}", "admin:read"),
    ("patch", "/api/v1/machine-users/{id}", "admin:write"),
    ("delete", "/api/v1/machine-users/{id}", "admin:write"),
    ("post", "/api/v1/machine-users/{id}/secrets", "admin:write"),
    (
        "delete",
        "/api/v1/machine-users/{id}/secrets/{secret_id}",
        "admin:write",
    ),
    ("post", "/api/v1/machine-users/{id}/tokens", "admin:write"),
    ("get", "/api/v1/admin/tokens", "admin:read"),
    ("delete", "/api/v1/admin/tokens/{id}", "admin:write"),
    ("get", "/api/v1/users", "admin:read"),
    ("post", "/api/v1/users", "admin:write"),
    ("patch", "/api/v1/users/{id}", "admin:write"),
    ("get", "/api/v1/scopes", "profile"),
    ("post", "/api/v1/scopes", "admin:write"),
    ("get", "/api/v1/audit", "admin:read"),
    // §9: webhooks.
    ("get", "/api/v1/webhooks", "admin:read"),
    ("post", "/api/v1/webhooks", "admin:write"),
    ("get", "/api/v1/webhooks/{id}", "admin:read"),
    ("patch", "/api/v1/webhooks/{id}", "admin:write"),
    ("delete", "/api/v1/webhooks/{id}", "admin:write"),
    ("get", "/api/v1/webhooks/{id}/deliveries", "admin:read"),
    ("post", "/api/v1/webhooks/{id}/ping", "admin:write"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const BUILTIN: [&str; 6] = [
    "profile",
    "tokens:read",
    "tokens:write",
    "admin:read",
    "admin:write",
    "introspect",
];

/// (method, path) → the scope the document says it needs.
fn operations(doc: &Value) -> BTreeMap<(String, String), String> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            for (status, res) in op["responses"].as_object().expect("responses") {
                assert!(
                    res["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}: a description"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        res["content"].get("application/problem+json").is_some(),
                        "{method} {path} {status}: documented as problem+json"
                    );
                }
            }
            // Public operations (leak reports) declare an empty requirement.
            if op["security"][0].as_object().is_some_and(|o| o.is_empty()) {
                ops.insert((method.clone(), path.clone()), String::new());
                continue;
            }
            let scopes = op["security"][0]["bearer"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} documents its bearer scope"));
            assert_eq!(scopes.len(), 1, "{method} {path}: one scope");
            ops.insert(
                (method.clone(), path.clone()),
                scopes[0].as_str().unwrap().to_owned(),
            );
        }
    }
    ops
}

fn concrete(path: &str) -> String {
    path.replace("{id}", ZERO).replace("{secret_id}", ZERO)
}

async fn the_document_and_the_routes_agree(backend: Backend) {
    let api = Api::spawn(backend).await;
    let res = api
        .app
        .client
        .get(api.app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let ops = operations(&doc);
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} is unique");
        }
    }

    // Every contract route is documented with the contract's scope.
    for (method, path, scope) in CONTRACT {
        let documented = ops.get(&(method.to_string(), path.to_string()));
        assert_eq!(
            documented.map(String::as_str),
            Some(*scope),
            "{method} {path} in the document"
        );
    }

    // One token per built-in scope left out, to see each route name its own.
    api.admin();
    let lacking: BTreeMap<&str, String> = BUILTIN
        .iter()
        .map(|missing| {
            let rest: Vec<&str> = BUILTIN.iter().copied().filter(|s| s != missing).collect();
            (*missing, api.app.token_for("admin", &rest))
        })
        .collect();

    let paths: BTreeSet<&String> = ops.keys().map(|(_, p)| p).collect();
    for path in paths {
        let url = concrete(path);
        for method in METHODS {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let what = format!("{method} {path}");
            match ops.get(&(method.to_owned(), path.clone())) {
                // Public: served without a token (its own tests cover it).
                Some(scope) if scope.is_empty() => {}
                Some(scope) => {
                    // Served: it challenges an anonymous caller…
                    let res = api.call(m.clone(), &url, None, None).await;
                    res.expect(401, &what);
                    // …and refuses a token lacking exactly its documented scope.
                    let res = api
                        .call(m, &url, Some(&lacking[scope.as_str()]), None)
                        .await;
                    res.expect(403, &what);
                    assert!(
                        res.header("www-authenticate")
                            .unwrap()
                            .contains(&format!(r#"scope="{scope}""#)),
                        "{what} needs {scope}"
                    );
                }
                None => {
                    // Not documented: not served either, and the answer
                    // names the methods that are (RFC 9110 §15.5.6).
                    let res = api.call(m, &url, None, None).await;
                    res.expect(405, &what);
                    assert_eq!(res.problem(), "method-not-allowed", "{what}");
                    let mut allow: Vec<String> = METHODS
                        .iter()
                        .filter(|m| ops.contains_key(&(m.to_string(), path.clone())))
                        .map(|m| m.to_uppercase())
                        .collect();
                    if allow.iter().any(|m| m == "GET") {
                        allow.push("HEAD".into());
                    }
                    allow.sort();
                    assert_eq!(
                        res.header("allow"),
                        Some(allow.join(", ").as_str()),
                        "{what}"
                    );
                }
            }
        }
    }
}

both_backends!(the_document_and_the_routes_agree);
