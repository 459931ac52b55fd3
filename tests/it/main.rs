//! Every integration test, in one binary: the real `tessera` binary on a
//! random port, driven over HTTP (and its command line) on both backends.
//! One module per area; one shared harness in `common`.
//!
//!     cargo test --test it                # everything
//!     cargo test --test it api::          # one area
//!     cargo test --test it soak::         # the long run (bench/soak.sh)

mod common;

mod api;
mod browser;
mod foundation;
mod soak;
mod token_service;
mod web;
