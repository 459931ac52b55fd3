//! What every OAuth endpoint reads and answers: a strict form body, the
//! client's credentials (HTTP Basic, form fields, or a signed assertion:
//! `private_key_jwt`) and their check, throttled per address, and the
//! no-store headers of token responses.

use std::{
    borrow::Cow,
    collections::{HashMap, hash_map},
    net::IpAddr,
    sync::Arc,
};

use actix_web::{HttpRequest, http::header, web};
use base64::{Engine, engine::general_purpose::STANDARD};

use super::throttle::{ClientAuthThrottle, Verdict};
use crate::{
    http::{body::Body, client_ip, errors::OAuthError},
    jwt::client_keys::{ASSERTION_TYPE, claimed_client},
    secret::Digest,
    state::AppState,
    storage::{
        entities::principal,
        recorder::{Entry, JtiClaim, Outcome},
    },
};

/// A form-encoded body with each parameter at most once (RFC 6749 §3.2),
/// borrowed from the body where nothing needed decoding (a token or an
/// assertion, usually: no copy of a long value per request).
pub struct Form<'a>(HashMap<Cow<'a, str>, Cow<'a, str>>);

/// The body, or its refusal in the OAuth shape (RFC 6749 §5.2), a body over
/// the limit included, which actix would answer in text.
pub fn read_body(body: Body) -> Result<web::Bytes, OAuthError> {
    body.0.map_err(OAuthError::body)
}

impl<'a> Form<'a> {
    pub fn parse(req: &HttpRequest, body: &'a [u8]) -> Result<Self, OAuthError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "expected Content-Type: application/x-www-form-urlencoded",
            ));
        }
        let Ok(body) = std::str::from_utf8(body) else {
            return Err(OAuthError::invalid_request("the request body is not UTF-8"));
        };
        let mut params = HashMap::new();
        for (key, value) in pairs(body) {
            // Percent-encoded bytes that are not UTF-8 decode to U+FFFD.
            if key.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(OAuthError::invalid_request("parameters must be UTF-8"));
            }
            match params.entry(key) {
                hash_map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                hash_map::Entry::Occupied(taken) if taken.key() == "resource" => {
                    // RFC 8707 §2: Tessera issues a token for one resource.
                    return Err(OAuthError::new(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "invalid_target",
                        "name one resource per token request",
                    ));
                }
                hash_map::Entry::Occupied(taken) => {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {:?} is repeated",
                        taken.key()
                    )));
                }
            }
        }
        Ok(Self(params))
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|v| v.as_ref())
            .filter(|v| !v.is_empty())
    }
}

/// The body's `name=value` pairs, decoded as `form_urlencoded::parse` does;
/// a pair with nothing to decode is borrowed as it is, sparing three passes
/// over a long value.
fn pairs(body: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    body.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        if pair.contains(['%', '+']) {
            form_urlencoded::parse(pair.as_bytes())
                .next()
                .unwrap_or((Cow::Borrowed(""), Cow::Borrowed("")))
        } else {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (Cow::Borrowed(key), Cow::Borrowed(value))
        }
    })
}

/// How a client proves who it is.
pub enum Proof {
    /// `client_secret_basic` or `client_secret_post`.
    Secret(String),
    /// `private_key_jwt`: a JWT signed with one of the client's keys.
    Assertion(String),
}

/// Credentials as presented, before they are checked.
pub struct ClientCredentials {
    pub client_id: String,
    pub proof: Proof,
    pub basic: bool,
}

impl ClientCredentials {
    pub fn secret(&self) -> Option<&str> {
        match &self.proof {
            Proof::Secret(s) => Some(s),
            Proof::Assertion(_) => None,
        }
    }
}

/// One `application/x-www-form-urlencoded` value (`+` is a space), or `None`
/// when its bytes are not UTF-8. A raw `&` stays part of the value. Most
/// values have nothing to decode and are taken as they are.
fn form_decoded(s: &str) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_owned());
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// Reads client credentials from HTTP Basic, the form or a client assertion,
/// refusing more than one method at once. `Ok(None)` when none were sent.
/// The request's client credentials, if it has any. Ones that cannot even be
/// read (a malformed Basic header or assertion, an id without a secret) are a
/// failure for the address's throttle like a wrong secret (INTERFACE §8).
pub fn client_credentials(
    state: &AppState,
    req: &HttpRequest,
    form: &Form,
) -> Result<Option<ClientCredentials>, OAuthError> {
    read_credentials(req, form).map_err(|e| {
        if e.code == "invalid_client" {
            let address = crate::address::limit_key(client_ip(req).as_deref());
            failed(&state.client_auth, &address, e.challenge.is_some())
        } else {
            e
        }
    })
}

pub fn read_credentials(
    req: &HttpRequest,
    form: &Form,
) -> Result<Option<ClientCredentials>, OAuthError> {
    // Two would leave which client this is to whoever reads first.
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .nth(1)
        .is_some()
    {
        return Err(OAuthError::invalid_request(
            "send at most one Authorization header",
        ));
    }
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        if req.headers().contains_key(header::AUTHORIZATION) || form.get("client_secret").is_some()
        {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        return assertion_credentials(form).map(Some);
    }
    // RFC 6749 §3.2.1 lets a client name itself with `client_id` beside
    // Basic (many libraries do); only a second credential is two methods.
    let in_form = form.get("client_secret").is_some();
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => Ok(Some(ClientCredentials {
                client_id: id.to_owned(),
                proof: Proof::Secret(secret.to_owned()),
                basic: false,
            })),
            (None, None) => Ok(None),
            _ => Err(OAuthError::invalid_client(false)),
        };
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_client(true))?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        // A Bearer header is not client authentication (introspection accepts it separately).
        return if in_form {
            Err(OAuthError::invalid_request(
                "use one client authentication method",
            ))
        } else {
            Ok(None)
        };
    }
    if in_form {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not Basic and form fields both",
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client(true))?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding;
    // bytes that are not UTF-8 once decoded are refused, not replaced.
    let unescape = |s: &str| form_decoded(s).ok_or_else(|| OAuthError::invalid_client(true));
    let (client_id, secret) = (unescape(id)?, unescape(secret)?);
    if client_id.is_empty() {
        return Err(OAuthError::invalid_client(true));
    }
    if form
        .get("client_id")
        .is_some_and(|named| named != client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id differs from the client in the Basic credentials",
        ));
    }
    Ok(Some(ClientCredentials {
        client_id,
        proof: Proof::Secret(secret),
        basic: true,
    }))
}

/// RFC 7523 §2.2: `client_assertion_type` and `client_assertion`; the client
/// is the assertion's `iss` (= `sub`), and a `client_id` sent too must match.
/// Anything wrong is `invalid_client`, without saying what.
fn assertion_credentials(form: &Form) -> Result<ClientCredentials, OAuthError> {
    let refused = || OAuthError::invalid_client(false);
    if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(refused());
    }
    let assertion = form.get("client_assertion").ok_or_else(refused)?;
    let client_id = claimed_client(assertion).ok_or_else(refused)?;
    if form.get("client_id").is_some_and(|id| id != client_id) {
        return Err(refused());
    }
    Ok(ClientCredentials {
        client_id,
        proof: Proof::Assertion(assertion.to_owned()),
        basic: false,
    })
}

/// A client whose credentials hold; `jti` (a client assertion's) must be
/// recorded before the request is done: with the token it buys, or alone by
/// [`authenticate_client_now`].
pub struct Client {
    pub machine: Arc<principal::Model>,
    pub jti: Option<JtiClaim>,
}

/// Checks presented credentials: the enabled machine user, or `invalid_client`
/// (401, or 429 once the address has failed too often: see `throttle`).
pub async fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    creds: &ClientCredentials,
) -> Result<Client, OAuthError> {
    let throttle = &state.client_auth;
    let address = crate::address::limit_key(client_ip(req).as_deref());
    // Checked whatever the address's state: a working client behind the same
    // NAT as a guesser keeps working (INTERFACE §8). Only a failure counts.
    let checked = match &creds.proof {
        Proof::Secret(secret) => state
            .tokens
            .authenticate_client(&creds.client_id, secret, Digest::of(secret))
            .await
            .map(|found| found.map(|machine| Client { machine, jti: None })),
        Proof::Assertion(assertion) => {
            // `aud` may be this endpoint's URL (or the issuer).
            let endpoint = format!("{}{}", state.tokens.issuer(), req.path());
            state
                .tokens
                .authenticate_assertion(&creds.client_id, assertion, &endpoint)
                .await
                .map(|found| {
                    found.map(|(machine, jti)| Client {
                        machine,
                        jti: Some(jti),
                    })
                })
        }
    };
    match checked {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(failed(throttle, &address, creds.basic)),
        Err(e) => Err(OAuthError::from(e)),
    }
}

/// [`authenticate_client`] for endpoints that issue nothing: an assertion's
/// `jti` is recorded at once, and a replay refused like any bad credential.
pub async fn authenticate_client_now(
    state: &AppState,
    req: &HttpRequest,
    creds: &ClientCredentials,
) -> Result<Arc<principal::Model>, OAuthError> {
    let client = authenticate_client(state, req, creds).await?;
    if let Some(jti) = client.jti {
        let outcome = state
            .tokens
            .recorder
            .record(Entry::Jti(jti))
            .await
            .map_err(|e| OAuthError::from(crate::domain::Error::from(e)))?;
        if outcome == Outcome::Replayed {
            return Err(replayed(state, req, creds));
        }
    }
    Ok(client.machine)
}

/// The refusal of credentials that held until the request was recorded: the
/// assertion's `jti` was found recorded before (a replay), or the client was
/// deleted meanwhile. A failure like any other for the address's throttle.
pub fn replayed(state: &AppState, req: &HttpRequest, creds: &ClientCredentials) -> OAuthError {
    tracing::debug!(
        client_id = creds.client_id,
        "client refused when its request was recorded: a replayed assertion, or deleted meanwhile"
    );
    let address = crate::address::limit_key(client_ip(req).as_deref());
    failed(&state.client_auth, &address, creds.basic)
}

fn failed(throttle: &ClientAuthThrottle, address: &IpAddr, basic: bool) -> OAuthError {
    match throttle.failed(address) {
        Verdict::Throttled(wait) => OAuthError::throttled(wait),
        Verdict::Allowed => OAuthError::invalid_client(basic),
    }
}

pub fn no_store(res: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
}

#[cfg(test)]
mod tests {
    use super::{form_decoded, pairs};

    #[test]
    fn basic_parts_decode_as_form_values() {
        for (raw, want) in [
            ("plain-Secret_0.9~", Some("plain-Secret_0.9~")),
            ("a+b%20c", Some("a b c")),
            ("%2B%26%3A", Some("+&:")),
            ("a&b=c", Some("a&b=c")),
            ("%E2%82%AC", Some("€")),
            ("100%", Some("100%")),
            ("%zz", Some("%zz")),
            ("%FF", None),
        ] {
            assert_eq!(form_decoded(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn pairs_decode_as_form_urlencoded_does() {
        for body in [
            "",
            "&&",
            "grant_type=client_credentials&scope=a+b",
            "token=eyJ.abc-_.x&token_type_hint=access_token",
            "a=%41%2B%20b&=empty-name&no-value&x==y",
            "bad=%FF&c=%E2%82%AC",
            "k=v&",
        ] {
            let ours: Vec<(String, String)> = pairs(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, theirs, "{body}");
        }
    }
}
