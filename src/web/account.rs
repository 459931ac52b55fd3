//! The signed-in person's own account: who they are, how they sign in, and
//! the e-mail address notices go to (theirs to set or remove).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;

use super::guard::Posted;
use super::{
    page::{Layout, fmt_opt, fmt_time, query, render_status, see_other},
    session::SignedIn,
};
use crate::{
    domain::{self, AuthMethod, Role, principals},
    http::errors::WebError,
    state::AppState,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(page))
        .route("/account/email", web::post().to(set_email));
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    l: Layout,
    error: Option<String>,
    username: String,
    role: &'static str,
    auth: &'static str,
    created: String,
    last_login: String,
    /// The address on file, or what was just typed when it was refused.
    email: String,
    has_email: bool,
}

async fn render_page(
    state: &AppState,
    me: &SignedIn,
    notice: Option<&str>,
    refused: Option<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let user = principals::get_user(&state.db.read, me.session.principal.id).await?;
    let (status, error, email) = match refused {
        Some((message, typed)) => (StatusCode::BAD_REQUEST, Some(message), typed),
        None => (StatusCode::OK, None, user.email.clone().unwrap_or_default()),
    };
    render_status(
        status,
        &AccountPage {
            l: Layout::new(me, "account").with_notice(notice),
            error,
            username: user.username,
            role: match user.role {
                Role::Admin => "administrator",
                Role::User => "user",
            },
            auth: match user.auth {
                AuthMethod::Password => "password",
                AuthMethod::Oidc => "single sign-on",
            },
            created: fmt_time(user.created_at),
            last_login: fmt_opt(user.last_login_at),
            has_email: user.email.is_some(),
            email,
        },
    )
}

async fn page(
    req: HttpRequest,
    me: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    render_page(&state, &me, query(&req)?.get("notice"), None).await
}

async fn set_email(
    Posted { me, form }: Posted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    // "Remove" sends a blank address, like clearing the field.
    let typed = if form.checked("remove") {
        ""
    } else {
        form.get("email").unwrap_or("")
    };
    match principals::set_own_email(&state.db, &me.actor(), typed).await {
        Ok(user) if user.email.is_some() => Ok(see_other("/account?notice=email-saved")),
        Ok(_) => Ok(see_other("/account?notice=email-removed")),
        Err(e @ domain::Error::Invalid { .. }) => {
            let message = WebError::Domain(e).message();
            render_page(&state, &me, None, Some((message, typed.to_owned()))).await
        }
        Err(e) => Err(e.into()),
    }
}
