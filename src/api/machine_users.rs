//! Machine users: CRUD (admins); client secrets and machine tokens (admins
//! and the machine user's managers, as `principals::authorize` decides).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    support::{JsonBody, OptionalJsonBody, PageQuery, Problem, created, created_secret, or_scope},
    tokens::{RegenerateBody, TokenRequest},
};
use crate::{
    domain::{
        self, Page,
        issuance::{Request, issue},
        principals::{self, MachineUser, MachineUserInput, Need, NewSecret, SecretInfo},
        tokens::{self, Access, TokenView},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsInput {
    pub enabled: Option<bool>,
    /// 1–1440 (default 60).
    pub access_token_ttl_minutes: Option<i64>,
}

/// `client_credentials`, from a JSON object or null only: serde would fill
/// the struct from an array too, field by position. The object is read by
/// the derived code, so repeated keys and the paths of errors are as usual.
fn object_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<ClientCredentialsInput>, D::Error> {
    struct ObjectOrNull;
    impl<'de> serde::de::Visitor<'de> for ObjectOrNull {
        type Value = Option<ClientCredentialsInput>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            ClientCredentialsInput::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                .map(Some)
        }
    }
    d.deserialize_any(ObjectOrNull)
}

/// The fields of a machine user a client may set: on create only `username`
/// is required; on `PATCH` any subset (except `username`, the client_id).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineUserBody {
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// `null` or `""` removes it.
    #[serde(default, deserialize_with = "super::support::present")]
    #[schema(value_type = Option<String>)]
    pub contact_email: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "object_or_null")]
    pub client_credentials: Option<ClientCredentialsInput>,
    /// Usernames of enabled users who may manage it (replaces the list; admins only).
    pub managers: Option<Vec<String>>,
}

/// `?orphaned=true|false` and the page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only machine users whose creator and managers are all disabled or gone (`true`), or the others.
    pub orphaned: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl From<MachineUserBody> for MachineUserInput {
    fn from(b: MachineUserBody) -> Self {
        let cc = b.client_credentials.unwrap_or_default();
        Self {
            username: b.username,
            display_name: b.display_name,
            description: b.description,
            contact_email: b.contact_email.map(Option::unwrap_or_default),
            scopes: b.scopes,
            enabled: b.enabled,
            cc_enabled: cc.enabled,
            cc_ttl_minutes: cc.access_token_ttl_minutes,
            managers: b.managers,
        }
    }
}

fn location(id: Uuid) -> String {
    format!("/api/v1/machine-users/{id}")
}

/// Machine users, newest first: all of them for admins (`admin:read`), the
/// ones the caller manages for a manager (`tokens:read`).
#[utoipa::path(
    operation_id = "list_machine_users",
    tag = "machine users",
    params(ListQuery),
    security(("bearer" = ["admin:read"]), ("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = Page<MachineUser>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/machine-users")]
pub async fn list(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:read", "tokens:read"])?;
    let orphaned = match query.orphaned.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::InvalidField {
                field: "orphaned".into(),
                message: "must be true or false".into(),
            });
        }
    };
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .page()?;
    let ctx = auth.context(state.policy());
    let page = principals::list_machine_users_for(&state.db.read, &ctx, orphaned, page)
        .await
        .map_err(or_scope(&auth, "admin:read"))?;
    Ok(HttpResponse::Ok().json(page))
}

/// Creates a machine user (client credentials off until turned on; no secret yet).
#[utoipa::path(
    operation_id = "create_machine_user",
    tag = "machine users",
    request_body = MachineUserBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 201, body = MachineUser, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/machine-users")]
pub async fn create(
    state: web::Data<AppState>,
    auth: Bearer,
    body: JsonBody<MachineUserBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let input = body.parse()?.into();
    let m = principals::create_machine_user(&state.db, &auth.actor(), input).await?;
    Ok(created(location(m.id), &m))
}

#[utoipa::path(
    operation_id = "get_machine_user",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"]), ("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = MachineUser),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/machine-users/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:read", "tokens:read"])?;
    let ctx = auth.context(state.policy());
    let m = principals::view_machine_user(&state.db.read, &ctx, *id)
        .await
        .map_err(or_scope(&auth, "admin:read"))?;
    Ok(HttpResponse::Ok().json(m))
}

/// Changes any subset of the fields; takes effect on the machine user's
/// existing tokens at their next use.
#[utoipa::path(
    operation_id = "update_machine_user",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    request_body = MachineUserBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 200, body = MachineUser),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[patch("/machine-users/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: JsonBody<MachineUserBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let input = body.parse()?.into();
    let m = principals::update_machine_user(&state.db, &auth.actor(), *id, input).await?;
    Ok(HttpResponse::Ok().json(m))
}

/// Deletes the machine user with its secrets and tokens.
#[utoipa::path(
    operation_id = "delete_machine_user",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/machine-users/{id}")]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    principals::delete_machine_user(&state.db, &auth.actor(), *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The optional body of a new client secret: rotation in one call.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecretBody {
    /// The id of the secret this one replaces: removed when the grace period ends.
    #[schema(value_type = Option<Uuid>)]
    pub replaces: Option<serde_json::Value>,
    /// How long the replaced secret keeps working, 0–259200 (72 hours); default 0.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 259200)]
    pub grace_seconds: Option<serde_json::Value>,
}

impl NewSecretBody {
    fn replacement(&self) -> Result<Option<principals::Replacement>, ApiError> {
        let replaces = match &self.replaces {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| {
                        domain::Error::invalid("replaces", "must be the id of a client secret")
                    })?,
            ),
        };
        let grace_seconds =
            super::tokens::grace_seconds(self.grace_seconds.as_ref(), "grace_seconds")?;
        match replaces {
            Some(replaces) => Ok(Some(principals::Replacement {
                replaces,
                grace_seconds,
            })),
            None if self.grace_seconds.as_ref().is_some_and(|v| !v.is_null()) => {
                Err(domain::Error::invalid(
                    "grace_seconds",
                    "applies only with replaces: the secret that keeps working meanwhile",
                )
                .into())
            }
            None => Ok(None),
        }
    }
}

/// A new client secret, shown in this response only. At most two exist at
/// once: a third is refused (409) until one is deleted. With `replaces`, the
/// named secret is removed when `grace_seconds` have passed (0: at once) and
/// shows that moment as its `expires_at` meanwhile; it counts towards the two
/// until then.
#[utoipa::path(
    operation_id = "create_client_secret",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    request_body(content = Option<NewSecretBody>),
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 201, body = NewSecret, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/machine-users/{id}/secrets")]
pub async fn create_secret(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: OptionalJsonBody<NewSecretBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    let replacement = body.parse()?.unwrap_or_default().replacement()?;
    let ctx = auth.context(state.policy());
    let secret = principals::create_secret(&state.db, &ctx, *id, replacement)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    let at = format!("{}/secrets/{}", location(*id), secret.id);
    Ok(created_secret(at, &secret))
}

/// One of the machine user's client secrets, as its `secrets` list shows it
/// (never the secret itself). Admins and its managers.
#[utoipa::path(
    operation_id = "get_client_secret",
    tag = "machine users",
    params(("id" = Uuid, Path), ("secret_id" = Uuid, Path)),
    security(("bearer" = ["admin:read"]), ("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = SecretInfo),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/machine-users/{id}/secrets/{secret_id}")]
pub async fn get_secret(
    state: web::Data<AppState>,
    auth: Bearer,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:read", "tokens:read"])?;
    let (id, secret) = path.into_inner();
    let ctx = auth.context(state.policy());
    let m = principals::view_machine_user(&state.db.read, &ctx, id)
        .await
        .map_err(or_scope(&auth, "admin:read"))?;
    let secret_id =
        Uuid::parse_str(&secret).map_err(|_| domain::Error::NotFound("client secret"))?;
    Ok(HttpResponse::Ok().json(m.secret(secret_id)?))
}

#[utoipa::path(
    operation_id = "delete_client_secret",
    tag = "machine users",
    params(("id" = Uuid, Path), ("secret_id" = Uuid, Path)),
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/machine-users/{id}/secrets/{secret_id}")]
pub async fn delete_secret(
    state: web::Data<AppState>,
    auth: Bearer,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    let (id, secret_id) = path.into_inner();
    let ctx = auth.context(state.policy());
    principals::delete_secret(&state.db, &ctx, id, secret_id)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Issues a long-lived machine token for the machine user, within its
/// allowed scopes. The secret (`token`) is in this response only.
#[utoipa::path(
    operation_id = "create_machine_token",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    request_body = TokenRequest,
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 201, body = TokenView, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem),
    )
)]
#[post("/machine-users/{id}/tokens")]
pub async fn create_token(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: JsonBody<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    let ctx = auth.context(state.policy());
    principals::authorize(&state.db.read, &ctx, *id, principals::Need::Manage)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    let new = body.parse()?.into_new()?;
    // The machine user's allowed scopes bound the token; an admin who may
    // change those, or a manager, needs no further ceiling from the calling token.
    let request = Request::Named { owner_id: *id, new };
    let view = issue(&state.issuer(), &ctx, request).await?.into_view()?;
    Ok(created_secret(
        token_location(view.owner.id, view.id),
        &view,
    ))
}

/// `{id}/tokens/{token_id}`: the caller is authorised for the machine user
/// before the token id is looked at, so someone who may not manage it is
/// refused the same way whatever the rest of the path says.
async fn token_path(
    state: &AppState,
    auth: &Bearer,
    (id, token): (Uuid, String),
    need: Need,
) -> Result<(Uuid, Uuid), ApiError> {
    let ctx = auth.context(state.policy());
    let admin_scope = match need {
        Need::See => "admin:read",
        Need::Manage => "admin:write",
    };
    principals::authorize(&state.db.read, &ctx, id, need)
        .await
        .map_err(or_scope(auth, admin_scope))?;
    let token_id = Uuid::parse_str(&token)
        .map_err(|_| ApiError::Domain(crate::domain::Error::NotFound("token")))?;
    Ok((id, token_id))
}

/// Where one of a machine user's tokens is read: a URL its managers may
/// GET too, unlike `/api/v1/admin/tokens/{id}`.
fn token_location(machine: Uuid, token: Uuid) -> String {
    format!("{}/tokens/{token}", location(machine))
}

/// One of the machine user's tokens (admins and its managers).
#[utoipa::path(
    operation_id = "get_machine_token",
    tag = "machine users",
    params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    security(("bearer" = ["admin:read"]), ("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = TokenView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/machine-users/{id}/tokens/{token_id}")]
pub async fn get_token(
    state: web::Data<AppState>,
    auth: Bearer,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:read", "tokens:read"])?;
    let (id, token_id) = token_path(&state, &auth, path.into_inner(), Need::See).await?;
    let view = tokens::get(&state.db.read, token_id, Access::Machine(id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A machine user's tokens, newest first (admins and its managers).
#[utoipa::path(
    operation_id = "list_machine_tokens",
    tag = "machine users",
    params(("id" = Uuid, Path), PageQuery),
    security(("bearer" = ["admin:read"]), ("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = Page<TokenView>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/machine-users/{id}/tokens")]
pub async fn list_tokens(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:read", "tokens:read"])?;
    let ctx = auth.context(state.policy());
    let page = tokens::list_machine_tokens(&state.db.read, &ctx, *id, None, query.page()?)
        .await
        .map_err(or_scope(&auth, "admin:read"))?;
    Ok(HttpResponse::Ok().json(page))
}

/// Revokes one of the machine user's tokens (admins and its managers).
#[utoipa::path(
    operation_id = "revoke_machine_token",
    tag = "machine users",
    params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/machine-users/{id}/tokens/{token_id}")]
pub async fn revoke_token(
    state: web::Data<AppState>,
    auth: Bearer,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    let (id, token_id) = token_path(&state, &auth, path.into_inner(), Need::Manage).await?;
    let ctx = auth.context(state.policy());
    tokens::revoke_machine_token(&state.db, &ctx, id, token_id)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces one of the machine user's tokens with a new one (same name,
/// scopes and lifetime length); the old one is revoked. Admins and its managers.
#[utoipa::path(
    operation_id = "regenerate_machine_token",
    tag = "machine users",
    params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    request_body(content = Option<RegenerateBody>),
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 201, body = TokenView, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/machine-users/{id}/tokens/{token_id}/regenerate")]
pub async fn regenerate_token(
    state: web::Data<AppState>,
    auth: Bearer,
    path: web::Path<(Uuid, String)>,
    body: OptionalJsonBody<RegenerateBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    let (id, token_id) = token_path(&state, &auth, path.into_inner(), Need::Manage).await?;
    let request = super::tokens::regenerate_request(token_id, Access::Machine(id), body)?;
    let view = issue(&state.issuer(), &auth.context(state.policy()), request)
        .await
        .map_err(or_scope(&auth, "admin:write"))?
        .into_view()?;
    Ok(created_secret(
        token_location(view.owner.id, view.id),
        &view,
    ))
}
