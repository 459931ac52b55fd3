//! What every request handler shares: the database, settings, the token
//! service, metrics and the throttles. Built once at start-up (`app`).

use std::sync::Arc;

use crate::{
    config::Settings,
    domain::{Policy, issuance::Issuer},
    metrics::Metrics,
    oauth::throttle::ClientAuthThrottle,
    oidc::Provider,
    secret::MasterKey,
    storage::Db,
    token_service::TokenService,
};

pub struct AppState {
    pub db: Db,
    pub settings: Settings,
    pub master: MasterKey,
    pub tokens: Arc<TokenService>,
    pub metrics: Metrics,
    /// Failed client authentication per address (INTERFACE §8).
    pub client_auth: ClientAuthThrottle,
    /// Leak reports per address (INTERFACE §12).
    pub leak_reports: crate::http::rate::PerAddress,
    /// The identity provider, when single sign-on is on (INTERFACE §10).
    pub oidc: Option<Arc<Provider>>,
}

impl AppState {
    /// What the domain needs to issue a token on this server.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            db: &self.db,
            signer: &self.tokens.signer,
            recorder: &self.tokens.recorder,
            metrics: Some(&self.metrics),
        }
    }

    pub fn policy(&self) -> Policy {
        Policy {
            max_token_lifetime: self.settings.max_token_lifetime.seconds,
        }
    }
}
