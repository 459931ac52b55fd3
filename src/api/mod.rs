//! The management API, `/api/v1`: JSON in and out, Bearer authentication,
//! problem+json errors. Each handler checks its scope on its first line, then
//! delegates to the domain.

mod me;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1").route("/me", web::get().to(me::me)));
}
