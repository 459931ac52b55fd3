//! sea-orm entities, one per table. Only `storage` and `domain` use them.

pub mod audit_event;
pub mod client_secret;
pub mod daily_count;
pub mod form_nonce;
pub mod login_attempt;
pub mod principal;
pub mod scope;
pub mod session;
pub mod setup_code;
pub mod signing_key;
pub mod token;
