//! Malformed requests get a clear 4xx problem, never a 5xx, and leave nothing behind.

use reqwest::Method;
use serde_json::json;

use crate::{
    both_backends,
    common::{Api, Backend, TestApp},
};

const ZERO: &str = "00000000-0000-0000-0000-000000000000";

/// Every route that takes a JSON body.
fn body_routes(machine: &str, user: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/v1/tokens".into()),
        (Method::POST, "/api/v1/machine-users".into()),
        (Method::PATCH, format!("/api/v1/machine-users/{machine}")),
        (
            Method::POST,
            format!("/api/v1/machine-users/{machine}/tokens"),
        ),
        (Method::POST, "/api/v1/users".into()),
        (Method::PATCH, format!("/api/v1/users/{user}")),
        (Method::POST, "/api/v1/scopes".into()),
    ]
}

async fn malformed_bodies_get_a_4xx_problem(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "target"}),
        )
        .await;
    let machine = machine.body["id"].as_str().unwrap().to_owned();
    let user = api.get("/api/v1/me", &admin).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_audit = api.all_ids("/api/v1/audit", &admin, 500).await.len();

    let huge = format!(r#"{{"name": "{}"}}"#, "a".repeat(70 * 1024));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let json = Some("application/json");
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (json, huge.into_bytes(), 413, "a body over 64 KiB"),
        (json, vec![0xff, 0xfe, b'{', b'}'], 400, "not UTF-8"),
        (
            json,
            b"{\"name\": \"\xc3\x28\"}".to_vec(),
            400,
            "invalid UTF-8 in a string",
        ),
        (json, b"{".to_vec(), 400, "truncated JSON"),
        (json, b"".to_vec(), 400, "empty body"),
        (json, b"null".to_vec(), 400, "null"),
        (json, b"[]".to_vec(), 400, "an array"),
        (json, b"42".to_vec(), 400, "a number"),
        (json, deep.into_bytes(), 400, "deeply nested"),
        (json, br#"{"zzz": 1}"#.to_vec(), 400, "an unknown field"),
        (
            json,
            br#"{"name": "a", "name": "b"}"#.to_vec(),
            400,
            "a repeated field",
        ),
        (Some("text/plain"), b"{}".to_vec(), 415, "text/plain"),
        (
            Some("application/x-www-form-urlencoded"),
            b"name=x".to_vec(),
            415,
            "a form",
        ),
        (None, b"{}".to_vec(), 415, "no content type"),
        (
            Some("application/json; charset=utf-8"),
            b"{\"q\":1}".to_vec(),
            400,
            "charset parameter accepted, unknown field refused",
        ),
    ];
    for (method, path) in body_routes(&machine, &user) {
        for (ct, body, status, what) in &cases {
            let res = api
                .raw(method.clone(), &path, &admin, *ct, body.clone())
                .await;
            let what = format!("{method} {path}: {what}");
            res.expect(*status, &what);
            assert!(
                !res.body["detail"].as_str().unwrap_or("").is_empty(),
                "{what}: a reason"
            );
        }
    }
    // Nothing was written by any of them.
    let after_audit = api.all_ids("/api/v1/audit", &admin, 500).await.len();
    assert_eq!(before_audit, after_audit, "no change was recorded");
    let machines = api.all_ids("/api/v1/machine-users", &admin, 500).await;
    assert_eq!(machines, vec![machine.clone()]);
}

/// A value of the wrong type, or a member missing or unknown, is a 400
/// naming its field (INTERFACE §6).
async fn a_value_of_the_wrong_type_names_its_field(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    for (body, field) in [
        (
            json!({"name": "a", "scopes": ["profile"], "expires_in_seconds": "3600"}),
            "expires_in_seconds",
        ),
        (
            json!({"name": "a", "scopes": "profile", "expires_in_seconds": 3600}),
            "scopes",
        ),
        (
            json!({"name": "a", "scopes": ["profile", 7], "expires_in_seconds": 3600}),
            "scopes[1]",
        ),
        // A member missing or unknown is named too.
        (json!({"name": "a", "expires_in_seconds": 3600}), "scopes"),
        (
            json!({"name": "a", "scopes": ["profile"], "expires_in_seconds": 3600, "extra": 1}),
            "extra",
        ),
    ] {
        let res = api.post("/api/v1/tokens", &admin, &body).await;
        res.expect(400, &body.to_string());
        assert_eq!(res.body["field"], field, "{body}: {}", res.text);
        let detail = res.body["detail"].as_str().unwrap_or("");
        assert!(!detail.contains("line"), "{}", res.text);
        // Said in JSON's terms, not Rust's.
        for rust in ["i64", "u32", "struct", "Vec"] {
            assert!(!detail.contains(rust), "{}", res.text);
        }
    }
    // An array is not an object, even one whose items would fill the fields
    // in order.
    let by_position = json!(["by-position", "", ["profile"], 3600, null, null]);
    let res = api.post("/api/v1/tokens", &admin, &by_position).await;
    res.expect(400, "an array in place of the object");
    assert!(!res.text.contains("struct"), "{}", res.text);
    let listed = api.get("/api/v1/tokens", &admin).await;
    listed.expect(200, "list");
    assert!(!listed.text.contains("by-position"), "{}", listed.text);
}

async fn bad_paths_and_queries_are_4xx(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let cases = [
        (Method::GET, "/api/v1/tokens/not-a-uuid".to_owned(), 404),
        (Method::DELETE, "/api/v1/tokens/%ff%fe".to_owned(), 404),
        (
            Method::POST,
            "/api/v1/tokens/123/regenerate".to_owned(),
            404,
        ),
        (Method::GET, "/api/v1/machine-users/zzz".to_owned(), 404),
        (
            Method::DELETE,
            format!("/api/v1/machine-users/{ZERO}/secrets/nope"),
            404,
        ),
        (
            Method::DELETE,
            format!("/api/v1/machine-users/{ZERO}/secrets/{ZERO}"),
            404,
        ),
        (Method::GET, format!("/api/v1/machine-users/{ZERO}"), 404),
        (Method::GET, format!("/api/v1/users/{ZERO}"), 404),
        (Method::GET, "/api/v1/nothing-here".to_owned(), 404),
        (Method::PUT, "/api/v1/tokens".to_owned(), 405),
        (Method::GET, "/api/v1/audit?since=%ff".to_owned(), 400),
        (Method::GET, "/api/v1/audit?limit=%ff".to_owned(), 400),
        (Method::GET, "/api/v1/admin/tokens?q=%ff%fe".to_owned(), 200),
        (
            Method::GET,
            "/api/v1/admin/tokens?kind=personal&kind=machine".to_owned(),
            400,
        ),
    ];
    for (method, path, status) in cases {
        let res = api.call(method.clone(), &path, Some(&admin), None).await;
        res.expect(status, &format!("{method} {path}"));
    }
    let unknown = api.get("/api/v1/nothing-here", &admin).await;
    assert_eq!(unknown.problem(), "no-such-route");
    let wrong_method = api
        .call(Method::PUT, "/api/v1/tokens", Some(&admin), None)
        .await;
    assert_eq!(wrong_method.problem(), "method-not-allowed");
    assert_eq!(wrong_method.header("allow"), Some("GET, HEAD, POST"));
}

/// RFC 9110 §9.3.2: HEAD where GET is, with GET's headers and no content;
/// the pages are left out (one of them is used up by being fetched).
async fn head_is_get_without_the_content(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    for (path, token, status) in [
        ("/api/v1/me", Some(admin.as_str()), 200),
        ("/api/v1/machine-users?limit=5", Some(admin.as_str()), 200),
        ("/api/v1/me", None, 401),
        ("/api/v1/nothing-here", Some(admin.as_str()), 404),
        ("/api/openapi.json", None, 200),
        ("/healthz", None, 200),
        ("/readyz", None, 200),
        ("/metrics", None, 200),
    ] {
        let get = api.call(Method::GET, path, token, None).await;
        let head = api.call(Method::HEAD, path, token, None).await;
        assert_eq!(head.status, status, "HEAD {path}");
        assert_eq!(get.status, status, "GET {path}");
        assert!(head.text.is_empty(), "HEAD {path} sends no content");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path}"
        );
        if path != "/metrics" {
            // (The metrics count the HEAD itself, so their length moves.)
            assert_eq!(
                head.header("content-length"),
                Some(get.text.len().to_string().as_str()),
                "HEAD {path}"
            );
        }
    }
    assert_eq!(
        api.call(Method::HEAD, "/api/v1/me", None, None)
            .await
            .header("www-authenticate"),
        Some(r#"Bearer realm="tessera""#)
    );
    // An HTTP client drops a HEAD answer's content itself; on the wire,
    // nothing follows the headers.
    let raw = raw_exchange(
        &api.app.addr,
        &format!(
            "HEAD /api/v1/me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {admin}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    let (head, content) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-length: "), "{head}");
    assert_eq!(content, "", "no content after the headers");
    // A route without GET: 405, naming the method asked.
    let post_only = api
        .call(Method::HEAD, "/api/v1/leaks", Some(&admin), None)
        .await;
    assert_eq!(post_only.status, 405);
    let refused = api
        .call(Method::DELETE, "/api/v1/leaks", Some(&admin), None)
        .await;
    assert!(
        refused.body["detail"].as_str().unwrap().contains("DELETE"),
        "{}",
        refused.text
    );
    let openapi = api
        .call(Method::POST, "/api/openapi.json", None, None)
        .await;
    assert_eq!(openapi.status, 405);
    assert_eq!(openapi.header("allow"), Some("GET, HEAD"));
}

/// A body that stops arriving is a 408 and the connection is closed, at the
/// API, the OAuth endpoints and the forms alike, whether its length was
/// declared or it came in chunks, instead of holding the connection open for
/// ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_408_and_closes() {
    let api = Api::spawn(Backend::Sqlite).await;
    let admin = api.admin();
    let started = std::time::Instant::now();
    let addr = &api.app.addr;
    let stalled = |path: &str, headers: String| {
        format!("POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: 100\r\n\r\n{{\"name\"")
    };
    let requests = [
        stalled(
            "/api/v1/tokens",
            format!("Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n"),
        ),
        stalled(
            "/oauth2/token",
            "Content-Type: application/x-www-form-urlencoded\r\n".into(),
        ),
        stalled(
            "/login",
            "Content-Type: application/x-www-form-urlencoded\r\n".into(),
        ),
        // Chunked, stopped after its first chunk: actix would drain the rest
        // of a chunked body it was handed back, for as long as it came.
        "POST /oauth2/introspect HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n6\r\ntoken=\r\n"
            .into(),
    ];
    let (json, oauth, form, chunked) = tokio::join!(
        raw_exchange(addr, &requests[0]),
        raw_exchange(addr, &requests[1]),
        raw_exchange(addr, &requests[2]),
        raw_exchange(addr, &requests[3]),
    );
    // None was read to its end: the server closed the connection after the
    // answer (the rest of the body would be no request).
    for (what, answer) in [
        ("API", json),
        ("OAuth", oauth),
        ("form", form),
        ("chunked", chunked),
    ] {
        assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
        assert!(answer.contains("connection: close"), "{what}: {answer}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
}

/// A body nobody reads (no route, a form without a session, a refused query)
/// closes its connection after the answer at once: actix would otherwise
/// drain a chunked body for as long as the client sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_closes_its_connection_after_the_answer() {
    let api = Api::spawn(Backend::Sqlite).await;
    let addr = &api.app.addr;
    let started = std::time::Instant::now();
    // The first chunk, then nothing: the body never ends.
    let chunked = |path: &str, media: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {media}\r\n\
             Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n"
        )
    };
    let requests = [
        chunked("/api/v1/no-such-thing", "application/json"),
        chunked(
            "/admin/machine-users/new",
            "application/x-www-form-urlencoded",
        ),
        chunked("/api/v1/leaks?x=%00", "application/json"),
    ];
    let (route, form, query) = tokio::join!(
        raw_exchange(addr, &requests[0]),
        raw_exchange(addr, &requests[1]),
        raw_exchange(addr, &requests[2]),
    );
    for (what, answer, status) in [
        ("no route", route, "404"),
        ("no session", form, "303"),
        ("NUL in the query", query, "400"),
    ] {
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer}"
        );
        assert!(answer.contains("connection: close"), "{what}: {answer}");
    }
    // Answered at once, not at a deadline.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A body read to its end leaves the connection open for the next request,
/// whether its length was declared or it came in chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_read_to_its_end_keeps_the_connection() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let api = Api::spawn(Backend::Sqlite).await;
    let report = |framing: &str, body: &str| {
        format!(
            "POST /api/v1/leaks HTTP/1.1\r\nHost: t\r\n\
             Content-Type: application/json\r\n{framing}\r\n{body}"
        )
    };
    let body = r#"{"tokens":[]}"#;
    // Past what actix buffers before it waits for the reader (32 KiB).
    let large = format!(r#"{{"tokens":["{}"]}}"#, "x".repeat(8 * 1024)) + &" ".repeat(100 * 1024);
    let requests = [
        report(&format!("Content-Length: {}\r\n", body.len()), body),
        report(
            "Transfer-Encoding: chunked\r\n",
            &format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()),
        ),
        report(&format!("Content-Length: {}\r\n", large.len()), &large),
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".into(),
    ];
    // One after the other on one connection, each answer read whole; each
    // request in two writes, the body's end after a pause.
    let stream = tokio::net::TcpStream::connect(&api.app.addr).await.unwrap();
    let mut stream = tokio::io::BufReader::new(stream);
    for request in &requests {
        let (first, rest) = request.split_at(request.len() - 5);
        stream.get_mut().write_all(first.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stream.get_mut().write_all(rest.as_bytes()).await.unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            assert!(!line.is_empty(), "closed after {head}");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        assert!(head.starts_with("http/1.1 2"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut content = vec![0; length];
        stream.read_exact(&mut content).await.unwrap();
    }
}

/// A request actix cannot parse is the client's error: a 400, logged at
/// DEBUG under `tessera::http::client`, never an ERROR line in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_no_error_in_the_log() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("TESSERA_LOG", "info,tessera::http::client=debug")],
    )
    .await;
    let answer = raw_exchange(
        &app.addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nNo header at all\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let line = app
        .log
        .line_with("connection closed: ", std::time::Duration::from_secs(10))
        .expect("the client's error is logged at DEBUG");
    assert!(line.contains("DEBUG"), "{line}");
    assert!(line.contains("tessera::http::client"), "{line}");
    assert!(line.contains("parse error"), "{line}");
    let log = app.log.text();
    assert!(!log.contains("ERROR"), "{log}");
}

/// Sends `request` as is and reads the answer until the server closes.
async fn raw_exchange(addr: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

both_backends!(
    a_value_of_the_wrong_type_names_its_field,
    malformed_bodies_get_a_4xx_problem,
    bad_paths_and_queries_are_4xx,
    head_is_get_without_the_content
);

/// PostgreSQL refuses NUL in text: such input must be refused before it
/// reaches the database, on every field and filter that takes text.
async fn nul_characters_never_reach_the_database(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "target", "scopes": ["profile"]}),
        )
        .await;
    let machine = machine.body["id"].as_str().unwrap().to_owned();
    let nul = "a\u{0}b";
    let bodies: Vec<(Method, String, serde_json::Value)> = vec![
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": nul, "scopes": ["profile"], "expires_in_seconds": 3600}),
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "n1", "description": nul, "scopes": ["profile"], "expires_in_seconds": 3600}),
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "n2", "scopes": [nul], "expires_in_seconds": 3600}),
        ),
        (
            Method::POST,
            format!("/api/v1/machine-users/{machine}/tokens"),
            json!({"name": "n3", "scopes": [nul], "expires_in_seconds": 3600}),
        ),
        (
            Method::POST,
            format!("/api/v1/machine-users/{machine}/tokens"),
            json!({"name": "n4", "description": nul, "scopes": ["profile"], "expires_in_seconds": 3600}),
        ),
        (
            Method::POST,
            "/api/v1/machine-users".into(),
            json!({"username": nul}),
        ),
        (
            Method::POST,
            "/api/v1/machine-users".into(),
            json!({"username": "mu1", "description": nul}),
        ),
        (
            Method::POST,
            "/api/v1/machine-users".into(),
            json!({"username": "mu2", "display_name": nul}),
        ),
        (
            Method::POST,
            "/api/v1/machine-users".into(),
            json!({"username": "mu3", "contact_email": "a\u{0}@b.c"}),
        ),
        (
            Method::POST,
            "/api/v1/machine-users".into(),
            json!({"username": "mu4", "scopes": [nul]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/machine-users/{machine}"),
            json!({"description": nul}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/machine-users/{machine}"),
            json!({"scopes": [nul]}),
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"username": nul, "password": "long enough"}),
        ),
        (Method::POST, "/api/v1/scopes".into(), json!({"name": nul})),
        (
            Method::POST,
            "/api/v1/scopes".into(),
            json!({"name": "s.1", "description": nul}),
        ),
    ];
    for (method, path, body) in bodies {
        let res = api
            .call(method.clone(), &path, Some(&admin), Some(&body))
            .await;
        let what = format!("{method} {path} {body}");
        res.expect(400, &what);
        assert_eq!(res.problem(), "validation", "{what}");
        assert!(res.body["field"].is_string(), "{what}: names the field");
    }
    for (query, field) in [
        ("/api/v1/admin/tokens?owner=a%00b", "owner"),
        ("/api/v1/admin/tokens?q=a%00b", "q"),
        ("/api/v1/audit?actor=a%00b", "actor"),
        ("/api/v1/audit?action=a%00b", "action"),
        ("/api/v1/tokens?cursor=%00", "cursor"),
    ] {
        let res = api.get(query, &admin).await;
        res.expect(400, query);
        assert_eq!(res.body["field"], field, "{query}");
    }
    // The token endpoint looks clients up by name too: an unknown client, not a 500.
    let res = api.app.client_credentials("a\u{0}b", "secret", None).await;
    assert_eq!(res.status(), 401, "NUL in a client_id");
    // NUL in an OAuth form: a 4xx with an RFC error code, never a 5xx.
    for (path, form) in [
        (
            "/oauth2/token",
            "grant_type=client_credentials&client_id=a%00b&client_secret=s",
        ),
        (
            "/oauth2/token",
            "grant_type=client_credentials&client_id=a&client_secret=s&scope=p%00",
        ),
        (
            "/oauth2/introspect",
            "token=a%00b&client_id=a&client_secret=s",
        ),
        ("/oauth2/revoke", "token=a%00b&client_id=a&client_secret=s"),
    ] {
        let res = api
            .app
            .client
            .post(api.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{path} {form}: {status}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert!(body["error"].is_string(), "{path} {form}: {body}");
    }
    // Nothing was written.
    let tokens = api.get("/api/v1/admin/tokens?q=n", &admin).await;
    let names: Vec<&str> = tokens.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("n") && n.len() == 2),
        "{names:?}"
    );
    let machines = api.all_ids("/api/v1/machine-users", &admin, 500).await;
    assert_eq!(machines, vec![machine]);
}

both_backends!(nul_characters_never_reach_the_database);
