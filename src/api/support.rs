//! What every `/api/v1` handler shares: a JSON body read only after the
//! scope check, the list query, and the shapes of 201 and secret-bearing
//! responses.

use std::{future::Future, marker::PhantomData, pin::Pin};

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, http::header, web};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::{IntoParams, ToSchema};

use crate::{
    domain::{Page, PageRequest},
    http::{body::Body, errors::ApiError},
};

/// A JSON request body whose errors are kept until the handler asks for it
/// with [`JsonBody::parse`], after its scope check: a caller without the
/// scope learns about the scope, not about the shape of the body.
pub struct JsonBody<T> {
    raw: Result<web::Bytes, ApiError>,
    /// The body was empty (for [`OptionalJsonBody`]).
    empty: bool,
    _t: PhantomData<T>,
}

impl JsonBody<serde_json::Value> {
    /// Any JSON document, for a handler whose domain checks its shape (a
    /// JWK Set) and names what is wrong with it better.
    pub fn parse_document(self) -> Result<serde_json::Value, ApiError> {
        self.parse_as(false)
    }
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// A JSON object, read as `T`.
    pub fn parse(self) -> Result<T, ApiError> {
        self.parse_as(true)
    }

    fn parse_as(self, object: bool) -> Result<T, ApiError> {
        from_json(&self.raw?, object)
    }
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`),
/// for fields that `null` removes (RFC 7396).
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `bytes` as `T` (a JSON object when `object`), or a 400 naming what is wrong
/// and where: the one way request bodies are read.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8], object: bool) -> Result<T, ApiError> {
    // serde would fill a struct from an array too, field by position.
    if object && bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut reader)
        .map_err(refusal)
        .and_then(|value| {
            reader
                .end()
                .map(|()| value)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
        })?;
    // Parsed again untyped only to look for NUL, which no text field may
    // hold (PostgreSQL cannot store it); the typed parse above keeps
    // serde's checks for unknown and repeated fields.
    let tree: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    if let Some(field) = nul_at(&tree, String::new()) {
        return Err(ApiError::InvalidField {
            field,
            message: "must not contain NUL characters".into(),
        });
    }
    Ok(value)
}

/// A body that is JSON but does not fit: a value of the wrong type, or a
/// missing or unknown member, is a 400 naming its field (`expires_in_seconds`,
/// `scopes[0]`, `client_credentials.enabled`); anything else (syntax) says
/// what serde said.
fn refusal(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.classify() == serde_json::error::Category::Data
        && let Some((field, message)) = member_named(&path, &inner.to_string())
    {
        return ApiError::InvalidField { field, message };
    }
    let field = path;
    if inner.classify() != serde_json::error::Category::Data || field == "." {
        return ApiError::BadRequest(format!(
            "invalid JSON body: {}",
            in_json_terms(&inner.to_string())
        ));
    }
    // serde's message ends with where it was found, which the field says better.
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message);
    ApiError::InvalidField {
        field,
        message: in_json_terms(message),
    }
}

/// serde's "missing field `x`" or "unknown field `x`, expected …", said of
/// the member it names (serde's path ends at the object that holds it).
fn member_named(path: &str, message: &str) -> Option<(String, String)> {
    let message = message.split(" at line ").next().unwrap_or(message);
    let (name, said) = if let Some(rest) = message.strip_prefix("missing field `") {
        (rest.split_once('`')?.0, "is required".to_owned())
    } else if let Some(rest) = message.strip_prefix("unknown field `") {
        (rest.split_once('`')?.0, in_json_terms(message))
    } else {
        return None;
    };
    let field = match path {
        "." | "" => name.to_owned(),
        parent if parent.ends_with(&format!(".{name}")) || parent == name => parent.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    Some((field, said))
}

/// serde's message with the Rust types it names (`struct TokenRequest`,
/// `i64`) said as JSON types.
fn in_json_terms(message: &str) -> String {
    let mut out = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        let (bare, tail) = word.split_at(word.trim_end_matches([',', '.']).len());
        let said = match bare {
            // `struct Name` (and serde's "with N elements" after it).
            "struct" if words.peek().is_some() => {
                let name = words.next().unwrap_or_default();
                let tail = &name[name.trim_end_matches([',', '.']).len()..];
                if words.peek() == Some(&"with") {
                    words.next();
                    words.next();
                    words.next();
                }
                out.push(format!("a JSON object{tail}"));
                continue;
            }
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" => "an integer",
            "f32" | "f64" => "a number",
            other => other,
        };
        out.push(format!("{said}{tail}"));
    }
    out.join(" ")
}

/// The JSON path (`client_credentials.name`, `scopes[0]`) of the first
/// string or key holding a NUL character.
fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_at(v, here)
            }
        }),
        _ => None,
    }
}

/// Middleware for `/api/v1`: a query string holding a NUL character is
/// refused before any handler sees it (no filter may contain one). The
/// refusal is an answer, not an error, so that it keeps the request's body
/// to the end (see `http::body::hold`).
pub async fn reject_nul_in_query(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let nul = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'));
    if let Some((key, _)) = nul {
        let refused = ApiError::InvalidField {
            field: key.replace('\0', ""),
            message: "must not contain NUL characters".into(),
        };
        return Ok(req.error_response(refused).map_into_right_body());
    }
    next.call(req)
        .await
        .map(actix_web::dev::ServiceResponse::map_into_left_body)
}

/// `application/json` or `application/*+json`, with any parameters.
pub fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let body = Body::from_request(req, payload);
        Box::pin(async move {
            let Ok(Body(bytes)) = body.await;
            let empty = bytes.as_ref().is_ok_and(|b| b.is_empty());
            let raw = match bytes {
                Err(e) => Err(ApiError::from(e)),
                Ok(_) if !json => Err(ApiError::UnsupportedMediaType(
                    "expected Content-Type: application/json".into(),
                )),
                Ok(b) => Ok(b),
            };
            Ok(Self {
                raw,
                empty,
                _t: PhantomData,
            })
        })
    }
}

/// A JSON body that may be left out: an empty body is `None` whatever its
/// Content-Type, so callers that send nothing keep working; anything else is
/// read as [`JsonBody`] reads it.
pub struct OptionalJsonBody<T>(JsonBody<T>);

impl<T: DeserializeOwned> OptionalJsonBody<T> {
    pub fn parse(self) -> Result<Option<T>, ApiError> {
        match &self.0.raw {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
            Err(ApiError::UnsupportedMediaType(_)) if self.0.empty => Ok(None),
            _ => self.0.parse().map(Some),
        }
    }
}

impl<T: 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(
            self.limit.as_deref(),
            self.cursor.as_deref(),
        )?)
    }
}

/// `?limit=&cursor=` over a short list read whole (scopes, resource
/// servers): sorted by `key` here, so the order and the cursor (the last key
/// shown) agree on every backend, whatever its collation.
pub fn page_by_key<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
) -> Result<Page<T>, ApiError> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let limit = PageRequest::parse(query.limit.as_deref(), None)?.limit as usize;
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(
            URL_SAFE_NO_PAD
                .decode(raw)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::InvalidField {
                    field: "cursor".into(),
                    message: "is not a cursor this server returned".into(),
                })?,
        ),
    };
    items.sort_by_cached_key(|item| key(item));
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|a| key(item) > *a))
        .collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next_cursor = if more {
        rest.last().map(|item| URL_SAFE_NO_PAD.encode(key(item)))
    } else {
        None
    };
    Ok(Page {
        items: rest,
        next_cursor,
    })
}

/// 201 with `Location`.
pub fn created(location: String, body: &impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(body)
}

/// 201 with `Location` for a response that carries a secret: never cached.
pub fn created_secret(location: String, body: &impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// An RFC 9457 problem, as `crate::http::errors` renders it (for the document).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://tessera.dev/problems/<kind>`: stable per kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The offending field, on validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A caller who is neither an admin nor one of the machine user's managers
/// is refused as before managers existed: for lack of the admin scope.
/// (A person's token without the manager's scope is refused before, by
/// `Bearer::require_any`.)
pub fn or_scope<'a>(
    auth: &'a crate::http::auth::Bearer,
    scope: &'static str,
) -> impl FnOnce(crate::domain::Error) -> ApiError + 'a {
    move |e| match e {
        crate::domain::Error::Forbidden(_) if !auth.info.has_scope(scope) => auth
            .require(scope)
            .err()
            .unwrap_or(ApiError::InsufficientScope(scope)),
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::nul_at;

    #[test]
    fn serde_messages_are_said_in_json_terms() {
        for (serde, said) in [
            (
                "invalid type: null, expected struct TokenRequest",
                "invalid type: null, expected a JSON object",
            ),
            (
                "invalid length 0, expected struct NewSecretBody with 2 elements",
                "invalid length 0, expected a JSON object",
            ),
            (
                "invalid type: string \"3600\", expected i64",
                "invalid type: string \"3600\", expected an integer",
            ),
            (
                "invalid type: floating point `1.5`, expected u32.",
                "invalid type: floating point `1.5`, expected an integer.",
            ),
            (
                "unknown field `zzz`, expected `name`",
                "unknown field `zzz`, expected `name`",
            ),
        ] {
            assert_eq!(super::in_json_terms(serde), said);
        }
    }

    /// A missing or unknown member is named, at the top and nested.
    #[test]
    fn missing_and_unknown_members_are_named() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            enabled: bool,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            name: String,
            inner: Option<Inner>,
        }
        let field = |body: &str| {
            let mut reader = serde_json::Deserializer::from_str(body);
            match serde_path_to_error::deserialize::<_, Outer>(&mut reader).map_err(super::refusal)
            {
                Err(crate::http::errors::ApiError::InvalidField { field, message }) => {
                    (field, message)
                }
                other => panic!("{body}: {other:?}"),
            }
        };
        assert_eq!(field(r#"{}"#), ("name".into(), "is required".into()));
        assert_eq!(
            field(r#"{"name": "a", "inner": {}}"#),
            ("inner.enabled".into(), "is required".into())
        );
        let (unknown, message) = field(r#"{"name": "a", "extra": 1}"#);
        assert_eq!(unknown, "extra");
        assert!(message.starts_with("unknown field `extra`"), "{message}");
        let (unknown, _) = field(r#"{"name": "a", "inner": {"enabled": true, "x": 1}}"#);
        assert_eq!(unknown, "inner.x");
    }

    #[test]
    fn nul_is_found_with_the_path_of_its_field() {
        assert_eq!(
            nul_at(&json!({"name": "ok", "scopes": ["a"]}), String::new()),
            None
        );
        assert_eq!(
            nul_at(&json!({"name": "a\u{0}b"}), String::new()).as_deref(),
            Some("name")
        );
        assert_eq!(
            nul_at(&json!({"scopes": ["ok", "x\u{0}"]}), String::new()).as_deref(),
            Some("scopes[1]")
        );
        assert_eq!(
            nul_at(&json!({"client_credentials": {"k\u{0}": 1}}), String::new()).as_deref(),
            Some("client_credentials.k\u{0}")
        );
        // An escaped backslash followed by "u0000" is ordinary text.
        let text: serde_json::Value = serde_json::from_str(r#"{"d": "\\u0000"}"#).unwrap();
        assert_eq!(nul_at(&text, String::new()), None);
    }
}
