//! What a handler may take for granted, as extractors: a signed-in admin,
//! or a form posted from one of our pages (its CSRF token checked). They run
//! the checks in the order the handlers used to write them out: session,
//! admin, body, CSRF.

use std::future::Future;

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::{TryFutureExt, future::LocalBoxFuture};

use super::{
    page::FormData,
    session::{SignedIn, check_csrf},
};
use crate::http::body::Body;

/// A signed-in admin; anyone else is told the page is for admins.
pub struct Admin(pub SignedIn);

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let me = SignedIn::from_request(req, payload);
        Box::pin(async move {
            let me = me.await?;
            me.require_admin()?;
            Ok(Self(me))
        })
    }
}

/// A form posted by a signed-in person, with the session's CSRF token.
pub struct Posted {
    pub me: SignedIn,
    pub form: FormData,
}

/// A form posted by a signed-in admin, with the session's CSRF token; the
/// admin check comes before the body is read.
pub struct AdminPosted {
    pub me: SignedIn,
    pub form: FormData,
}

impl FromRequest for Posted {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let me = SignedIn::from_request(req, payload).err_into();
        Box::pin(checked_form(me, req, payload).map_ok(|(me, form)| Self { me, form }))
    }
}

impl FromRequest for AdminPosted {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let me = Admin::from_request(req, payload).map_ok(|Admin(me)| me);
        Box::pin(checked_form(me, req, payload).map_ok(|(me, form)| Self { me, form }))
    }
}

/// `me`, then the body read and parsed, then its CSRF token checked.
fn checked_form(
    me: impl Future<Output = Result<SignedIn, actix_web::Error>> + 'static,
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<(SignedIn, FormData), actix_web::Error>> + 'static {
    let body = Body::from_request(req, payload);
    let req = req.clone();
    async move {
        let me = me.await?;
        let Ok(body) = body.await;
        let form = FormData::posted(&req, body)?;
        check_csrf(&req, &me, form.get("csrf"))?;
        Ok((me, form))
    }
}
