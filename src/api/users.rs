//! Users (admins): list, create, read, change role, enabled, password or e-mail.

use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::support::{JsonBody, PageQuery, Problem, created};
use crate::{
    domain::{
        Page, Role,
        principals::{self, NewUser, User, UserPatch},
    },
    http::{auth::Bearer, errors::ApiError},
    secret::Secret,
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    /// At least 8 characters.
    #[schema(value_type = String)]
    pub password: Secret<String>,
    /// Default `user`.
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    /// Optional: where notices go.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub password: Option<Secret<String>>,
    /// A new address; `null` or `""` removes it.
    #[serde(default, deserialize_with = "super::support::present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
}

/// Users, newest first.
#[utoipa::path(
    operation_id = "list_users",
    tag = "users",
    params(PageQuery),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = Page<User>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/users")]
pub async fn list(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let page = principals::list_users(&state.db.read, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    operation_id = "create_user",
    tag = "users",
    request_body = NewUserBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 201, body = User, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    auth: Bearer,
    body: JsonBody<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let b = body.parse()?;
    let new = NewUser {
        username: b.username,
        password: b.password.into_exposed(),
        role: b
            .role
            .as_deref()
            .map(Role::parse)
            .transpose()?
            .unwrap_or(Role::User),
        email: b.email,
    };
    let user = principals::create_user(&state.db, &auth.actor(), new).await?;
    Ok(created(format!("/api/v1/users/{}", user.id), &user))
}

#[utoipa::path(
    operation_id = "get_user",
    tag = "users",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = User),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/users/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let user = principals::get_user(&state.db.read, *id).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Changes role, enabled, password or e-mail address. A demotion or
/// disabling takes effect on the user's existing tokens at their next request.
#[utoipa::path(
    operation_id = "update_user",
    tag = "users",
    params(("id" = Uuid, Path)),
    request_body = UserPatchBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 200, body = User),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem),
    )
)]
#[patch("/users/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: JsonBody<UserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let b = body.parse()?;
    let patch = UserPatch {
        role: b.role.as_deref().map(Role::parse).transpose()?,
        enabled: b.enabled,
        password: b.password.map(Secret::into_exposed),
        email: b.email.map(Option::unwrap_or_default),
    };
    let user = principals::update_user(&state.db, &auth.actor(), *id, patch).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_hide_passwords_from_debug() {
        let new: NewUserBody =
            serde_json::from_str(r#"{"username": "alice", "password": "pw-hunter2-pw"}"#).unwrap();
        let patch: UserPatchBody =
            serde_json::from_str(r#"{"password": "pw-hunter2-pw"}"#).unwrap();
        for text in [format!("{new:?}"), format!("{patch:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert_eq!(new.password.expose(), "pw-hunter2-pw");
    }
}
