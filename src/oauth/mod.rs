//! The OAuth 2.0 endpoints, one file each, and what they share
//! (`request`: strict form parsing and client authentication, RFC 6749 §2.3.1).

mod introspect;
mod metadata;
pub mod request;
mod revoke;
pub mod throttle;
mod token;

use actix_web::web;

pub use request::{Form, client_credentials};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/token", web::post().to(token::token))
        .route("/oauth2/introspect", web::post().to(introspect::introspect))
        .route("/oauth2/revoke", web::post().to(revoke::revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(metadata::metadata),
        )
        .route("/.well-known/jwks.json", web::get().to(metadata::jwks));
}
