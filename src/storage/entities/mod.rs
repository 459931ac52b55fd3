//! sea-orm entities, one per table. Only `storage` and `domain` use them.

pub mod audit_event;
pub mod client_assertion_jti;
pub mod client_jwks;
pub mod client_secret;
pub mod daily_count;
pub mod form_nonce;
pub mod leak_report;
pub mod login_attempt;
pub mod machine_user_manager;
pub mod oidc_identity;
pub mod oidc_login;
pub mod outbox;
pub mod principal;
pub mod resource_server;
pub mod resource_server_scope;
pub mod scope;
pub mod session;
pub mod setup_code;
pub mod signing_key;
pub mod token;
pub mod token_reminder;
pub mod token_use;
pub mod webhook;
pub mod webhook_delivery;
