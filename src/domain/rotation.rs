//! Periodic work of rotation without an outage, run every
//! `TESSERA_SWEEP_EVERY` by each instance: replaced client secrets are removed
//! when their grace period ends, a `next` signing key is recorded as active
//! once its moment has come (the signers switch by the clock already), and
//! with `TESSERA_KEY_ROTATE_EVERY` the successor of an ageing key is
//! published. Each step is safe to run on every instance at once: the
//! database decides who does it (`signing_keys`' rotation lock, deletes that
//! find nothing).

use std::time::Duration;

use super::{Error, principals, signing_keys};
use crate::{config::Settings, duration::Dur, kinds::KeyAlg, secret::MasterKey, storage::Db};

/// What the sweep needs from the settings.
#[derive(Clone, Debug)]
pub struct Plan {
    pub alg: KeyAlg,
    pub rotate_every: Option<Dur>,
    pub publish_for: Dur,
}

impl Plan {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            alg: settings.signing_alg,
            rotate_every: settings.key_rotate_every,
            publish_for: settings.key_publish_for,
        }
    }
}

/// One pass over everything due. Returns what it did, for the log.
pub async fn run_due(db: &Db, master: &MasterKey, plan: &Plan) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    let removed = principals::remove_expired(db).await?;
    if removed > 0 {
        done.push(format!("removed {removed} replaced client secret(s)"));
    }
    if let Some(kid) = signing_keys::promote_due(db).await? {
        done.push(format!("key {kid} is now the active signing key"));
    }
    if let Some(every) = plan.rotate_every
        && let Some(r) =
            signing_keys::rotate_if_due(db, master, plan.alg, every, plan.publish_for).await?
    {
        done.push(format!(
            "published key {} to start signing at {}",
            r.kid,
            r.activates_at
                .map(super::clock::rfc3339)
                .unwrap_or_default()
        ));
    }
    Ok(done)
}

/// Runs [`run_due`] at start-up and then every `every`, until the process ends.
pub fn spawn(db: Db, master: MasterKey, plan: Plan, every: Dur) {
    let period = Duration::from_secs(u64::try_from(every.seconds).unwrap_or(60).max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_due(&db, &master, &plan).await {
                Ok(done) => {
                    for what in done {
                        tracing::info!("{what}");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %format!("{:#}", anyhow::Error::new(e)), "rotation sweep failed")
                }
            }
        }
    });
}
