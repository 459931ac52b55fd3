use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{
    app::AppState,
    domain::{PrincipalKind, clock},
    http::{auth::Bearer, errors::ApiError},
};

/// `GET /api/v1/me`: the caller and the calling token's effective scopes.
pub async fn me(_state: web::Data<AppState>, auth: Bearer) -> Result<HttpResponse, ApiError> {
    auth.require("profile")?;
    let info = &auth.info;
    let expires_at = clock::from_unix(info.exp).map(clock::rfc3339);
    Ok(HttpResponse::Ok().json(json!({
        "id": info.owner_id,
        "username": info.username,
        "type": info.owner_kind,
        "role": if info.owner_kind == PrincipalKind::User { info.role.map(|r| r.as_str()) } else { None },
        "scopes": info.scopes.to_vec(),
        "token": {"id": info.token_id, "kind": info.kind, "expires_at": expires_at},
    })))
}
