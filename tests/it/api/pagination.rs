//! Cursor pagination: limits, bad cursors, and stability while rows are inserted.

use std::collections::HashSet;

use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, token_request},
};

async fn pages_stay_stable_while_rows_are_inserted(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    for i in 0..23 {
        api.post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": format!("before-{i:02}")}),
        )
        .await
        .expect(201, "seed");
    }
    let before: HashSet<String> = api
        .all_ids("/api/v1/machine-users", &admin, 500)
        .await
        .into_iter()
        .collect();
    assert_eq!(before.len(), 23);

    // Walk pages of 4 while another task keeps inserting.
    let inserter = {
        let client = api.app.client.clone();
        let url = api.app.url("/api/v1/machine-users");
        let admin = admin.clone();
        tokio::spawn(async move {
            for i in 0..15 {
                let res = client
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&json!({"username": format!("during-{i:02}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/machine-users?limit=4&cursor={c}"),
            None => "/api/v1/machine-users?limit=4".to_owned(),
        };
        let page = api.get(&url, &admin).await;
        page.expect(200, &url);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    inserter.await.unwrap();

    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates across pages");
    assert!(
        before.is_subset(&unique),
        "no row present before was skipped"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, in one order");
    let after = api.all_ids("/api/v1/machine-users", &admin, 500).await;
    assert_eq!(after.len(), 38);
}

async fn limits_and_cursors_are_checked(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    for i in 0..3 {
        api.post(
            "/api/v1/tokens",
            &admin,
            &token_request(&format!("t{i}"), &["profile"]),
        )
        .await
        .expect(201, "token");
    }
    for path in [
        "/api/v1/tokens",
        "/api/v1/admin/tokens",
        "/api/v1/users",
        "/api/v1/machine-users",
        "/api/v1/audit",
    ] {
        for bad in ["0", "501", "-1", "ten", "1.5", ""] {
            let url = format!("{path}?limit={bad}");
            let res = api.get(&url, &admin).await;
            res.expect(400, &url);
            assert_eq!(res.body["field"], "limit", "{url}");
        }
        for bad in ["nonsense", "AAAA", "%00"] {
            let url = format!("{path}?cursor={bad}");
            let res = api.get(&url, &admin).await;
            res.expect(400, &url);
            assert_eq!(res.body["field"], "cursor", "{url}");
        }
        let res = api.get(&format!("{path}?limit=1&limit=2"), &admin).await;
        res.expect(400, "repeated limit");
        for ok in ["1", "500"] {
            api.get(&format!("{path}?limit={ok}"), &admin)
                .await
                .expect(200, ok);
        }
    }
    // Default page size is 50; the admin's 4 tokens fit with no next page.
    let page = api.get("/api/v1/tokens", &admin).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 4);
    assert_eq!(page.body["next_cursor"], serde_json::Value::Null);
    let ids = api.all_ids("/api/v1/tokens", &admin, 1).await;
    assert_eq!(ids.len(), 4);

    // Admin token filters. A name without a "t" shows what `q` leaves out.
    api.post(
        "/api/v1/tokens",
        &admin,
        &token_request("backup", &["profile"]),
    )
    .await
    .expect(201, "token");
    let all = api
        .get(
            "/api/v1/admin/tokens?owner=admin&kind=personal&status=active&q=T",
            &admin,
        )
        .await;
    all.expect(200, "filters");
    let names: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"t0") && names.contains(&"t2"), "{names:?}");
    assert!(!names.contains(&"backup"), "{names:?}");
    assert!(names.iter().all(|n| n.to_lowercase().contains('t')));
    let back = api.get("/api/v1/admin/tokens?q=BACK", &admin).await;
    let names: Vec<&str> = back.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["backup"], "q ignores case");
    let none = api.get("/api/v1/admin/tokens?owner=nobody", &admin).await;
    assert_eq!(none.body["items"], json!([]));
    let revoked = api.get("/api/v1/admin/tokens?status=revoked", &admin).await;
    assert_eq!(revoked.body["items"], json!([]));
    let machine = api.get("/api/v1/admin/tokens?kind=machine", &admin).await;
    assert_eq!(machine.body["items"], json!([]));
    let q = api.get("/api/v1/admin/tokens?q=t1", &admin).await;
    assert_eq!(q.body["items"].as_array().unwrap().len(), 1);
    let q = api.get("/api/v1/admin/tokens?q=%25", &admin).await;
    assert_eq!(q.body["items"], json!([]), "% is literal");
    for (bad, field) in [("kind=robot", "kind"), ("status=dead", "status")] {
        let res = api
            .get(&format!("/api/v1/admin/tokens?{bad}"), &admin)
            .await;
        res.expect(400, bad);
        assert_eq!(res.body["field"], field);
    }
}

/// The short lists read whole (scopes, resource servers) page like the others.
async fn scopes_and_resource_servers_page_too(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    for name in ["reports.read", "billing-write", "audit:x"] {
        api.post("/api/v1/scopes", &admin, &json!({"name": name}))
            .await
            .expect(201, name);
    }
    for (identifier, scope) in [
        ("https://c.example", "reports.read"),
        ("https://a.example", "billing-write"),
        ("https://b.example", "audit:x"),
    ] {
        api.post(
            "/api/v1/resource-servers",
            &admin,
            &json!({"identifier": identifier, "name": identifier, "scopes": [scope]}),
        )
        .await
        .expect(201, identifier);
    }
    let whole = api.get("/api/v1/scopes", &admin).await;
    let whole: Vec<String> = whole.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(api.all_of("/api/v1/scopes", &admin, 2, "name").await, whole);
    assert!(whole.ends_with(&[
        "audit:x".into(),
        "billing-write".into(),
        "reports.read".into()
    ]));
    assert_eq!(whole[0], "admin:read", "built-in first: {whole:?}");
    assert_eq!(
        api.all_of("/api/v1/resource-servers", &admin, 2, "identifier")
            .await,
        [
            "https://a.example",
            "https://b.example",
            "https://c.example"
        ]
    );
    for path in ["/api/v1/scopes", "/api/v1/resource-servers"] {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("limit=501", "limit"),
            ("cursor=%25%25", "cursor"),
        ] {
            let res = api.get(&format!("{path}?{query}"), &admin).await;
            res.expect(400, &format!("{path}?{query}"));
            assert_eq!(res.body["field"], field, "{path}?{query}");
        }
    }
}

both_backends!(
    scopes_and_resource_servers_page_too,
    pages_stay_stable_while_rows_are_inserted,
    limits_and_cursors_are_checked
);
