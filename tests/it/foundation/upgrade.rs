//! An upgrade across m20261201_000001: rows written by the schema before it
//! come out as documented once `tessera migrate` has run: users sign in with
//! a password, nobody has an e-mail address yet, and old client secrets have
//! a null hint.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, Database,
    sea_query::{Alias, Query, SimpleExpr},
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    both_backends,
    common::{self, ADMIN_PASSWORD, Backend, TestDb},
};

const MIGRATION: &str = "m20261201_000001_email_and_hints";

async fn insert(db: &impl ConnectionTrait, table: &str, row: Vec<(&str, SimpleExpr)>) {
    let (cols, values): (Vec<_>, Vec<_>) = row.into_iter().unzip();
    let stmt = Query::insert()
        .into_table(Alias::new(table))
        .columns(cols.into_iter().map(Alias::new))
        .values_panic(values)
        .to_owned();
    db.execute(db.get_database_backend().build(&stmt))
        .await
        .unwrap_or_else(|e| panic!("insert into {table}: {e}"));
}

async fn principal(db: &impl ConnectionTrait, id: Uuid, kind: &str, username: &str) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let role: Option<&str> = (kind == "user").then_some("user");
    let hash: Option<&str> = (kind == "user").then_some("$argon2id$not-a-real-hash");
    insert(
        db,
        "principals",
        vec![
            ("id", id.into()),
            ("kind", kind.into()),
            ("username", username.into()),
            ("enabled", true.into()),
            ("role", role.into()),
            ("password_hash", hash.into()),
            ("display_name", "".into()),
            ("description", "".into()),
            ("contact_email", "".into()),
            ("scopes", "profile".into()),
            ("cc_enabled", (kind == "machine").into()),
            ("cc_ttl_minutes", 60.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
}

async fn rows_made_before_the_upgrade_read_as_documented(backend: Backend) {
    let tdb = TestDb::new(backend);
    {
        let conn = Database::connect(&tdb.url).await.expect("connect");
        let before = Migrator::migrations()
            .iter()
            .position(|m| m.name() == MIGRATION)
            .expect("the migration is registered");
        Migrator::up(&conn, Some(before as u32)).await.unwrap();
        let machine = Uuid::now_v7();
        principal(&conn, Uuid::now_v7(), "user", "olduser").await;
        principal(&conn, machine, "machine", "oldsvc").await;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        insert(
            &conn,
            "client_secrets",
            vec![
                ("id", Uuid::now_v7().into()),
                ("machine_user_id", machine.into()),
                ("digest", "0".repeat(64).into()),
                ("created_at", now.into()),
            ],
        )
        .await;
        conn.close().await.unwrap();
    }

    // The real upgrade: the command operators run.
    tdb.cli_ok(&["migrate"], None);
    tdb.cli_ok(
        &[
            "users",
            "create",
            "--username",
            "admin",
            "--admin",
            "--password-stdin",
        ],
        Some(ADMIN_PASSWORD),
    );
    let token = tdb.cli_ok(
        &[
            "tokens",
            "create",
            "--username",
            "admin",
            "--name",
            "upgrade",
            "--scope",
            "admin:read",
        ],
        None,
    );
    let (mut child, addr) = common::start_server(&tdb, &[]).expect("starts");
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(&token)
            .send()
    };
    let users: Value = get("/api/v1/users").await.unwrap().json().await.unwrap();
    let old = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "olduser")
        .expect("listed")
        .clone();
    assert_eq!(old["auth"], "password", "{old}");
    assert_eq!(old["email"], Value::Null, "{old}");
    let machines: Value = get("/api/v1/machine-users")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = &machines["items"][0]["secrets"][0];
    assert!(secret.get("hint").is_some_and(Value::is_null), "{secret}");
    child.kill().unwrap();
    child.wait().unwrap();
}

both_backends!(rows_made_before_the_upgrade_read_as_documented);
