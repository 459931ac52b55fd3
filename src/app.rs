//! Start-up: connect, migrate, load keys, and run the HTTP server until
//! SIGINT/SIGTERM, then flush what is buffered in memory.

use std::path::Path;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, middleware::from_fn, web};
use anyhow::Context;

use crate::{
    config::{MasterKey, Settings},
    domain::sessions,
    http,
    metrics::Metrics,
    oauth::throttle::ClientAuthThrottle,
    secret as secrets,
    state::AppState,
    storage::Db,
    token_service::TokenService,
};

/// Connects and migrates: what every command does first.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(settings.database_url.as_str()).await?;
    db.migrate().await?;
    Ok(db)
}

/// The master key from the settings; on SQLite without one, the key kept in
/// `master.key` beside the database file, generated there for a database
/// that has sealed nothing yet.
pub async fn master_key(settings: &Settings, db: &Db) -> anyhow::Result<MasterKey> {
    if let Some(key) = &settings.master_key {
        return Ok(key.clone());
    }
    if !settings.is_sqlite() {
        anyhow::bail!(
            "TESSERA_MASTER_KEY is required with PostgreSQL, and must be the same on every instance: generate one with `openssl rand -base64 32`"
        );
    }
    let db_path = sqlite_file(settings.database_url.as_str())?;
    let dir = db_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = dir.join("master.key");
    let read = |path: &Path| {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read master key {}", path.display()))?;
        MasterKey::from_base64(&text)
            .with_context(|| format!("invalid master key in {}", path.display()))
    };
    // Asked before looking for the file: whoever sealed a key wrote the file
    // first, so a sealed key seen here means a file that is gone, not one
    // still to come.
    let sealed = crate::domain::signing_keys::any_sealed(&db.read).await?;
    if path.exists() {
        return read(&path);
    }
    if sealed {
        // A new key would open nothing here, and would then stand in the way
        // of the right one being put back.
        anyhow::bail!(
            "no master key: this database's signing keys are sealed with one, and neither TESSERA_MASTER_KEY nor {} is here; give the one the server uses",
            path.display()
        );
    }
    crate::storage::create_private_dir(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let key = MasterKey(secrets::random_bytes::<32>());
    if write_private(&path, &key.to_base64())? {
        Ok(key)
    } else {
        // Another process starting on the same new directory wrote it first.
        read(&path)
    }
}

/// Writes `text` to `path` unless it exists (`false`). The file is written
/// whole under a name of its own and then linked into place, so a process
/// starting at the same moment never reads it half-written.
#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<bool> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    // A name no other process (another container sharing the directory,
    // with the same pid) can be writing to.
    let mut draft = path.as_os_str().to_owned();
    draft.push(format!(".{}.new", secrets::random_token()));
    let draft = std::path::PathBuf::from(draft);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&draft)?;
        writeln!(file, "{text}")?;
        file.sync_all()?;
        std::fs::hard_link(&draft, path)
    })();
    let _ = std::fs::remove_file(&draft);
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            Err(anyhow::Error::new(e)
                .context(format!("cannot create master key {}", path.display())))
        }
    }
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<bool> {
    std::fs::write(path, text)
        .with_context(|| format!("cannot create master key {}", path.display()))?;
    Ok(true)
}

fn sqlite_file(url: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::str::FromStr;
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid database URL (TESSERA_DATABASE_URL): {e}"))?;
    Ok(opts.get_filename().to_owned())
}

/// With no administrator yet, a one-time setup code, valid for an hour.
pub async fn setup_url_if_needed(db: &Db, settings: &Settings) -> anyhow::Result<Option<String>> {
    let code = sessions::new_setup_code(db).await?;
    Ok(code.map(|code| format!("{}/setup?code={}", settings.public_url, code.expose())))
}

pub async fn build_state(settings: Settings) -> anyhow::Result<web::Data<AppState>> {
    let db = open_database(&settings).await?;
    let master = master_key(&settings, &db).await?;
    let tokens = TokenService::start(db.clone(), &settings, master.clone()).await?;
    let client_auth = ClientAuthThrottle::new(settings.auth_failures_per_ip);
    let leak_reports = crate::http::rate::PerAddress::new(settings.leak_reports_per_ip);
    let oidc = settings
        .sign_in
        .oidc
        .clone()
        .map(|o| crate::oidc::Provider::new(o, &settings.public_url).map(std::sync::Arc::new))
        .transpose()?;
    Ok(web::Data::new(AppState {
        db,
        settings,
        master,
        tokens,
        metrics: Metrics::default(),
        client_auth,
        leak_reports,
        oidc,
    }))
}

/// Forgets addresses whose failures are forgiven, so the throttle's memory
/// follows the attack in progress, not every address ever seen.
fn spawn_throttle_upkeep(state: web::Data<AppState>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            state.client_auth.trim();
        }
    });
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    // Before anything logs: an address in use is the one line printed.
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} (TESSERA_LISTEN)"))?;
    let _alone = if settings.is_sqlite() {
        let file = sqlite_file(settings.database_url.as_str())?;
        Some(crate::storage::serve_alone(&file)?)
    } else {
        None
    };
    let state = build_state(settings).await?;
    state.db.changes.spawn_listener();
    state.tokens.spawn_upkeep();
    crate::domain::retention::spawn(
        state.db.clone(),
        crate::domain::retention::Policy {
            tokens: state.settings.retention,
            audit: state.settings.audit_retention,
        },
    );
    crate::domain::rotation::spawn(
        state.db.clone(),
        state.master.clone(),
        crate::domain::rotation::Plan::from_settings(&state.settings),
        state.settings.sweep_every,
    );
    spawn_throttle_upkeep(state.clone());
    crate::notify::spawn(state.db.clone(), state.master.clone(), &state.settings)?;
    let bound = listener.local_addr()?;
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(crate::web::error_frame))
            // Outermost, last: it holds each request's body until the answer is sent.
            .wrap(from_fn(crate::http::observe))
            .configure(configure)
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    tracing::info!(address = %bound, public_url = %state.settings.public_url, "tessera listening");
    // Scripts and tests read this line to find the port when listening on :0;
    // a closed or full stdout must not stop the server.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stdout(),
        format_args!("listening on http://{bound}\n"),
    );
    if let Some(provider) = state.oidc.clone() {
        let issuer = &provider.settings().issuer;
        if crate::oidc::settings::in_clear(issuer) {
            tracing::warn!(
                %issuer,
                "single sign-on over plain http (TESSERA_OIDC_ISSUER): anyone on the way can read the client secret and serve their own keys; use https"
            );
        }
        // Discovered lazily: a provider that is down now does not stop
        // Tessera, and the sign-in page says why single sign-on is unavailable.
        tokio::spawn(async move {
            if provider.check().await.is_ok() {
                tracing::info!(issuer = %provider.settings().issuer, "single sign-on: identity provider discovered");
            }
        });
    }
    // Without password sign-in there is no setup page: the first person of
    // an admin group to sign in is the first administrator.
    let setup = if state.settings.sign_in.password_login {
        setup_url_if_needed(&state.db, &state.settings).await?
    } else {
        None
    };
    if let Some(url) = setup {
        tracing::warn!("no administrator yet: create the first one at {url} (valid for one hour)");
    }
    server.await?;
    state.tokens.flush_usage_at_exit().await;
    tracing::info!("stopped");
    Ok(())
}

// ---------------------------------------------------------------- routes

/// Every route: health and metrics here, then the OAuth endpoints, the
/// management API and the web pages, each of which registers its own.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(http::query_error))
        .service(probe("/healthz").route(web::get().to(healthz)))
        .service(probe("/readyz").route(web::get().to(readyz)))
        .service(probe("/metrics").route(web::get().to(metrics)))
        .configure(crate::oauth::configure)
        .configure(crate::api::configure)
        .configure(crate::web::configure)
        .default_service(web::to(not_found));
}

/// Unknown URLs: problem+json for programs, an HTML page for people.
async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let path = req.path();
    if path.starts_with("/api/")
        || path.starts_with("/oauth2/")
        || path.starts_with("/.well-known/")
    {
        http::errors::ApiError::NoSuchRoute(format!("{} {path}", req.method())).error_response()
    } else {
        http::errors::WebError::NotFound.error_response()
    }
}

/// A probe's resource: it is read with GET (and HEAD, answered as GET by
/// `http::observe`); any other method is a 405 that says so.
fn probe(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, "GET, HEAD"))
            .content_type("text/plain")
            .body("method not allowed: use GET\n")
    }))
}

/// How long `/readyz` waits for the database before it answers 503.
const READYZ_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // A probe wants an answer, not the pool's 10 s wait for a connection to
    // a database that is down.
    let ready = tokio::time::timeout(READYZ_WITHIN, state.db.ready()).await;
    if ready.unwrap_or(false) {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database unavailable\n")
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
