//! What every handler shares over HTTP: body limits and extractor errors,
//! the client's address, Bearer authentication (`auth`), the request
//! middleware, and the one mapping of errors to responses and error pages
//! (`errors`). Routes are registered at start-up (`crate::app`).

pub mod auth;
pub mod body;
pub mod errors;
pub mod page;
pub mod rate;

use std::{net::IpAddr, time::Instant};

use actix_web::{
    HttpRequest,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::QueryPayloadError,
    http::{Method, header},
    middleware::Next,
    web,
};

use crate::state::AppState;
use errors::ApiError;

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    // serde's words (`duplicate field \`limit\``) without actix's prefix.
    let QueryPayloadError::Deserialize(cause) = &err else {
        return ApiError::BadRequest(format!("invalid query string: {err}")).into();
    };
    ApiError::BadRequest(format!("invalid query string: {cause}")).into()
}

/// The client's address, as text (see [`client_addr`]).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    client_addr(req).map(|a| a.to_string())
}

/// The client's address: the peer's, unless the peer is a trusted proxy
/// (`TESSERA_TRUSTED_PROXIES`; none by default), whose `X-Forwarded-For`
/// then names it.
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let trusted = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !state.settings.trusted_proxies.is_empty() => {
            &state.settings.trusted_proxies
        }
        _ => return Some(peer),
    };
    let hops = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok());
    Some(forwarded_client(peer, trusted, hops))
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Walks `X-Forwarded-For` from its end, where the nearest proxy wrote, for
/// the first address that is not a trusted proxy: everything left of it was
/// written by the client and may be anything. Stops at an entry that is not
/// an address, keeping the last one that was.
fn forwarded_client<'a>(
    peer: IpAddr,
    trusted: &[ipnet::IpNet],
    headers: impl Iterator<Item = &'a str>,
) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|net| net.contains(a));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers.flat_map(|h| h.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let hop = hop.trim();
        // Some proxies add the port: `192.0.2.1:5678`, `[2001:db8::1]:443`.
        let Some(addr) = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        else {
            break;
        };
        client = addr.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// Where HEAD is answered as GET: the API and the probes, whose GETs only
/// read. Not the pages: one of them (a secret shown once) is used up by
/// being fetched.
fn head_is_get(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Counts and times every request by its route pattern (not its path, which
/// would carry ids) and a known method, adds headers every response should
/// have, and holds the request's body until the answer is sent
/// ([`body::hold`]). The outermost middleware: one outside it that boxed or
/// replaced the answer's body would drop what it holds. Middleware inside it
/// answers refusals rather than returning `Err`: an error reaches actix
/// without the held body (a clone of the request kept here to answer it
/// would break routing, which needs the request unshared). See
/// `crate::metrics` for why labels come from closed sets.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    if method == Method::HEAD && head_is_get(req.path()) {
        // RFC 9110 §9.3.2: HEAD is GET without the content. The connection
        // knows the request was HEAD and sends no body, keeping the length.
        req.head_mut().method = Method::GET;
    }
    let held = body::hold(&mut req);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        // Nothing of a URL leaves the site, and our own form posts carry
        // their `Origin` (`no-referrer` made it `null`: see `web::session`).
        header::HeaderValue::from_static("same-origin"),
    );
    if let Some(state) = state {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| crate::metrics::UNMATCHED.to_owned());
        state.metrics.request(
            &method,
            &route,
            res.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(res.map_body(|_, body| body::Answer::new(body, held)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, trusted: &[&str], headers: &[&str]) -> String {
        let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        forwarded_client(peer.parse().unwrap(), &trusted, headers.iter().copied()).to_string()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = ["10.0.0.0/8"];
        // Not a proxy: the header is the client's own word, ignored.
        assert_eq!(client("192.0.2.1", &proxies, &["203.0.113.7"]), "192.0.2.1");
        assert_eq!(
            client("10.0.0.5", &proxies, &["203.0.113.7"]),
            "203.0.113.7"
        );
        // The client's own entries left of the first untrusted hop are ignored.
        assert_eq!(
            client("10.0.0.5", &proxies, &["1.1.1.1, 203.0.113.7, 10.0.0.9"]),
            "203.0.113.7"
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client("10.0.0.5", &proxies, &["1.1.1.1", "203.0.113.7"]),
            "203.0.113.7"
        );
        // Nothing but proxies: the farthest.
        assert_eq!(
            client("10.0.0.5", &proxies, &["10.1.1.1, 10.2.2.2"]),
            "10.1.1.1"
        );
        // No header, or garbage: the last address known.
        assert_eq!(client("10.0.0.5", &proxies, &[]), "10.0.0.5");
        assert_eq!(
            client("10.0.0.5", &proxies, &["203.0.113.7, unknown"]),
            "10.0.0.5"
        );
        // Ports and IPv4 mapped into IPv6.
        assert_eq!(
            client("10.0.0.5", &proxies, &["203.0.113.7:5678"]),
            "203.0.113.7"
        );
        assert_eq!(
            client("10.0.0.5", &proxies, &["[2001:db8::1]:443"]),
            "2001:db8::1"
        );
        assert_eq!(
            client("10.0.0.5", &proxies, &["::ffff:203.0.113.7"]),
            "203.0.113.7"
        );
    }
}
