//! The sweeper: on every instance, every `TESSERA_SWEEP_EVERY` (and soon after
//! something is queued), it sends due reminders, fans audited events out to
//! webhooks, and sends what is due in the outbox. Each send runs in its own
//! task under a bound, after its attempt was claimed in the database, so a
//! hanging receiver or a slow SMTP server delays nothing else.

pub mod egress;
pub mod mail;
pub mod wake;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    config::{Dur, Settings},
    domain::{
        outbox::{self, CHANNEL_EMAIL, CHANNEL_WEBHOOK, Outcome},
        reminders::{self, ReminderPolicy},
        webhooks,
    },
    secret::MasterKey,
    storage::{Db, entities::outbox as outbox_row},
};

/// A webhook receiver must answer within this.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Any one attempt, e-mail included, ends within this: lettre's own timeout
/// covers only the connection, and an SMTP server that accepts it and then
/// says nothing would hold a sending slot forever, its claim lapsing and the
/// message sent again. Well inside the claim (`outbox::CLAIM_FOR`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Sends in flight at once on one instance.
const CONCURRENT_SENDS: usize = 16;
/// Sends to any one receiver (a webhook, or the SMTP server) in flight at
/// once on one instance: a receiver that answers slowly (or not at all)
/// holds at most these of the slots, so the others keep moving.
const PER_RECEIVER: usize = 4;
/// The SMTP server's key among the receivers (no webhook has the nil id).
const MAILER: Uuid = Uuid::nil();

struct Sweeper {
    db: Db,
    master: MasterKey,
    every: Duration,
    reminders: ReminderPolicy,
    retry_schedule: Vec<Dur>,
    http: reqwest::Client,
    /// Where deliveries may go; names are checked by `http`'s resolver.
    egress: egress::Egress,
    mailer: Option<mail::Mailer>,
    permits: Arc<Semaphore>,
    receivers: Arc<Receivers>,
    /// A round stopped with messages due and no free slot.
    left_over: AtomicBool,
    /// When this instance last pruned old messages.
    pruned: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often old messages and delivery logs are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Sends in flight per receiver on this instance (see [`PER_RECEIVER`]).
#[derive(Default)]
struct Receivers(std::sync::Mutex<HashMap<Uuid, usize>>);

/// One send to a receiver, counted until it is dropped.
struct ReceiverSlot {
    receivers: Arc<Receivers>,
    to: Uuid,
}

impl Receivers {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The receivers with no send to spare.
    fn busy(&self) -> Vec<Uuid> {
        let counts = self.counts();
        counts
            .iter()
            .filter(|(_, n)| **n >= PER_RECEIVER)
            .map(|(to, _)| *to)
            .collect()
    }

    fn enter(self: &Arc<Self>, to: Uuid) -> Option<ReceiverSlot> {
        let mut counts = self.counts();
        let n = counts.entry(to).or_default();
        if *n >= PER_RECEIVER {
            return None;
        }
        *n += 1;
        Some(ReceiverSlot {
            receivers: self.clone(),
            to,
        })
    }
}

impl Drop for ReceiverSlot {
    fn drop(&mut self) {
        let mut counts = self.receivers.counts();
        if let Some(n) = counts.get_mut(&self.to) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.to);
            }
        }
    }
}

/// Starts this instance's sweeper.
pub fn spawn(db: Db, master: MasterKey, settings: &Settings) -> anyhow::Result<()> {
    let hello = url::Url::parse(&settings.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned());
    let mailer = settings
        .smtp_url
        .as_ref()
        .map(|url| mail::Mailer::new(url, &settings.smtp_from, &hello))
        .transpose()?;
    let egress = egress::Egress::new(&settings.webhook_allowed_networks);
    // No proxy from the environment (HTTPS_PROXY…): the proxy would resolve
    // receivers' names itself, past the egress check.
    let http = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(egress.clone()))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WEBHOOK_TIMEOUT)
        .user_agent(concat!("tessera-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let sweeper = Arc::new(Sweeper {
        db,
        master,
        every: Duration::from_secs(settings.sweep_every.seconds.unsigned_abs()),
        reminders: ReminderPolicy {
            thresholds: settings.reminders.iter().map(|d| d.seconds).collect(),
            public_url: settings.public_url.clone(),
            email: mailer.is_some(),
        },
        retry_schedule: settings.retry_schedule.clone(),
        http,
        egress,
        mailer,
        permits: Arc::new(Semaphore::new(CONCURRENT_SENDS)),
        receivers: Arc::default(),
        left_over: AtomicBool::new(false),
        pruned: std::sync::Mutex::new(None),
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweeper.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake::rung() => {
                    // Let the transaction that rang commit first.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            sweeper.clone().round().await;
        }
    });
    Ok(())
}

impl Sweeper {
    async fn round(self: Arc<Self>) {
        if let Err(e) = reminders::sweep(&self.db, &self.reminders).await {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "reminder sweep failed");
        }
        if let Err(e) = webhooks::expand(&self.db, 200).await {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "cannot fan out webhook events");
        }
        if let Err(e) = self.clone().send_due().await {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "cannot send from the outbox");
        }
        if self.prune_due()
            && let Err(e) = outbox::prune(&self.db.write).await
        {
            tracing::warn!(error = %e, "cannot prune old outbox messages");
        }
    }

    fn prune_due(&self) -> bool {
        let mut last = self.pruned.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    /// Claims due messages while a sending slot is free, each sent in its own
    /// task. When the slots run out, the first send to finish starts the next
    /// round rather than leaving the rest for the next tick.
    async fn send_due(self: Arc<Self>) -> Result<(), crate::domain::Error> {
        const PAGE: u64 = 100;
        let mut busy = self.receivers.busy();
        loop {
            // E-mail waits while the SMTP server has its share of the slots.
            let channels: &[&str] = if busy.contains(&MAILER) {
                &[CHANNEL_WEBHOOK]
            } else {
                &[CHANNEL_WEBHOOK, CHANNEL_EMAIL]
            };
            let due = outbox::due_except(&self.db.read, channels, &busy, PAGE).await?;
            let full_page = due.len() as u64 == PAGE;
            let mut newly_busy = false;
            for row in due {
                let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                    self.left_over.store(true, Ordering::Relaxed);
                    return Ok(());
                };
                let to = row.webhook_id.unwrap_or(MAILER);
                let Some(receiver) = self.receivers.enter(to) else {
                    // Its turn comes when one of its sends ends.
                    self.left_over.store(true, Ordering::Relaxed);
                    if !busy.contains(&to) {
                        busy.push(to);
                        newly_busy = true;
                    }
                    continue;
                };
                let Some(claimed) = outbox::claim(&self.db.write, &row).await? else {
                    continue;
                };
                self.clone().start(claimed, permit, receiver);
            }
            // A receiver that filled up during a full page may have hidden
            // other messages behind its backlog: look again without it.
            if !(full_page && newly_busy) {
                return Ok(());
            }
        }
    }

    /// Sends one claimed message in a task of its own, holding its slots.
    fn start(
        self: Arc<Self>,
        claimed: outbox_row::Model,
        permit: tokio::sync::OwnedSemaphorePermit,
        receiver: ReceiverSlot,
    ) {
        let me = self;
        tokio::spawn(async move {
            let outcome = if outbox::gave_up_on(&claimed, &me.retry_schedule) {
                // Earlier attempts never finished (the process ended
                // mid-send): the schedule is spent all the same.
                outbox::unanswered("earlier attempts never finished")
            } else {
                let send = async {
                    if claimed.channel == CHANNEL_EMAIL {
                        me.send_mail(&claimed).await
                    } else {
                        me.send_webhook(&claimed).await
                    }
                };
                tokio::time::timeout(ATTEMPT_TIMEOUT, send)
                    .await
                    .unwrap_or_else(|_| {
                        outbox::unanswered(&format!(
                            "no answer within {} s",
                            ATTEMPT_TIMEOUT.as_secs()
                        ))
                    })
            };
            if !outcome.delivered {
                tracing::info!(
                    message = %webhooks::message_id(claimed.id),
                    channel = %claimed.channel,
                    attempt = claimed.attempts,
                    error = outcome.error.as_deref().unwrap_or(""),
                    "delivery attempt failed"
                );
            }
            if let Err(e) =
                outbox::finish(&me.db.write, &claimed, outcome, &me.retry_schedule).await
            {
                tracing::warn!(error = %e, "cannot record a delivery attempt");
            }
            drop((permit, receiver));
            if me.left_over.swap(false, Ordering::Relaxed) {
                wake::soon();
            }
        });
    }

    async fn send_mail(&self, row: &outbox_row::Model) -> Outcome {
        if let Some(token) = row.token_id {
            match reminders::is_moot(&self.db, token).await {
                Ok(true) => return outbox::moot("not sent: the token was revoked or replaced"),
                Ok(false) => {}
                Err(e) => return outbox::unanswered(&format!("cannot read the token: {e}")),
            }
        }
        let result = match &self.mailer {
            Some(mailer) => {
                mailer
                    .send(
                        row.recipient.as_deref().unwrap_or_default(),
                        row.subject.as_deref().unwrap_or_default(),
                        &row.body,
                    )
                    .await
            }
            None => Err("e-mail is not configured (TESSERA_SMTP_URL)".to_owned()),
        };
        Outcome {
            delivered: result.is_ok(),
            status: None,
            error: result.err(),
            moot: false,
        }
    }

    async fn send_webhook(&self, row: &outbox_row::Model) -> Outcome {
        let failed = outbox::unanswered;
        let hook = match row.webhook_id {
            Some(id) => webhooks::find(&self.db.read, id).await,
            None => return failed("no webhook"),
        };
        let Ok(hook) = hook else {
            return failed("the webhook is gone");
        };
        // Kept for its retries, in case it is enabled again meanwhile.
        if !hook.enabled {
            return failed("the webhook is disabled");
        }
        let key = match webhooks::signing_key(&self.master, &hook) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(error = ?e, webhook = %hook.id, "cannot open a webhook secret");
                return failed("cannot open the webhook secret");
            }
        };
        // An address in the URL is never resolved: checked here instead.
        let refused_host = url::Url::parse(&hook.url)
            .ok()
            .and_then(|url| self.egress.check_host(url.host()).err());
        if let Some(refused) = refused_host {
            return failed(&format!("not sent: {refused}"));
        }
        let id = webhooks::message_id(row.id);
        let timestamp = crate::clock::now().unix_timestamp();
        let signature = match standardwebhooks::Webhook::from_bytes(key)
            .and_then(|signer| signer.sign(&id, timestamp, row.body.as_bytes()))
        {
            Ok(signature) => signature,
            Err(_) => return failed("cannot sign the message"),
        };
        let sent = self
            .http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(row.body.clone())
            .send()
            .await;
        match sent {
            Ok(res) => {
                let status = res.status();
                Outcome {
                    moot: false,
                    delivered: status.is_success(),
                    status: Some(status.as_u16()),
                    error: (!status.is_success()).then(|| {
                        if status.is_redirection() {
                            format!("HTTP {status}: redirects are not followed")
                        } else {
                            format!("HTTP {status}")
                        }
                    }),
                }
            }
            // The transport error's text may carry the URL: say what kind.
            Err(e) if e.is_timeout() => failed("no answer within 10 seconds"),
            Err(ref e) if let Some(refused) = egress::refused(e) => {
                failed(&format!("not sent: {refused}"))
            }
            Err(e) if e.is_connect() => failed("cannot connect to the receiver"),
            Err(_) => failed("the request failed"),
        }
    }
}
