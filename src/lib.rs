//! Tessera: a self-hosted token service. See README.md for what it does and
//! `../shared/INTERFACE.md` for its contract.

pub mod address;
pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod duration;
pub mod http;
#[cfg(test)]
mod input_props;
pub mod jwt;
pub mod kinds;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod oidc;
pub mod secret;
pub mod state;
pub mod storage;
pub mod token_service;
pub mod web;
