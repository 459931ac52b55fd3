//! Property tests for the parsers of outside input that need no server:
//! `Authorization` headers (Basic and Bearer), form bodies (OAuth and web),
//! scope strings and usernames. Each either yields a well-formed value or a
//! 4xx error; none panics. Dates, durations, lifetimes and JWTs are tested
//! beside their parsers (`domain::clock`, `config`, `domain::tokens`,
//! `token_service`, `api::audit`, `web::admin`).

use actix_web::{
    HttpRequest, ResponseError,
    http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue},
    test::TestRequest,
};
use proptest::{collection::vec, prelude::*};

use crate::{
    domain::{ScopeSet, Username, valid_scope_name},
    http::auth::{BearerHeader, bearer_token},
    oauth::{Form, read_credentials},
    web::page::FormData,
};

fn request(authorization: Option<&[u8]>, content_type: &str) -> HttpRequest {
    let mut req = TestRequest::post().insert_header((CONTENT_TYPE, content_type));
    if let Some(value) = authorization.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        req = req.insert_header((AUTHORIZATION, value));
    }
    req.to_http_request()
}

/// Header values: text, `Basic`/`Bearer` with text, and Basic with base64 of anything.
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    prop_oneof![
        vec(any::<u8>(), 0..64),
        ("(?i)(basic|bearer)", "[ \t]{0,2}", "[ -~]{0,60}")
            .prop_map(|(s, sp, t)| format!("{s}{sp}{t}").into_bytes()),
        vec(any::<u8>(), 0..48).prop_map(|b| format!("Basic {}", STANDARD.encode(b)).into_bytes()),
        ("[ -~]{0,16}", "[ -~]{0,16}").prop_map(|(i, s)| {
            format!("Basic {}", STANDARD.encode(format!("{i}:{s}"))).into_bytes()
        }),
    ]
}

/// Form bodies: bytes, and pairs with OAuth's names, percent-encoded or not.
fn form_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..128),
        vec(
            (
                prop::sample::select(vec![
                    "grant_type",
                    "client_id",
                    "client_secret",
                    "scope",
                    "token",
                    "",
                ]),
                any::<String>(),
                any::<bool>(),
            ),
            0..5,
        )
        .prop_map(|pairs| {
            let mut out = String::new();
            for (k, v, raw) in pairs {
                let v = if raw {
                    v
                } else {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
                };
                out.push_str(&format!("{k}={v}&"));
            }
            out.into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bearer_headers_yield_one_clean_token_or_nothing(value in authorization()) {
        let req = request(Some(&value), "text/plain");
        match bearer_token(&req) {
            BearerHeader::Token(t) => {
                prop_assert!(!t.is_empty() && !t.contains(' '), "{t:?}");
                let text = std::str::from_utf8(&value).unwrap();
                prop_assert!(text[..6].eq_ignore_ascii_case("bearer"), "{text:?}");
            }
            BearerHeader::Missing => prop_assert!(HeaderValue::from_bytes(&value).is_err()),
            BearerHeader::OtherScheme => {
                let text = std::str::from_utf8(&value).unwrap();
                let scheme = text.split_once(' ').map_or(text, |(scheme, _)| scheme);
                prop_assert!(!scheme.eq_ignore_ascii_case("bearer"), "{text:?}");
            }
            BearerHeader::Malformed => {}
        }
    }

    #[test]
    fn client_credentials_parse_or_give_a_4xx(
        value in prop::option::of(authorization()),
        body in form_body(),
        content_type in prop::sample::select(vec![
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/json",
            "",
        ]),
    ) {
        let req = request(value.as_deref(), content_type);
        let form = match Form::parse(&req, &body) {
            Ok(form) => form,
            Err(e) => {
                prop_assert!(e.status_code().is_client_error());
                return Ok(());
            }
        };
        match read_credentials(&req, &form) {
            Ok(Some(creds)) => prop_assert!(!creds.client_id.is_empty()),
            Ok(None) => {}
            Err(e) => prop_assert!(e.status_code().is_client_error(), "{:?}", e.status_code()),
        }
    }

    #[test]
    fn web_forms_parse_or_give_a_4xx(body in form_body()) {
        match FormData::parse(&body) {
            Ok(form) => {
                if let Some(v) = form.text("scope") {
                    prop_assert!(!v.contains('\0'));
                }
            }
            Err(e) => prop_assert!(e.status_code().is_client_error()),
        }
    }

    #[test]
    fn scope_strings_split_into_clean_names(raw in any::<String>(), names in vec(any::<String>(), 0..4)) {
        let set = ScopeSet::from_stored(&raw);
        for name in set.iter() {
            // RFC 6749 §3.3: scope tokens are separated by spaces.
            prop_assert!(!name.is_empty() && !name.contains(|c: char| c.is_ascii_whitespace()), "{name:?}");
        }
        prop_assert_eq!(ScopeSet::from_stored(&set.to_string()), set);
        let _ = ScopeSet::from_names(names.iter().map(|s| s.trim().to_owned()));
        for name in &names {
            if valid_scope_name(name) {
                prop_assert!(name.len() <= 64 && !name.contains(char::is_whitespace));
            }
        }
    }

    #[test]
    fn usernames_parse_or_name_their_field(raw in any::<String>()) {
        if let Ok(u) = Username::parse(&raw) {
            prop_assert_eq!(u.as_str(), raw.as_str());
        }
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded; a raw `&` is part
/// of the value, and an escape that is not UTF-8 is refused.
#[test]
fn basic_credentials_decode_exactly() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let creds = |raw: &str| {
        let header = format!("Basic {}", STANDARD.encode(raw));
        let req = request(Some(header.as_bytes()), "application/x-www-form-urlencoded");
        let form = Form::parse(&req, b"grant_type=client_credentials").unwrap();
        read_credentials(&req, &form).map(|c| {
            c.map(|c| {
                (
                    c.client_id.clone(),
                    c.secret().unwrap_or_default().to_owned(),
                )
            })
        })
    };
    assert_eq!(
        creds("svc:tsc_a&b+c%2Bd").unwrap(),
        Some(("svc".to_owned(), "tsc_a&b c+d".to_owned()))
    );
    let refused = creds("svc:tsc_%FF").unwrap_err();
    assert_eq!(refused.status_code(), 401);
}
