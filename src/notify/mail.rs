//! E-mail over SMTP with `lettre`: `smtp://` uses STARTTLS when the server
//! offers it (and requires it when the URL holds credentials, so a password
//! never crosses the network in clear), `smtps://` implicit TLS.

use std::time::Duration;

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
        extension::ClientId,
    },
};

use crate::secret::Secret;

/// Longest wait for a connection to the SMTP server. lettre bounds nothing
/// after it: the sweeper bounds each attempt as a whole.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

impl Mailer {
    /// `url` was checked at start-up (`config`); `hello` is the name this
    /// server gives itself (the public URL's host).
    pub fn new(url: &Secret<String>, from: &str, hello: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(url.expose()).context("invalid SMTP URL (TESSERA_SMTP_URL)")?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let params = TlsParameters::new(host.clone())
            .context("cannot set up TLS for SMTP (TESSERA_SMTP_URL)")?;
        let credentials = !url.username().is_empty();
        let (tls, port) = match url.scheme() {
            "smtps" => (Tls::Wrapper(params), 465),
            // lettre would send AUTH in clear to a server (or a man in the
            // middle) that does not offer STARTTLS.
            _ if credentials => (Tls::Required(params), 25),
            _ => (Tls::Opportunistic(params), 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(port))
            .tls(tls)
            .hello_name(ClientId::Domain(hello.to_owned()))
            .timeout(Some(CONNECT_TIMEOUT));
        if credentials {
            builder = builder.credentials(Credentials::new(
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from: from.parse().context("invalid sender (TESSERA_SMTP_FROM)")?,
        })
    }

    /// Sends one plain-text message; the error says why not.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("invalid recipient address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}
