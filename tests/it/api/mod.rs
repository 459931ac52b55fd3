//! The management API `/api/v1` and its OpenAPI document, against the real
//! binary on both backends. One module per area, each using
//! `crate::common::{Api, Reply}`; a new area is one file here and one `mod`
//! line below.

mod authz;
mod bad_input;
mod client_throttle;
mod emails_and_hints;
mod introspect_grant;
mod machine_users;
mod minting;
mod openapi;
mod pagination;
mod properties;
mod readme;
mod retention;
mod robustness;
mod scope_resources;
mod tokens;
mod users_scopes_audit;
