//! A token's recent uses as the token pages show them.

use super::page::fmt_time;
use crate::domain::usage::UsageHistory;

pub struct UseRow {
    pub at: String,
    pub ip: String,
    pub user_agent: String,
    pub via: String,
    pub outcome: String,
}

pub struct UsageView {
    pub rows: Vec<UseRow>,
    pub addresses: Vec<String>,
}

impl From<UsageHistory> for UsageView {
    fn from(h: UsageHistory) -> Self {
        Self {
            rows: h
                .items
                .into_iter()
                .map(|u| UseRow {
                    at: fmt_time(u.at),
                    ip: u.ip.unwrap_or_default(),
                    user_agent: u.user_agent.unwrap_or_default(),
                    via: match u.client_id {
                        Some(client) => format!("{} by {client}", u.via),
                        None => u.via,
                    },
                    outcome: match u.reason {
                        Some(reason) => format!("{} ({reason})", u.outcome),
                        None => u.outcome,
                    },
                })
                .collect(),
            addresses: h.addresses,
        }
    }
}
