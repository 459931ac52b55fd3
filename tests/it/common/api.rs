//! The management API helper: a spawned server with JSON calls, and a reply
//! read to the end (status, headers, JSON body, text).

use super::{Backend, TestApp};
use reqwest::{Method, Response, header};
use serde_json::Value;

/// A spawned server with JSON helpers.
pub struct Api {
    pub app: TestApp,
}

/// A response read to the end: status, headers and JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn read(res: Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem's `type` suffix (`…/problems/<kind>`).
    pub fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.rsplit('/').next())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn expect(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        if status >= 400 {
            assert_eq!(
                self.header("content-type"),
                Some("application/problem+json"),
                "{what}: errors are problem+json"
            );
        }
        self
    }
}

impl Api {
    pub async fn spawn(backend: Backend) -> Self {
        Self {
            app: TestApp::spawn(backend).await,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        Reply::read(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.call(Method::POST, path, Some(token), None).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Sends raw bytes with a content type (None: no Content-Type header).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(token)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        Reply::read(req.send().await.expect("request")).await
    }

    /// The admin `admin` with every built-in scope but `introspect`.
    pub fn admin(&self) -> String {
        self.app.admin_token(&[
            "profile",
            "tokens:read",
            "tokens:write",
            "admin:read",
            "admin:write",
        ])
    }

    /// A plain user with a PAT holding `scopes`.
    pub fn user(&self, username: &str, scopes: &[&str]) -> String {
        self.app.create_user(username, false);
        self.app.token_for(username, scopes)
    }

    /// Every id in every page of `path` (which must not carry a query), at `limit`.
    pub async fn all_ids(&self, path: &str, token: &str, limit: u32) -> Vec<String> {
        self.all_of(path, token, limit, "id").await
    }

    /// Every page of `path` at `limit` a page: each item's `field`, in order.
    pub async fn all_of(&self, path: &str, token: &str, limit: u32, field: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit={limit}&cursor={c}"),
                None => format!("{path}?limit={limit}"),
            };
            let page = self.get(&url, token).await;
            page.expect(200, &url);
            let items = page.body["items"].as_array().expect("items");
            assert!(items.len() <= limit as usize, "page larger than limit");
            ids.extend(items.iter().map(|i| i[field].as_str().unwrap().to_owned()));
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        ids
    }
}

/// A token request body lasting an hour.
pub fn token_request(name: &str, scopes: &[&str]) -> Value {
    serde_json::json!({"name": name, "scopes": scopes, "expires_in_seconds": 3600})
}
