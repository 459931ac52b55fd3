//! The single sign-on settings (INTERFACE §10): flags and `TESSERA_OIDC_*`
//! variables, resolved with the `tessera.toml` keys by `config`. Every bad
//! value is one line naming its setting.

use anyhow::bail;
use clap::Args;

use crate::secret::Secret;

/// The flags; each falls back to its variable through clap's `env`.
#[derive(Args, Debug, Default, Clone)]
pub struct OidcArgs {
    /// The identity provider's issuer (unset: single sign-on off).
    #[arg(long, global = true, env = "TESSERA_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// Tessera's client id at the identity provider.
    #[arg(long, global = true, env = "TESSERA_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// Tessera's client secret at the identity provider.
    #[arg(
        long,
        global = true,
        env = "TESSERA_OIDC_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub oidc_client_secret: Option<Secret<String>>,
    /// Scopes asked for (default `openid profile email`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_OIDC_SCOPES",
        value_name = "SCOPES"
    )]
    pub oidc_scopes: Option<String>,
    /// The claim that becomes the username (default `preferred_username`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_OIDC_USERNAME_CLAIM",
        value_name = "CLAIM"
    )]
    pub oidc_username_claim: Option<String>,
    /// The claim holding group names (default `groups`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_OIDC_GROUPS_CLAIM",
        value_name = "CLAIM"
    )]
    pub oidc_groups_claim: Option<String>,
    /// Comma-separated groups whose members are admins.
    #[arg(
        long,
        global = true,
        env = "TESSERA_OIDC_ADMIN_GROUPS",
        value_name = "GROUPS"
    )]
    pub oidc_admin_groups: Option<String>,
    /// Comma-separated groups allowed to sign in (default: anyone).
    #[arg(
        long,
        global = true,
        env = "TESSERA_OIDC_ALLOWED_GROUPS",
        value_name = "GROUPS"
    )]
    pub oidc_allowed_groups: Option<String>,
    /// The button reads "Sign in with …" (default `single sign-on`).
    #[arg(long, global = true, env = "TESSERA_OIDC_NAME", value_name = "NAME")]
    pub oidc_name: Option<String>,
    /// `on` (default) or `off`: off removes the password form and `/setup`.
    #[arg(
        long,
        global = true,
        env = "TESSERA_PASSWORD_LOGIN",
        value_name = "on|off"
    )]
    pub password_login: Option<String>,
}

/// The same settings as read from `tessera.toml` (keys `oidc_issuer`, …).
#[derive(Default)]
pub struct OidcFile {
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<Secret<String>>,
    pub oidc_scopes: Option<String>,
    pub oidc_username_claim: Option<String>,
    pub oidc_groups_claim: Option<String>,
    pub oidc_admin_groups: Option<String>,
    pub oidc_allowed_groups: Option<String>,
    pub oidc_name: Option<String>,
    pub password_login: Option<String>,
}

/// How people sign in.
#[derive(Clone, Debug)]
pub struct SignInSettings {
    /// `TESSERA_PASSWORD_LOGIN`: the password form and `/setup` exist.
    pub password_login: bool,
    /// Single sign-on, when an issuer is configured.
    pub oidc: Option<OidcSettings>,
}

#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    /// Scopes asked for besides `openid` (which is always asked for).
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    pub admin_groups: Vec<String>,
    /// `None`: anyone the provider signs in.
    pub allowed_groups: Option<Vec<String>>,
    pub name: String,
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

fn claim_name(raw: Option<String>, default: &str, var: &str) -> anyhow::Result<String> {
    let name = raw.unwrap_or_else(|| default.to_owned()).trim().to_owned();
    if name.is_empty() || name.len() > 128 {
        bail!("invalid claim name ({var}): expected a claim name such as {default}");
    }
    Ok(name)
}

impl SignInSettings {
    pub fn resolve(args: &OidcArgs, file: OidcFile) -> anyhow::Result<Self> {
        fn pick<T: Clone>(flag: &Option<T>, from_file: Option<T>) -> Option<T> {
            flag.clone().or(from_file)
        }
        let password_login = match pick(&args.password_login, file.password_login)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("on" | "true" | "yes") => true,
            Some("off" | "false" | "no") => false,
            Some(other) => {
                bail!(
                    "invalid password sign-in switch (TESSERA_PASSWORD_LOGIN) {other:?}: expected on or off (or true/false, yes/no)"
                )
            }
        };
        let client_id = pick(&args.oidc_client_id, file.oidc_client_id);
        let client_secret = pick(&args.oidc_client_secret, file.oidc_client_secret);
        let Some(issuer) = pick(&args.oidc_issuer, file.oidc_issuer) else {
            if client_id.is_some() || client_secret.is_some() {
                bail!(
                    "TESSERA_OIDC_CLIENT_ID and TESSERA_OIDC_CLIENT_SECRET need TESSERA_OIDC_ISSUER: set the identity provider's issuer, or unset them"
                );
            }
            if !password_login {
                bail!(
                    "TESSERA_PASSWORD_LOGIN=off needs single sign-on: set TESSERA_OIDC_ISSUER, or nobody could sign in"
                );
            }
            return Ok(Self {
                password_login,
                oidc: None,
            });
        };
        let issuer = issuer.trim().to_owned();
        let parsed = url::Url::parse(&issuer)
            .map_err(|e| anyhow::anyhow!("invalid issuer (TESSERA_OIDC_ISSUER) {issuer:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host().is_none()
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            bail!(
                "invalid issuer (TESSERA_OIDC_ISSUER) {issuer:?}: expected https://host[/path], the provider's issuer exactly as it publishes it"
            );
        }
        let client_id = client_id
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "TESSERA_OIDC_CLIENT_ID is required with TESSERA_OIDC_ISSUER: the client id of Tessera at the identity provider"
                )
            })?;
        let client_secret = client_secret
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "TESSERA_OIDC_CLIENT_SECRET is required with TESSERA_OIDC_ISSUER: the client secret of Tessera at the identity provider"
                )
            })?;
        let scopes_raw = pick(&args.oidc_scopes, file.oidc_scopes)
            .unwrap_or_else(|| "openid profile email".to_owned());
        let scopes: Vec<String> = scopes_raw
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty() && *s != "openid")
            .map(str::to_owned)
            .collect();
        if scopes
            .iter()
            .any(|s| s.chars().any(|c| c.is_control() || c == '"' || c == '\\'))
        {
            bail!(
                "invalid scopes (TESSERA_OIDC_SCOPES) {scopes_raw:?}: expected scope names separated by spaces"
            );
        }
        let username_claim = claim_name(
            pick(&args.oidc_username_claim, file.oidc_username_claim),
            "preferred_username",
            "TESSERA_OIDC_USERNAME_CLAIM",
        )?;
        let groups_claim = claim_name(
            pick(&args.oidc_groups_claim, file.oidc_groups_claim),
            "groups",
            "TESSERA_OIDC_GROUPS_CLAIM",
        )?;
        let admin_groups = pick(&args.oidc_admin_groups, file.oidc_admin_groups)
            .map(|g| list(&g))
            .unwrap_or_default();
        let allowed_groups =
            pick(&args.oidc_allowed_groups, file.oidc_allowed_groups).map(|g| list(&g));
        // Set but naming no group (an empty variable in a template, say)
        // must not mean "everyone".
        if allowed_groups.as_ref().is_some_and(Vec::is_empty) {
            bail!(
                "invalid allowed groups (TESSERA_OIDC_ALLOWED_GROUPS): name at least one group, or leave it unset to let everyone the provider signs in"
            );
        }
        let name = pick(&args.oidc_name, file.oidc_name)
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "single sign-on".to_owned());
        if name.chars().count() > 64 {
            bail!("invalid name (TESSERA_OIDC_NAME): at most 64 characters");
        }
        Ok(Self {
            password_login,
            oidc: Some(OidcSettings {
                issuer,
                client_id,
                client_secret,
                scopes,
                username_claim,
                groups_claim,
                admin_groups,
                allowed_groups,
                name,
            }),
        })
    }
}

/// Whether `issuer` is reached over plain http through a network: loopback
/// addresses (a provider on the same host, tests) are not.
pub fn in_clear(issuer: &str) -> bool {
    let Ok(url) = url::Url::parse(issuer) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> OidcArgs {
        let mut a = OidcArgs::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "issuer" => a.oidc_issuer = v,
                "client_id" => a.oidc_client_id = v,
                "client_secret" => a.oidc_client_secret = v.map(Secret::new),
                "scopes" => a.oidc_scopes = v,
                "admin" => a.oidc_admin_groups = v,
                "allowed" => a.oidc_allowed_groups = v,
                "password_login" => a.password_login = v,
                other => panic!("{other}"),
            }
        }
        a
    }

    #[test]
    fn plain_http_issuers_beyond_this_host_are_in_clear() {
        for issuer in [
            "http://idp.example/realms/a",
            "HTTP://10.0.0.5:8080",
            "http://keycloak:8080",
        ] {
            assert!(in_clear(issuer), "{issuer}");
        }
        for issuer in [
            "https://idp.example/realms/a",
            "http://127.0.0.1:8080",
            "http://[::1]:9000/x",
            "http://localhost:8080",
        ] {
            assert!(!in_clear(issuer), "{issuer}");
        }
    }

    #[test]
    fn the_password_switch_reads_any_case() {
        for (value, on) in [
            ("ON", true),
            ("Yes", true),
            ("False", false),
            (" OFF ", false),
        ] {
            let issuer = [
                ("issuer", "https://id.example"),
                ("client_id", "t"),
                ("client_secret", "s"),
            ];
            let mut pairs = issuer.to_vec();
            pairs.push(("password_login", value));
            let s = SignInSettings::resolve(&args(&pairs), OidcFile::default()).unwrap();
            assert_eq!(s.password_login, on, "{value}");
        }
    }

    #[test]
    fn nothing_set_means_passwords_only() {
        let s = SignInSettings::resolve(&OidcArgs::default(), OidcFile::default()).unwrap();
        assert!(s.password_login && s.oidc.is_none());
    }

    #[test]
    fn a_full_configuration_resolves() {
        let s = SignInSettings::resolve(
            &args(&[
                ("issuer", "https://id.example/realms/acme"),
                ("client_id", "tessera"),
                ("client_secret", "s3cret"),
                ("scopes", "openid profile, email groups"),
                ("admin", " platform-admins , ,ops "),
                ("password_login", "off"),
            ]),
            OidcFile::default(),
        )
        .unwrap();
        assert!(!s.password_login);
        let o = s.oidc.unwrap();
        assert_eq!(o.scopes, ["profile", "email", "groups"]);
        assert_eq!(o.admin_groups, ["platform-admins", "ops"]);
        assert_eq!(o.allowed_groups, None);
        assert_eq!(o.username_claim, "preferred_username");
        assert_eq!(o.name, "single sign-on");
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (pairs, setting) in [
            (&[("password_login", "maybe")][..], "TESSERA_PASSWORD_LOGIN"),
            (&[("password_login", "off")][..], "TESSERA_OIDC_ISSUER"),
            (&[("client_id", "x")][..], "TESSERA_OIDC_ISSUER"),
            (&[("issuer", "not a url")][..], "TESSERA_OIDC_ISSUER"),
            (&[("issuer", "ftp://id.example")][..], "TESSERA_OIDC_ISSUER"),
            (
                &[("issuer", "https://id.example")][..],
                "TESSERA_OIDC_CLIENT_ID",
            ),
            (
                &[("issuer", "https://id.example"), ("client_id", "t")][..],
                "TESSERA_OIDC_CLIENT_SECRET",
            ),
            (
                &[
                    ("issuer", "https://id.example"),
                    ("client_id", "t"),
                    ("client_secret", "s"),
                    ("allowed", " , "),
                ][..],
                "TESSERA_OIDC_ALLOWED_GROUPS",
            ),
        ] {
            let e = SignInSettings::resolve(&args(pairs), OidcFile::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(setting), "{pairs:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }
}
