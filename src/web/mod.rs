//! Browser pages (server-rendered with askama). Handlers authorise, parse the
//! form, call the same domain functions as the REST API and render; they hold
//! no business rules of their own.

mod account;
mod admin;
mod auth;
mod dashboard;
mod fields;
mod frame;
mod guard;
mod managed;
pub mod page;
mod reveal;
mod rotation;
mod session;
mod sso;
mod token_list;
mod tokens;
mod usage_view;
mod views;

pub use frame::error_frame;

use actix_web::{HttpResponse, http::header, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/style.css", web::get().to(style_css))
        .route("/static/copy.js", web::get().to(copy_js))
        .route("/", web::get().to(dashboard::dashboard))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/login/oidc", web::get().to(sso::start))
        .route("/login/oidc/callback", web::get().to(sso::callback))
        .route("/logout", web::get().to(auth::logout_page))
        .route("/logout", web::post().to(auth::logout))
        .route("/setup", web::get().to(auth::setup_page))
        .route("/setup", web::post().to(auth::setup))
        .configure(reveal::configure)
        .configure(tokens::configure)
        .configure(account::configure)
        .configure(managed::configure)
        .configure(admin::configure)
        .configure(rotation::configure);
}

const STYLE: &str = include_str!("../../static/style.css");
const COPY_JS: &str = include_str!("../../static/copy.js");

async fn style_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE)
}

async fn copy_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(COPY_JS)
}
