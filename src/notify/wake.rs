//! A nudge for this instance's sweeper: something was just put in the outbox,
//! so it need not wait for its next round. A leaf, so the domain can call it.

use std::sync::OnceLock;

use tokio::sync::Notify;

fn bell() -> &'static Notify {
    static BELL: OnceLock<Notify> = OnceLock::new();
    BELL.get_or_init(Notify::new)
}

/// Asks the sweeper to look again shortly (after the caller's commit).
pub fn soon() {
    bell().notify_one();
}

/// Waits for a nudge.
pub async fn rung() {
    bell().notified().await;
}
