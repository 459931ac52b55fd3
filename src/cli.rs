//! The command line: one binary, the same configuration as the server.
//! Commands print their result on stdout and nothing else; a failure is one
//! line on stderr and a non-zero exit status.

use std::{io::Read, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{
    app,
    config::{Dur, Settings, SettingsArgs},
    domain::{
        Actor, Context, Policy, Role,
        issuance::{Issuer, Request, issue},
        principals::{self, MachineUserInput, NewUser},
        signing_keys,
        tokens::{self, Access, Lifetime, NewToken},
    },
    storage::recorder::Recorder,
};

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "Self-hosted token service: OAuth 2.0 client credentials, machine users and personal access tokens"
)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage human users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Issue tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage machine users (API users).
    #[command(subcommand, name = "machine-users")]
    MachineUsers(MachineUsersCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug)]
enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// The user's e-mail address, for notices (optional).
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TokensCommand {
    /// Issue a token for a user or machine user; prints only the token.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        /// A scope (repeat for several). Default: `profile` for a user, every
        /// allowed scope for a machine user.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Lifetime: a number and s, m, h, d or w. Default: 30d, or the
        /// policy maximum (`--max-token-lifetime`) when that is shorter.
        #[arg(long, value_parser = parse_dur)]
        expires_in: Option<Dur>,
    },
}

#[derive(Subcommand, Debug)]
enum MachineUsersCommand {
    /// Create a machine user with client credentials on; prints only its first client secret.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Access-token lifetime for the client-credentials grant, 1 to 1440.
        #[arg(long, default_value_t = 60)]
        ttl_minutes: i64,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// List signing keys.
    List,
    /// Create a new signing key; old keys verify until their tokens expire.
    Rotate {
        /// Publish the new key in the JWKS for this long (e.g. `1d`) before it
        /// starts signing; without it, it signs at once.
        #[arg(long, value_name = "DUR", value_parser = parse_dur)]
        publish_for: Option<Dur>,
    },
}

fn parse_dur(raw: &str) -> Result<Dur, String> {
    raw.parse()
}

/// `println!` that returns an error instead of panicking when standard
/// output is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{}\n", format_args!($($arg)*)))
            .map_err(StdoutFailed)?
    };
}

/// Writing to standard output failed (and nothing else did).
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
struct StdoutFailed(std::io::Error);

/// Prints a new secret; if it cannot be printed, `undo` takes back what
/// holds it (nobody could have seen it) and the error says so.
async fn print_secret<F, Fut>(secret: &str, undo: F, undone: &str) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::domain::Error>>,
{
    let printed = (|| -> anyhow::Result<()> {
        out!("{secret}");
        std::io::Write::flush(&mut std::io::stdout()).map_err(StdoutFailed)?;
        Ok(())
    })();
    if let Err(e) = printed {
        undo().await?;
        // A reader gone away still ends quietly (see `fail`).
        return Err(if broken_pipe(&e) {
            e
        } else {
            anyhow::anyhow!("{e:#}; {undone}")
        });
    }
    Ok(())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if matches!(command, Command::Serve) {
        crate::logging::init(&settings.log);
    }
    let result = actix_web::rt::System::new().block_on(run(command, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    // The reader went away (`tessera keys list | head -1`): end quietly, as
    // a program killed by SIGPIPE does, with the status a shell gives it.
    if broken_pipe(e) {
        return ExitCode::from(141);
    }
    // One line: the chain of causes, joined.
    let msg = format!("{e:#}").replace('\n', " ");
    // Nowhere left to say it when stderr is closed too: the status does.
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {msg}\n"));
    ExitCode::FAILURE
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StdoutFailed>()
        .is_some_and(|StdoutFailed(io)| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `tokens create` without `--expires-in`: 30 days (INTERFACE §2).
const DEFAULT_EXPIRES_IN: i64 = 30 * 86_400;

/// The flags behind the fields a domain refusal may name.
const TOKEN_FLAGS: &[(&str, &str)] = &[
    ("expires_in_seconds", "--expires-in"),
    ("name", "--name"),
    ("scopes", "--scope"),
];
const MACHINE_USER_FLAGS: &[(&str, &str)] = &[
    (
        "client_credentials.access_token_ttl_minutes",
        "--ttl-minutes",
    ),
    ("username", "--username"),
    ("scopes", "--scope"),
];

/// A refusal naming the flag that was given, not the API field it became.
fn by_flag(e: crate::domain::Error, flags: &[(&str, &'static str)]) -> crate::domain::Error {
    match e {
        crate::domain::Error::Invalid { field, message } => crate::domain::Error::Invalid {
            field: flags
                .iter()
                .find(|(f, _)| *f == field)
                .map_or(field, |(_, flag)| flag),
            message,
        },
        other => other,
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => app::serve(settings).await,
        Command::Migrate => {
            app::open_database(&settings).await?;
            Ok(())
        }
        Command::Users(UsersCommand::Create {
            username,
            admin,
            email,
            password_stdin: _,
        }) => {
            // Read no more than the longest password could be (1,024
            // characters of up to 4 bytes and a line end), so that `yes` or
            // `/dev/zero` on standard input is refused, not read for ever.
            const MOST: u64 = 4 * 1024 + 2;
            let mut raw = Vec::new();
            std::io::stdin()
                .take(MOST + 1)
                .read_to_end(&mut raw)
                .context("password: cannot read standard input")?;
            if raw.len() as u64 > MOST {
                anyhow::bail!("password: must be at most 1024 characters");
            }
            let password = String::from_utf8(raw)
                .map_err(|_| anyhow::anyhow!("password: standard input is not UTF-8 text"))?;
            let password = password
                .strip_suffix('\n')
                .map(|p| p.strip_suffix('\r').unwrap_or(p))
                .unwrap_or(&password);
            if password.is_empty() {
                anyhow::bail!("password: must not be empty (pipe it on standard input)");
            }
            // Validate before touching the database, so bad input changes nothing.
            crate::domain::Username::parse(&username)?;
            principals::parse_email(email.as_deref().unwrap_or(""), "email")?;
            principals::check_password_rules(password)?;
            let db = app::open_database(&settings).await?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = principals::create_user(
                &db,
                &Actor::system(),
                NewUser {
                    username,
                    password: password.to_owned(),
                    role,
                    email,
                },
            )
            .await?;
            out!("{}", user.id);
            Ok(())
        }
        Command::Tokens(TokensCommand::Create {
            username,
            name,
            scopes,
            expires_in,
        }) => {
            let db = app::open_database(&settings).await?;
            let master = app::master_key(&settings, &db).await?;
            let owner = principals::find_by_username(&db.read, &username)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("username: no user or machine user named {username:?}")
                })?;
            // The CLI signs with the keys in the database, like a server.
            let signing = signing_keys::load_signer(&db, &master, &settings).await?;
            let new = NewToken {
                audience: None,
                name,
                description: None,
                scopes: (!scopes.is_empty()).then_some(scopes),
                lifetime: Lifetime::Seconds(expires_in.map_or(
                    DEFAULT_EXPIRES_IN.min(settings.max_token_lifetime.seconds),
                    |d| d.seconds,
                )),
            };
            let recorder = Recorder::new(&db.write)?;
            let issuer = Issuer {
                db: &db,
                signer: &signing,
                recorder: &recorder,
                metrics: None,
            };
            let policy = Policy {
                max_token_lifetime: settings.max_token_lifetime.seconds,
            };
            let request = Request::Named {
                owner_id: owner.id,
                new,
            };
            let view = issue(&issuer, &Context::new(Actor::system(), policy), request)
                .await
                .map_err(|e| by_flag(e, TOKEN_FLAGS))?
                .into_view()?;
            let revoke = || async {
                tokens::revoke(&db, &Actor::system(), view.id, Access::Any)
                    .await
                    .map(drop)
            };
            print_secret(view.exposed_token(), revoke, "the token was revoked").await
        }
        Command::MachineUsers(MachineUsersCommand::Create {
            username,
            scopes,
            ttl_minutes,
        }) => {
            let db = app::open_database(&settings).await?;
            let input = MachineUserInput {
                username: Some(username),
                scopes: Some(scopes),
                cc_enabled: Some(true),
                cc_ttl_minutes: Some(ttl_minutes),
                ..MachineUserInput::default()
            };
            // One transaction: a failure leaves no machine user without its secret.
            let (machine, secret) =
                principals::create_machine_user_with_secret(&db, &Actor::system(), input)
                    .await
                    .map_err(|e| by_flag(e, MACHINE_USER_FLAGS))?;
            let system = Actor::system();
            let remove = || principals::delete_machine_user(&db, &system, machine.id);
            print_secret(
                secret.client_secret.expose(),
                remove,
                "the machine user was removed",
            )
            .await
        }
        Command::Keys(KeysCommand::List) => {
            let db = app::open_database(&settings).await?;
            let master = app::master_key(&settings, &db).await?;
            signing_keys::ensure_active(&db, &master, settings.signing_alg).await?;
            signing_keys::promote_due(&db).await?;
            out!(
                "{:<18} {:<6} {:<8} {:<21} {:<21} SIGNS-FROM",
                "KID",
                "ALG",
                "STATE",
                "CREATED",
                "RETIRES-AFTER"
            );
            let time_or_dash = |t: Option<time::OffsetDateTime>| {
                t.map(crate::domain::clock::rfc3339)
                    .unwrap_or_else(|| "-".into())
            };
            for k in signing_keys::list(&db.read).await? {
                out!(
                    "{:<18} {:<6} {:<8} {:<21} {:<21} {}",
                    k.kid,
                    k.alg.as_str(),
                    k.state.as_str(),
                    crate::domain::clock::rfc3339(k.created_at),
                    time_or_dash(k.retires_after),
                    time_or_dash(
                        k.activates_at
                            .filter(|_| k.state == signing_keys::KeyState::Next)
                    ),
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate { publish_for }) => {
            let db = app::open_database(&settings).await?;
            let master = app::master_key(&settings, &db).await?;
            signing_keys::ensure_active(&db, &master, settings.signing_alg).await?;
            let rotated = signing_keys::rotate(
                &db,
                &master,
                settings.signing_alg,
                &Actor::system(),
                publish_for,
            )
            .await?;
            out!("{}", rotated.kid);
            Ok(())
        }
    }
}
