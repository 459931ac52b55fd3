//! Clock leeway: a token issued by an instance whose clock runs a little
//! ahead (`iat`/`nbf` seconds in the future) is accepted; one from much
//! further ahead is not, and an expired token stays expired.

use crate::{
    both_backends,
    common::{Api, Backend, forge::forge},
};

async fn me(api: &Api, jwt: &str) -> u16 {
    api.app
        .get_bearer("/api/v1/me", jwt)
        .await
        .status()
        .as_u16()
}

async fn tokens_from_a_clock_slightly_ahead_are_accepted(backend: Backend) {
    let api = Api::spawn(backend).await;
    api.app.create_user("alice", false);
    let leeway = tessera::token_service::CLOCK_LEEWAY_SECS;
    assert!((30..=300).contains(&leeway), "a small leeway: {leeway}");

    let slightly_ahead = forge(&api.app, "alice", 30, 3600).await;
    assert_eq!(me(&api, &slightly_ahead).await, 200, "30 s ahead");
    let far_ahead = forge(&api.app, "alice", 600, 3600).await;
    assert_eq!(me(&api, &far_ahead).await, 401, "10 minutes ahead");
    // No leeway at the other end: expired a few seconds ago is expired.
    let just_expired = forge(&api.app, "alice", -3605, 3600).await;
    assert_eq!(me(&api, &just_expired).await, 401, "expired 5 s ago");
}

both_backends!(tokens_from_a_clock_slightly_ahead_are_accepted);
