//! The OAuth 2.0 endpoints, one file each, and what they share
//! (`request`: strict form parsing and client authentication, RFC 6749 §2.3.1).

mod introspect;
mod metadata;
pub mod request;
mod revoke;
pub mod throttle;
mod token;

use actix_web::{HttpResponse, http::header, web};

pub use request::Form;
#[cfg(test)]
pub use request::read_credentials;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Each a resource of its own, so that another method is a 405 naming
    // the right one (RFC 9110 §15.5.6), not a 404.
    cfg.service(
        web::resource("/oauth2/token")
            .route(web::post().to(token::token))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/oauth2/introspect")
            .route(web::post().to(introspect::introspect))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/oauth2/revoke")
            .route(web::post().to(revoke::revoke))
            .default_service(web::to(post_only)),
    )
    .service(
        web::resource("/.well-known/oauth-authorization-server")
            .route(web::get().to(metadata::metadata))
            .route(web::head().to(metadata::metadata))
            .default_service(web::to(get_only)),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .route(web::get().to(metadata::jwks))
            .route(web::head().to(metadata::jwks))
            .default_service(web::to(get_only)),
    );
}

async fn post_only() -> HttpResponse {
    not_allowed("POST")
}

async fn get_only() -> HttpResponse {
    not_allowed("GET, HEAD")
}

/// 405 with `Allow`, in the OAuth error shape these endpoints answer in.
fn not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": format!("this endpoint takes {allow}"),
        }))
}
