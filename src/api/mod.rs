//! The management API, `/api/v1`: JSON in and out, Bearer authentication,
//! problem+json errors. Each handler checks its scope on its first line, then
//! delegates to the domain.
//!
//! Routes are registered only through [`routes`], a `utoipa-actix-web` scope
//! that records each handler's `#[utoipa::path]` as it registers it, so the
//! document at `/api/openapi.json` and the routes cannot drift apart.

mod audit;
mod client_keys;
mod leaks;
mod machine_users;
mod me;
mod resource_servers;
mod scopes;
mod support;
mod tokens;
mod usage;
mod users;
mod webhooks;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self,
        security::{Http, HttpAuthScheme, SecurityScheme},
    },
};
use utoipa_actix_web::OpenApiFactory;

use crate::http::errors::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera management API",
        description = "Personal access tokens, machine users, users, scopes and the audit log. \
            Authenticate with `Authorization: Bearer <token>`; errors are RFC 9457 problem+json.",
    ),
    modifiers(&BearerAuth),
    components(schemas(support::Problem)),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// Every `/api/v1` handler, in one scope.
fn routes() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/api/v1")
        .service(me::me)
        .service(tokens::list_own)
        .service(tokens::create_own)
        .service(tokens::get_own)
        .service(tokens::revoke_own)
        .service(tokens::regenerate_own)
        .service(tokens::list_all)
        .service(tokens::get_any)
        .service(tokens::revoke_any)
        .service(tokens::regenerate_any)
        .service(usage::own)
        .service(usage::any)
        .service(leaks::report)
        .service(machine_users::list)
        .service(machine_users::create)
        .service(machine_users::get)
        .service(machine_users::update)
        .service(machine_users::delete)
        .service(machine_users::create_secret)
        .service(machine_users::get_secret)
        .service(machine_users::delete_secret)
        .service(machine_users::create_token)
        .service(machine_users::list_tokens)
        .service(machine_users::get_token)
        .service(machine_users::revoke_token)
        .service(machine_users::regenerate_token)
        .service(users::list)
        .service(users::create)
        .service(users::get)
        .service(users::update)
        .service(scopes::list)
        .service(scopes::create)
        .service(scopes::get)
        .service(scopes::update)
        .service(scopes::delete)
        .service(audit::list)
        .service(webhooks::create)
        .service(webhooks::list)
        .service(webhooks::get)
        .service(webhooks::update)
        .service(webhooks::delete)
        .service(webhooks::deliveries)
        .service(webhooks::ping)
        .service(client_keys::get_jwks)
        .service(client_keys::put_jwks)
        .service(client_keys::delete_jwks)
        .service(resource_servers::list)
        .service(resource_servers::create)
        .service(resource_servers::get)
        .service(resource_servers::update)
        .service(resource_servers::delete)
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi() -> serde_json::Value {
    document(&routes())
}

fn document(scope: &impl OpenApiFactory) -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.paths.merge(scope.paths());
    let mut schemas = Vec::new();
    scope.schemas(&mut schemas);
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    describe_responses(&mut doc);
    doc
}

/// Every response gets the description OpenAPI requires (its status's
/// reason phrase unless the handler gave one), and errors are documented
/// with the media type they are sent with, `application/problem+json`.
fn describe_responses(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
    {
        let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
            continue;
        };
        for (status, res) in responses.iter_mut() {
            let code = status.parse::<u16>().unwrap_or(0);
            let reason = actix_web::http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Response");
            if res["description"].as_str().is_none_or(str::is_empty) {
                res["description"] = reason.into();
            }
            if code >= 400
                && let Some(content) = res.get_mut("content").and_then(|c| c.as_object_mut())
                && let Some(json) = content.remove("application/json")
            {
                content.insert("application/problem+json".into(), json);
            }
        }
    }
}

/// The rendered document, built once per worker from the same scope that
/// serves the requests.
struct OpenApiJson(Arc<String>);

pub fn configure(cfg: &mut web::ServiceConfig) {
    let scope = routes();
    let doc = document(&scope);
    let json = Arc::new(doc.to_string());
    let methods = Arc::new(PathMethods::of(&doc));
    let scope = scope.map(|s| {
        // A path segment that is not a uuid names nothing that exists.
        s.app_data(web::PathConfig::default().error_handler(|_, _| {
            ApiError::Domain(crate::domain::Error::NotFound("resource")).into()
        }))
        .default_service(web::to(move |req: HttpRequest| {
            let methods = methods.clone();
            async move { no_such_route(&req, &methods) }
        }))
        .wrap(actix_web::middleware::from_fn(support::reject_nul_in_query))
    });
    cfg.app_data(web::Data::new(OpenApiJson(json)))
        .service(
            web::resource("/api/openapi.json")
                .route(web::get().to(openapi_json))
                .default_service(web::to(|req: HttpRequest| async move {
                    Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                        method: req.method().to_string(),
                        allow: "GET, HEAD".into(),
                    })
                })),
        )
        .service(scope);
}

async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.as_str().to_owned())
}

/// A request no handler took: 405 when its path names a route (with the
/// methods that route has), 404 otherwise.
fn no_such_route(req: &HttpRequest, methods: &PathMethods) -> Result<HttpResponse, ApiError> {
    Err(match methods.allowed(req.path()) {
        Some(allow) => ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        },
        None => ApiError::NoSuchRoute(format!("{} {}", req.method(), req.path())),
    })
}

/// Each documented path template (`{id}` matching any one segment) with its
/// methods, read from the OpenAPI document: the same source as the routes.
struct PathMethods(Vec<(Vec<String>, Vec<String>)>);

impl PathMethods {
    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn of(doc: &serde_json::Value) -> Self {
        let paths = doc["paths"].as_object().into_iter().flatten();
        Self(
            paths
                .map(|(template, item)| {
                    let segments = template.split('/').map(str::to_owned).collect();
                    let mut methods: Vec<String> = Self::METHODS
                        .iter()
                        .filter(|m| item.get(**m).is_some())
                        .map(|m| m.to_uppercase())
                        .collect();
                    // Answered as GET (`crate::http::observe`).
                    if item.get("get").is_some() {
                        methods.push("HEAD".into());
                    }
                    (segments, methods)
                })
                .collect(),
        )
    }

    /// The methods of every template `path` matches, for `Allow`; `None`
    /// when it matches none.
    fn allowed(&self, path: &str) -> Option<String> {
        let mut allow: Vec<&str> = Vec::new();
        for (template, methods) in &self.0 {
            let mut segments = path.split('/');
            let matches = template.iter().all(|t| {
                segments.next().is_some_and(|s| {
                    t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                })
            }) && segments.next().is_none();
            if matches {
                allow.extend(methods.iter().map(String::as_str));
            }
        }
        if allow.is_empty() {
            return None;
        }
        allow.sort_unstable();
        allow.dedup();
        Some(allow.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::PathMethods;

    #[test]
    fn a_path_is_matched_segment_by_segment() {
        let doc = serde_json::json!({"paths": {
            "/api/v1/tokens": {"get": {}, "post": {}},
            "/api/v1/tokens/{id}": {"get": {}, "delete": {}, "parameters": []},
            "/api/v1/tokens/{id}/regenerate": {"post": {}},
        }});
        let methods = PathMethods::of(&doc);
        for (path, want) in [
            ("/api/v1/tokens", Some("GET, HEAD, POST")),
            ("/api/v1/tokens/abc", Some("DELETE, GET, HEAD")),
            ("/api/v1/tokens/abc/regenerate", Some("POST")),
            ("/api/v1/tokens/", None),
            ("/api/v1/tokens//regenerate", None),
            ("/api/v1/tokens/abc/other", None),
            ("/api/v1/token", None),
            ("/api/v1", None),
        ] {
            assert_eq!(methods.allowed(path).as_deref(), want, "{path}");
        }
    }
}
