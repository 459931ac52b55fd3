//! Single sign-on settings at start-up (INTERFACE §10): each bad value stops
//! `serve` with one line naming its setting; an issuer that cannot be reached
//! does not (it is reported on the sign-in page, see web::sso_refusals);
//! `tessera.toml` keys work like the variables.

use crate::common::{Backend, TestDb};

fn serve_fails_naming(db: &TestDb, env: &[(&str, &str)], named: &str) {
    let out = db.cli_env(&["serve"], None, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{env:?} should stop start-up");
    assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr:?}");
    assert!(
        stderr.contains(named),
        "{env:?}: {stderr:?} should name {named}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "the secret stays out: {stderr:?}"
    );
}

#[test]
fn bad_single_sign_on_settings_stop_start_up_with_one_line() {
    let db = TestDb::new(Backend::Sqlite);
    let ok = [
        ("TESSERA_OIDC_ISSUER", "https://id.example/realms/acme"),
        ("TESSERA_OIDC_CLIENT_ID", "tessera"),
        ("TESSERA_OIDC_CLIENT_SECRET", "s3cret"),
    ];
    let with = |var: &'static str, value: &'static str| {
        let mut env: Vec<(&str, &str)> = ok.iter().copied().filter(|(k, _)| *k != var).collect();
        if !value.is_empty() {
            env.push((var, value));
        }
        env
    };
    serve_fails_naming(
        &db,
        &with("TESSERA_OIDC_ISSUER", "not a url"),
        "TESSERA_OIDC_ISSUER",
    );
    serve_fails_naming(
        &db,
        &with("TESSERA_OIDC_ISSUER", "ftp://id.example"),
        "TESSERA_OIDC_ISSUER",
    );
    serve_fails_naming(
        &db,
        &with("TESSERA_OIDC_CLIENT_ID", ""),
        "TESSERA_OIDC_CLIENT_ID",
    );
    serve_fails_naming(
        &db,
        &with("TESSERA_OIDC_CLIENT_SECRET", ""),
        "TESSERA_OIDC_CLIENT_SECRET",
    );
    serve_fails_naming(
        &db,
        &with("TESSERA_PASSWORD_LOGIN", "perhaps"),
        "TESSERA_PASSWORD_LOGIN",
    );
    serve_fails_naming(
        &db,
        &with("TESSERA_OIDC_USERNAME_CLAIM", " "),
        "TESSERA_OIDC_USERNAME_CLAIM",
    );
    serve_fails_naming(
        &db,
        &[("TESSERA_PASSWORD_LOGIN", "off")],
        "TESSERA_OIDC_ISSUER",
    );
    serve_fails_naming(
        &db,
        &[("TESSERA_OIDC_CLIENT_ID", "tessera")],
        "TESSERA_OIDC_ISSUER",
    );
}

#[test]
fn single_sign_on_settings_are_read_from_the_configuration_file() {
    let db = TestDb::new(Backend::Sqlite);
    std::fs::write(
        db.dir.path().join("tessera.toml"),
        "oidc_issuer = \"https://id.example\"\noidc_client_id = \"tessera\"\npassword_login = \"off\"\n",
    )
    .expect("write tessera.toml");
    // Read: the one missing setting is the secret.
    serve_fails_naming(&db, &[], "TESSERA_OIDC_CLIENT_SECRET");
}
