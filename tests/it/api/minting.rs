//! Who may mint which tokens: client-credentials tokens never mint long-lived
//! ones, regenerated tokens carry only what their owner may hold now, and a
//! machine user and its first secret are created together or not at all.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{
        Api, Backend, TestApp, token_request,
        web::{Browser, between},
    },
};

/// The `scope` claim of a JWT, read from its payload (no verification: the
/// server's own tests cover signatures; here only the content matters).
pub fn scope_claim(jwt: &str) -> String {
    claims(jwt)["scope"]
        .as_str()
        .expect("scope claim")
        .to_owned()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A token's id, from its secret: the `jti` claim is the id.
pub fn token_id(jwt: &str) -> String {
    claims(jwt)["jti"].as_str().expect("jti claim").to_owned()
}

async fn user_id(api: &Api, admin: &str, username: &str) -> String {
    let users = api.get("/api/v1/users?limit=500", admin).await;
    users.expect(200, "users");
    users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .and_then(|u| u["id"].as_str())
        .expect("user listed")
        .to_owned()
}

// ---------------------------------------------------------------- item 8

async fn client_credentials_tokens_cannot_create_or_regenerate_tokens(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let secret = api
        .app
        .create_machine("robot", &["profile", "tokens:read", "tokens:write"]);
    let machine = api.get("/api/v1/machine-users", &admin).await;
    let robot_id = machine.body["items"][0]["id"].as_str().unwrap().to_owned();
    let cc = api.app.access_token("robot", &secret).await;

    // The short-lived token holds tokens:write, yet may not mint a long-lived one.
    let res = api
        .post(
            "/api/v1/tokens",
            &cc,
            &token_request("forever", &["profile"]),
        )
        .await;
    res.expect(403, "a client-credentials token creating a token");
    assert_eq!(res.problem(), "forbidden");
    let detail = res.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("client-credentials"),
        "the problem says why: {detail}"
    );

    // Nor may it regenerate a machine token to obtain its secret.
    let issued = api
        .post(
            &format!("/api/v1/machine-users/{robot_id}/tokens"),
            &admin,
            &token_request("deploy", &["profile", "tokens:read", "tokens:write"]),
        )
        .await;
    issued.expect(201, "admin issues a machine token");
    let machine_token_id = issued.body["id"].as_str().unwrap().to_owned();
    let res = api
        .post_empty(
            &format!("/api/v1/tokens/{machine_token_id}/regenerate"),
            &cc,
        )
        .await;
    res.expect(403, "a client-credentials token regenerating a token");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("client-credentials")
    );
    let still = api
        .get(&format!("/api/v1/admin/tokens/{machine_token_id}"), &admin)
        .await;
    still.expect(200, "machine token");
    assert_eq!(
        still.body["status"], "active",
        "the refusal revoked nothing"
    );

    // Nothing was minted: the only machine token is the admin's.
    let listed = api
        .get("/api/v1/admin/tokens?owner=robot&kind=machine", &admin)
        .await;
    listed.expect(200, "list");
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    // A long-lived machine token with tokens:write still may (it outlives nothing).
    let machine_token = issued.body["token"].as_str().unwrap();
    api.post(
        "/api/v1/tokens",
        machine_token,
        &token_request("from-machine-token", &["profile"]),
    )
    .await
    .expect(201, "a machine token creates a token");
}

// ---------------------------------------------------------------- item 9

async fn regenerating_drops_scopes_a_demoted_admin_no_longer_holds(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    api.app.create_user("boss", true);
    let writer = api.app.token_for("boss", &["profile", "tokens:write"]);
    let mixed = api.app.token_for("boss", &["profile", "admin:write"]);
    let only_admin = api.app.token_for("boss", &["admin:read"]);
    let by_web = api.app.token_for("boss", &["tokens:read", "admin:read"]);
    let mixed_id = token_id(&mixed);
    let only_admin_id = token_id(&only_admin);
    let by_web_id = token_id(&by_web);

    let boss = user_id(&api, &admin, "boss").await;
    api.patch(
        &format!("/api/v1/users/{boss}"),
        &admin,
        &json!({"role": "user"}),
    )
    .await
    .expect(200, "demote boss");

    let res = api
        .post_empty(&format!("/api/v1/tokens/{mixed_id}/regenerate"), &writer)
        .await;
    res.expect(201, "regenerate after demotion");
    assert_eq!(res.body["scopes"], json!(["profile"]));
    let jwt = res.body["token"].as_str().unwrap();
    assert_eq!(scope_claim(jwt), "profile", "the JWT lost admin:write");
    api.get("/api/v1/me", jwt)
        .await
        .expect(200, "new token works");

    // Nothing left to hold: refused, and the old token is left as it was.
    let res = api
        .post_empty(
            &format!("/api/v1/tokens/{only_admin_id}/regenerate"),
            &writer,
        )
        .await;
    res.expect(409, "regenerate a token of admin scopes only");
    let detail = res.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("admin:read"),
        "names what was lost: {detail}"
    );
    let old = api
        .get(&format!("/api/v1/tokens/{only_admin_id}"), &{
            api.app.token_for("boss", &["tokens:read"])
        })
        .await;
    old.expect(200, "old token");
    assert_eq!(old.body["status"], "active");
    assert_eq!(old.body["replaced_by"], Value::Null);

    // The web page regenerates under the same rule.
    let browser = Browser::signed_in(&api.app, "boss").await;
    let page = browser
        .submit(
            &format!("/tokens/{by_web_id}/regenerate"),
            &format!("/tokens/{by_web_id}/regenerate"),
            &[],
        )
        .await;
    let page = browser.follow(&page).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let secret = between(
        &page.body,
        r#"<code id="secret" class="secret">"#,
        "</code>",
    )
    .expect("the new secret is shown");
    assert_eq!(
        scope_claim(&secret),
        "tokens:read",
        "the JWT lost admin:read"
    );
}

async fn regenerating_drops_scopes_a_machine_user_is_no_longer_allowed(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    api.post(
        "/api/v1/scopes",
        &admin,
        &json!({"name": "orders:read", "description": "Read orders"}),
    )
    .await
    .expect(201, "register scope");
    let created = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "robot", "scopes": ["profile", "tokens:write", "orders:read"]}),
        )
        .await;
    created.expect(201, "machine user");
    let robot = created.body["id"].as_str().unwrap().to_owned();
    let issue = |name: &'static str, scopes: &'static [&'static str]| {
        let api = &api;
        let admin = &admin;
        let robot = &robot;
        async move {
            let res = api
                .post(
                    &format!("/api/v1/machine-users/{robot}/tokens"),
                    admin,
                    &token_request(name, scopes),
                )
                .await;
            res.expect(201, name);
            (
                res.body["id"].as_str().unwrap().to_owned(),
                res.body["token"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (_, writer) = issue("writer", &["profile", "tokens:write"]).await;
    let (orders_id, _) = issue("orders", &["profile", "orders:read"]).await;

    api.patch(
        &format!("/api/v1/machine-users/{robot}"),
        &admin,
        &json!({"scopes": ["profile", "tokens:write"]}),
    )
    .await
    .expect(200, "narrow the machine user");

    let res = api
        .post_empty(&format!("/api/v1/tokens/{orders_id}/regenerate"), &writer)
        .await;
    res.expect(201, "regenerate after narrowing");
    assert_eq!(res.body["scopes"], json!(["profile"]));
    assert_eq!(
        scope_claim(res.body["token"].as_str().unwrap()),
        "profile",
        "the JWT lost orders:read"
    );
}

// ---------------------------------------------------------------- item 16

/// Makes the database refuse every new client secret, and every deletion of
/// a principal (so an "undo" after the fact cannot hide a half-made client).
async fn break_secret_creation(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let db = tessera::storage::Db::connect(&app.db.url)
        .await
        .expect("database");
    let statements: &[&str] = match app.db.backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER no_secrets BEFORE INSERT ON client_secrets \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            "CREATE TRIGGER no_deletes BEFORE DELETE ON principals \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER no_secrets BEFORE INSERT ON client_secrets \
             FOR EACH ROW EXECUTE FUNCTION injected_failure()",
            "CREATE TRIGGER no_deletes BEFORE DELETE ON principals \
             FOR EACH ROW EXECUTE FUNCTION injected_failure()",
        ],
    };
    for sql in statements {
        db.write.execute_unprepared(sql).await.expect(sql);
    }
}

async fn mend_secret_creation(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let db = tessera::storage::Db::connect(&app.db.url)
        .await
        .expect("database");
    let drop = match app.db.backend {
        Backend::Sqlite => "DROP TRIGGER no_secrets",
        Backend::Postgres => "DROP TRIGGER no_secrets ON client_secrets",
    };
    db.write.execute_unprepared(drop).await.expect(drop);
}

async fn a_failed_machine_user_command_leaves_nothing_behind(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    break_secret_creation(&api.app).await;

    let out = api.app.db.cli(
        &[
            "machine-users",
            "create",
            "--username",
            "half-made",
            "--scope",
            "profile",
        ],
        None,
    );
    assert!(!out.status.success(), "the secret could not be created");
    assert!(out.stdout.is_empty(), "no secret printed");

    let machines = api.get("/api/v1/machine-users", &admin).await;
    machines.expect(200, "list");
    assert_eq!(
        machines.body["items"],
        json!([]),
        "no machine user without its secret"
    );
    let audit = api
        .get("/api/v1/audit?action=machine_user.create", &admin)
        .await;
    audit.expect(200, "audit");
    assert_eq!(audit.body["items"], json!([]), "nothing was recorded");

    // Bad input changes nothing either.
    for (args, what) in [
        (
            vec!["--username", "admin", "--scope", "profile"],
            "taken username",
        ),
        (
            vec!["--username", "fresh", "--scope", "no-such-scope"],
            "unknown scope",
        ),
    ] {
        let mut all = vec!["machine-users", "create"];
        all.extend(args);
        assert!(!api.app.db.cli(&all, None).status.success(), "{what}");
    }

    // Once secrets can be written again, the same command works: the
    // username was never taken.
    mend_secret_creation(&api.app).await;
    let secret = api.app.create_machine("half-made", &["profile"]);
    assert!(secret.starts_with("tsc_"), "{secret}");
    api.app.access_token("half-made", &secret).await;
    let machines = api.get("/api/v1/machine-users", &admin).await;
    assert_eq!(machines.body["items"].as_array().unwrap().len(), 1);
}

both_backends!(
    client_credentials_tokens_cannot_create_or_regenerate_tokens,
    regenerating_drops_scopes_a_demoted_admin_no_longer_holds,
    regenerating_drops_scopes_a_machine_user_is_no_longer_allowed,
    a_failed_machine_user_command_leaves_nothing_behind,
);
