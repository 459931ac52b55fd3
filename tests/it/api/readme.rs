//! The README's "Automating with the API" examples, run as written.

use std::process::Command;

use serde_json::Value;

use crate::{
    both_backends,
    common::{Api, Backend},
};

/// The ```sh blocks between the README's api markers, in order.
fn examples() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let start = readme.find("<!-- api:begin -->").expect("api:begin marker");
    let end = readme.find("<!-- api:end -->").expect("api:end marker");
    let section = &readme[start..end];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("closed block");
        blocks.push(body[..close].to_owned());
        rest = &body[close + 3..];
    }
    blocks
}

async fn the_readme_curl_examples_work(backend: Backend) {
    let blocks = examples();
    assert!(blocks.len() >= 4, "the section has its examples");
    let api = Api::spawn(backend).await;
    let token = api.admin();
    let script = format!("set -euo pipefail\n{}", blocks.join("\n"));
    let out = tokio::task::spawn_blocking({
        let tessera = format!("http://{}", api.app.addr);
        move || {
            Command::new("bash")
                .arg("-c")
                .arg(script)
                .env("TESSERA", tessera)
                .env("TOKEN", token)
                .output()
                .expect("bash runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "examples failed: {stderr}\n{stdout}");
    // curl prints bodies back to back: read them as a stream of JSON values.
    let outputs: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("JSON output ({e}): {stdout}"));
    // me, new PAT, token list, client-credentials token, audit.
    assert_eq!(outputs.len(), 5, "{stdout}");
    assert_eq!(outputs[0]["username"], "admin");
    assert_eq!(outputs[1]["name"], "ci-deploy");
    assert!(outputs[1]["token"].is_string());
    assert!(
        outputs[2]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "ci-deploy")
    );
    assert_eq!(outputs[3]["token_type"], "Bearer");
    let revoked = &outputs[4]["items"][0];
    assert_eq!(revoked["action"], "token.revoke");

    // The effects are real: the machine token was issued and then revoked.
    let admin = api.admin();
    let machine_tokens = api
        .get(
            "/api/v1/admin/tokens?owner=billing-sync&kind=machine",
            &admin,
        )
        .await;
    let items = machine_tokens.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "nightly");
    assert_eq!(items[0]["status"], "revoked");
}

both_backends!(the_readme_curl_examples_work);
