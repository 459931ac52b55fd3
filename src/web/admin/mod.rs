//! The admin console: machine users, users, every token, scopes, signing keys
//! and the audit log. Every handler starts with the admin check.

use actix_web::{HttpResponse, web};

use super::{guard::Admin, page::see_other};
use crate::http::errors::WebError;

mod audit;
mod client_keys;
mod keys;
mod machine_secrets;
mod machine_tokens;
mod machine_users;
mod resource_servers;
mod scopes;
mod shared;
mod tokens;
mod users;
mod webhooks;

use audit::audit_page;
use client_keys::{jwks_delete, jwks_save};
use keys::{keys_page, keys_rotate};
use machine_secrets::{secret_create, secret_delete, secret_delete_page};
use machine_tokens::machine_token_create;
use machine_users::{
    machine_user, machine_user_cc, machine_user_create, machine_user_delete,
    machine_user_delete_page, machine_user_disable_page, machine_user_enabled,
    machine_user_new_page, machine_user_update, machine_users,
};
use resource_servers::{
    resource_server_create, resource_server_delete, resource_server_delete_page,
    resource_server_update, resource_servers_page,
};
use scopes::{scope_create, scope_delete, scope_delete_page, scope_update, scopes_page};
use tokens::{admin_revoke, admin_revoke_page, admin_token, all_tokens};
use users::{user, user_change_page, user_create, user_update, users};
use webhooks::{webhook_action, webhook_create, webhook_delete_page, webhooks_page};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin_home))
        .route("/admin/machine-users", web::get().to(machine_users))
        .route(
            "/admin/machine-users/new",
            web::get().to(machine_user_new_page),
        )
        .route(
            "/admin/machine-users/new",
            web::post().to(machine_user_create),
        )
        .route("/admin/machine-users/{id}", web::get().to(machine_user))
        .route(
            "/admin/machine-users/{id}",
            web::post().to(machine_user_update),
        )
        .route(
            "/admin/machine-users/{id}/managers",
            web::post().to(machine_users::machine_user_managers),
        )
        .route(
            "/admin/machine-users/{id}/enabled",
            web::post().to(machine_user_enabled),
        )
        .route(
            "/admin/machine-users/{id}/client-credentials",
            web::post().to(machine_user_cc),
        )
        .route(
            "/admin/machine-users/{id}/delete",
            web::get().to(machine_user_delete_page),
        )
        .route(
            "/admin/machine-users/{id}/delete",
            web::post().to(machine_user_delete),
        )
        .route(
            "/admin/machine-users/{id}/secrets",
            web::post().to(secret_create),
        )
        .route(
            "/admin/machine-users/{id}/secrets/{secret}/delete",
            web::get().to(secret_delete_page),
        )
        .route(
            "/admin/machine-users/{id}/secrets/{secret}/delete",
            web::post().to(secret_delete),
        )
        .route(
            "/admin/machine-users/{id}/disable",
            web::get().to(machine_user_disable_page),
        )
        .route(
            "/admin/machine-users/{id}/tokens",
            web::post().to(machine_token_create),
        )
        .route("/admin/machine-users/{id}/jwks", web::post().to(jwks_save))
        .route(
            "/admin/machine-users/{id}/jwks/delete",
            web::post().to(jwks_delete),
        )
        .route(
            "/admin/resource-servers",
            web::get().to(resource_servers_page),
        )
        .route(
            "/admin/resource-servers",
            web::post().to(resource_server_create),
        )
        .route(
            "/admin/resource-servers/{id}",
            web::post().to(resource_server_update),
        )
        .route(
            "/admin/resource-servers/{id}/delete",
            web::get().to(resource_server_delete_page),
        )
        .route(
            "/admin/resource-servers/{id}/delete",
            web::post().to(resource_server_delete),
        )
        .route("/admin/users", web::get().to(users))
        .route("/admin/users", web::post().to(user_create))
        .route("/admin/users/{id}", web::get().to(user))
        .route("/admin/users/{id}", web::post().to(user_update))
        .route("/admin/users/{id}/change", web::get().to(user_change_page))
        .route("/admin/tokens", web::get().to(all_tokens))
        .route("/admin/tokens/{id}", web::get().to(admin_token))
        .route(
            "/admin/tokens/{id}/revoke",
            web::get().to(admin_revoke_page),
        )
        .route("/admin/tokens/{id}/revoke", web::post().to(admin_revoke))
        .route("/admin/scopes", web::get().to(scopes_page))
        .route("/admin/scopes", web::post().to(scope_create))
        .route("/admin/scopes/{name}", web::post().to(scope_update))
        .route(
            "/admin/scopes/{name}/delete",
            web::get().to(scope_delete_page),
        )
        .route("/admin/scopes/{name}/delete", web::post().to(scope_delete))
        .route("/admin/keys", web::get().to(keys_page))
        .route("/admin/keys/rotate", web::post().to(keys_rotate))
        .route("/admin/audit", web::get().to(audit_page))
        .route("/admin/webhooks", web::get().to(webhooks_page))
        .route("/admin/webhooks", web::post().to(webhook_create))
        .route(
            "/admin/webhooks/{id}/delete",
            web::get().to(webhook_delete_page),
        )
        .route(
            "/admin/webhooks/{id}/{action}",
            web::post().to(webhook_action),
        );
}

async fn admin_home(_: Admin) -> Result<HttpResponse, WebError> {
    Ok(see_other("/admin/machine-users"))
}
