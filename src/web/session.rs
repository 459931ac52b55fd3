//! The session cookie, the `SignedIn` extractor and CSRF checks.

use actix_web::{
    FromRequest, HttpRequest,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    dev::Payload,
    http::header,
    web,
};
use futures_util::future::LocalBoxFuture;

use crate::{
    domain::{
        Actor, Context, Policy, reminders,
        sessions::{self, Session},
    },
    http::{client_ip, errors::WebError},
    state::AppState,
};

/// The app's cookies, named and flagged by whether the public URL is https.
/// Over https the names carry the `__Host-` prefix (RFC 6265bis §4.1.3.2): a
/// browser keeps such a cookie only if it is `Secure`, for `Path=/` and
/// without `Domain`, so a sibling subdomain or a plain-http page cannot plant
/// a session (fixation) or a sign-in form's CSRF value.
#[derive(Clone, Copy)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    pub fn of(state: &AppState) -> Self {
        Self {
            secure: state.settings.secure_cookies(),
        }
    }

    pub fn secure(self) -> bool {
        self.secure
    }

    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-tessera_session"
        } else {
            "tessera_session"
        }
    }

    /// The double-submit cookie that protects the sign-in and setup forms,
    /// which are posted before any session exists.
    fn pre_csrf_name(self) -> &'static str {
        if self.secure {
            "__Host-tessera_csrf"
        } else {
            "tessera_csrf"
        }
    }

    /// The session cookie's value, if the request has one.
    pub fn session_value(self, req: &HttpRequest) -> Option<String> {
        req.cookie(self.session_name())
            .map(|c| c.value().to_owned())
    }

    fn session(self, value: &str) -> Cookie<'static> {
        Cookie::build(self.session_name(), value.to_owned())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(CookieDuration::seconds(
                sessions::ABSOLUTE_TIMEOUT.whole_seconds(),
            ))
            .finish()
    }

    /// Tells the browser to drop the session cookie.
    fn session_removal(self) -> Cookie<'static> {
        let mut c = Cookie::build(self.session_name(), "")
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .finish();
        c.make_removal();
        c
    }

    /// What a sign-in sets: the session cookie and, over https, the removal
    /// of a session cookie under the name used before the `__Host-` prefix
    /// (the server no longer reads it; the browser should not keep it).
    pub fn signed_in(self, req: &HttpRequest, value: &str) -> Vec<Cookie<'static>> {
        let mut set = vec![self.session(value)];
        set.extend(self.legacy_removal(req));
        set
    }

    /// What a sign-out sets: the session cookie's removal, and the old
    /// name's as at sign-in.
    pub fn signed_out(self, req: &HttpRequest) -> Vec<Cookie<'static>> {
        let mut set = vec![self.session_removal()];
        set.extend(self.legacy_removal(req));
        set
    }

    fn legacy_removal(self, req: &HttpRequest) -> Option<Cookie<'static>> {
        const LEGACY: &str = "tessera_session";
        (self.secure && req.cookie(LEGACY).is_some()).then(|| {
            let mut c = Cookie::build(LEGACY, "")
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(true)
                .finish();
            c.make_removal();
            c
        })
    }

    pub fn pre_csrf(self, value: &str) -> Cookie<'static> {
        Cookie::build(self.pre_csrf_name(), value.to_owned())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .finish()
    }

    /// The pre-session CSRF value: the one in the cookie when it looks like
    /// ours, or a new one (which the response must then set).
    pub fn pre_csrf_value(self, req: &HttpRequest) -> (String, bool) {
        match req.cookie(self.pre_csrf_name()) {
            Some(c) if c.value().len() == 43 => (c.value().to_owned(), false),
            _ => (crate::secret::random_token(), true),
        }
    }

    /// Double-submit check for forms posted without a session.
    pub fn check_pre_csrf(
        self,
        req: &HttpRequest,
        presented: Option<&str>,
    ) -> Result<(), WebError> {
        from_this_origin(req)?;
        let cookie = req.cookie(self.pre_csrf_name());
        match (cookie, presented) {
            (Some(c), Some(p)) if sessions::tokens_match(c.value(), p) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

/// A signed-in person (never a machine user), with the request's address.
pub struct SignedIn {
    pub session: Session,
    pub ip: Option<String>,
    /// Looks after at least one machine user (the menu links to them).
    pub manages: bool,
    /// Something of theirs was reported leaked lately (every page says so).
    pub leak_alert: bool,
    /// The in-app expiry notice, while a token of theirs (for admins, any
    /// machine token) expires within 7 days.
    pub expiring: Option<String>,
}

impl SignedIn {
    pub fn actor(&self) -> Actor {
        self.session.actor(self.ip.clone())
    }

    /// The person and the policy: what the domain decides by.
    pub fn context(&self, policy: Policy) -> Context {
        Context::new(self.actor(), policy)
    }

    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.session.is_admin() {
            Ok(())
        } else {
            Err(WebError::AdminOnly)
        }
    }
}

/// The session behind the request's cookie, if any.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<SignedIn>, WebError> {
    let Some(cookie) = Cookies::of(state).session_value(req) else {
        return Ok(None);
    };
    let Some(session) = sessions::lookup(&state.db, &state.master, &cookie).await? else {
        return Ok(None);
    };
    let me = session.principal.id;
    let managed = crate::domain::principals::managed_by(&state.db.read, me).await?;
    let leak_alert = crate::domain::leaks::recent_for(&state.db.read, me, &managed).await?;
    let expiring = expiry_notice(state, &session, &managed).await;
    Ok(Some(SignedIn {
        session,
        ip: client_ip(req),
        manages: !managed.is_empty(),
        leak_alert,
        expiring,
    }))
}

/// Days a token's coming expiry is shown on every page.
const NOTICE_DAYS: i64 = 7;

async fn expiry_notice(
    state: &AppState,
    session: &Session,
    managed: &[uuid::Uuid],
) -> Option<String> {
    let admin = session.is_admin();
    let found = reminders::expiring_for(
        &state.db.read,
        session.principal.id,
        admin,
        managed,
        time::Duration::days(NOTICE_DAYS),
    )
    .await;
    // The notice is a courtesy: a failed look-up must not fail the page.
    let soon = match found {
        Ok(soon) => soon?,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for expiring tokens");
            return None;
        }
    };
    let whose = if admin || !managed.is_empty() {
        ""
    } else {
        "of yours "
    };
    let count = if soon.count == 1 {
        format!("A token {whose}expires")
    } else {
        format!("{} tokens {whose}expire", soon.count)
    };
    Some(format!(
        "{count} within {NOTICE_DAYS} days, the first on {}: renew before it stops working.",
        reminders::when(soon.soonest)
    ))
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| {
                    WebError::Domain(crate::domain::Error::Internal(anyhow::anyhow!(
                        "application state missing"
                    )))
                })?;
            current(&req, &state)
                .await?
                .ok_or_else(|| WebError::SignInRequired {
                    next: return_to(&req),
                    unsaved: req.method() != actix_web::http::Method::GET,
                })
        })
    }
}

/// The page to come back to after signing in, other than the start page: a
/// page asked for, or the page a form was sent from (its `Referer`, which
/// our `Referrer-Policy: same-origin` sends only from our pages; a POST
/// cannot be repeated from a redirect, but the form can be filled again).
fn return_to(req: &HttpRequest) -> Option<String> {
    let path = if req.method() == actix_web::http::Method::GET {
        match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        }
    } else {
        let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
        let url = url::Url::parse(referer).ok()?;
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    };
    let safe = crate::domain::sso::flows::safe_return_to(Some(&path));
    (safe != "/").then_some(safe)
}

/// The per-session CSRF token of a state-changing form, compared in constant time.
pub fn check_csrf(
    req: &HttpRequest,
    me: &SignedIn,
    presented: Option<&str>,
) -> Result<(), WebError> {
    from_this_origin(req)?;
    match presented {
        Some(p) if sessions::tokens_match(&me.session.csrf_token, p) => Ok(()),
        _ => Err(WebError::Csrf),
    }
}

/// What the browser says of where a form was posted from (the design of Go's
/// `http.CrossOriginProtection`). A form from another origin is refused
/// whatever its token: on plain http a sibling subdomain can plant the sign-in
/// form's double-submit cookie (and pick its value), but it cannot make the
/// browser name our origin. Browsers send `Sec-Fetch-Site` only to https and
/// localhost, so elsewhere `Origin` decides: our pages' `Referrer-Policy:
/// same-origin` has browsers name it on every form we serve, so `null` (which
/// a page elsewhere gets by asking for no referrer) is refused too. It must
/// be the request's `Host` or the public URL's origin (a proxy may rewrite
/// `Host`). Requests that tell neither (scripts, old browsers) rest on the
/// token alone.
fn from_this_origin(req: &HttpRequest) -> Result<(), WebError> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(WebError::Csrf),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    // An origin is `scheme://host[:port]`; against `Host` the scheme is left
    // out, because a proxy may end TLS in front of us.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let same_host = origin
        .split_once("://")
        .zip(host)
        .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
    let public = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| url::Url::parse(&state.settings.public_url).ok())
        .map(|url| url.origin().ascii_serialization());
    let public_origin = public.is_some_and(|public| public.eq_ignore_ascii_case(origin));
    if same_host || public_origin {
        Ok(())
    } else {
        Err(WebError::Csrf)
    }
}
