//! What time does: expired setup codes, sessions that slide and end, client
//! secrets growing old, and the longest machine token the policy allows.

use crate::{
    both_backends,
    common::{
        Backend, TestApp,
        web::{Browser, between},
    },
};
use reqwest::StatusCode;

/// Direct database access, through the same entities the server uses, to age
/// rows in ways a test cannot wait for.
async fn database(app: &TestApp) -> tessera::storage::Db {
    tessera::storage::Db::connect(&app.db.url)
        .await
        .expect("database")
}

async fn expired_setup_codes_are_refused(backend: Backend) {
    use sea_orm::{EntityTrait, sea_query::Expr};
    use tessera::storage::entities::setup_code;
    let (app, code) = TestApp::spawn_with_setup_code(backend).await;
    let b = Browser::new(&app);
    let path = format!("/setup?code={code}");
    let csrf = b.get(&path).await.csrf();
    let db = database(&app).await;
    setup_code::Entity::update_many()
        .col_expr(
            setup_code::Column::ExpiresAt,
            Expr::value(tessera::domain::clock::now() - time::Duration::minutes(1)),
        )
        .exec(&db.write)
        .await
        .expect("age the code");
    assert_eq!(b.get(&path).await.status, StatusCode::FORBIDDEN);
    let res = b
        .post(
            "/setup",
            &[
                ("csrf", &csrf),
                ("code", &code),
                ("username", "root"),
                ("password", "a long password"),
                ("password_again", "a long password"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.body.contains("expired"));
    // The refusal is the same for every reason; what matters is that no
    // administrator was made.
    assert_eq!(
        app.scalar("SELECT count(*) FROM principals WHERE role = 'admin'")
            .await,
        0,
        "no administrator"
    );
    assert_eq!(b.login("root", "a long password").await.status, 401);
}

async fn sessions_slide_and_end_after_idle_and_absolute_timeouts(backend: Backend) {
    use sea_orm::{EntityTrait, sea_query::Expr};
    use tessera::{domain::clock, storage::entities::session};
    let app = TestApp::spawn(backend).await;
    app.create_user("alice", false);
    let db = database(&app).await;
    let set = |col: session::Column, minutes_ago: i64| {
        let db = db.write.clone();
        async move {
            session::Entity::update_many()
                .col_expr(
                    col,
                    Expr::value(clock::now() - time::Duration::minutes(minutes_ago)),
                )
                .exec(&db)
                .await
                .expect("update sessions");
        }
    };
    let count = || {
        let db = db.read.clone();
        async move {
            session::Entity::find()
                .all(&db)
                .await
                .expect("sessions")
                .len()
        }
    };

    // Used 5 minutes ago: still live, and the request slides last_seen_at.
    let b = Browser::signed_in(&app, "alice").await;
    set(session::Column::LastSeenAt, 5).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::OK);
    let row = session::Entity::find()
        .one(&db.read)
        .await
        .expect("query")
        .expect("session");
    assert!(clock::now() - row.last_seen_at < time::Duration::minutes(1));

    // 31 minutes idle: over.
    set(session::Column::LastSeenAt, 31).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::SEE_OTHER);
    assert_eq!(count().await, 0, "the expired session is deleted");

    // Past the absolute lifetime, however recently used: over.
    let b = Browser::signed_in(&app, "alice").await;
    set(session::Column::ExpiresAt, 1).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::SEE_OTHER);
    assert_eq!(count().await, 0, "the expired session is deleted");
}

async fn the_dashboard_names_machine_users_with_old_secrets(backend: Backend) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use tessera::{domain::clock, storage::entities::client_secret};
    let app = TestApp::spawn(backend).await;
    app.create_user("boss", true);
    app.create_machine("fresh-robot", &["profile"]);
    app.create_machine("old-robot", &["profile"]);
    let db = database(&app).await;
    let old = tessera::domain::principals::find_by_username(&db.read, "old-robot")
        .await
        .expect("query")
        .expect("machine user");
    client_secret::Entity::update_many()
        .col_expr(
            client_secret::Column::CreatedAt,
            Expr::value(clock::now() - time::Duration::days(91)),
        )
        .filter(client_secret::Column::MachineUserId.eq(old.id))
        .exec(&db.write)
        .await
        .expect("age the secret");
    let b = Browser::signed_in(&app, "boss").await;
    let home = b.get("/").await;
    home.expect(StatusCode::OK, "dashboard");
    assert!(
        home.body.contains(">old-robot</a>: secret created"),
        "{}",
        home.body
    );
    assert!(home.body.contains("91 days ago"));
    // (The orphans section below names both: made on the command line, no one looks after them.)
    let stale = home.body.split(r#"id="orphans""#).next().unwrap();
    assert!(!stale.contains("fresh-robot"));
}

/// The machine-token form offers what issuance allows: the policy maximum,
/// also above a year.
async fn the_machine_token_form_offers_the_policy_maximum(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TESSERA_MAX_TOKEN_LIFETIME", "730d")]).await;
    app.create_user("boss", true);
    app.create_machine("long-lived", &["profile"]);
    let b = Browser::signed_in(&app, "boss").await;
    let list = b.get("/admin/machine-users").await;
    let row = list
        .body
        .split("<td")
        .find(|c| c.contains(">long-lived<"))
        .expect("row");
    let id = between(row, "href=\"/admin/machine-users/", "\"").expect("machine user link");
    let page = b.get(&format!("/admin/machine-users/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("at most 730 days"), "{}", page.body);
}

both_backends!(
    expired_setup_codes_are_refused,
    sessions_slide_and_end_after_idle_and_absolute_timeouts,
    the_dashboard_names_machine_users_with_old_secrets,
    the_machine_token_form_offers_the_policy_maximum,
);
