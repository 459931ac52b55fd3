//! What every request handler shares: the database, settings, the token
//! service, metrics and the throttles. Built once at start-up (`app`).

use std::sync::Arc;

use crate::{
    config::Settings, metrics::Metrics, oauth::throttle::ClientAuthThrottle, secret::MasterKey,
    storage::Db, token_service::TokenService,
};

pub struct AppState {
    pub db: Db,
    pub settings: Settings,
    pub master: MasterKey,
    pub tokens: Arc<TokenService>,
    pub metrics: Metrics,
    /// Failed client authentication per address (INTERFACE §8).
    pub client_auth: ClientAuthThrottle,
}
