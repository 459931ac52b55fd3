//! INTERFACE.md §8: users' e-mail addresses and sign-in method, and the
//! `hint` that tells tokens and client secrets apart without their secret.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{
    both_backends,
    common::{Api, Backend, Reply, token_request},
};

/// The `details` of the newest audit event with `action`.
async fn last_audit(api: &Api, admin: &str, action: &str) -> Value {
    let res = api
        .get(&format!("/api/v1/audit?action={action}&limit=1"), admin)
        .await;
    res.expect(200, action);
    res.body["items"][0]["details"].clone()
}

fn last4(secret: &str) -> &str {
    &secret[secret.len() - 4..]
}

async fn users_have_an_optional_email_and_a_sign_in_method(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();

    let created = api
        .post(
            "/api/v1/users",
            &admin,
            &json!({"username": "carol", "password": "a long password", "email": " carol@example.com "}),
        )
        .await;
    created.expect(201, "create with an address");
    assert_eq!(created.body["email"], "carol@example.com", "trimmed");
    assert_eq!(created.body["auth"], "password");
    let at = format!("/api/v1/users/{}", created.body["id"].as_str().unwrap());
    assert_eq!(
        api.get(&at, &admin).await.body["email"],
        "carol@example.com"
    );

    let plain = api
        .post(
            "/api/v1/users",
            &admin,
            &json!({"username": "dave", "password": "a long password"}),
        )
        .await;
    plain.expect(201, "create without an address");
    assert_eq!(plain.body["email"], Value::Null);
    assert_eq!(plain.body["auth"], "password");
    // The CLI-made admin signs in with a password too.
    let list = api.get("/api/v1/users", &admin).await;
    for u in list.body["items"].as_array().unwrap() {
        assert_eq!(u["auth"], "password", "{u}");
        assert!(u.get("email").is_some(), "{u}");
    }

    let long = format!("{}@example.com", "a".repeat(64)) + &".example".repeat(25);
    assert!(long.len() > 254);
    let bad = [
        (json!("not-an-email"), "no @"),
        (json!("a@b"), "undotted domain"),
        (json!("a b@example.com"), "space"),
        (json!("a@example..com"), "empty label"),
        (json!("a@b@example.com"), "two @"),
        (json!("@example.com"), "no local part"),
        (
            json!(format!("{}@example.com", "a".repeat(65))),
            "local part too long",
        ),
        (json!(long), "longer than 254"),
        (json!("a\u{1}b@example.com"), "control character"),
        (json!("a\u{0}b@example.com"), "NUL"),
        (json!(42), "not a string"),
    ];
    for (i, (email, what)) in bad.iter().enumerate() {
        let res = api
            .post(
                "/api/v1/users",
                &admin,
                &json!({"username": format!("bad{i}"), "password": "a long password", "email": email}),
            )
            .await;
        res.expect(400, what);
        if email.is_string() {
            assert_eq!(res.body["field"], "email", "{what}: {}", res.text);
        }
        let res = api.patch(&at, &admin, &json!({"email": email})).await;
        res.expect(400, what);
        if email.is_string() {
            assert_eq!(res.body["field"], "email", "patch {what}: {}", res.text);
        }
    }
    assert_eq!(
        api.all_ids("/api/v1/users", &admin, 500).await.len(),
        3,
        "no refused user was created"
    );
    assert_eq!(
        api.get(&at, &admin).await.body["email"],
        "carol@example.com",
        "a refused patch changed nothing"
    );

    // PATCH sets, keeps when absent, and clears with "" or null.
    let set = api
        .patch(&at, &admin, &json!({"email": "c@example.org"}))
        .await;
    set.expect(200, "set");
    assert_eq!(set.body["email"], "c@example.org");
    assert_eq!(
        last_audit(&api, &admin, "user.update").await["email"],
        "c@example.org"
    );
    let kept = api.patch(&at, &admin, &json!({"enabled": true})).await;
    kept.expect(200, "other field");
    assert_eq!(kept.body["email"], "c@example.org", "absent keeps it");
    let cleared = api.patch(&at, &admin, &json!({"email": ""})).await;
    cleared.expect(200, "clear with a blank");
    assert_eq!(cleared.body["email"], Value::Null);
    let details = last_audit(&api, &admin, "user.update").await;
    assert_eq!(details.get("email"), Some(&Value::Null), "{details}");
    api.patch(&at, &admin, &json!({"email": "c@example.org"}))
        .await
        .expect(200, "set again");
    let nulled = api.patch(&at, &admin, &json!({"email": null})).await;
    nulled.expect(200, "clear with null");
    assert_eq!(nulled.body["email"], Value::Null);

    // A password change is audited, never the password itself.
    api.patch(
        &at,
        &admin,
        &json!({"password": "secret password 1", "email": "x@example.com"}),
    )
    .await
    .expect(200, "both");
    let details = last_audit(&api, &admin, "user.update").await;
    assert_eq!(details["email"], "x@example.com");
    assert!(!details.to_string().contains("secret password 1"));

    // The command line takes --email, and refuses a bad one before writing.
    let out = api.app.db.cli(
        &[
            "users",
            "create",
            "--username",
            "erin",
            "--email",
            "erin@example.com",
            "--password-stdin",
        ],
        Some("a long password"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = api.app.db.cli(
        &[
            "users",
            "create",
            "--username",
            "frank",
            "--email",
            "frank-at-example",
            "--password-stdin",
        ],
        Some("a long password"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().next().unwrap_or("").contains("email"),
        "names the problem: {stderr}"
    );
    let users = api.get("/api/v1/users?limit=500", &admin).await;
    let by_name = |name: &str| {
        users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .cloned()
    };
    assert_eq!(by_name("erin").unwrap()["email"], "erin@example.com");
    assert!(by_name("frank").is_none(), "nothing written");
}

async fn tokens_and_secrets_carry_a_hint_that_identifies_them(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();

    // A personal token: its last four characters.
    let created = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("hinted", &["profile"]),
        )
        .await;
    created.expect(201, "create");
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    let hint = created.body["hint"].as_str().expect("hint").to_owned();
    assert_eq!(hint, format!("…{}", last4(&secret)));
    let got = api.get(&format!("/api/v1/tokens/{id}"), &admin).await;
    assert_eq!(got.body["hint"], hint.as_str());
    let mine = api.get("/api/v1/tokens", &admin).await;
    let all = api.get("/api/v1/admin/tokens?q=hinted", &admin).await;
    for list in [&mine, &all] {
        let item = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .expect("listed");
        assert_eq!(item["hint"], hint.as_str());
    }
    assert_eq!(
        last_audit(&api, &admin, "token.create").await["hint"],
        hint.as_str()
    );

    // Regenerated: a new hint, and the audit record names both.
    let renewed = api
        .post_empty(&format!("/api/v1/tokens/{id}/regenerate"), &admin)
        .await;
    renewed.expect(201, "regenerate");
    let new_secret = renewed.body["token"].as_str().unwrap();
    let new_hint = format!("…{}", last4(new_secret));
    assert_eq!(renewed.body["hint"], new_hint.as_str());
    let details = last_audit(&api, &admin, "token.regenerate").await;
    assert_eq!(details["hint"], new_hint.as_str());
    assert_eq!(details["old_hint"], hint.as_str());

    // A machine user's client secret: prefix and both ends, never the rest.
    let machine = api
        .post(
            "/api/v1/machine-users",
            &admin,
            &json!({"username": "billing", "scopes": ["profile"], "client_credentials": {"enabled": true}}),
        )
        .await;
    machine.expect(201, "machine user");
    let mid = machine.body["id"].as_str().unwrap().to_owned();
    let made = api
        .post_empty(&format!("/api/v1/machine-users/{mid}/secrets"), &admin)
        .await;
    made.expect(201, "secret");
    let client_secret = made.body["client_secret"].as_str().unwrap().to_owned();
    let secret_id = made.body["id"].as_str().unwrap().to_owned();
    let secret_hint = made.body["hint"].as_str().expect("hint").to_owned();
    assert_eq!(
        secret_hint,
        format!("{}…{}", &client_secret[..8], last4(&client_secret))
    );
    assert!(secret_hint.starts_with("tsc_"));
    assert!(secret_hint.chars().count() * 3 < client_secret.len());
    let view = api
        .get(&format!("/api/v1/machine-users/{mid}"), &admin)
        .await;
    assert_eq!(
        view.body["secrets"],
        json!([{"id": secret_id, "hint": secret_hint, "created_at": made.body["created_at"], "last_used_at": null, "expires_at": null}])
    );
    let listed = api.get("/api/v1/machine-users", &admin).await;
    assert_eq!(
        listed.body["items"][0]["secrets"][0]["hint"],
        secret_hint.as_str()
    );
    let details = last_audit(&api, &admin, "client_secret.create").await;
    assert_eq!(details["secret_id"], secret_id.as_str());
    assert_eq!(details["hint"], secret_hint.as_str());

    // Tokens the machine user gets carry hints too, whichever way they come.
    let machine_token = api
        .post(
            &format!("/api/v1/machine-users/{mid}/tokens"),
            &admin,
            &token_request("deploy", &["profile"]),
        )
        .await;
    machine_token.expect(201, "machine token");
    assert_eq!(
        machine_token.body["hint"].as_str().unwrap(),
        format!("…{}", last4(machine_token.body["token"].as_str().unwrap()))
    );
    let access = api.app.access_token("billing", &client_secret).await;
    let cc = api
        .get(
            "/api/v1/admin/tokens?owner=billing&kind=client_credentials",
            &admin,
        )
        .await;
    assert_eq!(
        cc.body["items"][0]["hint"].as_str().unwrap(),
        format!("…{}", last4(&access))
    );

    // Removing the secret is audited with the same hint.
    api.delete(
        &format!("/api/v1/machine-users/{mid}/secrets/{secret_id}"),
        &admin,
    )
    .await
    .expect(204, "remove secret");
    let details = last_audit(&api, &admin, "client_secret.delete").await;
    assert_eq!(details["secret_id"], secret_id.as_str());
    assert_eq!(details["hint"], secret_hint.as_str());
    api.delete(
        &format!("/api/v1/machine-users/{mid}/secrets/{secret_id}"),
        &admin,
    )
    .await
    .expect(404, "already gone");

    // No response or audit record after creation holds a secret.
    let audit = api.get("/api/v1/audit?limit=500", &admin).await;
    audit.expect(200, "audit log");
    for s in [&secret, &client_secret, &access] {
        assert!(!audit.text.contains(s.as_str()), "secret in the audit log");
    }
}

/// The property names of schema `name` in the OpenAPI document.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} in the document"))
        .keys()
        .cloned()
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

async fn the_openapi_document_describes_emails_and_hints(backend: Backend) {
    let api = Api::spawn(backend).await;
    let admin = api.admin();
    let doc = Reply::read(
        api.app
            .client
            .get(api.app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .body;

    // What is sent has exactly the documented fields.
    let user = api
        .post(
            "/api/v1/users",
            &admin,
            &json!({"username": "carol", "password": "a long password", "email": "c@example.com"}),
        )
        .await;
    assert_eq!(keys(&user.body), properties(&doc, "User"));
    let token = api
        .post(
            "/api/v1/tokens",
            &admin,
            &token_request("doc", &["profile"]),
        )
        .await;
    assert_eq!(keys(&token.body), properties(&doc, "TokenView"));
    let machine = api
        .post("/api/v1/machine-users", &admin, &json!({"username": "svc"}))
        .await;
    let mid = machine.body["id"].as_str().unwrap();
    let secret = api
        .post_empty(&format!("/api/v1/machine-users/{mid}/secrets"), &admin)
        .await;
    assert_eq!(keys(&secret.body), properties(&doc, "NewSecret"));
    let view = api
        .get(&format!("/api/v1/machine-users/{mid}"), &admin)
        .await;
    assert_eq!(
        keys(&view.body["secrets"][0]),
        properties(&doc, "SecretInfo")
    );

    // And what may be sent is documented.
    for body in ["NewUserBody", "UserPatchBody"] {
        assert!(
            properties(&doc, body).contains("email"),
            "{body} takes email"
        );
    }
    let auth = &doc["components"]["schemas"]["AuthMethod"]["enum"];
    assert_eq!(auth, &json!(["password", "oidc"]));
}

both_backends!(
    users_have_an_optional_email_and_a_sign_in_method,
    tokens_and_secrets_carry_a_hint_that_identifies_them,
    the_openapi_document_describes_emails_and_hints,
);
