//! The test harness: the real `tessera` binary on a random port, against a
//! fresh database — a new SQLite file, or a new database on a real PostgreSQL
//! server (`TESSERA_TEST_POSTGRES_URL`, or a throwaway cluster started here
//! from the PostgreSQL binaries, once per test run).
//!
//! Storage tests are written once as `async fn(Backend)` and instantiated for
//! both backends with `both_backends!`. On top: `Api`/`Reply` for the JSON
//! API (`api`) and `Browser`/`Page` for the HTML pages (`web`).

pub mod api;
pub mod forge;
pub mod oidc;
pub mod postgres;
pub mod receivers;
pub mod web;

pub use api::{Api, Reply, token_request};

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");
pub const TEST_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `both_backends!(name, async_fn)` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::common::postgres::available() {
                        super::$name($crate::common::Backend::Postgres).await;
                    }
                }
            }
        )+
    };
}

/// A fresh database for one test: its URL and the directory for its files.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    /// Settings every command gets besides the database (e.g. the public URL).
    pub extra_env: Vec<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("tessera.db").display()
            ),
            Backend::Postgres => postgres::fresh_database(),
        };
        Self {
            url,
            dir,
            backend,
            extra_env: Vec::new(),
        }
    }

    /// The environment every command gets: this database, and a master key on
    /// PostgreSQL (where it is required); SQLite generates its own.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("TESSERA_DATABASE_URL".to_owned(), self.url.clone()),
            ("TESSERA_LOG".to_owned(), "warn".to_owned()),
            // The test receivers listen on loopback.
            (
                "TESSERA_WEBHOOK_ALLOWED_NETWORKS".to_owned(),
                "127.0.0.0/8".to_owned(),
            ),
        ];
        if self.backend == Backend::Postgres {
            env.push(("TESSERA_MASTER_KEY".to_owned(), TEST_MASTER_KEY.to_owned()));
        }
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// Runs `tessera ARGS` with this database, feeding `stdin`.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.cli_env(args, stdin, &[])
    }

    pub fn cli_env(&self, args: &[&str], stdin: Option<&str>, extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run tessera");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).expect("write stdin");
            }
        }
        child.wait_with_output().expect("tessera finished")
    }

    /// Runs a CLI command that must succeed; returns its trimmed stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "tessera {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 stdout")
            .trim()
            .to_owned()
    }
}

/// The one-time setup code a server on a database without an administrator
/// printed to its log.
pub fn setup_code_in(log: &Log) -> String {
    let line = log
        .line_with("/setup?code=", Duration::from_secs(60))
        .expect("the server logs a setup URL");
    assert!(
        !line.contains('\u{1b}'),
        "a log written to a pipe has no colour codes"
    );
    let i = line.find("/setup?code=").unwrap() + "/setup?code=".len();
    line[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Another connection holding what a server's writes need until released:
/// on SQLite the database's write lock, on PostgreSQL one table, in a
/// transaction.
pub enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    /// Reads of the table wait too (PostgreSQL).
    pub async fn take(app: &TestApp, table: &str) -> Self {
        Self::take_in(app, table, "ACCESS EXCLUSIVE").await
    }

    /// Reads of the table go on; writes wait.
    pub async fn take_writes(app: &TestApp, table: &str) -> Self {
        Self::take_in(app, table, "SHARE").await
    }

    async fn take_in(app: &TestApp, table: &str, mode: &str) -> Self {
        use sqlx::Connection;
        match app.db.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                Self::Sqlite(c)
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
                let lock = format!("LOCK TABLE {table} IN {mode} MODE");
                for sql in ["BEGIN", lock.as_str()] {
                    sqlx::query(sql).execute(&mut c).await.unwrap();
                }
                Self::Postgres(c)
            }
        }
    }

    /// Waits until `n` transactions of this database wait for a lock
    /// (PostgreSQL; panics after 20 s without them, since the race a test
    /// sets up would then not have happened), or 2 s (SQLite, whose waiters
    /// cannot be seen: there the race is likely, not guaranteed).
    pub async fn wait_for_waiters(&mut self, n: i64) {
        let Self::Postgres(c) = self else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN \
                 (SELECT pid FROM pg_stat_activity WHERE datname = current_database())",
            )
            .fetch_one(&mut *c)
            .await
            .unwrap();
            if waiting >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "after 20 s only {waiting} of the {n} expected transactions wait for a lock: \
                 the requests did not reach the locked table together"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn release(self) {
        match self {
            Self::Sqlite(mut c) => sqlx::query("ROLLBACK").execute(&mut c).await.map(drop),
            Self::Postgres(mut c) => sqlx::query("ROLLBACK").execute(&mut c).await.map(drop),
        }
        .unwrap();
    }
}

/// A running server.
pub struct TestApp {
    pub addr: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    /// What the (first) instance wrote to its standard error.
    pub log: Log,
    child: Child,
    extra_instances: Vec<Child>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> Self {
        Self::try_spawn_with(backend, extra_env)
            .await
            .expect("server starts")
    }

    /// [`Self::spawn_with`], or why the server did not start.
    pub async fn try_spawn_with(
        backend: Backend,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let db = TestDb::new(backend);
        let (child, addr, log) = start_logged_server(&db, extra_env)?;
        Ok(Self {
            addr,
            db,
            client: client(),
            log,
            child,
            extra_instances: Vec::new(),
        })
    }

    /// A server on a fresh database with no administrator, and the one-time
    /// setup code it printed to its log.
    pub async fn spawn_with_setup_code(backend: Backend) -> (Self, String) {
        let db = TestDb::new(backend);
        let (child, addr, log) = start_logged_server(&db, &[]).expect("server starts");
        let code = setup_code_in(&log);
        (
            Self {
                addr,
                db,
                client: client(),
                log,
                child,
                extra_instances: Vec::new(),
            },
            code,
        )
    }

    /// Another instance on the same database (PostgreSQL: scale-out).
    pub fn start_another(&mut self, extra_env: &[(&str, &str)]) -> String {
        let (child, addr) = start_server(&self.db, extra_env).expect("second server starts");
        self.extra_instances.push(child);
        addr
    }

    /// Stops the first instance and starts a new one on the same database.
    pub fn restart(&mut self, extra_env: &[(&str, &str)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr, log) = start_logged_server(&self.db, extra_env).expect("server restarts");
        self.child = child;
        self.addr = addr;
        self.log = log;
    }

    /// The first instance's process id (to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// An admin user `admin` and a personal token for it with `scopes`.
    pub fn admin_token(&self, scopes: &[&str]) -> String {
        if self
            .db
            .cli(
                &[
                    "users",
                    "create",
                    "--username",
                    "admin",
                    "--admin",
                    "--password-stdin",
                ],
                Some(ADMIN_PASSWORD),
            )
            .status
            .success()
        {
            // created now
        }
        self.token_for("admin", scopes)
    }

    /// A personal (or machine) token for an existing principal, via the CLI.
    pub fn token_for(&self, username: &str, scopes: &[&str]) -> String {
        let name = format!("t-{}", uuid::Uuid::new_v4());
        let mut args = vec!["tokens", "create", "--username", username, "--name", &name];
        for s in scopes {
            args.push("--scope");
            args.push(s);
        }
        self.db.cli_ok(&args, None)
    }

    /// A user with a password (not an admin unless `admin`).
    pub fn create_user(&self, username: &str, admin: bool) {
        let mut args = vec![
            "users",
            "create",
            "--username",
            username,
            "--password-stdin",
        ];
        if admin {
            args.push("--admin");
        }
        self.db.cli_ok(&args, Some(ADMIN_PASSWORD));
    }

    /// A machine user with client credentials on; returns its client secret.
    pub fn create_machine(&self, username: &str, scopes: &[&str]) -> String {
        let mut args = vec!["machine-users", "create", "--username", username];
        for s in scopes {
            args.push("--scope");
            args.push(s);
        }
        self.db.cli_ok(&args, None)
    }

    /// `POST /oauth2/token` with client_secret_basic; the JSON answer.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.client
            .post(self.url("/oauth2/token"))
            .basic_auth(client_id, Some(secret))
            .form(&form)
            .send()
            .await
            .expect("token request")
    }

    pub async fn access_token(&self, client_id: &str, secret: &str) -> String {
        let res = self.client_credentials(client_id, secret, None).await;
        assert_eq!(res.status(), 200, "token endpoint refused {client_id}");
        let body: Value = res.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The status of `GET /api/v1/me` with `token`: 200 while it works.
    pub async fn me_status(&self, token: &str) -> u16 {
        self.get_bearer("/api/v1/me", token).await.status().as_u16()
    }

    /// Runs one SQL statement on this server's database, behind its back;
    /// returns the number of rows it changed.
    pub async fn sql(&self, statement: &str) -> u64 {
        use sqlx::Connection;
        match self.db.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.db.url)
                    .await
                    .expect("sqlite");
                sqlx::query(statement)
                    .execute(&mut c)
                    .await
                    .expect(statement)
                    .rows_affected()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.db.url)
                    .await
                    .expect("postgres");
                sqlx::query(statement)
                    .execute(&mut c)
                    .await
                    .expect(statement)
                    .rows_affected()
            }
        }
    }

    /// Runs one query returning a single integer on this server's database.
    pub async fn scalar(&self, query: &str) -> i64 {
        use sqlx::Connection;
        match self.db.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.db.url)
                    .await
                    .expect("sqlite");
                sqlx::query_scalar(query)
                    .fetch_one(&mut c)
                    .await
                    .expect(query)
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.db.url)
                    .await
                    .expect("postgres");
                sqlx::query_scalar(query)
                    .fetch_one(&mut c)
                    .await
                    .expect(query)
            }
        }
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.extra_instances.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `tessera serve` on port 0 and reads the bound address from its
/// first line of output.
pub fn start_server(db: &TestDb, extra_env: &[(&str, &str)]) -> Result<(Child, String), String> {
    start_logged_server(db, extra_env).map(|(child, addr, _)| (child, addr))
}

/// [`start_server`], and what the server writes to standard error. The log
/// is always read, so a server that logs a lot never blocks on a full pipe.
pub fn start_logged_server(
    db: &TestDb,
    extra_env: &[(&str, &str)],
) -> Result<(Child, String, Log), String> {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_LISTEN", "127.0.0.1:0");
    for (k, v) in db.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let log = Log::read(child.stderr.take().expect("stderr"));
    let stdout = child.stdout.take().expect("stdout");
    match first_line(stdout, Duration::from_secs(60)) {
        Ok(line) if line.starts_with("listening on http://") => Ok((
            child,
            line.trim_start_matches("listening on http://").to_owned(),
            log,
        )),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("server did not start ({other:?}): {}", log.whole()))
        }
    }
}

/// A server's standard error, read line by line as it comes (up to 4 MiB;
/// the rest is read and dropped, and [`Log::truncated`] says so).
#[derive(Clone, Default)]
pub struct Log(std::sync::Arc<LogText>);

#[derive(Default)]
struct LogText {
    text: std::sync::Mutex<String>,
    truncated: std::sync::atomic::AtomicBool,
    ended: std::sync::atomic::AtomicBool,
}

impl Log {
    const LIMIT: usize = 4 << 20;

    fn read(stderr: std::process::ChildStderr) -> Self {
        use std::sync::atomic::Ordering;
        let log = Self::default();
        let shared = log.0.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            // Bytes, not `lines()`: a line that is not UTF-8 must not end the
            // reading.
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let mut text = shared.text.lock().unwrap();
                if text.len() + line.len() < Self::LIMIT {
                    text.push_str(&String::from_utf8_lossy(&line));
                } else {
                    shared.truncated.store(true, Ordering::Release);
                }
                line.clear();
            }
            shared.ended.store(true, Ordering::Release);
        });
        log
    }

    /// Whether lines were dropped past the limit: a check that something
    /// is absent from the log cannot rely on a truncated one.
    pub fn truncated(&self) -> bool {
        self.0.truncated.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Everything the server logged, once it has exited (at most 10 s).
    fn whole(&self) -> String {
        for _ in 0..500 {
            if self.0.ended.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.text()
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.0.text.lock().unwrap().clone()
    }

    /// The first line containing `needle`, waiting at most `wait` for it.
    pub fn line_with(&self, needle: &str, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let found = {
                let text = self.0.text.lock().unwrap();
                text.lines().find(|l| l.contains(needle)).map(str::to_owned)
            };
            if found.is_some() {
                return found;
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The first line a child prints, waiting at most `wait`; the rest of its
/// output is read and dropped, so the child never blocks on a full pipe.
pub fn first_line(
    stdout: std::process::ChildStdout,
    wait: Duration,
) -> Result<String, std::sync::mpsc::RecvTimeoutError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    rx.recv_timeout(wait)
}

/// An HTTP client that follows no redirect and drops idle connections before
/// the server's 5-second keep-alive does, so a request never goes out on a
/// connection the server is closing.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client")
}
