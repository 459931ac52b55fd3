//! Delegated managers of machine users and orphans (INTERFACE §12): a
//! manager may do exactly what the interface lists, through the API and the
//! pages; a machine user nobody enabled looks after is flagged.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{Api, Backend, token_request, web::Browser},
};

async fn id_of(api: &Api, admin: &str, list: &str, username: &str) -> String {
    let page = api.get(&format!("{list}?limit=500"), admin).await;
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} in {list}: {}", page.text))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn machine(api: &Api, token: &str, username: &str, scopes: &[&str]) -> String {
    let made = api
        .post(
            "/api/v1/machine-users",
            token,
            &json!({"username": username, "scopes": scopes}),
        )
        .await;
    made.expect(201, "machine user");
    made.body["id"].as_str().unwrap().to_owned()
}

/// A machine token issued by `token` for the machine user `id`: its id.
async fn machine_token(api: &Api, token: &str, id: &str, name: &str) -> String {
    let made = api
        .post(
            &format!("/api/v1/machine-users/{id}/tokens"),
            token,
            &token_request(name, &["profile"]),
        )
        .await;
    made.expect(201, "machine token");
    made.body["id"].as_str().unwrap().to_owned()
}

/// The id of the machine user `id`'s newest token.
async fn newest_token(api: &Api, token: &str, id: &str) -> String {
    let list = api
        .get(&format!("/api/v1/machine-users/{id}/tokens"), token)
        .await;
    list.expect(200, "its tokens");
    list.body["items"][0]["id"].as_str().unwrap().to_owned()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_manager_may_do_what_is_listed_and_nothing_more(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let ci = machine(&api, &admin, "ci-bot", &["profile", "tokens:read"]).await;
    let other = machine(&api, &admin, "other", &["profile"]).await;
    let carol = api.user("carol", &["profile", "tokens:read", "tokens:write"]);
    let carol_reads = api.app.token_for("carol", &["tokens:read"]);
    let dave = api.user("dave", &["profile", "tokens:read", "tokens:write"]);
    api.user("off", &["profile"]);
    let off = id_of(&api, &admin, "/api/v1/users", "off").await;
    api.patch(
        &format!("/api/v1/users/{off}"),
        &admin,
        &json!({"enabled": false}),
    )
    .await
    .expect(200, "disable off");

    // Only enabled people may be named; the error names every bad one.
    let bad = api
        .patch(
            &format!("/api/v1/machine-users/{ci}"),
            &admin,
            &json!({"managers": ["carol", "nobody", "other", "off"]}),
        )
        .await;
    bad.expect(400, "bad managers");
    assert_eq!(bad.body["field"], "managers");
    for name in ["nobody", "other", "off"] {
        assert!(
            bad.body["detail"].as_str().unwrap().contains(name),
            "{}",
            bad.text
        );
    }
    assert!(!bad.body["detail"].as_str().unwrap().contains("carol"));
    let named = api
        .patch(
            &format!("/api/v1/machine-users/{ci}"),
            &admin,
            &json!({"managers": ["carol"]}),
        )
        .await;
    named.expect(200, "name carol");
    let carol_id = id_of(&api, &admin, "/api/v1/users", "carol").await;
    assert_eq!(
        named.body["managers"],
        json!([{"id": carol_id, "username": "carol"}])
    );
    assert_eq!(named.body["orphaned"], false);

    // Seeing: her machine users only; someone managing none still gets 403.
    let listed = api.get("/api/v1/machine-users", &carol).await;
    listed.expect(200, "carol lists");
    assert_eq!(names(&listed.body), ["ci-bot"]);
    api.get(&format!("/api/v1/machine-users/{ci}"), &carol)
        .await
        .expect(200, "carol sees ci");
    api.get(&format!("/api/v1/machine-users/{other}"), &carol)
        .await
        .expect(403, "not hers");
    api.get("/api/v1/machine-users", &dave)
        .await
        .expect(403, "dave manages none");

    // Allowed: secrets, tokens within the allowed scopes, regenerate, revoke.
    let secret = api
        .post_empty(&format!("/api/v1/machine-users/{ci}/secrets"), &carol)
        .await;
    secret.expect(201, "carol adds a secret");
    let secret_id = secret.body["id"].as_str().unwrap().to_owned();
    api.delete(
        &format!("/api/v1/machine-users/{ci}/secrets/{secret_id}"),
        &carol,
    )
    .await
    .expect(204, "carol removes it");
    let tok = api
        .post(
            &format!("/api/v1/machine-users/{ci}/tokens"),
            &carol,
            &token_request("deploy", &["profile", "tokens:read"]),
        )
        .await;
    tok.expect(201, "carol issues a machine token");
    let tok_id = tok.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.app.me_status(tok.body["token"].as_str().unwrap()).await,
        200
    );
    for scopes in [&["tokens:write"][..], &["admin:read"][..]] {
        api.post(
            &format!("/api/v1/machine-users/{ci}/tokens"),
            &carol,
            &token_request("wide", scopes),
        )
        .await
        .expect(400, "beyond the machine user's allowed scopes");
    }
    let listed = api
        .get(&format!("/api/v1/machine-users/{ci}/tokens"), &carol)
        .await;
    listed.expect(200, "carol lists its tokens");
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let renewed = api
        .post_empty(
            &format!("/api/v1/machine-users/{ci}/tokens/{tok_id}/regenerate"),
            &carol,
        )
        .await;
    renewed.expect(201, "carol regenerates");
    let new_id = renewed.body["id"].as_str().unwrap().to_owned();
    api.delete(
        &format!("/api/v1/machine-users/{ci}/tokens/{new_id}"),
        &carol,
    )
    .await
    .expect(204, "carol revokes");
    assert_eq!(
        api.app
            .me_status(renewed.body["token"].as_str().unwrap())
            .await,
        401
    );

    // Public keys for private_key_jwt (§11), like secrets: hers, not another's.
    let jwks = json!({"keys": [super::client_assertions::Key::ec(7).jwk("k1")]});
    let put = |id: String| {
        let (api, carol, jwks) = (&api, &carol, &jwks);
        async move {
            api.call(
                reqwest::Method::PUT,
                &format!("/api/v1/machine-users/{id}/jwks"),
                Some(carol),
                Some(jwks),
            )
            .await
        }
    };
    put(ci.clone())
        .await
        .expect(200, "carol registers its keys");
    api.get(&format!("/api/v1/machine-users/{ci}/jwks"), &carol)
        .await
        .expect(200, "carol reads its keys");
    put(other.clone())
        .await
        .expect(403, "no keys for another machine user");
    api.delete(&format!("/api/v1/machine-users/{ci}/jwks"), &carol)
        .await
        .expect(204, "carol removes its keys");

    // Refused: settings, scopes, managers, deletion, other machine users,
    // writing without tokens:write, people who manage nothing.
    for body in [
        json!({"display_name": "mine"}),
        json!({"scopes": ["profile"]}),
        json!({"managers": ["carol", "dave"]}),
        json!({"enabled": false}),
    ] {
        api.patch(&format!("/api/v1/machine-users/{ci}"), &carol, &body)
            .await
            .expect(403, &format!("carol may not change {body}"));
    }
    api.delete(&format!("/api/v1/machine-users/{ci}"), &carol)
        .await
        .expect(403, "carol may not delete it");
    api.post(
        "/api/v1/machine-users",
        &carol,
        &json!({"username": "hers"}),
    )
    .await
    .expect(403, "nor create one");
    api.post_empty(&format!("/api/v1/machine-users/{other}/secrets"), &carol)
        .await
        .expect(403, "not her machine user");
    api.post(
        &format!("/api/v1/machine-users/{other}/tokens"),
        &carol,
        &token_request("x", &["profile"]),
    )
    .await
    .expect(403, "not her machine user");
    // The scope that would let her through is named: a manager's, never
    // admin:*, which a user cannot hold.
    let names = |reply: &crate::common::Reply, scope: &str| {
        reply.expect(403, scope);
        assert_eq!(reply.problem(), "insufficient-scope");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains(&format!(r#"scope="{scope}""#)),
            "{challenge}"
        );
    };
    let no_write = api
        .post_empty(&format!("/api/v1/machine-users/{ci}/secrets"), &carol_reads)
        .await;
    names(&no_write, "tokens:write");
    let profile_only = api.app.token_for("carol", &["profile"]);
    names(
        &api.get("/api/v1/machine-users", &profile_only).await,
        "tokens:read",
    );
    api.post_empty(&format!("/api/v1/machine-users/{ci}/secrets"), &dave)
        .await
        .expect(403, "dave is no manager");
    api.post(
        &format!("/api/v1/machine-users/{ci}/tokens"),
        &dave,
        &token_request("x", &["profile"]),
    )
    .await
    .expect(403, "dave is no manager");
    api.delete(
        &format!("/api/v1/machine-users/{ci}/tokens/{tok_id}"),
        &dave,
    )
    .await
    .expect(403, "dave is no manager");
    let admin_tok = api
        .post(
            &format!("/api/v1/machine-users/{other}/tokens"),
            &admin,
            &token_request("theirs", &["profile"]),
        )
        .await;
    let other_tok = admin_tok.body["id"].as_str().unwrap();
    api.delete(
        &format!("/api/v1/machine-users/{ci}/tokens/{other_tok}"),
        &carol,
    )
    .await
    .expect(404, "a token of another machine user is not ci's");

    // Audited as herself.
    let audit = api
        .get("/api/v1/audit?action=client_secret.create", &admin)
        .await;
    assert_eq!(audit.body["items"][0]["actor"]["username"], "carol");
}

/// The pages: a manager sees and manages her machine user at
/// `/machine-users`, and nothing of the admin pages.
async fn a_manager_uses_the_pages(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let ci = machine(&api, &admin, "ci-bot", &["profile"]).await;
    let other = machine(&api, &admin, "other", &["profile"]).await;
    api.user("carol", &["profile"]);
    api.patch(
        &format!("/api/v1/machine-users/{ci}"),
        &admin,
        &json!({"managers": ["carol"]}),
    )
    .await
    .expect(200, "name carol");
    let carol = Browser::signed_in(&api.app, "carol").await;
    let home = carol.get("/").await;
    home.expect(StatusCode::OK, "home");
    assert!(home.body.contains(r#"href="/machine-users""#), "menu link");
    let list = carol.get("/machine-users").await;
    list.expect(StatusCode::OK, "list");
    assert!(list.body.contains(&format!("/machine-users/{ci}")));
    assert!(!list.body.contains(&other));
    let at = format!("/machine-users/{ci}");
    carol.get(&at).await.expect(StatusCode::OK, "detail");
    let sent = carol.submit(&at, &format!("{at}/secrets"), &[]).await;
    let shown = carol.follow(&sent).await;
    shown.expect(StatusCode::OK, "secret shown once");
    assert!(shown.secret().starts_with("tsc_"));
    let issued = carol
        .submit(
            &at,
            &format!("{at}/tokens"),
            &[("name", "web"), ("scopes", "profile"), ("lifetime", "30")],
        )
        .await;
    let issued = carol.follow(&issued).await;
    issued.expect(StatusCode::OK, "token shown once");
    assert_eq!(api.app.me_status(&issued.secret()).await, 200);
    let page = carol.get(&at).await;
    assert!(page.body.contains("web"), "{}", page.body);

    // Regenerating, with the old value kept for an hour.
    let web_id = newest_token(&api, &admin, &ci).await;
    let regen = format!("{at}/tokens/{web_id}/regenerate");
    assert!(
        page.body.contains(&format!(r#"href="{regen}""#)),
        "{}",
        page.body
    );
    let confirm = carol.get(&regen).await;
    confirm.expect(StatusCode::OK, "the regenerate page");
    assert!(confirm.body.contains(r#"name="grace""#), "{}", confirm.body);
    let sent = carol.submit(&regen, &regen, &[("grace", "3600")]).await;
    let renewed = carol.follow(&sent).await;
    renewed.expect(StatusCode::OK, "the new token shown once");
    assert!(
        renewed.body.contains("keeps working until"),
        "{}",
        renewed.body
    );
    let new_secret = renewed.secret();
    assert_ne!(new_secret, issued.secret());
    assert_eq!(api.app.me_status(&new_secret).await, 200);
    assert_eq!(
        api.app.me_status(&issued.secret()).await,
        200,
        "the old value works through its grace period"
    );
    let page = carol.get(&at).await;
    page.expect(
        StatusCode::OK,
        "the machine user page during the grace period",
    );
    assert!(
        !page.body.contains(&format!(r#"href="{regen}""#)),
        "a token being replaced is not offered for regeneration again: {}",
        page.body
    );
    carol.get(&regen).await.expect(
        StatusCode::CONFLICT,
        "a replaced token is not regenerated twice",
    );
    let theirs_id = &machine_token(&api, &admin, &other, "theirs").await;
    carol
        .get(&format!(
            "/machine-users/{other}/tokens/{theirs_id}/regenerate"
        ))
        .await
        .expect(StatusCode::FORBIDDEN, "not her machine user");
    carol
        .get(&format!("{at}/tokens/{theirs_id}/regenerate"))
        .await
        .expect(StatusCode::NOT_FOUND, "not a token of ci-bot");

    // An expired machine token is renewed the same way (INTERFACE §3).
    let expired_id = machine_token(&api, &admin, &ci, "lapsed").await;
    super::reminders::expire_at(&api.app, "lapsed", -60).await;
    let renew = format!("{at}/tokens/{expired_id}/regenerate");
    let page = carol.get(&at).await;
    assert!(
        page.body.contains(&format!(r#"href="{renew}""#)),
        "{}",
        page.body
    );
    let sent = carol.submit(&renew, &renew, &[]).await;
    let renewed = carol.follow(&sent).await;
    renewed.expect(StatusCode::OK, "the expired token renewed");
    assert_eq!(api.app.me_status(&renewed.secret()).await, 200);

    // A bad lifetime is refused and the same form can then be sent fixed.
    let action = format!("{at}/tokens");
    let form = carol.get(&at).await;
    let (csrf, nonce) = (form.csrf(), form.nonce(&action).expect("a nonce"));
    for (lifetime, status) in [
        ("custom", StatusCode::BAD_REQUEST),
        ("30", StatusCode::SEE_OTHER),
    ] {
        let sent = carol
            .post(
                &action,
                &[
                    ("csrf", csrf.as_str()),
                    ("nonce", nonce.as_str()),
                    ("name", "nightly-deploy-7"),
                    ("scopes", "profile"),
                    ("lifetime", lifetime),
                ],
            )
            .await;
        sent.expect(status, &format!("lifetime {lifetime}"));
    }
    // Client-credentials records (an hourly client makes 720 a month) do not
    // push the machine tokens off the page.
    api.patch(
        &format!("/api/v1/machine-users/{ci}"),
        &admin,
        &json!({"client_credentials": {"enabled": true}}),
    )
    .await
    .expect(200, "client credentials on");
    let secret = shown.secret();
    for _ in 0..55 {
        api.app.access_token("ci-bot", &secret).await;
    }
    let page = carol.get(&at).await;
    assert!(page.body.contains("nightly-deploy-7"), "{}", page.body);
    carol
        .get(&format!("/machine-users/{other}"))
        .await
        .expect(StatusCode::FORBIDDEN, "not hers");
    carol
        .get(&format!("/admin/machine-users/{ci}"))
        .await
        .expect(StatusCode::FORBIDDEN, "admin pages stay closed");
    let refused = carol
        .submit(&at, &format!("/machine-users/{other}/secrets"), &[])
        .await;
    refused.expect(StatusCode::FORBIDDEN, "no secret for another machine user");
}

async fn orphans(api: &Api, admin: &str) -> Vec<String> {
    let r = api.get("/api/v1/machine-users?orphaned=true", admin).await;
    r.expect(200, "orphans");
    names(&r.body)
}

async fn orphans_are_flagged_until_someone_is_named(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    api.app.create_user("erin", true);
    let erin = api
        .app
        .token_for("erin", &["admin:read", "admin:write", "tokens:read"]);
    let legacy = machine(&api, &erin, "legacy", &["profile"]).await;
    api.app.create_machine("from-cli", &["profile"]);
    let old = api
        .post(
            &format!("/api/v1/machine-users/{legacy}/tokens"),
            &erin,
            &token_request("old", &["profile"]),
        )
        .await;
    let old_id = old.body["id"].as_str().unwrap().to_owned();
    api.delete(&format!("/api/v1/admin/tokens/{old_id}"), &admin)
        .await
        .expect(204, "revoke the old token");

    assert_eq!(
        orphans(&api, &admin).await,
        ["from-cli"],
        "no known creator: orphaned"
    );
    let not = api
        .get("/api/v1/machine-users?orphaned=false", &admin)
        .await;
    assert_eq!(names(&not.body), ["legacy"]);
    api.get("/api/v1/machine-users?orphaned=maybe", &admin)
        .await
        .expect(400, "orphaned must be true or false");

    // The creator is disabled: orphaned, on the API and the dashboard.
    let erin_id = id_of(&api, &admin, "/api/v1/users", "erin").await;
    api.patch(
        &format!("/api/v1/users/{erin_id}"),
        &admin,
        &json!({"enabled": false}),
    )
    .await
    .expect(200, "disable erin");
    assert_eq!(orphans(&api, &admin).await, ["from-cli", "legacy"]);
    let got = api
        .get(&format!("/api/v1/machine-users/{legacy}"), &admin)
        .await;
    assert_eq!(got.body["orphaned"], true);
    let browser = Browser::signed_in(&api.app, "admin").await;
    let dash = browser.get("/").await;
    dash.expect(StatusCode::OK, "dashboard");
    let section = dash
        .body
        .split(r#"id="orphans""#)
        .nth(1)
        .expect("orphans section");
    assert!(section.contains(&format!("/admin/machine-users/{legacy}")));

    // Naming a manager resolves it; the old token stays revoked.
    api.user("frank", &["profile"]);
    api.patch(
        &format!("/api/v1/machine-users/{legacy}"),
        &admin,
        &json!({"managers": ["frank"]}),
    )
    .await
    .expect(200, "name frank");
    assert_eq!(orphans(&api, &admin).await, ["from-cli"]);
    let old = api
        .get(&format!("/api/v1/admin/tokens/{old_id}"), &admin)
        .await;
    assert_eq!(old.body["status"], "revoked", "nothing old is revived");

    // The manager is disabled: orphaned again; a manager deleted behind the
    // server's back counts as gone too.
    let frank_id = id_of(&api, &admin, "/api/v1/users", "frank").await;
    api.patch(
        &format!("/api/v1/users/{frank_id}"),
        &admin,
        &json!({"enabled": false}),
    )
    .await
    .expect(200, "disable frank");
    assert_eq!(orphans(&api, &admin).await, ["from-cli", "legacy"]);
    api.user("gus", &["profile"]);
    api.patch(
        &format!("/api/v1/machine-users/{legacy}"),
        &admin,
        &json!({"managers": ["gus"]}),
    )
    .await
    .expect(200, "name gus");
    assert_eq!(orphans(&api, &admin).await, ["from-cli"]);
    api.app
        .sql("DELETE FROM principals WHERE username = 'gus'")
        .await;
    assert_eq!(orphans(&api, &admin).await, ["from-cli", "legacy"]);
}

/// Every `Location` a manager is given is a URL that manager may read: the
/// new secret (without its value) and each new or regenerated token, under
/// the machine user rather than the admins' `/api/v1/admin/tokens/{id}`.
async fn a_manager_may_read_every_location_it_is_given(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let ci = machine(&api, &admin, "ci-bot", &["profile"]).await;
    let other = machine(&api, &admin, "other", &["profile"]).await;
    let carol = api.user("carol", &["profile", "tokens:read", "tokens:write"]);
    let carol_reads = api.app.token_for("carol", &["tokens:read"]);
    api.patch(
        &format!("/api/v1/machine-users/{ci}"),
        &admin,
        &json!({"managers": ["carol"]}),
    )
    .await
    .expect(200, "name carol");
    let location = |made: &crate::common::Reply| {
        made.header("location")
            .unwrap_or_else(|| panic!("no Location: {}", made.text))
            .to_owned()
    };

    let secret = api
        .post_empty(&format!("/api/v1/machine-users/{ci}/secrets"), &carol)
        .await;
    secret.expect(201, "carol adds a secret");
    let at = location(&secret);
    assert_eq!(
        at,
        format!(
            "/api/v1/machine-users/{ci}/secrets/{}",
            secret.body["id"].as_str().unwrap()
        )
    );
    let read = api.get(&at, &carol_reads).await;
    read.expect(200, "carol reads the secret's Location");
    assert_eq!(read.body["id"], secret.body["id"]);
    assert_eq!(read.body["created_at"], secret.body["created_at"]);
    assert!(read.body.get("client_secret").is_none(), "{}", read.text);
    let value = secret.body["client_secret"].as_str().unwrap();
    assert!(!read.text.contains(value), "the secret is shown once only");

    let tok = api
        .post(
            &format!("/api/v1/machine-users/{ci}/tokens"),
            &carol,
            &token_request("deploy", &["profile"]),
        )
        .await;
    tok.expect(201, "carol issues a machine token");
    let tok_id = tok.body["id"].as_str().unwrap().to_owned();
    let at = location(&tok);
    assert_eq!(at, format!("/api/v1/machine-users/{ci}/tokens/{tok_id}"));
    let read = api.get(&at, &carol_reads).await;
    read.expect(200, "carol reads the token's Location");
    assert_eq!(read.body["id"], tok_id.as_str());
    assert_eq!(read.body["name"], "deploy");
    assert!(
        read.body.get("token").is_none_or(Value::is_null),
        "{}",
        read.text
    );

    let renewed = api.post_empty(&format!("{at}/regenerate"), &carol).await;
    renewed.expect(201, "carol regenerates");
    let new_id = renewed.body["id"].as_str().unwrap().to_owned();
    let at = location(&renewed);
    assert_eq!(at, format!("/api/v1/machine-users/{ci}/tokens/{new_id}"));
    api.get(&at, &carol_reads)
        .await
        .expect(200, "carol reads the new token's Location");
    let old = api
        .get(
            &format!("/api/v1/machine-users/{ci}/tokens/{tok_id}"),
            &carol_reads,
        )
        .await;
    old.expect(200, "the old token is still shown");
    assert_eq!(old.body["status"], "revoked");
    api.get(&at, &admin).await.expect(200, "admins read it too");

    // Someone else's: refused before the ids are looked at, or not found.
    let theirs_id = &machine_token(&api, &admin, &other, "theirs").await;
    for (path, status, why) in [
        (
            format!("{other}/tokens/{theirs_id}"),
            403,
            "not her machine user",
        ),
        (
            format!("{ci}/tokens/{theirs_id}"),
            404,
            "not a token of ci-bot",
        ),
        (format!("{ci}/tokens/not-a-uuid"), 404, "no such token"),
        (
            format!("{ci}/secrets/{new_id}"),
            404,
            "not a secret of ci-bot",
        ),
    ] {
        api.get(&format!("/api/v1/machine-users/{path}"), &carol_reads)
            .await
            .expect(status, why);
    }
    let dave = api.user("dave", &["profile", "tokens:read"]);
    api.get(&at, &dave)
        .await
        .expect(403, "dave manages nothing");
}

/// The manager's page asks before removing a secret or revoking a token,
/// rotates a secret with a grace period, and keeps the public keys, as the
/// admin's page does (INTERFACE §9, §12).
async fn a_manager_confirms_rotates_and_keeps_keys_on_the_pages(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let ci = machine(&api, &admin, "ci-bot", &["profile"]).await;
    let other = machine(&api, &admin, "other", &["profile"]).await;
    api.user("carol", &["profile"]);
    api.patch(
        &format!("/api/v1/machine-users/{ci}"),
        &admin,
        &json!({"managers": ["carol"], "client_credentials": {"enabled": true}}),
    )
    .await
    .expect(200, "name carol");
    let carol = Browser::signed_in(&api.app, "carol").await;
    let at = format!("/machine-users/{ci}");
    let sent = carol.submit(&at, &format!("{at}/secrets"), &[]).await;
    let first = carol.follow(&sent).await.secret();
    let secret_id = api
        .get(&format!("/api/v1/machine-users/{ci}"), &admin)
        .await
        .body["secrets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Rotating: a new secret shown once, the old one working for the hour.
    let rotate = format!("{at}/secrets/{secret_id}/rotate");
    let page = carol.get(&at).await;
    assert!(
        page.body.contains(&format!(r#"href="{rotate}""#)),
        "{}",
        page.body
    );
    let offered = carol.get(&rotate).await;
    offered.expect(StatusCode::OK, "the rotate page");
    assert!(
        offered.body.contains(r#"<option value="3600">"#),
        "the only secret may keep working a while: {}",
        offered.body
    );
    let sent = carol.submit(&rotate, &rotate, &[("grace", "3600")]).await;
    let shown = carol.follow(&sent).await;
    shown.expect(StatusCode::OK, "the new secret shown once");
    assert!(shown.body.contains("keeps working until"), "{}", shown.body);
    let second = shown.secret();
    assert_ne!(first, second);
    api.app.access_token("ci-bot", &first).await;
    api.app.access_token("ci-bot", &second).await;
    assert!(
        carol
            .get(&at)
            .await
            .body
            .contains("rotating: stops working at")
    );

    // Removing asks first; then the secret is gone.
    let remove = format!("{at}/secrets/{secret_id}/delete");
    let confirm = carol.get(&remove).await;
    confirm.expect(StatusCode::OK, "the removal is asked first");
    assert!(
        confirm.body.contains("Remove client secret"),
        "{}",
        confirm.body
    );
    let done = carol.submit(&remove, &remove, &[]).await;
    done.expect(StatusCode::SEE_OTHER, "removed");
    let refused = api
        .app
        .client
        .post(api.app.url("/oauth2/token"))
        .basic_auth("ci-bot", Some(&first))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the removed secret stops at once");

    // One of two secrets can only be rotated at once: the replaced one would
    // count towards the two until its grace ended.
    let listed = async || {
        let path = format!("/api/v1/machine-users/{ci}");
        api.get(&path, &admin).await.body["secrets"].clone()
    };
    let only = listed().await;
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only}");
    let second_id = only[0]["id"].as_str().unwrap().to_owned();
    carol
        .submit(&at, &format!("{at}/secrets"), &[])
        .await
        .expect(StatusCode::SEE_OTHER, "another secret");
    let two = listed().await;
    assert_eq!(two.as_array().map(Vec::len), Some(2), "{two}");
    let rotate = format!("{at}/secrets/{second_id}/rotate");
    let offered = carol.get(&rotate).await;
    offered.expect(StatusCode::OK, "the rotate page of one of two");
    assert!(
        offered.body.contains("remove the other first"),
        "{}",
        offered.body
    );
    assert!(!offered.body.contains(r#"<option value="3600">"#));
    let sent = carol.submit(&rotate, &rotate, &[("grace", "3600")]).await;
    sent.expect(StatusCode::CONFLICT, "a grace period asked all the same");
    assert!(sent.body.contains("counts until"), "{}", sent.body);
    let sent = carol.submit(&rotate, &rotate, &[("grace", "0")]).await;
    carol
        .follow(&sent)
        .await
        .expect(StatusCode::OK, "replaced at once, shown once");
    let old = api.app.client_credentials("ci-bot", &second, None).await;
    assert_eq!(old.status(), 401, "the replaced one stopped at once");
    assert_eq!(listed().await.as_array().map(Vec::len), Some(2));

    // Revoking asks first too.
    let issued = carol
        .submit(
            &at,
            &format!("{at}/tokens"),
            &[("name", "web"), ("scopes", "profile"), ("lifetime", "30")],
        )
        .await;
    let token = carol.follow(&issued).await.secret();
    let token_id = newest_token(&api, &admin, &ci).await;
    let revoke = format!("{at}/tokens/{token_id}/revoke");
    assert!(
        carol
            .get(&at)
            .await
            .body
            .contains(&format!(r#"href="{revoke}""#))
    );
    let confirm = carol.get(&revoke).await;
    confirm.expect(StatusCode::OK, "the revocation is asked first");
    assert!(confirm.body.contains("Revoke “web”"), "{}", confirm.body);
    assert_eq!(api.app.me_status(&token).await, 200, "nothing revoked yet");
    carol
        .submit(&revoke, &revoke, &[])
        .await
        .expect(StatusCode::SEE_OTHER, "revoked");
    assert_eq!(api.app.me_status(&token).await, 401);

    // Public keys: a bad set is refused on the page, a good one kept, then removed.
    let jwks_at = format!("{at}/jwks");
    let bad = carol.submit(&at, &jwks_at, &[("jwks", "not json")]).await;
    bad.expect(
        StatusCode::BAD_REQUEST,
        "the page again, with the refusal (as on the admin side)",
    );
    assert!(bad.body.contains("is not JSON"), "{}", bad.body);
    let set = json!({"keys": [super::client_assertions::Key::ec(3).jwk("k1")]}).to_string();
    carol
        .submit(&at, &jwks_at, &[("jwks", set.as_str())])
        .await
        .expect(StatusCode::SEE_OTHER, "keys saved");
    let kept = api
        .get(&format!("/api/v1/machine-users/{ci}/jwks"), &admin)
        .await;
    assert_eq!(kept.body["keys"][0]["kid"], "k1", "{}", kept.text);
    assert!(
        carol
            .get(&at)
            .await
            .body
            .contains("1 public key(s) registered")
    );
    carol
        .submit(&at, &format!("{jwks_at}/delete"), &[])
        .await
        .expect(StatusCode::SEE_OTHER, "keys removed");
    assert!(
        carol
            .get(&at)
            .await
            .body
            .contains("No public keys registered")
    );

    // Not hers: every page refuses.
    for page in [
        format!("/machine-users/{other}/secrets/{secret_id}/rotate"),
        format!("/machine-users/{other}/secrets/{secret_id}/delete"),
        format!("/machine-users/{other}/tokens/{token_id}/revoke"),
    ] {
        carol.get(&page).await.expect(StatusCode::FORBIDDEN, &page);
    }
    carol
        .submit(
            &at,
            &format!("/machine-users/{other}/jwks"),
            &[("jwks", set.as_str())],
        )
        .await
        .expect(StatusCode::FORBIDDEN, "no keys for another machine user");
}

both_backends!(
    a_manager_may_do_what_is_listed_and_nothing_more,
    a_manager_may_read_every_location_it_is_given,
    a_manager_uses_the_pages,
    a_manager_confirms_rotates_and_keeps_keys_on_the_pages,
    orphans_are_flagged_until_someone_is_named,
);
