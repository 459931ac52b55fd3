//! Webhooks (§9): the list with recent deliveries, subscribe (the secret is
//! shown once), enable or disable, delete, ping.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::web::guard::{Admin, AdminPosted};
use crate::{
    domain::{
        webhook_events::EVENTS,
        webhooks::{self, Delivery, Webhook, WebhookInput},
    },
    http::errors::WebError,
    state::AppState,
    web::{
        page::{Layout, fmt_time, parse_id, query, render, render_status, see_other},
        reveal::{self, Reveal},
        views::ConfirmPage,
    },
};

pub(super) async fn webhook_delete_page(
    Admin(me): Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let hook = webhooks::find(&state.db.read, parse_id(&path)?).await?;
    render(&ConfirmPage {
        l: Layout::new(&me, "webhooks"),
        title: format!("Delete the webhook to {}?", hook.url),
        message: "Nothing more is sent to it, its queued deliveries included. Its signing secret is gone with it.".into(),
        action: format!("/admin/webhooks/{}/delete", hook.id),
        button: "Delete webhook",
        cancel: "/admin/webhooks".into(),
        danger: true,
        nonce: None,
        fields: vec![],
    })
}

pub struct HookRow {
    pub hook: Webhook,
    pub created: String,
    pub deliveries: Vec<DeliveryRow>,
}

pub struct DeliveryRow {
    pub d: Delivery,
    pub at: String,
    pub outcome: String,
    pub ok: bool,
}

#[derive(Template)]
#[template(path = "admin_webhooks.html")]
struct WebhooksPage {
    l: Layout,
    rows: Vec<HookRow>,
    events: &'static [&'static str],
    nonce: String,
    /// A refused "Add a webhook", in words, with what was typed kept.
    error: Option<String>,
    new: NewHookForm,
}

#[derive(Default)]
struct NewHookForm {
    url: String,
    description: String,
    events: Vec<String>,
}

impl NewHookForm {
    fn has(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

fn outcome(d: &Delivery) -> (String, bool) {
    let ok = d.status.is_some_and(|s| (200..300).contains(&s));
    let text = match (&d.error, d.status) {
        (None, Some(s)) => format!("HTTP {s}"),
        (Some(e), _) => e.clone(),
        (None, None) => "no answer".to_owned(),
    };
    (text, ok)
}

pub(super) async fn webhooks_page(
    req: HttpRequest,
    Admin(me): Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let q = query(&req)?;
    webhooks_view(&state, &me, q.get("notice"), None, NewHookForm::default()).await
}

/// The webhooks page; after a refused "Add a webhook", with the reason in
/// words and status 400, like the other forms of the console.
async fn webhooks_view(
    state: &AppState,
    me: &crate::web::session::SignedIn,
    notice: Option<&str>,
    error: Option<String>,
    new: NewHookForm,
) -> Result<HttpResponse, WebError> {
    let rows = webhooks::overview(&state.db.read, 5)
        .await?
        .into_iter()
        .map(|(hook, deliveries)| HookRow {
            created: fmt_time(hook.created_at),
            hook,
            deliveries: deliveries
                .into_iter()
                .map(|d| {
                    let (outcome, ok) = outcome(&d);
                    DeliveryRow {
                        at: fmt_time(d.at),
                        d,
                        outcome,
                        ok,
                    }
                })
                .collect(),
        })
        .collect();
    render_status(
        crate::web::page::refused_if(&error),
        &WebhooksPage {
            l: Layout::new(me, "webhooks").with_notice(notice),
            rows,
            events: EVENTS,
            nonce: reveal::nonce(state, me).await?,
            error,
            new,
        },
    )
}

pub(super) async fn webhook_create(
    AdminPosted { me, form }: AdminPosted,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if let Some(replay) = reveal::claim(&state, &me, &form).await? {
        return Ok(replay);
    }
    let typed = NewHookForm {
        url: form.text("url").unwrap_or_default().to_owned(),
        description: form.text("description").unwrap_or_default().to_owned(),
        events: form.all("events"),
    };
    let input = WebhookInput {
        url: Some(typed.url.clone()),
        events: Some(typed.events.clone()),
        description: Some(typed.description.clone()),
        enabled: None,
    };
    let made = webhooks::create(&state.db, &state.master, &me.actor(), input).await;
    let created = match made {
        Err(e) if super::shared::is_user_error(&e) => {
            reveal::release(&state, &me, &form).await?;
            let message = WebError::Domain(e).message();
            return webhooks_view(&state, &me, None, Some(message), typed).await;
        }
        made => reveal::unless_refused(&state, &me, &form, made).await?,
    };
    let page = Reveal {
        title: format!("Signing secret for {}", created.webhook.url),
        what: "signing secret".into(),
        facts: vec![
            ("Events".into(), created.webhook.events.join(", ")),
            (
                "Verify with".into(),
                "any Standard Webhooks library (headers webhook-id, webhook-timestamp, webhook-signature)".into(),
            ),
        ],
        done_url: "/admin/webhooks".into(),
        done_label: "Back to webhooks".into(),
        section: "webhooks".into(),
        item_url: None,
        example: None,
    };
    reveal::reveal(
        &state,
        &me,
        &form,
        page,
        crate::secret::Secret::new(created.secret.into_exposed()),
    )
    .await
}

pub(super) async fn webhook_action(
    AdminPosted { me, form: _ }: AdminPosted,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (raw_id, action) = path.into_inner();
    let id = parse_id(&raw_id)?;
    let actor = me.actor();
    let notice = match action.as_str() {
        "enable" | "disable" => {
            let input = WebhookInput {
                enabled: Some(action == "enable"),
                ..WebhookInput::default()
            };
            webhooks::update(&state.db, &actor, id, input).await?;
            "updated"
        }
        "delete" => {
            webhooks::delete(&state.db, &actor, id).await?;
            "deleted"
        }
        "ping" => {
            webhooks::ping(&state.db, &actor, id).await?;
            crate::notify::wake::soon();
            "pinged"
        }
        _ => return Err(WebError::NotFound),
    };
    Ok(see_other(&format!("/admin/webhooks?notice={notice}")))
}
