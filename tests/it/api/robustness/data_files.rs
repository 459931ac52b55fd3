//! SQLite data files are private to the server's user, like `master.key`:
//! the data directory 0700, the database and its WAL/shared-memory files 0600.

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;

    use crate::common::{Backend, TestDb, start_server};

    let db = TestDb::new(Backend::Sqlite);
    // The default database URL, relative to the server's working directory.
    let (mut child, addr) = start_server(
        &db,
        &[("TESSERA_DATABASE_URL", "sqlite://data/tessera.db?mode=rwc")],
    )
    .expect("server starts");
    // A write, so the WAL and shared-memory files are in use.
    let res = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(res.status(), 200);

    let data = db.dir.path().join("data");
    let mode = |name: &str| {
        let path = data.join(name);
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        meta.permissions().mode() & 0o777
    };
    let found: Vec<(String, u32)> = [
        "",
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "master.key",
    ]
    .iter()
    .map(|n| (n.to_string(), mode(n)))
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        found,
        vec![
            (String::new(), 0o700),
            ("tessera.db".into(), 0o600),
            ("tessera.db-wal".into(), 0o600),
            ("tessera.db-shm".into(), 0o600),
            ("master.key".into(), 0o600),
        ],
        "modes of data/ and its files"
    );
}
