//! Schema migrations for Tessera, portable across SQLite and PostgreSQL.
//!
//! Migrations run at server start-up and before every CLI command; they are the
//! only way the schema is built (tests included), so both backends always agree.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_daily_counts;
mod m20261201_000001_email_and_hints;
mod m20261201_000002_login_attempts;
mod m20261201_000003_token_indexes;
mod m20261201_110000_form_nonces;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_daily_counts::Migration),
            Box::new(m20261201_000001_email_and_hints::Migration),
            Box::new(m20261201_000002_login_attempts::Migration),
            Box::new(m20261201_000003_token_indexes::Migration),
            Box::new(m20261201_110000_form_nonces::Migration),
        ]
    }
}
