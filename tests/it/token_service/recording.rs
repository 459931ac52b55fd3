//! Recording issued tokens when the database does not take them: a token
//! request fails in bounded time instead of hanging, and issuing resumes
//! once the database is free again (SQLite's busy timeout; on PostgreSQL the
//! writer's own timeout, after which it opens a fresh connection).

use std::time::Duration;

use crate::{
    both_backends,
    common::{Backend, TestApp, WriteLock},
};

/// Well past the writer's 10 s, well short of forever.
const PATIENCE: Duration = Duration::from_secs(40);

async fn a_token_request_fails_in_time_while_the_tokens_table_is_locked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.create_machine("locked-out", &["profile"]);
    app.access_token("locked-out", &secret).await;

    let lock = WriteLock::take(&app, "tokens").await;
    let denied = tokio::time::timeout(
        PATIENCE,
        app.client_credentials("locked-out", &secret, None),
    )
    .await;
    lock.release().await;
    let denied = denied.expect("the token request hung behind the lock");
    assert!(denied.status().is_server_error(), "{}", denied.status());
    let body = denied.text().await.unwrap();
    assert!(!body.contains("access_token"), "{body}");

    // Free again: the next request gets its token, recorded.
    let before = app
        .scalar("SELECT count(*) FROM tokens WHERE kind = 'client_credentials'")
        .await;
    app.access_token("locked-out", &secret).await;
    let after = app
        .scalar("SELECT count(*) FROM tokens WHERE kind = 'client_credentials'")
        .await;
    assert_eq!(after, before + 1);
}

both_backends!(a_token_request_fails_in_time_while_the_tokens_table_is_locked);
