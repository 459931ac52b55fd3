//! Start-up: connect, migrate, load keys, and run the HTTP server until
//! SIGINT/SIGTERM, then flush what is buffered in memory.

use std::{path::Path, sync::Arc};

use actix_web::{App, HttpServer, middleware::from_fn, web};
use anyhow::Context;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::{
    config::{MasterKey, Settings},
    domain::{clock, principals},
    metrics::Metrics,
    oauth::throttle::ClientAuthThrottle,
    secret as secrets,
    storage::{Db, entities::setup_code},
    token_service::TokenService,
};

pub struct AppState {
    pub db: Db,
    pub settings: Settings,
    pub master: MasterKey,
    pub tokens: Arc<TokenService>,
    pub metrics: Metrics,
    /// Failed client authentication per address (INTERFACE §8).
    pub client_auth: ClientAuthThrottle,
}

/// Connects and migrates: what every command does first.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(settings.database_url.as_str()).await?;
    db.migrate().await?;
    Ok(db)
}

/// The master key from the settings; on SQLite without one, the key kept in
/// (or generated into) `master.key` beside the database file.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
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
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read master key {}", path.display()))?;
        return MasterKey::from_base64(&text)
            .with_context(|| format!("invalid master key in {}", path.display()));
    }
    crate::storage::create_private_dir(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let key = MasterKey(secrets::random_bytes::<32>());
    write_private(&path, &key.to_base64())?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create master key {}", path.display()))?;
    writeln!(file, "{text}")?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .with_context(|| format!("cannot create master key {}", path.display()))
}

fn sqlite_file(url: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::str::FromStr;
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid database URL (TESSERA_DATABASE_URL): {e}"))?;
    Ok(opts.get_filename().to_owned())
}

/// With no administrator yet, a one-time setup code, valid for an hour.
pub async fn setup_url_if_needed(db: &Db, settings: &Settings) -> anyhow::Result<Option<String>> {
    if principals::any_admin(&db.read).await? {
        return Ok(None);
    }
    let code = secrets::random_token();
    let now = clock::now();
    setup_code::Entity::insert(setup_code::ActiveModel {
        digest: Set(secrets::Digest::of(&code).to_hex()),
        created_at: Set(now),
        expires_at: Set(now + time::Duration::hours(1)),
        used_at: Set(None),
    })
    .exec_without_returning(&db.write)
    .await?;
    Ok(Some(format!("{}/setup?code={code}", settings.public_url)))
}

pub async fn build_state(settings: Settings) -> anyhow::Result<web::Data<AppState>> {
    let master = master_key(&settings)?;
    let db = open_database(&settings).await?;
    let tokens = TokenService::start(db.clone(), &settings, master.clone()).await?;
    let client_auth = ClientAuthThrottle::new(settings.auth_failures_per_ip);
    Ok(web::Data::new(AppState {
        db,
        settings,
        master,
        tokens,
        metrics: Metrics::default(),
        client_auth,
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
    spawn_throttle_upkeep(state.clone());
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} (TESSERA_LISTEN)"))?;
    let bound = listener.local_addr()?;
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(crate::http::observe))
            .configure(crate::http::configure)
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    tracing::info!(address = %bound, public_url = %state.settings.public_url, "tessera listening");
    // Scripts and tests read this line to find the port when listening on :0.
    println!("listening on http://{bound}");
    if let Some(url) = setup_url_if_needed(&state.db, &state.settings).await? {
        tracing::warn!("no administrator yet: create the first one at {url} (valid for one hour)");
    }
    server.await?;
    state.tokens.flush_usage().await;
    tracing::info!("stopped");
    Ok(())
}
