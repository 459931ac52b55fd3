//! Error pages inside the signed-in frame: `WebError` renders its page
//! without knowing the session (the one error mapping has no request); this
//! middleware draws it again with the navigation and the sign-out button
//! when the request carries a live session.

use actix_web::{
    Error,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};

use super::{page::Layout, session};
use crate::{
    http::page::{ErrorShown, framed_error_page},
    state::AppState,
};

pub async fn error_frame(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?;
    let shown = res.response().extensions().get::<ErrorShown>().cloned();
    let Some(shown) = shown else {
        return Ok(res.map_into_boxed_body());
    };
    let Some(state) = res.request().app_data::<web::Data<AppState>>().cloned() else {
        return Ok(res.map_into_boxed_body());
    };
    if session::Cookies::of(&state)
        .session_value(res.request())
        .is_none()
    {
        return Ok(res.map_into_boxed_body());
    }
    // A failed look-up keeps the plain page: the error is what matters here.
    let me = match session::current(res.request(), &state).await {
        Ok(Some(me)) => me,
        _ => return Ok(res.map_into_boxed_body()),
    };
    let mut framed = framed_error_page(
        Layout::new(&me, ""),
        shown.status,
        shown.title,
        &shown.message,
    );
    // A 503 keeps telling when to come back.
    if let Some(retry) = res.response().headers().get(header::RETRY_AFTER) {
        framed
            .headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, framed))
}
