//! The OpenID Connect relying party (INTERFACE §10), built on the
//! `openidconnect` crate: discovery (cached, retried lazily), the
//! authorization request (code flow, PKCE S256, `state`, `nonce`), the code
//! exchange (`client_secret_basic`, redirects not followed) and the ID token
//! check (signature against the provider's JWKS, `iss`, `aud`, `exp`,
//! `nonce`). It knows nothing of users or sessions: the domain decides what
//! a verified identity may do.

pub mod settings;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthenticationFlow, AuthorizationCode, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
        CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
        CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
        CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
        CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
    },
    reqwest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

pub use settings::OidcSettings;

/// Discovery (with the provider's keys) is fetched again after this long,
/// so keys the provider rotates in are picked up.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// After a failed discovery, sign-in pages say so for this long before
/// discovery is tried again (so an unreachable provider does not slow
/// every page down).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Every claim of the ID token by name, so any configured claim (username,
/// groups) can be read.
#[derive(Debug, Deserialize, Serialize)]
pub struct AnyClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}
impl AdditionalClaims for AnyClaims {}

/// The discovery field of RFC 9207 §3, beyond what the crate parses.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IssInResponse {
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}
impl AdditionalProviderMetadata for IssInResponse {}

type Metadata = ProviderMetadata<
    IssInResponse,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type IdFields = IdTokenFields<
    AnyClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = Client<
    AnyClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What went wrong with the provider, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The issuer's configuration could not be fetched or is unusable. The
    /// reason (a connection error, say) is for the log, not the page.
    #[error(
        "the identity provider {issuer} (TESSERA_OIDC_ISSUER) cannot be reached or did not answer with a usable configuration (the server log says why)"
    )]
    Unavailable { issuer: String, reason: String },
    /// The token endpoint answered with an OAuth error (a used or foreign
    /// code, a wrong client secret, …).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The token endpoint could not be reached or answered nonsense; the
    /// reason is for the log.
    #[error(
        "the identity provider could not be reached to complete the sign-in, or did not answer properly (the server log says why)"
    )]
    Exchange(String),
    /// The ID token failed verification.
    #[error("the identity provider's ID token was not accepted: {0}")]
    IdToken(String),
}

impl OidcError {
    /// The provider could not be reached or answered nonsense: its failure
    /// (502), not the browser's.
    pub fn is_upstream(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Exchange(_))
    }

    /// What the page says, with the reason it leaves out: for the log and
    /// the audit record.
    pub fn detail(&self) -> String {
        match self {
            Self::Unavailable { reason, .. } | Self::Exchange(reason) => {
                format!("{self}: {reason}")
            }
            other => other.to_string(),
        }
    }
}

/// An authorization request about to be sent: the URL to send the browser
/// to, and what the callback needs to finish (kept by the caller).
pub struct AuthRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A person the provider vouched for, from a verified ID token.
#[derive(Debug)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    /// Every claim of the ID token.
    pub claims: Map<String, Value>,
}

struct Discovered {
    metadata: Arc<Metadata>,
    /// When to ask the provider again.
    until: Instant,
}

enum Cached {
    None,
    Ready(Discovered),
    Failed { reason: String },
}

/// What the provider last said, and when it was asked for it.
struct Answer {
    cached: Cached,
    /// When the discovery that gave this answer began, and ended.
    asked: Option<(Instant, Instant)>,
}

/// How long the sign-in page waits for a discovery already under way before
/// it says single sign-on is unavailable (or uses what the provider said
/// before): a provider that drops packets takes up to the client's timeout,
/// and the password form must not wait for it.
const PAGE_WAITS_FOR_DISCOVERY: Duration = Duration::from_secs(2);

/// The configured identity provider. Discovery happens lazily (and is
/// started in the background at start-up), so Tessera starts even while the
/// provider is down and sign-in pages say why single sign-on is unavailable.
pub struct Provider {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: reqwest::Client,
    answer: std::sync::Mutex<Answer>,
    /// Held while the provider is asked: one discovery at a time.
    asking: Mutex<()>,
}

impl Provider {
    /// The redirect URI is `{public URL}/login/oidc/callback`.
    pub fn new(settings: OidcSettings, public_url: &str) -> anyhow::Result<Self> {
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| {
            anyhow::anyhow!(
                "invalid issuer (TESSERA_OIDC_ISSUER) {:?}: {e}",
                settings.issuer
            )
        })?;
        let redirect = RedirectUrl::new(format!("{public_url}/login/oidc/callback"))
            .map_err(|e| anyhow::anyhow!("invalid public URL (TESSERA_PUBLIC_URL): {e}"))?;
        // No redirects: the crate's advice against SSRF through a redirected
        // token or discovery request.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            settings,
            issuer,
            redirect,
            http,
            answer: std::sync::Mutex::new(Answer {
                cached: Cached::None,
                asked: None,
            }),
            asking: Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    fn answer(&self) -> std::sync::MutexGuard<'_, Answer> {
        self.answer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the provider said, if it is still good (or failed too recently
    /// to ask again), unless `refresh`.
    fn cached(&self, refresh: bool) -> Option<Result<Arc<Metadata>, OidcError>> {
        let answer = self.answer();
        let recent = answer
            .asked
            .is_some_and(|(_, ended)| ended.elapsed() < RETRY_AFTER_FAILURE);
        match &answer.cached {
            Cached::Ready(d) if !refresh && Instant::now() < d.until => {
                Some(Ok(d.metadata.clone()))
            }
            Cached::Failed { reason } if !refresh && recent => {
                Some(Err(self.unavailable(reason.clone())))
            }
            _ => None,
        }
    }

    /// The last answer whatever its age: for a caller that will not wait.
    fn last_answer(&self) -> Result<Arc<Metadata>, OidcError> {
        match &self.answer().cached {
            Cached::Ready(d) => Ok(d.metadata.clone()),
            Cached::Failed { reason } => Err(self.unavailable(reason.clone())),
            Cached::None => Err(self.unavailable("no answer yet".to_owned())),
        }
    }

    /// The provider's configuration: cached, fetched when missing or old
    /// (or when `refresh`), and after a failure not tried again for a few
    /// seconds. One request at a time asks the provider, without holding
    /// the cache; the others wait for its answer.
    async fn metadata(&self, refresh: bool) -> Result<Arc<Metadata>, OidcError> {
        if let Some(answer) = self.cached(refresh) {
            return answer;
        }
        let since = Instant::now();
        let _asking = self.asking.lock().await;
        // The request this one waited for may have asked already: its answer
        // will do, for a refresh only if it began asking after this one
        // wanted to (the keys it fetched may predate a rotation).
        let began_since = self.answer().asked.is_some_and(|(began, _)| began >= since);
        if refresh && began_since {
            return self.last_answer();
        }
        if !refresh && let Some(answer) = self.cached(false) {
            return answer;
        }
        let began = Instant::now();
        let result = Metadata::discover_async(self.issuer.clone(), &self.http).await;
        let mut answer = self.answer();
        answer.asked = Some((began, Instant::now()));
        match result {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                answer.cached = Cached::Ready(Discovered {
                    metadata: metadata.clone(),
                    until: Instant::now() + METADATA_TTL,
                });
                Ok(metadata)
            }
            Err(e) => {
                let reason = error_chain(&e);
                tracing::warn!(issuer = %self.settings.issuer, %reason, "single sign-on: discovery failed (TESSERA_OIDC_ISSUER)");
                // A provider that answered before keeps working on what it
                // said, and is asked again only after the usual pause: each
                // sign-in page would otherwise wait on another discovery.
                if let Cached::Ready(d) = &mut answer.cached {
                    d.until = Instant::now() + RETRY_AFTER_FAILURE;
                    return Ok(d.metadata.clone());
                }
                answer.cached = Cached::Failed {
                    reason: reason.clone(),
                };
                Err(self.unavailable(reason))
            }
        }
    }

    fn unavailable(&self, reason: String) -> OidcError {
        OidcError::Unavailable {
            issuer: self.settings.issuer.clone(),
            reason,
        }
    }

    /// Discovers the provider now; `Err` says why sign-in is unavailable.
    pub async fn check(&self) -> Result<(), OidcError> {
        self.metadata(false).await.map(|_| ())
    }

    /// [`Self::check`] for a page: the provider is asked in the background,
    /// and the page waits for its answer only briefly (see
    /// [`PAGE_WAITS_FOR_DISCOVERY`]), then goes by the last answer.
    pub async fn check_for_page(self: &Arc<Self>) -> Result<(), OidcError> {
        if let Some(answer) = self.cached(false) {
            return answer.map(|_| ());
        }
        let me = self.clone();
        let asking = tokio::spawn(async move { me.metadata(false).await });
        match tokio::time::timeout(PAGE_WAITS_FOR_DISCOVERY, asking).await {
            Ok(Ok(answer)) => answer.map(|_| ()),
            _ => self.last_answer().map(|_| ()),
        }
    }

    fn client(&self, metadata: &Metadata) -> OidcClient {
        OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().clone(),
            )),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Whether the provider says it names itself (`iss`) in every
    /// authorization response (RFC 9207 §3); false while its configuration
    /// cannot be had (the callback then fails for that reason anyway).
    pub async fn promises_iss(&self) -> bool {
        self.metadata(false).await.is_ok_and(|m| {
            m.additional_metadata()
                .authorization_response_iss_parameter_supported
        })
    }

    /// A new authorization request: code flow, PKCE S256, fresh `state` and
    /// `nonce`.
    pub async fn begin(&self) -> Result<AuthRequest, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(&metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthRequest {
            url: url.to_string(),
            state: state.into_secret(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.into_secret(),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID
    /// token against the provider's keys, issuer, this client and `nonce`.
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(&metadata);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    OidcError::Refused(match r.error_description() {
                        Some(d) => format!("{} ({d})", r.error().as_ref()),
                        None => r.error().as_ref().to_owned(),
                    })
                }
                other => OidcError::Exchange(error_chain(&other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let take =
            |c: &openidconnect::IdTokenClaims<AnyClaims, CoreGenderClaim>| VerifiedIdentity {
                issuer: c.issuer().to_string(),
                subject: c.subject().to_string(),
                // Standard and additional claims alike, by name (the crate
                // parses the standard ones into fields of their own).
                claims: match serde_json::to_value(c) {
                    Ok(Value::Object(all)) => all,
                    _ => c.additional_claims().claims.clone(),
                },
            };
        match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => Ok(take(claims)),
            // A key the provider rotated in since discovery: fetch its keys
            // again, once.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.metadata(true).await?;
                let client = self.client(&fresh);
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map(take)
                    .map_err(|e| OidcError::IdToken(error_chain(&e)))
            }
            Err(e) => Err(OidcError::IdToken(error_chain(&e))),
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
