//! The long run: a real server driven with client-credentials requests,
//! Bearer calls, introspections, revocations and page loads at once. Then:
//! no 5xx, no token lost (every token handed out is recorded, and introspects
//! as active unless it was revoked), memory flat after warm-up.
//!
//! `cargo test --test it soak::` runs it for 60 s per backend (CI runs it
//! with the rest of `cargo test`);
//! `bench/soak.sh` runs it on a release build for longer
//! (`TESSERA_SOAK_SECS`). Figures are printed with `--nocapture`.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    both_backends,
    common::{Backend, TestApp, web::Browser},
};
use serde_json::{Value, json};

/// Tokens kept for the final introspection check: a uniform sample of every
/// token handed out (reservoir), so memory stays bounded on long runs.
const SAMPLE: usize = 4000;

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    issued: AtomicU64,
    revoked: AtomicU64,
}

impl Tally {
    fn count(&self, status: u16, what: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: {what} answered {status}");
        }
    }
}

/// Every client-credentials token handed out: a sample to introspect at the
/// end, and the tokens revoked (all of them).
struct Issued {
    sample: Vec<String>,
    seen: u64,
    recent: Vec<String>,
    revoked: Vec<String>,
    rng: u64,
}

impl Issued {
    fn add(&mut self, token: String) {
        self.seen += 1;
        if self.recent.len() < 64 {
            self.recent.push(token.clone());
        } else {
            let i = (self.seen % 64) as usize;
            self.recent[i] = token.clone();
        }
        if self.sample.len() < SAMPLE {
            self.sample.push(token);
        } else {
            let j = self.next() % self.seen;
            if (j as usize) < SAMPLE {
                self.sample[j as usize] = token;
            }
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift: a deterministic, dependency-free choice of sample slots.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn pick_recent(&mut self) -> Option<String> {
        if self.recent.is_empty() {
            return None;
        }
        let i = (self.next() % self.recent.len() as u64) as usize;
        Some(self.recent[i].clone())
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn soak_duration() -> Duration {
    let secs = std::env::var("TESSERA_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs.max(10))
}

async fn status_of(
    res: Result<reqwest::Response, reqwest::Error>,
    tally: &Tally,
    what: &str,
) -> Option<(u16, String)> {
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            tally.count(status, what);
            Some((status, res.text().await.unwrap_or_default()))
        }
        Err(e) => {
            tally.transport_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: {what} failed: {e}");
            None
        }
    }
}

async fn soak(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let admin = app.admin_token(&[
        "profile",
        "tokens:read",
        "tokens:write",
        "admin:read",
        "admin:write",
    ]);
    let secret = app.create_machine("soak-client", &["profile", "introspect"]);

    let duration = soak_duration();
    let started = Instant::now();
    let deadline = started + duration;
    let tally = Arc::new(Tally::default());
    let issued = Arc::new(Mutex::new(Issued {
        sample: Vec::new(),
        seen: 0,
        recent: Vec::new(),
        revoked: Vec::new(),
        rng: 0x9E37_79B9_7F4A_7C15,
    }));
    let mut tasks = Vec::new();

    // Client credentials, flat out.
    for _ in 0..3 {
        let (app, tally, issued, secret) =
            (app.clone(), tally.clone(), issued.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let res = app
                    .client
                    .post(app.url("/oauth2/token"))
                    .basic_auth("soak-client", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                if let Some((200, body)) = status_of(res, &tally, "token").await {
                    let body: Value = serde_json::from_str(&body).expect("token JSON");
                    let token = body["access_token"]
                        .as_str()
                        .expect("access_token")
                        .to_owned();
                    tally.issued.fetch_add(1, Ordering::Relaxed);
                    issued.lock().unwrap().add(token);
                }
            }
        }));
    }

    // Bearer calls: a PAT and fresh client-credentials tokens.
    {
        let (app, tally, issued, admin) =
            (app.clone(), tally.clone(), issued.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let token = if n.is_multiple_of(2) {
                    issued
                        .lock()
                        .unwrap()
                        .pick_recent()
                        .unwrap_or_else(|| admin.clone())
                } else {
                    admin.clone()
                };
                let res = app
                    .client
                    .get(app.url("/api/v1/me"))
                    .bearer_auth(&token)
                    .send()
                    .await;
                status_of(res, &tally, "GET /api/v1/me").await;
            }
        }));
    }

    // Introspection of recent tokens.
    {
        let (app, tally, issued, secret) =
            (app.clone(), tally.clone(), issued.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Some(token) = issued.lock().unwrap().pick_recent() else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let res = app
                    .client
                    .post(app.url("/oauth2/introspect"))
                    .basic_auth("soak-client", Some(&secret))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await;
                status_of(res, &tally, "introspect").await;
            }
        }));
    }

    // Revocations: client-credentials tokens through RFC 7009, and PATs made
    // and deleted through the API.
    {
        let (app, tally, issued, secret, admin) = (
            app.clone(),
            tally.clone(),
            issued.clone(),
            secret.clone(),
            admin.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let token = issued.lock().unwrap().pick_recent();
                if let Some(token) = token {
                    let res = app
                        .client
                        .post(app.url("/oauth2/revoke"))
                        .basic_auth("soak-client", Some(&secret))
                        .form(&[("token", token.as_str())])
                        .send()
                        .await;
                    if let Some((200, _)) = status_of(res, &tally, "revoke").await {
                        tally.revoked.fetch_add(1, Ordering::Relaxed);
                        issued.lock().unwrap().revoked.push(token);
                    }
                }
                let res = app
                    .client
                    .post(app.url("/api/v1/tokens"))
                    .bearer_auth(&admin)
                    .json(&json!({"name": format!("soak-{n}"), "scopes": ["profile"], "expires_in_seconds": 3600}))
                    .send()
                    .await;
                if let Some((201, body)) = status_of(res, &tally, "POST /api/v1/tokens").await {
                    let body: Value = serde_json::from_str(&body).expect("token JSON");
                    let id = body["id"].as_str().expect("id").to_owned();
                    let res = app
                        .client
                        .delete(app.url(&format!("/api/v1/tokens/{id}")))
                        .bearer_auth(&admin)
                        .send()
                        .await;
                    status_of(res, &tally, "DELETE /api/v1/tokens").await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    // Page loads, signed in as a person.
    {
        let (app, tally) = (app.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let browser = Browser::signed_in(&app, "admin").await;
            let pages = [
                "/",
                "/tokens",
                "/admin/tokens",
                "/admin/machine-users",
                "/admin/audit",
                "/login",
            ];
            let mut n = 0;
            while Instant::now() < deadline {
                let path = pages[n % pages.len()];
                n += 1;
                let res = browser.client.get(app.url(path)).send().await;
                status_of(res, &tally, path).await;
            }
        }));
    }

    // Memory, once a second.
    let pid = app.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < deadline {
            samples.push((started.elapsed().as_secs_f64(), rss_kib(pid)));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        samples
    });

    for t in tasks {
        t.await.expect("soak worker");
    }
    let samples = sampler.await.expect("sampler");
    let elapsed = started.elapsed().as_secs_f64();

    // No token lost: as many client-credentials records as tokens handed out…
    let handed_out = tally.issued.load(Ordering::Relaxed);
    let recorded = count_client_credentials_records(&app).await;
    assert_eq!(recorded, handed_out, "every token handed out is recorded");

    // …and each sampled one introspects as active unless it was revoked.
    let (sample, revoked) = {
        let issued = issued.lock().unwrap();
        (issued.sample.clone(), issued.revoked.clone())
    };
    let revoked_set: HashSet<&String> = revoked.iter().collect();
    let mut checked = 0;
    for token in sample.iter().chain(revoked.iter()) {
        let res = app
            .client
            .post(app.url("/oauth2/introspect"))
            .basic_auth("soak-client", Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("introspect");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        let want = !revoked_set.contains(token);
        assert_eq!(
            body["active"], want,
            "introspection of a token handed out (revoked: {})",
            !want
        );
        checked += 1;
    }

    let requests = tally.requests.load(Ordering::Relaxed);
    let warm = duration.as_secs_f64() / 3.0;
    let peak = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0)
    };
    let after_warmup = peak(warm, 2.0 * warm);
    let end = peak(2.0 * warm, f64::MAX);
    println!(
        "soak {backend:?}: {elapsed:.0} s, {requests} requests ({:.0}/s), {handed_out} client-credentials tokens ({:.0}/s), {} revoked, {checked} introspected at the end; RSS {} MiB after warm-up, {} MiB at the end, {} MiB peak",
        requests as f64 / elapsed,
        handed_out as f64 / elapsed,
        tally.revoked.load(Ordering::Relaxed),
        after_warmup / 1024,
        end / 1024,
        samples.iter().map(|(_, k)| *k).max().unwrap_or(0) / 1024,
    );
    assert_eq!(tally.server_errors.load(Ordering::Relaxed), 0, "no 5xx");
    assert_eq!(
        tally.transport_errors.load(Ordering::Relaxed),
        0,
        "no dropped connection"
    );
    assert!(handed_out > 0 && requests > handed_out, "the soak did work");
    // Caches hold entries for 60 s and are bounded; past warm-up the resident
    // set may wobble but must not climb.
    let allowed = (after_warmup / 5).max(16 * 1024);
    assert!(
        end <= after_warmup + allowed,
        "memory grew after warm-up: {after_warmup} KiB → {end} KiB"
    );
}

async fn count_client_credentials_records(app: &TestApp) -> u64 {
    let sql = "SELECT COUNT(*) FROM tokens WHERE kind = 'client_credentials'";
    let n: i64 = match app.db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url)
                .await
                .expect("sqlite");
            sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.expect("postgres");
            sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    n as u64
}

both_backends!(soak);
