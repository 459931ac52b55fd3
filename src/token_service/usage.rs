//! `last used at / from` for tokens and client secrets, coalesced in memory
//! and flushed in one transaction every few seconds, so validating a token
//! never writes to the database.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait, sea_query::Expr,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::clock,
    storage::entities::{client_secret, token},
};

pub const FLUSH_EVERY_SECS: u64 = 5;

#[derive(Default)]
pub struct UsageTracker {
    tokens: Mutex<HashMap<Uuid, (OffsetDateTime, Option<String>)>>,
    secrets: Mutex<HashMap<Uuid, OffsetDateTime>>,
    /// Successful validations since the last flush, for the daily counter.
    validations: AtomicU64,
}

impl UsageTracker {
    pub fn touch_token(&self, id: Uuid, ip: Option<&str>) {
        let now = clock::now();
        self.validations.fetch_add(1, Ordering::Relaxed);
        let mut map = self.tokens.lock().expect("usage lock");
        match map.get_mut(&id) {
            // Same second, same address: nothing new to record.
            Some((at, seen)) if *at == now && seen.as_deref() == ip => {}
            Some(entry) => *entry = (now, ip.map(str::to_owned)),
            None => {
                map.insert(id, (now, ip.map(str::to_owned)));
            }
        }
    }

    pub fn touch_secret(&self, id: Uuid) {
        self.secrets
            .lock()
            .expect("usage lock")
            .insert(id, clock::now());
    }

    pub async fn flush<C: ConnectionTrait + TransactionTrait>(
        &self,
        db: &C,
    ) -> Result<(), sea_orm::DbErr> {
        let tokens = std::mem::take(&mut *self.tokens.lock().expect("usage lock"));
        let secrets = std::mem::take(&mut *self.secrets.lock().expect("usage lock"));
        let validations = self.validations.swap(0, Ordering::Relaxed);
        if tokens.is_empty() && secrets.is_empty() && validations == 0 {
            return Ok(());
        }
        let tx = db.begin().await?;
        if validations > 0 {
            crate::domain::stats::add_to_today(&tx, validations, 0).await?;
        }
        for (id, (at, ip)) in tokens {
            token::Entity::update_many()
                .col_expr(token::Column::LastUsedAt, Expr::value(at))
                .col_expr(token::Column::LastUsedIp, Expr::value(ip))
                .filter(token::Column::Id.eq(id))
                .exec(&tx)
                .await?;
        }
        for (id, at) in secrets {
            client_secret::Entity::update_many()
                .col_expr(client_secret::Column::LastUsedAt, Expr::value(at))
                .filter(client_secret::Column::Id.eq(id))
                .exec(&tx)
                .await?;
        }
        tx.commit().await
    }
}
