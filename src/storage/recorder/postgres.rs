//! The PostgreSQL store: a connection of the writer's own, driven by a
//! runtime on the writer's thread (a connection's I/O is driven by the
//! runtime that opened it; one opened by an HTTP worker would wake that
//! worker for every batch). A batch is one statement with data-modifying
//! CTEs, atomic by itself, its rows passed as JSON parameters: one round trip.

use std::{collections::HashSet, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement};
use serde::{Serialize, Serializer};
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

use super::batch::{Entry, Failure, JtiClaim, Outcome, Store, TokenRecord, simple};
use crate::{clock, storage::entities::daily_count};

/// The longest a batch may take: a statement stuck behind a lock, or a
/// connection whose server vanished without a reset, fails its batch then
/// instead of holding every token request queued behind it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Postgres {
    /// Dropped before the runtime that drives its connection.
    db: DatabaseConnection,
    /// To open a fresh connection after one timed out mid-statement.
    options: PgConnectOptions,
    /// Built on the writer's thread, at its first batch: a runtime must not
    /// be dropped where blocking is not allowed, as it would be on the
    /// thread creating the recorder if the writer's thread failed to start.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Postgres {
    /// A pool of one connection to the database behind `db`, opened on
    /// first use, on the writer's thread.
    pub(super) fn new(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let options = (*db.get_postgres_connection_pool().connect_options()).clone();
        Ok(Self {
            db: connect(&options),
            options,
            runtime: None,
        })
    }
}

fn connect(options: &PgConnectOptions) -> DatabaseConnection {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .before_acquire(crate::storage::ping_if_idle)
        .acquire_timeout(crate::storage::ACQUIRE_TIMEOUT)
        .connect_lazy_with(options.clone());
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
}

impl Store for Postgres {
    fn write(&mut self, entries: &[Entry]) -> Result<Vec<Outcome>, Failure> {
        let runtime = match &mut self.runtime {
            Some(runtime) => runtime,
            empty => empty.insert(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Failure {
                        message: e.to_string(),
                        by_row: false,
                        outage: false,
                        owner_gone: false,
                    })?,
            ),
        };
        // The timer is made inside the runtime, whose clock it needs.
        let written = runtime.block_on(async {
            tokio::time::timeout(WRITE_TIMEOUT, write(&self.db, entries)).await
        });
        let Ok(written) = written else {
            // The connection may be mid-statement: it is dropped (inside
            // the runtime that drives it) and the next batch opens another.
            let _driving = runtime.enter();
            self.db = connect(&self.options);
            return Err(Failure {
                message: format!(
                    "the database did not answer within {} s",
                    WRITE_TIMEOUT.as_secs()
                ),
                by_row: false,
                outage: true,
                owner_gone: false,
            });
        };
        written.map_err(|e| {
            crate::storage::outage::note(&e);
            let outage = crate::storage::outage::is_outage(&e);
            Failure {
                // What the server refused; not a connection that failed, nor
                // a server shutting down or out of space (every entry would
                // fail alike, each waiting its timeout).
                by_row: !outage
                    && matches!(
                        e,
                        DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(_)))
                            | DbErr::Custom(_)
                    ),
                outage,
                owner_gone: matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
                ),
                message: e.to_string(),
            }
        })
    }
}

/// A token row as the statement reads it: with the id of the claim it
/// depends on, so the database itself skips tokens of replayed `jti`s.
#[derive(Serialize)]
struct TokenRow<'a> {
    #[serde(flatten)]
    token: &'a TokenRecord,
    #[serde(rename = "q", serialize_with = "simple_opt")]
    claim: Option<Uuid>,
}

fn simple_opt<S: Serializer>(id: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => simple(id, s),
        None => s.serialize_none(),
    }
}

/// Writes `entries` atomically in one round trip: the `jti`s, the tokens
/// whose `jti` (if any) was new, and today's issued count.
async fn write(db: &DatabaseConnection, entries: &[Entry]) -> Result<Vec<Outcome>, DbErr> {
    let claims: Vec<&JtiClaim> = entries.iter().filter_map(|e| e.parts().0).collect();
    let tokens: Vec<TokenRow<'_>> = entries
        .iter()
        .filter_map(|e| match e.parts() {
            (claim, Some(token)) => Some(TokenRow {
                token,
                claim: claim.map(|c| c.id),
            }),
            (_, None) => None,
        })
        .collect();
    let values = [
        to_json(&claims)?.into(),
        to_json(&tokens)?.into(),
        daily_count::day_key(clock::now().date()).into(),
    ];
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, STATEMENT, values);
    let fresh: HashSet<Uuid> = db
        .query_all(statement)
        .await?
        .iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect::<Result<_, _>>()?;
    Ok(entries
        .iter()
        .map(|e| match e.parts().0 {
            Some(claim) if !fresh.contains(&claim.id) => Outcome::Replayed,
            _ => Outcome::Committed,
        })
        .collect())
}

fn to_json<T: Serialize>(rows: &[T]) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|e| DbErr::Custom(e.to_string()))
}

/// One fixed statement whatever the batch size, so it stays prepared: $1 the
/// claims, $2 the tokens, $3 today. Claims conflicting with one recorded
/// before (or earlier in the same batch) are skipped, and so are the tokens
/// that depend on them; the ids of the claims recorded now come back.
const STATEMENT: &str = "WITH claims AS (
    INSERT INTO client_assertion_jtis (id, machine_user_id, jti, expires_at)
    SELECT i, m, j, e FROM json_to_recordset($1::json) AS x(i uuid, m uuid, j text, e timestamptz)
    ON CONFLICT DO NOTHING RETURNING id
), inserted AS (
    INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes, digest, kid, created_at, expires_at, hint, audience)
    SELECT i, j, 'client_credentials', o, 'client_credentials', '', s, d, k, c, e, h, a
    FROM json_to_recordset($2::json)
        AS x(i uuid, j text, o uuid, s text, d text, k text, c timestamptz, e timestamptz, h text, a text, q uuid)
    WHERE q IS NULL OR q IN (SELECT id FROM claims)
    RETURNING 1
), counted AS (
    INSERT INTO daily_counts (day, validations, issued)
    SELECT $3, 0, count(*) FROM inserted HAVING count(*) > 0
    ON CONFLICT (day) DO UPDATE SET issued = daily_counts.issued + excluded.issued
)
SELECT id FROM claims";
