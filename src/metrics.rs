//! Prometheus metrics: request counts and latencies per route, tokens issued,
//! validations and failures.
//!
//! Every label value comes from a closed set chosen here, never from a
//! client: each distinct value is a series kept in memory for the life of the
//! process, so a client-chosen label would let anyone grow it without bound.

use actix_web::http::Method;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::domain::TokenKind;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The method label: the standard methods, and `other` for any token a
/// client invents (actix accepts them all).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The status label: the codes Tessera answers with, and the class (`4xx`)
/// for any other, so the set stays small whatever a handler returns.
pub fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        301 => "301",
        302 => "302",
        303 => "303",
        304 => "304",
        307 => "307",
        308 => "308",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        409 => "409",
        411 => "411",
        413 => "413",
        414 => "414",
        415 => "415",
        422 => "422",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    issued: IntCounterVec,
    /// `tessera_token_validations_total`'s two children, looked up once:
    /// every API call counts one.
    valid: IntCounter,
    invalid: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tessera_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tessera_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let issued = IntCounterVec::new(
            Opts::new("tessera_tokens_issued_total", "Tokens issued by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let validations = IntCounterVec::new(
            Opts::new(
                "tessera_token_validations_total",
                "Bearer token validations by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        for c in [&requests, &issued, &validations] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        Self {
            registry,
            requests,
            latency,
            issued,
            valid: validations.with_label_values(&["valid"]),
            invalid: validations.with_label_values(&["invalid"]),
        }
    }
}

impl Metrics {
    /// `route` must be a route pattern (a closed set: the routes Tessera
    /// registers) or [`UNMATCHED`], never a path.
    pub fn request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, status_label(status)])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    pub fn issued(&self, kind: TokenKind) {
        self.issued.with_label_values(&[kind.as_str()]).inc();
    }

    pub fn validation(&self, ok: bool) {
        if ok { &self.valid } else { &self.invalid }.inc();
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn labels_come_from_closed_sets(token in "[A-Za-z!#$%&'*+.^_`|~-]{1,20}", status in 100u16..1000) {
            let Ok(method) = Method::from_bytes(token.as_bytes()) else { return Ok(()) };
            let label = method_label(&method);
            prop_assert!(label == "other" || label == token, "{label}");
            let label = status_label(status);
            prop_assert!(label.len() == 3, "{label}");
        }
    }

    #[test]
    fn a_flood_of_invented_methods_adds_one_series() {
        let metrics = Metrics::default();
        for i in 0..100 {
            let method = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
            metrics.request(&method, UNMATCHED, 405 + i % 2, 0.001);
        }
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("tessera_http_requests_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(!text.contains("M1"), "{text}");
    }
}
