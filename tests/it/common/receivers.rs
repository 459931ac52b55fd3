//! Real outside systems for the notification tests, started and stopped
//! here: an SMTP server (Python `aiosmtpd`) and a webhook receiver that
//! verifies signatures with the `standardwebhooks` package, an
//! implementation independent of Tessera's. Both are scripts in
//! `tests/fixtures/` (their packages: `tests/fixtures/requirements.txt`).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Where the fixtures' Python packages are: already importable (`None`), or
/// installed on first use under the build's temporary directory, so a plain
/// `cargo test` needs nothing set up by hand.
fn python_path() -> &'static Option<PathBuf> {
    static PATH: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let importable = Command::new("python3")
            .args(["-c", "import aiosmtpd, standardwebhooks"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if importable {
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-fixtures");
        let installed = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&dir)
            .arg("-r")
            .arg(fixture("requirements.txt"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "could not install tests/fixtures/requirements.txt (python3 with pip is needed)"
        );
        Some(dir)
    })
}

/// Starts a fixture script and reads the port from its `listening PORT` line.
fn start(args: &[&str]) -> (Child, u16) {
    let mut command = Command::new("python3");
    if let Some(dir) = python_path() {
        command.env("PYTHONPATH", dir);
    }
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (install tests/fixtures/requirements.txt)");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("fixture output");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "{args:?} did not start (is tests/fixtures/requirements.txt installed?): {line:?}"
            )
        });
    (child, port)
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Like [`wait_for`], with a probe that awaits (an API call).
pub async fn eventually<T, Fut>(what: &str, limit: Duration, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A real SMTP server; every message it received is a file in `dir`.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// `--auth-in-clear`: AUTH offered without STARTTLS, credentials recorded
    /// (see [`Self::credentials_seen`]).
    pub fn start_with(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = fixture("smtp_sink.py");
        let mut args = vec![script.to_str().unwrap(), dir.path().to_str().unwrap()];
        args.extend_from_slice(flags);
        let (child, port) = start(&args);
        Self { child, port, dir }
    }

    /// Every `user:password` a client sent (with `--auth-in-clear`).
    pub fn credentials_seen(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("auth.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("message"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real HTTP receiver verifying Standard Webhooks signatures.
pub struct Receiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// `mode`: `ok`, `fail:N`, `hang` or `redirect:URL` (see the script).
    pub fn start(secret: &str, mode: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("received.jsonl");
        let script = fixture("webhook_receiver.py");
        let (child, port) = start(&[
            script.to_str().unwrap(),
            secret,
            log.to_str().unwrap(),
            mode,
        ]);
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP listener that accepts connections and never says a word, counting
/// them: a server (SMTP, HTTP) hung after the handshake.
pub struct Silent {
    pub port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Silent {
    pub fn start() -> Self {
        use std::sync::{Arc, atomic::Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, done) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !done.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            accepted,
            stop,
        }
    }

    /// Connections taken so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A webhook for `events` with a real receiver in `mode` behind it: the
/// webhook is created first (its secret is the receiver's), then pointed at
/// the receiver. Its id, and the receiver.
pub async fn webhook(
    api: &super::Api,
    admin: &str,
    events: &[&str],
    mode: &str,
) -> (String, Receiver) {
    let created = api
        .post(
            "/api/v1/webhooks",
            admin,
            &serde_json::json!({"url": "http://127.0.0.1:9/unused", "events": events}),
        )
        .await;
    created.expect(201, "create webhook");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap();
    let receiver = Receiver::start(secret, mode);
    api.patch(
        &format!("/api/v1/webhooks/{id}"),
        admin,
        &serde_json::json!({"url": receiver.url()}),
    )
    .await
    .expect(200, "point the webhook at the receiver");
    (id, receiver)
}
