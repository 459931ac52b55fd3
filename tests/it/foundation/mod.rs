//! Foundation: start-up on both backends, migrations, the CLI and its bad
//! input, configuration errors.

mod foreign_keys;
mod sso_settings;
mod token_indexes;
mod upgrade;

use crate::{
    both_backends,
    common::{self, Backend, TestApp, TestDb},
};

async fn server_starts_and_reports_health(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap().trim(), "ready");
    // The harness's `TESSERA_LOG=warn` holds for every crate: start-up (the
    // migrations among it) logs nothing below WARN. Start-up is over once
    // the setup link, its last line, is logged (at WARN).
    app.log
        .line_with("no administrator yet", std::time::Duration::from_secs(10))
        .expect("the setup link is logged at the end of start-up");
    let log = app.log.text();
    assert!(!log.contains(" INFO "), "{log}");
    // Probes are read; any other method is a 405 naming the ones there are.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let posted = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(posted.status(), 405, "{path}");
        assert_eq!(posted.headers()["allow"], "GET, HEAD", "{path}");
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
    }
}

async fn migrations_run_twice_in_a_row(backend: Backend) {
    let db = TestDb::new(backend);
    db.cli_ok(&["migrate"], None);
    db.cli_ok(&["migrate"], None);
    // And the server starts on the migrated database.
    let (mut child, _) = common::start_server(&db, &[]).expect("starts after migrate");
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn cli_creates_users_and_refuses_bad_input(backend: Backend) {
    let db = TestDb::new(backend);
    let id = db.cli_ok(
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--admin",
            "--password-stdin",
        ],
        Some("s3cret-passw0rd\n"),
    );
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "prints the new user's id, got {id:?}"
    );

    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (
            &["users", "create", "--username", "alice", "--password-stdin"],
            Some("another-password"),
            "already taken",
        ),
        (
            &["users", "create", "--username", "bob", "--password-stdin"],
            Some(""),
            "password",
        ),
        (
            &["users", "create", "--username", "bob", "--password-stdin"],
            Some("\n"),
            "password",
        ),
        (
            &[
                "users",
                "create",
                "--username",
                "Bad Name",
                "--password-stdin",
            ],
            Some("good-password"),
            "username",
        ),
        (
            &["users", "create", "--username", "ab", "--password-stdin"],
            Some("good-password"),
            "username",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = db.cli(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed on stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.contains(expected),
            "{args:?}: first stderr line {first:?} should mention {expected:?}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{args:?} panicked: {stderr}"
        );
        assert!(
            !stderr.contains("good-password") && !stderr.contains("another-password"),
            "password echoed: {stderr}"
        );
    }
    // A refused value names the flag it was given with.
    for (args, flag) in [
        (
            &[
                "tokens",
                "create",
                "--username",
                "alice",
                "--name",
                "n",
                "--expires-in",
                "366d",
            ][..],
            "--expires-in",
        ),
        (
            &[
                "machine-users",
                "create",
                "--username",
                "m-one",
                "--ttl-minutes",
                "0",
            ][..],
            "--ttl-minutes",
        ),
    ] {
        let out = db.cli(args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// Runs `tessera ARGS` with its standard output on `stdout`.
fn cli_to(
    db: &TestDb,
    args: &[&str],
    stdout: impl Into<std::process::Stdio>,
) -> std::process::Output {
    std::process::Command::new(common::BIN)
        .args(args)
        .current_dir(db.dir.path())
        .env_clear()
        .envs(db.env())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

/// A new secret that could not be printed was seen by nobody: the command
/// fails, and takes back the token or the machine user that held it, so
/// that running it again works.
async fn a_secret_that_cannot_be_printed_is_taken_back(backend: Backend) {
    let db = TestDb::new(backend);
    db.cli_ok(
        &["users", "create", "--username", "alice", "--password-stdin"],
        Some("a-long-enough-password\n"),
    );
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let token = ["tokens", "create", "--username", "alice", "--name", "ci"];
    let out = cli_to(&db, &token, full());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write to standard output")
            && stderr.contains("the token was revoked"),
        "{stderr}"
    );
    // The name is free again: the token that held it was revoked.
    assert!(db.cli_ok(&token, None).starts_with("ey"));

    let machine = ["machine-users", "create", "--username", "deployer"];
    let out = cli_to(&db, &machine, full());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the machine user was removed"), "{stderr}");
    assert!(db.cli_ok(&machine, None).starts_with("tsc_"));

    // A reader gone away ends the command quietly, and takes it back too.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let gone = ["tokens", "create", "--username", "alice", "--name", "gone"];
    let out = cli_to(&db, &gone, writer);
    assert_eq!(out.status.code(), Some(141));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(db.cli_ok(&gone, None).starts_with("ey"));
}

both_backends!(
    server_starts_and_reports_health,
    migrations_run_twice_in_a_row,
    cli_creates_users_and_refuses_bad_input,
    a_secret_that_cannot_be_printed_is_taken_back
);

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_setting() {
    let db = TestDb::new(Backend::Sqlite);
    let cases = [
        (
            "TESSERA_DATABASE_URL",
            "mysql://nope",
            "TESSERA_DATABASE_URL",
        ),
        (
            "TESSERA_DATABASE_URL",
            "sqlite:///nonexistent-dir/x/y.db",
            "TESSERA_DATABASE_URL",
        ),
        // The token recorder writes through a connection of its own.
        ("TESSERA_DATABASE_URL", "sqlite::memory:", "in-memory"),
        ("TESSERA_DATABASE_URL", "sqlite://", "names no file"),
        ("TESSERA_LISTEN", "not-an-address", "TESSERA_LISTEN"),
        ("TESSERA_PUBLIC_URL", "::not a url", "TESSERA_PUBLIC_URL"),
        // The issuer: no query or fragment (RFC 8414 §2), no credentials.
        (
            "TESSERA_PUBLIC_URL",
            "http://x.example/p?q=1",
            "without a query",
        ),
        (
            "TESSERA_PUBLIC_URL",
            "http://x.example/p#f",
            "without a query",
        ),
        ("TESSERA_PUBLIC_URL", "http://x.example?", "without a query"),
        (
            "TESSERA_PUBLIC_URL",
            "https://u:p@x.example",
            "without a query",
        ),
        ("TESSERA_SIGNING_ALG", "HS256", "TESSERA_SIGNING_ALG"),
        ("TESSERA_MASTER_KEY", "short", "TESSERA_MASTER_KEY"),
        (
            "TESSERA_MAX_TOKEN_LIFETIME",
            "forever",
            "TESSERA_MAX_TOKEN_LIFETIME",
        ),
        ("TESSERA_LOG", "[[[", "TESSERA_LOG"),
        // Empty is no logging at all, the setup link included.
        ("TESSERA_LOG", "", "TESSERA_LOG"),
        // The issuer is compared as a string: only as the parser writes it.
        (
            "TESSERA_PUBLIC_URL",
            "http:x.example",
            "\"http://x.example\"",
        ),
        (
            "TESSERA_PUBLIC_URL",
            " http://x.example",
            "\"http://x.example\"",
        ),
        (
            "TESSERA_PUBLIC_URL",
            "HTTP://X.Example",
            "\"http://x.example\"",
        ),
        ("TESSERA_AUDIENCE", " api ", "TESSERA_AUDIENCE"),
        ("TESSERA_AUDIENCE", "api\n", "TESSERA_AUDIENCE"),
        // Half a credential would send mail without signing in.
        (
            "TESSERA_SMTP_URL",
            "smtp://:pw@mail.example",
            "without a user name",
        ),
        (
            "TESSERA_SMTP_URL",
            "smtp://me@mail.example",
            "without a password",
        ),
        (
            "TESSERA_TRUSTED_PROXIES",
            "10.0.0.0/8, proxy.internal",
            "TESSERA_TRUSTED_PROXIES",
        ),
        (
            "TESSERA_WEBHOOK_ALLOWED_NETWORKS",
            "10.0.0.0/33",
            "TESSERA_WEBHOOK_ALLOWED_NETWORKS",
        ),
    ];
    for (var, value, named) in cases {
        // A setting wrongly taken would start a server that never ends.
        let child = std::process::Command::new(common::BIN)
            .arg("serve")
            .current_dir(db.dir.path())
            .env_clear()
            .envs(db.env())
            .env(var, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = ended_within(child, &format!("serve with {var}={value:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} should stop start-up");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{var}={value}: expected one line, got {stderr:?}"
        );
        assert!(
            stderr.contains(named),
            "{var}={value}: {stderr:?} should name {named}"
        );
    }
    // An address in use is found before anything is logged (a fresh
    // database's migrations included).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = db.cli_env(&["serve"], None, &[("TESSERA_LISTEN", &address)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("TESSERA_LISTEN"), "{stderr:?}");
}

/// `--help` names the variables but never prints their secret values.
#[test]
fn help_shows_no_secret_from_the_environment() {
    let db = TestDb::new(Backend::Sqlite);
    let secrets = [
        (
            "TESSERA_DATABASE_URL",
            "postgres://tessera:db-S3cret@db.internal/tessera",
        ),
        ("TESSERA_MASTER_KEY", "bWFzdGVyLWtleS1zM2NyZXQ="),
        ("TESSERA_SMTP_URL", "smtp://mail:smtp-S3cret@mail.internal"),
        ("TESSERA_OIDC_CLIENT_SECRET", "oidc-S3cret"),
    ];
    for args in [&["--help"][..], &["tokens", "create", "--help"][..]] {
        let out = db.cli_env(args, None, &secrets);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(shown.contains("TESSERA_DATABASE_URL"), "{shown}");
        for needle in ["S3cret", "bWFzdGVy"] {
            assert!(!shown.contains(needle), "{args:?} shows {needle}: {shown}");
        }
    }
}

#[test]
fn a_port_in_use_stops_start_up_with_a_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = TestDb::new(Backend::Sqlite);
    let out = db.cli_env(
        &["serve"],
        None,
        &[("TESSERA_LISTEN", &addr), ("TESSERA_LOG", "off")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("TESSERA_LISTEN") && stderr.contains(&addr),
        "{stderr:?}"
    );
}

/// Waits for `child` to end, for at most 20 s; past that it is killed and
/// the test fails, still `doing` it.
fn ended_within(mut child: std::process::Child, doing: &str) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("still {doing} after 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_token_made_without_a_lifetime_lives_30_days_or_the_policy_maximum() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(
        &["users", "create", "--username", "zed", "--password-stdin"],
        Some("a-long-enough-password\n"),
    );
    let lifetime = |token: &str| {
        let claims = crate::api::client_assertions::jwt_claims(token);
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
    };
    let plain = db.cli_ok(
        &["tokens", "create", "--username", "zed", "--name", "a"],
        None,
    );
    assert_eq!(lifetime(&plain), 30 * 86_400);
    let capped = db.cli_ok(
        &[
            "--max-token-lifetime",
            "10d",
            "tokens",
            "create",
            "--username",
            "zed",
            "--name",
            "b",
        ],
        None,
    );
    assert_eq!(lifetime(&capped), 10 * 86_400);
}

#[test]
fn an_unreachable_postgresql_is_reported_with_its_reason() {
    let db = TestDb::new(Backend::Sqlite);
    // Nothing listens on port 1: after the pool's 10 s of retries, the line
    // says why, not only that the pool timed out.
    let out = db.cli_env(
        &["migrate"],
        None,
        &[(
            "TESSERA_DATABASE_URL",
            "postgres://tessera:pw@127.0.0.1:1/x",
        )],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot connect to database (TESSERA_DATABASE_URL)")
            && stderr.contains("refused")
            && !stderr.contains("pw"),
        "{stderr}"
    );
}

#[test]
fn a_password_on_standard_input_is_read_no_further_than_the_longest_one() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    let child = std::process::Command::new(common::BIN)
        .args([
            "users",
            "create",
            "--username",
            "endless",
            "--password-stdin",
        ])
        .current_dir(db.dir.path())
        .env_clear()
        .envs(db.env())
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = ended_within(child, "reading an endless standard input");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "error: password: must be at most 1024 characters\n");
    // The longest password is taken.
    let longest = "é".repeat(1024);
    db.cli_ok(
        &[
            "users",
            "create",
            "--username",
            "longest",
            "--password-stdin",
        ],
        Some(&format!("{longest}\n")),
    );
}

#[test]
fn configuration_file_is_read_and_flags_win_over_it() {
    let db = TestDb::new(Backend::Sqlite);
    std::fs::write(
        db.dir.path().join("tessera.toml"),
        "signing_alg = \"EdDSA\"\nmax_token_lifetime = \"nonsense\"\n",
    )
    .unwrap();
    // The file's bad value is reported, naming the setting…
    let out = db.cli(&["keys", "list"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_MAX_TOKEN_LIFETIME"));
    // …and a flag overrides it.
    let listing = db.cli_ok(&["--max-token-lifetime", "30d", "keys", "list"], None);
    assert!(
        listing.contains("EdDSA"),
        "the file's signing_alg applies: {listing}"
    );
    // An unknown key in the file is an error too, placed in the file.
    std::fs::write(
        db.dir.path().join("tessera.toml"),
        "log = \"info\"\nno_such_setting = 1\n",
    )
    .unwrap();
    let out = db.cli(&["migrate"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("tessera.toml, line 2, column 1: unknown field `no_such_setting`"),
        "{stderr}"
    );
    // A file that never ends is refused, not read into memory.
    let out = db.cli(&["--config", "/dev/zero", "keys", "list"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/dev/zero"), "{stderr}");
}

#[test]
fn a_second_server_on_one_sqlite_file_is_refused_with_a_clear_line() {
    let db = TestDb::new(Backend::Sqlite);
    let (mut first, _) = common::start_server(&db, &[]).expect("the first starts");
    let second = common::start_server(&db, &[]);
    // Stopped before anything can panic, so no server outlives the test.
    first.kill().unwrap();
    first.wait().unwrap();
    let refused = match second {
        Ok((mut child, _)) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second server started on the same SQLite file");
        }
        Err(e) => e,
    };
    assert!(
        refused.contains("another `tessera serve` is running") && refused.contains("PostgreSQL"),
        "{refused}"
    );
    // Once the first has stopped, a server starts again.
    let (mut again, _) = common::start_server(&db, &[]).expect("starts after the first stopped");
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn commands_started_together_on_a_new_sqlite_file_take_turns() {
    let db = TestDb::new(Backend::Sqlite);
    // Each migrates, makes the master key and the first signing key.
    let children: Vec<_> = (0..6)
        .map(|_| {
            let mut cmd = std::process::Command::new(common::BIN);
            cmd.args(["keys", "list"])
                .current_dir(db.dir.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(db.env())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("run tessera")
        })
        .collect();
    let mut listings = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        listings.push(String::from_utf8(out.stdout).unwrap());
    }
    // One master key and one active signing key, which every one of them saw.
    let active: Vec<&str> = listings[0]
        .lines()
        .filter(|l| l.contains(" active "))
        .collect();
    assert_eq!(active.len(), 1, "{}", listings[0]);
    assert!(
        listings.iter().all(|l| l.contains(active[0])),
        "{listings:?}"
    );
}

#[test]
fn a_closed_standard_output_ends_a_command_quietly() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cli_to(&db, &["keys", "list"], writer);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "as a program ended by SIGPIPE");
    assert_eq!(out.status.code(), Some(141));

    // An error with nowhere to be said: the status still says it.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["tokens", "create", "--username", "nobody", "--name", "x"])
        .current_dir(db.dir.path())
        .env_clear()
        .envs(db.env())
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_server_whose_stdout_is_full_still_serves() {
    let db = TestDb::new(Backend::Sqlite);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut server = std::process::Command::new(common::BIN)
        .arg("serve")
        .current_dir(db.dir.path())
        .env_clear()
        .envs(db.env())
        .env("TESSERA_LISTEN", addr.to_string())
        .stdout(full)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut up = false;
    while std::time::Instant::now() < deadline && !up {
        std::thread::sleep(std::time::Duration::from_millis(100));
        up = std::net::TcpStream::connect(addr).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.1 200")
        });
    }
    let exited = server.try_wait().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "the server answers /healthz (exited: {exited:?})");
}

#[test]
fn a_command_with_another_master_key_is_refused_before_it_seals_anything() {
    let db = TestDb::new(Backend::Sqlite);
    // The server's key is given in its environment…
    let server_key = [("TESSERA_MASTER_KEY", common::TEST_MASTER_KEY)];
    let before = db.cli_env(&["keys", "list"], None, &server_key);
    assert!(before.status.success());
    // …and a command run without it would generate another beside the file.
    let out = db.cli(&["keys", "rotate"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TESSERA_MASTER_KEY"), "{stderr}");
    // Nothing was rotated: the server's key still opens every key.
    let after = db.cli_env(&["keys", "list"], None, &server_key);
    assert!(after.status.success());
    assert_eq!(before.stdout, after.stdout);
    // Nor was a master key generated that would stand in for the right one…
    let file = db.dir.path().join("master.key");
    assert!(!file.exists(), "a refused command left a master.key");
    // …which, put back beside the database, is the one used.
    std::fs::write(&file, format!("{}\n", common::TEST_MASTER_KEY)).unwrap();
    assert_eq!(
        db.cli_ok(&["keys", "list"], None),
        String::from_utf8_lossy(&before.stdout).trim()
    );
}

#[test]
fn sqlite_master_key_is_generated_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["keys", "list"], None);
    let meta = std::fs::metadata(db.dir.path().join("master.key"))
        .expect("master.key beside the database");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

async fn sigterm_shuts_down_gracefully_and_keeps_last_use(backend: Backend) {
    let db = TestDb::new(backend);
    let secret = db.cli_ok(
        &[
            "machine-users",
            "create",
            "--username",
            "svc-a",
            "--scope",
            "profile",
        ],
        None,
    );
    let (mut child, addr) = common::start_server(&db, &[]).expect("starts");
    let client = reqwest::Client::new();
    // Concurrent requests that read the database, so that the pool opens
    // connections on the HTTP workers' runtimes, which are gone by the time
    // of the last flush.
    let reads = (0..48).map(|_| {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/readyz");
        async move { client.get(url).send().await.unwrap().status() }
    });
    for status in futures_util::future::join_all(reads).await {
        assert_eq!(status, 200);
    }
    let res: serde_json::Value = client
        .post(format!("http://{addr}/oauth2/token"))
        .basic_auth("svc-a", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = res["access_token"].as_str().unwrap();
    let me = client
        .get(format!("http://{addr}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "exit status after SIGTERM: {exit:?}");
    // The in-memory `last used` was flushed on the way out.
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let row = conn
        .query_one(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM tokens WHERE last_used_at IS NOT NULL AND last_used_ip = '127.0.0.1'",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    assert_eq!(n, 1, "the token's last use was recorded at shutdown");
}

both_backends!(sigterm_shuts_down_gracefully_and_keeps_last_use);
