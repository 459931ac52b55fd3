//! Prometheus metrics: request counts and latencies per route, tokens issued,
//! validations and failures.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    issued: IntCounterVec,
    validations: IntCounterVec,
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
            validations,
        }
    }
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    pub fn issued(&self, kind: &str) {
        self.issued.with_label_values(&[kind]).inc();
    }

    pub fn validation(&self, ok: bool) {
        self.validations
            .with_label_values(&[if ok { "valid" } else { "invalid" }])
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).unwrap_or_default()
    }
}
