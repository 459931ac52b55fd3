//! `/login`, `/logout` and `/setup` (the first administrator).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::{
    page::{FormData, Layout, render_status, see_other},
    session::{self, Cookies},
};
use crate::{
    domain::{
        self,
        sessions::{self as ds, LoginError},
    },
    http::{client_ip, errors::WebError},
    state::AppState,
};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    csrf: String,
    username: String,
    error: Option<String>,
    /// Where to go after signing in (a same-site path; "" for the start page).
    next: String,
    /// The password form is shown (`TESSERA_PASSWORD_LOGIN`).
    password_login: bool,
    sso: Option<SsoOffer>,
}

/// "Sign in with …", or why single sign-on is unavailable right now.
struct SsoOffer {
    name: String,
    href: String,
    unavailable: Option<String>,
}

async fn sso_offer(req: &HttpRequest, state: &AppState) -> Result<Option<SsoOffer>, WebError> {
    let Some(provider) = &state.oidc else {
        return Ok(None);
    };
    let q = super::page::query(req)?;
    let href = match q.get("next") {
        Some(next) => format!(
            "/login/oidc?next={}",
            form_urlencoded::byte_serialize(
                domain::sso::flows::safe_return_to(Some(next)).as_bytes()
            )
            .collect::<String>()
        ),
        None => "/login/oidc".to_owned(),
    };
    Ok(Some(SsoOffer {
        name: provider.settings().name.clone(),
        href,
        unavailable: provider.check_for_page().await.err().map(|e| {
            format!("Single sign-on is unavailable right now: {e}. Try again in a minute.")
        }),
    }))
}

/// A page to return to after signing in: only a path on this site (one
/// leading `/`, never `//`, `/\` or a scheme); `None` for the start page.
fn next_page(raw: Option<&str>) -> Option<String> {
    let safe = domain::sso::flows::safe_return_to(raw);
    (safe != "/").then_some(safe)
}

async fn login_response(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    username: String,
    error: Option<String>,
    form_next: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (csrf, fresh) = Cookies::of(state).pre_csrf_value(req);
    // Only the fixed notices (`signed-out`) are shown, never the URL's text.
    let notice = super::page::query(req)?;
    let mut res = render_status(
        status,
        &LoginPage {
            l: Layout::default().with_notice(notice.get("notice").filter(|_| error.is_none())),
            csrf: csrf.clone(),
            username,
            error,
            next: next_page(notice.get("next"))
                .or_else(|| next_page(form_next))
                .unwrap_or_default(),
            password_login: state.settings.sign_in.password_login,
            sso: sso_offer(req, state).await?,
        },
    )?;
    if fresh {
        res.add_cookie(&Cookies::of(state).pre_csrf(&csrf))
            .map_err(|e| WebError::Domain(domain::Error::Internal(e.into())))?;
    }
    Ok(res)
}

pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    // Shown even with a live session: signing in again replaces it.
    login_response(&req, &state, StatusCode::OK, String::new(), None, None).await
}

/// With `TESSERA_PASSWORD_LOGIN=off` the password form and `/setup` are gone.
fn require_password_login(state: &AppState) -> Result<(), WebError> {
    if state.settings.sign_in.password_login {
        Ok(())
    } else {
        Err(WebError::NotFound)
    }
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: crate::http::body::Body,
) -> Result<HttpResponse, WebError> {
    require_password_login(&state)?;
    let form = FormData::posted(&req, body)?;
    Cookies::of(&state).check_pre_csrf(&req, form.get("csrf"))?;
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return login_response(
            &req,
            &state,
            StatusCode::BAD_REQUEST,
            username,
            Some("Enter your username and your password.".into()),
            form.get("next"),
        )
        .await;
    }
    let previous = Cookies::of(&state).session_value(&req);
    match ds::sign_in(
        &state.db,
        &state.master,
        &username,
        password,
        client_ip(&req),
        previous.as_deref(),
    )
    .await
    {
        Ok(new) => {
            let to = next_page(form.get("next")).unwrap_or_else(|| "/".to_owned());
            let mut res = see_other(&to);
            for cookie in Cookies::of(&state).signed_in(&req, &new.cookie) {
                set_cookie(&mut res, cookie)?;
            }
            Ok(res)
        }
        Err(LoginError::BadCredentials) => {
            login_response(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                username,
                Some("The username or password is wrong.".into()),
                form.get("next"),
            )
            .await
        }
        Err(LoginError::Disabled) => {
            login_response(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                username,
                Some("Your account is disabled, so you cannot sign in. Ask an administrator to enable it.".into()),
                form.get("next"),
            )
            .await
        }
        Err(LoginError::Throttled) => {
            let mut res = login_response(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                username,
                Some(format!(
                    "Too many failed sign-ins for this account from this address, or from this address for any account. Wait up to {} minutes and try again; other addresses are not affected.",
                    ds::THROTTLE_WINDOW.whole_minutes()
                )),
                form.get("next"),
            )
            .await?;
            retry_after(&mut res, ds::THROTTLE_WINDOW.whole_seconds().unsigned_abs());
            Ok(res)
        }
        Err(LoginError::Busy) => {
            let mut res = login_response(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                username,
                Some("The server is busy checking other sign-ins. Try again in a moment.".into()),
                form.get("next"),
            )
            .await?;
            retry_after(&mut res, domain::principals::PASSWORD_BUSY_RETRY_SECS);
            Ok(res)
        }
        Err(LoginError::Other(e)) => Err(e.into()),
    }
}

/// RFC 6585: how many seconds to wait before a refused request is worth retrying.
fn retry_after(res: &mut HttpResponse, seconds: u64) {
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(seconds),
    );
}

fn set_cookie(
    res: &mut HttpResponse,
    cookie: actix_web::cookie::Cookie<'_>,
) -> Result<(), WebError> {
    res.add_cookie(&cookie)
        .map_err(|e| WebError::Domain(domain::Error::Internal(e.into())))
}

/// `GET /logout` (a typed or bookmarked URL): a button that posts the
/// sign-out form, since signing out changes state.
pub async fn logout_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let Some(me) = session::current(&req, &state).await? else {
        return Ok(see_other("/login"));
    };
    super::page::render(&super::views::ConfirmPage {
        l: Layout::new(&me, ""),
        title: "Sign out?".into(),
        message: format!(
            "You are signed in as {}. Signing out ends this session on the server.",
            me.session.principal.username
        ),
        action: "/logout".into(),
        button: "Sign out",
        cancel: "/".into(),
        danger: false,
        nonce: None,
        fields: vec![],
    })
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: crate::http::body::Body,
) -> Result<HttpResponse, WebError> {
    let form = FormData::posted(&req, body)?;
    let mut res = see_other("/login?notice=signed-out");
    if let Some(me) = session::current(&req, &state).await? {
        session::check_csrf(&req, &me, form.get("csrf"))?;
        ds::sign_out(&state.db, &me.session, me.ip.clone()).await?;
    }
    for cookie in Cookies::of(&state).signed_out(&req) {
        set_cookie(&mut res, cookie)?;
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    l: Layout,
    csrf: String,
    code: String,
    username: String,
    error: Option<String>,
}

fn setup_response(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    code: String,
    username: String,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let (csrf, fresh) = Cookies::of(state).pre_csrf_value(req);
    let mut res = render_status(
        status,
        &SetupPage {
            l: Layout::default(),
            csrf: csrf.clone(),
            code,
            username,
            error,
        },
    )?;
    if fresh {
        set_cookie(&mut res, Cookies::of(state).pre_csrf(&csrf))?;
    }
    Ok(res)
}

const SETUP_REFUSED: &str = "This setup link is invalid, has expired (links last one hour) or was already used, or an administrator already exists. Sign in instead, or restart the server to get a new link in its log while no administrator exists.";

pub async fn setup_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    require_password_login(&state)?;
    let q = super::page::query(&req)?;
    let code = q.get("code").unwrap_or("").to_owned();
    if !ds::setup_code_usable(&state.db.read, &code).await? {
        return Err(WebError::Domain(domain::Error::Forbidden(
            SETUP_REFUSED.into(),
        )));
    }
    setup_response(&req, &state, StatusCode::OK, code, String::new(), None)
}

pub async fn setup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: crate::http::body::Body,
) -> Result<HttpResponse, WebError> {
    require_password_login(&state)?;
    let form = FormData::posted(&req, body)?;
    Cookies::of(&state).check_pre_csrf(&req, form.get("csrf"))?;
    let code = form.get("code").unwrap_or("").to_owned();
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    if !ds::setup_code_usable(&state.db.read, &code).await? {
        return Err(WebError::Domain(domain::Error::Forbidden(
            SETUP_REFUSED.into(),
        )));
    }
    if password != form.get("password_again").unwrap_or("") {
        return setup_response(
            &req,
            &state,
            StatusCode::BAD_REQUEST,
            code,
            username,
            Some("The two passwords differ. Type the same password twice.".into()),
        );
    }
    match ds::complete_setup(
        &state.db,
        &state.master,
        &code,
        &username,
        password,
        client_ip(&req),
    )
    .await
    {
        Ok(new) => {
            let to = next_page(form.get("next")).unwrap_or_else(|| "/".to_owned());
            let mut res = see_other(&to);
            for cookie in Cookies::of(&state).signed_in(&req, &new.cookie) {
                set_cookie(&mut res, cookie)?;
            }
            Ok(res)
        }
        Err(e @ (domain::Error::Invalid { .. } | domain::Error::Conflict(_))) => {
            let message = WebError::Domain(e).message();
            setup_response(
                &req,
                &state,
                StatusCode::BAD_REQUEST,
                code,
                username,
                Some(message),
            )
        }
        Err(e) => Err(e.into()),
    }
}
