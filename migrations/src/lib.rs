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
mod m20261201_120000_notifications;
mod m20261201_130000_rotation;
mod m20261201_140000_single_sign_on;
mod m20261201_150000_client_keys_and_resources;
mod m20261201_160000_usage_leaks_managers;
mod m20261202_000001_foreign_key_indexes;
mod m20261202_000002_form_nonce_indexes;
mod m20261202_000003_outbox_token;
mod m20261202_000004_session_csrf_derived;

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
            Box::new(m20261201_120000_notifications::Migration),
            Box::new(m20261201_130000_rotation::Migration),
            Box::new(m20261201_140000_single_sign_on::Migration),
            Box::new(m20261201_150000_client_keys_and_resources::Migration),
            Box::new(m20261201_160000_usage_leaks_managers::Migration),
            Box::new(m20261202_000001_foreign_key_indexes::Migration),
            Box::new(m20261202_000002_form_nonce_indexes::Migration),
            Box::new(m20261202_000003_outbox_token::Migration),
            Box::new(m20261202_000004_session_csrf_derived::Migration),
        ]
    }
}
