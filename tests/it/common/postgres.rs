//! PostgreSQL for tests: `TESSERA_TEST_POSTGRES_URL` if set, else one
//! throwaway cluster per test run, started from the binaries on this machine
//! (as the `postgres` user when running as root) and stopped by a watchdog
//! when the test process exits. With `TESSERA_REQUIRE_POSTGRES=1`, a missing
//! PostgreSQL fails the tests instead of skipping them.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

static SERVER: OnceLock<Option<String>> = OnceLock::new();

/// The admin URL of the server (database `postgres`), if there is one.
fn server() -> Option<&'static str> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("TESSERA_TEST_POSTGRES_URL") {
                return Some(url);
            }
            match start_cluster() {
                Ok(url) => Some(url),
                Err(e) => {
                    if std::env::var("TESSERA_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                        panic!(
                            "TESSERA_REQUIRE_POSTGRES=1 but no PostgreSQL could be started: {e}"
                        );
                    }
                    eprintln!("skipping PostgreSQL tests: {e}");
                    None
                }
            }
        })
        .as_deref()
}

/// Whether PostgreSQL tests can run; panics if they must and cannot.
pub fn available() -> bool {
    server().is_some()
}

/// A new, empty database on the server.
pub fn fresh_database() -> String {
    let admin = server().expect("PostgreSQL available");
    let name = format!("tessera_{}", uuid::Uuid::new_v4().simple());
    let admin_owned = admin.to_owned();
    let name_owned = name.clone();
    // A dedicated thread and runtime, so this works from sync and async tests alike.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_owned)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name_owned}"))
                .execute(&mut conn)
                .await
                .expect("create database");
        });
    })
    .join()
    .expect("create database thread");
    match admin.rfind('/') {
        Some(i) => format!("{}/{name}", &admin[..i]),
        None => panic!("bad PostgreSQL URL {admin}"),
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL binaries (/usr/lib/postgresql) on this machine".to_owned())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| "no initdb found under /usr/lib/postgresql".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as `postgres` when we are root (it refuses root).
fn pg(bin: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn start_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("tessera-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if is_root() {
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let data_s = data.to_string_lossy().to_string();
    let dir_s = dir.to_string_lossy().to_string();
    pg(
        &bin.join("initdb"),
        &[
            "-D",
            &data_s,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )?;
    let opts = format!(
        "-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 -c shared_buffers=64MB"
    );
    pg(
        &bin.join("pg_ctl"),
        &[
            "-D",
            &data_s,
            "-o",
            &opts,
            "-l",
            &format!("{dir_s}/log"),
            "-w",
            "start",
        ],
    )?;
    // A watchdog stops the cluster and removes it when this process exits.
    let pid = std::process::id();
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} -D {data_s} -m immediate stop >/dev/null 2>&1; rm -rf {dir_s}",
        runas = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        },
        pg_ctl = bin.join("pg_ctl").display(),
    );
    Command::new("sh")
        .args(["-c", &stop])
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}
