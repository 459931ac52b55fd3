//! `/metrics` labels come from closed sets: whatever methods and paths clients
//! invent, the number of series stays the same.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::{
    both_backends,
    common::{Api, Backend},
};

async fn metrics(api: &Api) -> String {
    let res = api
        .app
        .client
        .get(api.app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    res.text().await.expect("text")
}

/// Each series: a metric name with its labels, without its value.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("tessera_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_owned()))
        .collect()
}

async fn send(api: &Api, method: &str, path: &str) {
    let res = api
        .app
        .client
        .request(
            Method::from_bytes(method.as_bytes()).expect("a method token"),
            api.app.url(path),
        )
        .send()
        .await
        .expect("the server answers an invented method");
    assert!(
        res.status().is_client_error(),
        "{method} {path}: {}",
        res.status()
    );
}

const PATHS: [&str; 5] = [
    "/healthz",
    "/api/v1/me",
    "/oauth2/token",
    "/tokens",
    "/nowhere",
];

async fn invented_methods_and_paths_do_not_grow_the_metrics(backend: Backend) {
    let api = Api::spawn(backend).await;
    // Warm up: every kind of request the flood below makes, once.
    for path in PATHS {
        send(&api, "INVENTED", path).await;
        send(&api, "INVENTED", &format!("{path}/x0")).await;
    }
    metrics(&api).await;
    let before = series(&metrics(&api).await);

    for i in 1..=60 {
        let path = PATHS[i % PATHS.len()];
        send(&api, &format!("INVENTED{i}"), path).await;
        send(&api, &format!("M{i}"), &format!("{path}/x{i}")).await;
    }
    let text = metrics(&api).await;
    let after = series(&text);
    assert!(
        !text.contains("INVENTED") && !text.contains("/x1"),
        "client-chosen words became labels:\n{text}"
    );
    let grown: Vec<_> = after.difference(&before).collect();
    assert!(grown.is_empty(), "new series appeared: {grown:#?}");
    for line in &after {
        if let Some(i) = line.find("method=\"") {
            let method = line[i + 8..].split('"').next().unwrap();
            assert!(
                [
                    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
                    "other"
                ]
                .contains(&method),
                "{line}"
            );
        }
    }
}

both_backends!(invented_methods_and_paths_do_not_grow_the_metrics);
