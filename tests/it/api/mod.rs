//! The management API `/api/v1` and its OpenAPI document, against the real
//! binary on both backends. One module per area, each using
//! `crate::common::{Api, Reply}`; a new area is one file here and one `mod`
//! line below.

mod authz;
mod bad_input;
pub(crate) mod client_assertions;
mod client_throttle;
mod emails_and_hints;
mod grace_rotation;
mod introspect_grant;
mod leaks;
mod machine_users;
mod managers;
pub mod minting;
mod notify_people;
mod openapi;
mod pagination;
mod private_key_jwt;
mod properties;
mod readme;
mod reminders;
mod resource_servers;
mod retention;
mod robustness;
mod scope_resources;
mod tokens;
mod usage_history;
mod users_scopes_audit;
mod webhooks;
