//! `/login/oidc` (off to the identity provider) and
//! `/login/oidc/callback` (back from it): single sign-on, INTERFACE §10.
//! The flow's state lives in the database (`domain::sso::flows`), so the
//! callback may reach any instance; every failure is a page in words.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    web,
};

use super::{
    page::{self, see_other},
    session::Cookies,
};
use crate::{
    domain::{
        self,
        sso::{self, SignInError, flows},
    },
    http::{client_ip, errors::WebError},
    oidc::OidcError,
    state::AppState,
};

/// Binds a flow to the browser that started it; only sent to `/login/oidc…`.
/// Over https it is `__Secure-` (not `__Host-`, which needs `Path=/`): a
/// plain-http page cannot set it.
fn flow_cookie_name(cookies: Cookies) -> &'static str {
    if cookies.secure() {
        "__Secure-tessera_oidc"
    } else {
        "tessera_oidc"
    }
}
const FLOW_COOKIE_PATH: &str = "/login/oidc";

fn flow_cookie(value: &str, cookies: Cookies) -> Cookie<'static> {
    // Lax: it must come along on the provider's top-level redirect back.
    Cookie::build(flow_cookie_name(cookies), value.to_owned())
        .path(FLOW_COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(cookies.secure())
        .max_age(CookieDuration::seconds(
            flows::FLOW_LIFETIME.whole_seconds(),
        ))
        .finish()
}

fn internal(e: impl Into<anyhow::Error>) -> WebError {
    WebError::Domain(domain::Error::Internal(e.into()))
}

/// `GET /login/oidc[?next=/page]`: a new flow, then off to the provider.
pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let Some(provider) = state.oidc.clone() else {
        return Err(WebError::NotFound);
    };
    let q = page::query(&req)?;
    let auth = provider.begin().await.map_err(|e| failed(&e))?;
    // One cookie per browser, reused by flows started in other tabs.
    let cookies = Cookies::of(&state);
    let browser = match req.cookie(flow_cookie_name(cookies)) {
        Some(c) if c.value().len() == 43 => c.value().to_owned(),
        _ => crate::secret::random_token(),
    };
    let secrets = flows::FlowSecrets {
        pkce_verifier: auth.pkce_verifier,
        nonce: auth.nonce,
    };
    flows::save_flow(
        &state.db,
        &state.master,
        &browser,
        &auth.state,
        &secrets,
        &flows::safe_return_to(q.get("next")),
    )
    .await?;
    let mut res = see_other(&auth.url);
    res.add_cookie(&flow_cookie(&browser, cookies))
        .map_err(internal)?;
    Ok(res)
}

fn failed(e: &OidcError) -> WebError {
    let said = format!("Single sign-on did not work: {e}.");
    if e.is_upstream() {
        tracing::warn!(error = %e.detail(), "single sign-on: the identity provider failed");
        WebError::SignInUpstream(said)
    } else {
        WebError::SignInFailed(said)
    }
}

/// `GET /login/oidc/callback?code=…&state=…` (or `?error=…`).
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let Some(provider) = state.oidc.clone() else {
        return Err(WebError::NotFound);
    };
    let q = page::query(&req)?;
    // RFC 9207: a provider that names itself in the callback must be ours
    // (a mix-up attack sends another provider's answer here).
    if let Some(iss) = q.get("iss")
        && iss != provider.settings().issuer
    {
        // Not named: anyone can send a link saying anything.
        return Err(WebError::SignInFailed(
            "This sign-in came back from another identity provider, not the one Tessera uses. Start again from the sign-in page.".into(),
        ));
    }
    // RFC 9207 §2.4: a provider that promises to name itself must, in
    // refusals too.
    if q.get("iss").is_none() && provider.promises_iss().await {
        return Err(WebError::SignInFailed(
            "This sign-in came back without naming its identity provider (RFC 9207), which Tessera's provider always does: perhaps another provider's answer. Start again from the sign-in page.".into(),
        ));
    }
    let ip = client_ip(&req);
    let cookies = Cookies::of(&state);
    let browser = req
        .cookie(flow_cookie_name(cookies))
        .map(|c| c.value().to_owned());
    let flow = flows::take_flow(
        &state.db,
        &state.master,
        browser.as_deref(),
        q.get("state").unwrap_or(""),
    )
    .await?;
    // The provider's own refusal (RFC 6749 §4.1.2.1), such as a declined
    // consent; its words are shown only for this browser's own flow, as a
    // crafted link could put any text there.
    if let Some(error) = q.get("error") {
        if let Err(refusal) = &flow {
            return Err(WebError::SignInFailed(refusal.to_string()));
        }
        let said = match q.get("error_description") {
            Some(d) => format!("{error}: {}", d.chars().take(300).collect::<String>()),
            None => error.chars().take(100).collect(),
        };
        let message = if error == "access_denied" {
            format!(
                "The sign-in was declined at the identity provider (you, or the provider, said no: {said}). Nothing was signed in; start again from the sign-in page if that was a mistake."
            )
        } else {
            format!(
                "The identity provider did not sign you in ({said}). Start again from the sign-in page."
            )
        };
        return Err(WebError::SignInFailed(message));
    }
    let flow = flow.map_err(|refusal| WebError::SignInFailed(refusal.to_string()))?;
    let Some(code) = q.get("code").filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Err(WebError::SignInFailed(
            "The identity provider came back without an authorization code. Start again from the sign-in page.".into(),
        ));
    };
    let verified = match provider
        .finish(code, &flow.secrets.pkce_verifier, &flow.secrets.nonce)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            sso::record_failure(&state.db, ip, &e.detail()).await?;
            return Err(failed(&e));
        }
    };
    let o = provider.settings();
    let rules = sso::Rules {
        username_claim: &o.username_claim,
        groups_claim: &o.groups_claim,
        admin_groups: &o.admin_groups,
        allowed_groups: o.allowed_groups.as_deref(),
    };
    let previous = cookies.session_value(&req);
    let identity = sso::Identity {
        issuer: verified.issuer,
        subject: verified.subject,
        claims: verified.claims,
    };
    match sso::sign_in(
        &state.db,
        &state.master,
        identity,
        &rules,
        ip,
        previous.as_deref(),
    )
    .await
    {
        Ok(new) => {
            let mut res = see_other(&flow.return_to);
            for cookie in cookies.signed_in(&req, &new.cookie) {
                res.add_cookie(&cookie).map_err(internal)?;
            }
            Ok(res)
        }
        Err(SignInError::Refused(r)) => Err(WebError::SignInRefused(r.to_string())),
        Err(SignInError::Other(e)) => Err(e.into()),
    }
}
