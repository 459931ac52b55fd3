//! Settings: command-line flags, then `TESSERA_*` environment variables, then an
//! optional `tessera.toml`, then built-in defaults. Every setting has a working
//! default, and every bad value is reported as one line naming the setting.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

mod values;

pub use crate::oidc::settings::{OidcSettings, SignInSettings};
pub use crate::{
    duration::Dur,
    secret::{DatabaseUrl, MasterKey},
};
use crate::{
    kinds::KeyAlg,
    oidc::settings::{OidcArgs, OidcFile},
    secret::Secret,
};
pub use values::FailureLimit;
use values::{check_smtp_url, dur_list, dur_setting};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tessera.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_AUTH_FAILURES_PER_IP: &str = "30/5m";
pub const DEFAULT_LEAK_REPORTS_PER_IP: &str = "10/1m";
pub const DEFAULT_USAGE_FLUSH_INTERVAL: &str = "5s";

/// The settings flags; each falls back to its variable through clap's `env`.
#[derive(Args, Debug, Default, Clone)]
pub struct SettingsArgs {
    /// Configuration file (TOML); `tessera.toml` is read when present.
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATABASE_URL",
        value_name = "URL",
        // A PostgreSQL URL holds a password: `--help` must not print it.
        hide_env_values = true
    )]
    pub database_url: Option<DatabaseUrl>,
    /// Address to bind.
    #[arg(long, global = true, env = "TESSERA_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// External base URL: the `iss` of every token.
    #[arg(long, global = true, env = "TESSERA_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// `ES256`, `RS256` or `EdDSA` for newly created signing keys.
    #[arg(long, global = true, env = "TESSERA_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// 32 random bytes, base64 (`openssl rand -base64 32`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub master_key: Option<Secret<String>>,
    /// The `aud` of every token (default: the public URL).
    #[arg(long, global = true, env = "TESSERA_AUDIENCE", value_name = "AUD")]
    pub audience: Option<String>,
    /// Policy maximum lifetime of personal and machine tokens (e.g. `365d`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_MAX_TOKEN_LIFETIME",
        value_name = "DUR"
    )]
    pub max_token_lifetime: Option<String>,
    /// Log filter (`info`, `debug`, `tessera=debug,actix_web=warn`, …).
    #[arg(long, global = true, env = "TESSERA_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// How long records of expired client-credentials tokens are kept (e.g. `30d`).
    #[arg(long, global = true, env = "TESSERA_RETENTION", value_name = "DUR")]
    pub retention: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client: IP
    /// addresses or CIDR ranges, comma-separated (default: none).
    #[arg(
        long,
        global = true,
        env = "TESSERA_TRUSTED_PROXIES",
        value_name = "CIDR,…"
    )]
    pub trusted_proxies: Option<String>,
    /// Private or local networks webhooks may be delivered to: IP addresses
    /// or CIDR ranges, comma-separated (default: none, public addresses only).
    #[arg(
        long,
        global = true,
        env = "TESSERA_WEBHOOK_ALLOWED_NETWORKS",
        value_name = "CIDR,…"
    )]
    pub webhook_allowed_networks: Option<String>,
    /// How long audit events are kept (default: forever).
    #[arg(
        long,
        global = true,
        env = "TESSERA_AUDIT_RETENTION",
        value_name = "DUR"
    )]
    pub audit_retention: Option<String>,
    /// Failed client authentications allowed per address (`COUNT/DUR`, e.g. `30/5m`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_AUTH_FAILURES_PER_IP",
        value_name = "COUNT/DUR"
    )]
    pub auth_failures_per_ip: Option<String>,
    /// How often periodic work runs (secret removal, key promotion, …), e.g. `1m`.
    #[arg(long, global = true, env = "TESSERA_SWEEP_EVERY", value_name = "DUR")]
    pub sweep_every: Option<String>,
    /// Rotate the signing key automatically when the active key is this old (e.g. `90d`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_KEY_ROTATE_EVERY",
        value_name = "DUR"
    )]
    pub key_rotate_every: Option<String>,
    /// How long an automatically created key is published before it signs (default `1d`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_KEY_PUBLISH_FOR",
        value_name = "DUR"
    )]
    pub key_publish_for: Option<String>,
    /// Leak reports accepted per address (`COUNT/DUR`, default `10/1m`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_LEAK_REPORTS_PER_IP",
        value_name = "COUNT/DUR"
    )]
    pub leak_reports_per_ip: Option<String>,
    /// How often buffered token uses are written (default `5s`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_USAGE_FLUSH_INTERVAL",
        value_name = "DUR"
    )]
    pub usage_flush_interval: Option<String>,
    /// `smtp://[user:pass@]host[:port]` or `smtps://…`; unset: no e-mail.
    #[arg(
        long,
        global = true,
        env = "TESSERA_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<Secret<String>>,
    /// Sender of e-mail (default `Tessera <tessera@HOST>`, HOST from the public URL).
    #[arg(long, global = true, env = "TESSERA_SMTP_FROM", value_name = "ADDR")]
    pub smtp_from: Option<String>,
    /// How long before expiry each reminder goes out (e.g. `14d,7d,1d`).
    #[arg(long, global = true, env = "TESSERA_REMINDERS", value_name = "DUR,…")]
    pub reminders: Option<String>,
    /// Delays of webhook and e-mail retries after the first attempt (default `5s,5m,30m,2h,5h,10h`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_RETRY_SCHEDULE",
        value_name = "DUR,…"
    )]
    pub retry_schedule: Option<String>,
    /// Single sign-on and the password switch (INTERFACE §10).
    #[command(flatten)]
    pub sign_in: OidcArgs,
}

/// The optional `tessera.toml`: the same settings, snake_case keys.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<DatabaseUrl>,
    listen: Option<String>,
    public_url: Option<String>,
    signing_alg: Option<String>,
    master_key: Option<Secret<String>>,
    audience: Option<String>,
    max_token_lifetime: Option<String>,
    log: Option<String>,
    retention: Option<String>,
    audit_retention: Option<String>,
    trusted_proxies: Option<String>,
    webhook_allowed_networks: Option<String>,
    auth_failures_per_ip: Option<String>,
    sweep_every: Option<String>,
    key_rotate_every: Option<String>,
    key_publish_for: Option<String>,
    leak_reports_per_ip: Option<String>,
    usage_flush_interval: Option<String>,
    smtp_url: Option<Secret<String>>,
    smtp_from: Option<String>,
    reminders: Option<String>,
    retry_schedule: Option<String>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<Secret<String>>,
    oidc_scopes: Option<String>,
    oidc_username_claim: Option<String>,
    oidc_groups_claim: Option<String>,
    oidc_admin_groups: Option<String>,
    oidc_allowed_groups: Option<String>,
    oidc_name: Option<String>,
    password_login: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    pub public_url: String,
    pub signing_alg: KeyAlg,
    pub master_key: Option<MasterKey>,
    pub audience: String,
    pub max_token_lifetime: Dur,
    pub log: String,
    /// Records of client-credentials tokens are deleted this long after they expire.
    pub retention: Dur,
    /// Audit events older than this are deleted; `None` keeps them forever.
    pub audit_retention: Option<Dur>,
    /// Peers whose `X-Forwarded-For` is believed (`http::client_addr`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Private or local networks webhook deliveries may reach (`notify::egress`).
    pub webhook_allowed_networks: Vec<ipnet::IpNet>,
    pub auth_failures_per_ip: FailureLimit,
    /// How often periodic work looks for what is due.
    pub sweep_every: Dur,
    /// Automatic key rotation: `None` rotates by hand only.
    pub key_rotate_every: Option<Dur>,
    /// How long an automatically made key is published before it signs.
    pub key_publish_for: Dur,
    pub leak_reports_per_ip: FailureLimit,
    /// How often buffered token uses are written.
    pub usage_flush_interval: Dur,
    /// Validated `smtp://` or `smtps://` URL; `None`: no e-mail is sent.
    pub smtp_url: Option<Secret<String>>,
    pub smtp_from: String,
    /// Reminder thresholds, longest first, without duplicates.
    pub reminders: Vec<Dur>,
    /// Delays after the first delivery attempt (e-mail and webhooks).
    pub retry_schedule: Vec<Dur>,
    /// Password sign-in on or off, and single sign-on (INTERFACE §10).
    pub sign_in: SignInSettings,
}

/// A list of addresses (a host each) or CIDR ranges, for the setting `what`.
fn parse_networks(raw: &str, what: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    anyhow::anyhow!("invalid {what}: {item:?} is not an IP address or CIDR range")
                })
        })
        .collect()
}

impl Settings {
    pub fn load(args: &SettingsArgs) -> anyhow::Result<Self> {
        let file = read_file(args.config.as_deref())?;
        fn pick<T: Clone>(flag: &Option<T>, from_file: Option<T>) -> Option<T> {
            flag.clone().or(from_file)
        }

        let database_url = pick(&args.database_url, file.database_url)
            .unwrap_or_else(|| DatabaseUrl::from(DEFAULT_DATABASE_URL.to_owned()));
        let url_text = database_url.as_str();
        if !(url_text.starts_with("sqlite:")
            || url_text.starts_with("postgres://")
            || url_text.starts_with("postgresql://"))
        {
            bail!(
                "invalid database URL (TESSERA_DATABASE_URL): expected sqlite://… or postgres://…"
            );
        }
        url::Url::parse(url_text)
            .map_err(|e| anyhow::anyhow!("invalid database URL (TESSERA_DATABASE_URL): {e}"))?;

        let listen_raw =
            pick(&args.listen, file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw
            .parse::<SocketAddr>()
            .map_err(|_| anyhow::anyhow!("invalid listen address (TESSERA_LISTEN) {listen_raw:?}: expected an IP address and port, e.g. 127.0.0.1:8080 or [::]:8080"))?;

        let public_url = pick(&args.public_url, file.public_url)
            .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned());
        let parsed = url::Url::parse(&public_url).map_err(|e| {
            anyhow::anyhow!("invalid public URL (TESSERA_PUBLIC_URL) {public_url:?}: {e}")
        })?;
        // It is the tokens' issuer: RFC 8414 §2 allows no query or fragment,
        // and every endpoint's URL is built by appending to it.
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host().is_none()
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            bail!(
                "invalid public URL (TESSERA_PUBLIC_URL) {public_url:?}: expected http(s)://host[:port][/path], without a query, fragment or user name"
            );
        }
        // The issuer is compared as a string (RFC 8414 §3.3), so it is used
        // only as the URL parser writes it: `HTTP://X`, ` http://x` or
        // `http:x` would otherwise be an `iss` no client expects.
        let canonical = parsed.as_str().trim_end_matches('/');
        if public_url.trim_end_matches('/') != canonical {
            bail!(
                "invalid public URL (TESSERA_PUBLIC_URL) {public_url:?}: write it as {canonical:?}"
            );
        }
        let public_url = canonical.to_owned();

        let alg_raw =
            pick(&args.signing_alg, file.signing_alg).unwrap_or_else(|| "ES256".to_owned());
        let signing_alg = alg_raw
            .parse::<KeyAlg>()
            .map_err(|_| anyhow::anyhow!("invalid signing algorithm (TESSERA_SIGNING_ALG) {alg_raw:?}: expected ES256, RS256 or EdDSA"))?;

        let master_key = pick(&args.master_key, file.master_key)
            .map(|raw| {
                MasterKey::from_base64(raw.expose())
                    .context("invalid master key (TESSERA_MASTER_KEY)")
            })
            .transpose()?;

        let audience = pick(&args.audience, file.audience).unwrap_or_else(|| public_url.clone());
        if audience.trim().is_empty() {
            bail!("invalid audience (TESSERA_AUDIENCE): must not be empty");
        }
        if audience.trim() != audience || audience.chars().any(char::is_control) {
            bail!(
                "invalid audience (TESSERA_AUDIENCE) {audience:?}: no spaces at either end and no control characters (it is every token's `aud`, compared as a string)"
            );
        }

        let max_raw = pick(&args.max_token_lifetime, file.max_token_lifetime)
            .unwrap_or_else(|| "365d".to_owned());
        let max_token_lifetime = max_raw.parse::<Dur>().map_err(|e| {
            anyhow::anyhow!(
                "invalid maximum token lifetime (TESSERA_MAX_TOKEN_LIFETIME) {max_raw:?}: {e}"
            )
        })?;
        if max_token_lifetime.seconds < 60 {
            bail!(
                "invalid maximum token lifetime (TESSERA_MAX_TOKEN_LIFETIME) {max_raw:?}: must be at least 1m"
            );
        }

        let log = pick(&args.log, file.log).unwrap_or_else(|| "info".to_owned());
        // An empty filter is no logging at all, the first start's setup link
        // included: `off` says that on purpose.
        if log.trim().is_empty() {
            bail!("invalid log filter (TESSERA_LOG): must not be empty (e.g. info, or off)");
        }
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| anyhow::anyhow!("invalid log filter (TESSERA_LOG) {log:?}: {e}"))?;

        let retention_raw =
            pick(&args.retention, file.retention).unwrap_or_else(|| "30d".to_owned());
        let retention = retention_raw.parse::<Dur>().map_err(|e| {
            anyhow::anyhow!("invalid retention (TESSERA_RETENTION) {retention_raw:?}: {e}")
        })?;
        let audit_retention = pick(&args.audit_retention, file.audit_retention)
            .map(|raw| {
                raw.parse::<Dur>().map_err(|e| {
                    anyhow::anyhow!(
                        "invalid audit retention (TESSERA_AUDIT_RETENTION) {raw:?}: {e}"
                    )
                })
            })
            .transpose()?;
        let trusted_proxies = pick(&args.trusted_proxies, file.trusted_proxies)
            .map(|raw| parse_networks(&raw, "trusted proxies (TESSERA_TRUSTED_PROXIES)"))
            .transpose()?
            .unwrap_or_default();
        let webhook_allowed_networks = pick(
            &args.webhook_allowed_networks,
            file.webhook_allowed_networks,
        )
        .map(|raw| parse_networks(&raw, "webhook networks (TESSERA_WEBHOOK_ALLOWED_NETWORKS)"))
        .transpose()?
        .unwrap_or_default();
        let limit_raw = pick(&args.auth_failures_per_ip, file.auth_failures_per_ip)
            .unwrap_or_else(|| DEFAULT_AUTH_FAILURES_PER_IP.to_owned());
        let auth_failures_per_ip = limit_raw.parse::<FailureLimit>().map_err(|e| {
            anyhow::anyhow!(
                "invalid client authentication limit (TESSERA_AUTH_FAILURES_PER_IP) {limit_raw:?}: {e}"
            )
        })?;

        let sweep_every = dur_setting(
            pick(&args.sweep_every, file.sweep_every),
            "1m",
            "sweep interval",
            "TESSERA_SWEEP_EVERY",
        )?;
        let key_rotate_every = pick(&args.key_rotate_every, file.key_rotate_every)
            .map(|raw| {
                dur_setting(
                    Some(raw),
                    "",
                    "key rotation interval",
                    "TESSERA_KEY_ROTATE_EVERY",
                )
            })
            .transpose()?;
        let key_publish_for = dur_setting(
            pick(&args.key_publish_for, file.key_publish_for),
            "1d",
            "key publication period",
            "TESSERA_KEY_PUBLISH_FOR",
        )?;
        if let Some(every) = key_rotate_every
            && key_publish_for.seconds >= every.seconds
        {
            bail!(
                "invalid key publication period (TESSERA_KEY_PUBLISH_FOR) {key_publish_for}: must be shorter than TESSERA_KEY_ROTATE_EVERY ({every})"
            );
        }
        let leak_raw = pick(&args.leak_reports_per_ip, file.leak_reports_per_ip)
            .unwrap_or_else(|| DEFAULT_LEAK_REPORTS_PER_IP.to_owned());
        let leak_reports_per_ip = leak_raw.parse::<FailureLimit>().map_err(|e| {
            anyhow::anyhow!(
                "invalid leak report limit (TESSERA_LEAK_REPORTS_PER_IP) {leak_raw:?}: {e}"
            )
        })?;
        let flush_raw = pick(&args.usage_flush_interval, file.usage_flush_interval)
            .unwrap_or_else(|| DEFAULT_USAGE_FLUSH_INTERVAL.to_owned());
        let usage_flush_interval = flush_raw
            .parse::<Dur>()
            .map_err(|e| e.to_string())
            .and_then(|d| {
                if (1..=86_400).contains(&d.seconds) {
                    Ok(d)
                } else {
                    Err("must be from 1s to 1d".to_owned())
                }
            })
            .map_err(|e| {
                anyhow::anyhow!(
                    "invalid usage flush interval (TESSERA_USAGE_FLUSH_INTERVAL) {flush_raw:?}: {e}"
                )
            })?;
        let smtp_url = pick(&args.smtp_url, file.smtp_url)
            .map(|url| check_smtp_url(url.expose()).map(|()| url))
            .transpose()?;
        let smtp_from = pick(&args.smtp_from, file.smtp_from).unwrap_or_else(|| {
            let host = parsed.host_str().unwrap_or("localhost");
            let from = format!("Tessera <tessera@{host}>");
            // An address literal may not parse as a domain: fall back.
            if from.parse::<lettre::message::Mailbox>().is_ok() {
                from
            } else {
                "Tessera <tessera@localhost>".to_owned()
            }
        });
        if smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            bail!(
                "invalid sender (TESSERA_SMTP_FROM) {smtp_from:?}: expected an address such as Tessera <tessera@example.com>"
            );
        }
        let reminders_raw =
            pick(&args.reminders, file.reminders).unwrap_or_else(|| "14d,7d,1d".to_owned());
        let mut reminders = dur_list(&reminders_raw).map_err(|e| {
            anyhow::anyhow!("invalid reminders (TESSERA_REMINDERS) {reminders_raw:?}: {e}")
        })?;
        reminders.sort_by_key(|d| std::cmp::Reverse(d.seconds));
        reminders.dedup();
        let retry_raw = pick(&args.retry_schedule, file.retry_schedule)
            .unwrap_or_else(|| "5s,5m,30m,2h,5h,10h".to_owned());
        let retry_schedule = dur_list(&retry_raw).map_err(|e| {
            anyhow::anyhow!("invalid retry schedule (TESSERA_RETRY_SCHEDULE) {retry_raw:?}: {e}")
        })?;
        let sign_in = SignInSettings::resolve(
            &args.sign_in,
            OidcFile {
                oidc_issuer: file.oidc_issuer,
                oidc_client_id: file.oidc_client_id,
                oidc_client_secret: file.oidc_client_secret,
                oidc_scopes: file.oidc_scopes,
                oidc_username_claim: file.oidc_username_claim,
                oidc_groups_claim: file.oidc_groups_claim,
                oidc_admin_groups: file.oidc_admin_groups,
                oidc_allowed_groups: file.oidc_allowed_groups,
                oidc_name: file.oidc_name,
                password_login: file.password_login,
            },
        )?;

        Ok(Self {
            sweep_every,
            key_rotate_every,
            key_publish_for,
            smtp_url,
            smtp_from,
            reminders,
            retry_schedule,
            database_url,
            listen,
            public_url,
            signing_alg,
            master_key,
            audience,
            max_token_lifetime,
            log,
            retention,
            audit_retention,
            trusted_proxies,
            webhook_allowed_networks,
            auth_failures_per_ip,
            leak_reports_per_ip,
            usage_flush_interval,
            sign_in,
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.as_str().starts_with("sqlite:")
    }

    /// Session cookies get `Secure` when the public URL is https (a scheme
    /// in any case: `HTTPS://` is https too, RFC 3986 §3.1).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }
}

/// A configuration file is a few lines; one larger than this is a mistake
/// (a device, a data file), refused rather than read into memory.
const CONFIG_FILE_LIMIT: u64 = 1 << 20;

fn read_limited(path: &std::path::Path, limit: u64) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        anyhow::bail!("it is larger than {} KiB", limit / 1024);
    }
    Ok(text)
}

fn read_file(explicit: Option<&std::path::Path>) -> anyhow::Result<FileSettings> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let default = PathBuf::from("tessera.toml");
            if !default.exists() {
                return Ok(FileSettings::default());
            }
            default
        }
    };
    let text = read_limited(&path, CONFIG_FILE_LIMIT)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().trim().replace('\n', "; ");
        let at = e.span().map_or(String::new(), |span| {
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(", line {line}, column {column}")
        });
        anyhow::anyhow!("invalid configuration file {}{at}: {msg}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_every_unit() {
        for (text, seconds) in [
            ("30s", 30),
            ("30m", 1800),
            ("12h", 43_200),
            ("90d", 7_776_000),
            ("2w", 1_209_600),
        ] {
            assert_eq!(text.parse::<Dur>().unwrap().seconds, seconds, "{text}");
        }
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in [
            "",
            "d",
            "10",
            "10y",
            "-5m",
            "0m",
            "99999999999999999999d",
            "1.5h",
        ] {
            assert!(text.parse::<Dur>().is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn failure_limits_parse_and_bad_ones_are_refused() {
        let limit: FailureLimit = "30/5m".parse().unwrap();
        assert_eq!((limit.count.get(), limit.per.seconds), (30, 300));
        assert_eq!(limit.to_string(), "30/5m");
        for text in [
            "",
            "30",
            "/5m",
            "0/5m",
            "-1/5m",
            "30/",
            "30/5",
            "x/5m",
            "2000000/1s",
        ] {
            assert!(
                text.parse::<FailureLimit>().is_err(),
                "{text:?} should be refused"
            );
        }
    }

    #[test]
    fn settings_debug_shows_no_secret() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let url = "postgres://tessera:pg-s3cret-pw@db.example:5432/tessera";
        let args = SettingsArgs {
            database_url: Some(url.to_owned().into()),
            master_key: Some(key.parse().unwrap()),
            ..Default::default()
        };
        let settings = Settings::load(&args).unwrap();
        let file: FileSettings =
            toml::from_str(&format!("database_url = {url:?}\nmaster_key = {key:?}\n")).unwrap();
        for text in [
            format!("{args:?}"),
            format!("{settings:?}"),
            format!("{file:?}"),
        ] {
            assert!(
                !text.contains("pg-s3cret-pw") && !text.contains(key) && !text.contains("MDEy"),
                "{text}"
            );
            assert!(
                text.contains("db.example"),
                "the URL is still useful: {text}"
            );
        }
        let in_query =
            DatabaseUrl::from("postgres://db.example/t?user=a&password=qq-s3cret".to_owned());
        assert!(!format!("{in_query:?}").contains("qq-s3cret"));
        assert_eq!(settings.database_url.as_str(), url);
    }

    proptest::proptest! {
        /// Any text: a duration within 100 years, or a message; never a panic.
        #[test]
        fn any_duration_text_parses_or_is_refused(raw in "[0-9]{0,22}[smhdwy]?|.{0,12}") {
            if let Ok(d) = raw.parse::<Dur>() {
                proptest::prop_assert!((1..=100 * 365 * 86_400).contains(&d.seconds));
                proptest::prop_assert_eq!(d.to_string().parse::<Dur>().unwrap(), d);
            }
        }
    }

    #[test]
    fn durations_display_in_their_largest_unit() {
        assert_eq!(
            Dur {
                seconds: 31_536_000
            }
            .to_string(),
            "365d"
        );
        assert_eq!(Dur { seconds: 90 }.to_string(), "90s");
    }
}
