//! Credentials through the management API: stored encrypted, resolved only where a
//! tool uses them, redacted (with their encodings) everywhere else, and a node that
//! cannot open them refuses to start.

use base64::Engine;
use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, management, request_text, stderr, tool_results};

const TOKEN: &str = "secrets-management-token";
const SECRET: &str = "dpl-7Hq2-zz91-LEAK-CHECK";
const MIRROR: &str = "mirror-Kq81-LEAK-CHECK";

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    management(gateway, TOKEN, method, path, body).await
}

fn data_files(env: &Env) -> Vec<(String, String)> {
    walk(&env.dir.path().join("data"))
}

fn walk(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            files.push((path.display().to_string(), text));
        }
    }
    files
}

#[tokio::test]
async fn a_secret_planted_through_the_api_and_used_by_exec_never_leaks() {
    let mut env = Env::new(vec![
        Reply::tool_call(
            "exec",
            json!({"command": "echo \"plain=${credentials.DEPLOY_TOKEN}\"; printf %s \"$DEPLOY_TOKEN\" | base64; echo \"exposed=$MIRROR_KEY\""}),
        ),
        Reply::tool_call(
            "write_file",
            json!({"path": "deploy.env", "content": "TOKEN=${credentials.DEPLOY_TOKEN}\n"}),
        ),
        Reply::tool_call("read_file", json!({"path": "deploy.env"})),
        Reply::text("Deployed."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/policy", json!({"enabled": false}));
    env.set("/logging", json!({"level": "debug"}));
    let gateway = env.serve().await;

    let (status, created) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "DEPLOY_TOKEN", "value": SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["exposed"], false);
    assert_eq!(created["masked"], "••••••••HECK", "{created}");
    let (status, _) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "MIRROR_KEY", "value": MIRROR, "exposed": true})),
    )
    .await;
    assert_eq!(status, 201);

    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/ops:deploy/messages?wait=30",
        // A user pasting the value itself is redacted like a tool printing it.
        Some(json!({"content": format!("Deploy with the token (it is {SECRET}).")})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["content"], "Deployed.", "{run}");
    assert!(
        request_text(&env.model.requests()[0])
            .contains("Deploy with the token (it is [REDACTED:DEPLOY_TOKEN])."),
        "the model sees the message with the value redacted"
    );

    // The value was used where it belongs: in the command's environment and the file.
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("deploy.env")).unwrap(),
        format!("TOKEN={SECRET}\n")
    );
    let requests = env.model.requests();
    let exec_result = &tool_results(&requests[1])[0].1;
    assert!(
        exec_result.contains("plain=[REDACTED:DEPLOY_TOKEN]"),
        "{exec_result}"
    );
    assert!(
        exec_result.contains("exposed=[REDACTED:MIRROR_KEY]"),
        "exposed credentials are in every command's environment: {exec_result}"
    );
    assert_eq!(
        exec_result.matches("[REDACTED:DEPLOY_TOKEN]").count(),
        2,
        "the base64 form is redacted too: {exec_result}"
    );
    let read_result = tool_results(&requests[3]).last().unwrap().1.clone();
    assert!(
        read_result.contains("TOKEN=${credentials.DEPLOY_TOKEN}"),
        "{read_result}"
    );

    let (_, audit) = api(&gateway, Method::GET, "/audit?limit=5000", None).await;
    let reads: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "credential_read")
        .collect();
    assert_eq!(
        reads.len(),
        2,
        "exec and write_file named the credential: {reads:?}"
    );
    assert_eq!(reads[0]["data"]["keys"], json!(["DEPLOY_TOKEN"]));
    let changes = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "credential_changed")
        .count();
    assert_eq!(changes, 2);

    let (_, history) = api(&gateway, Method::GET, "/sessions/ops:deploy", None).await;
    let (_, listed) = api(&gateway, Method::GET, "/credentials", None).await;
    let (_, one) = api(&gateway, Method::GET, "/credentials/DEPLOY_TOKEN", None).await;
    let (_, run_view) = api(
        &gateway,
        Method::GET,
        &format!("/runs/{}", run["runId"].as_str().unwrap()),
        None,
    )
    .await;
    let mut places = vec![
        (
            "model requests".to_owned(),
            requests
                .iter()
                .map(request_text)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("run".to_owned(), run.to_string()),
        ("run view".to_owned(), run_view.to_string()),
        ("history".to_owned(), history.to_string()),
        ("audit".to_owned(), audit.to_string()),
        ("credential list".to_owned(), listed.to_string()),
        ("credential".to_owned(), one.to_string()),
        ("gateway output".to_owned(), gateway.process.output()),
    ];
    places.extend(data_files(&env));
    for secret in [SECRET, MIRROR] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
        for (place, text) in &places {
            assert!(!text.contains(secret), "the secret leaked into {place}");
            assert!(
                !text.contains(&encoded),
                "the encoded secret leaked into {place}"
            );
        }
    }
}

#[tokio::test]
async fn credentials_are_managed_by_key_and_a_node_without_their_key_refuses_to_start() {
    let mut env = Env::new(vec![Reply::text("Answered with the stored provider key.")]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;

    for (body, status, param) in [
        (json!({"key": "1BAD", "value": "x"}), 422, "key"),
        (json!({"key": "A-B", "value": "x"}), 422, "key"),
        (json!({"key": "OK_KEY", "value": ""}), 422, "value"),
        (json!({"key": "OK_KEY"}), 422, "value"),
        (
            json!({"key": "OK_KEY", "value": "v", "extra": 1}),
            422,
            "extra",
        ),
    ] {
        let (got, error) = api(&gateway, Method::POST, "/credentials", Some(body.clone())).await;
        assert_eq!(got, status, "{body} → {error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(param),
            "{body} → {error}"
        );
    }
    let plant = json!({"key": "SHORT", "value": "abc123"});
    assert_eq!(
        api(&gateway, Method::POST, "/credentials", Some(plant.clone()))
            .await
            .0,
        201
    );
    let (status, dup) = api(&gateway, Method::POST, "/credentials", Some(plant)).await;
    assert_eq!(
        (status, dup["error"]["code"].as_str()),
        (409, Some("credential_exists"))
    );
    let (_, shown) = api(&gateway, Method::GET, "/credentials/SHORT", None).await;
    assert_eq!(shown["masked"], "••••••••", "short values show nothing");
    let (status, exposed) = api(
        &gateway,
        Method::PUT,
        "/credentials/SHORT/exposed",
        Some(json!({"exposed": true})),
    )
    .await;
    assert_eq!((status, &exposed["exposed"]), (200, &json!(true)));
    let (status, replaced) = api(
        &gateway,
        Method::PUT,
        "/credentials/SHORT",
        Some(json!({"value": "a-much-longer-value-1234"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(replaced["exposed"], true, "a new value keeps the exposure");
    assert_eq!(replaced["masked"], "••••••••1234");
    assert_eq!(
        api(&gateway, Method::DELETE, "/credentials/SHORT", None)
            .await
            .0,
        204
    );
    assert_eq!(
        api(&gateway, Method::DELETE, "/credentials/SHORT", None)
            .await
            .0,
        404
    );
    assert_eq!(
        api(&gateway, Method::GET, "/credentials/SHORT", None)
            .await
            .0,
        404
    );

    // A provider key in the vault replaces the one in config from the next start.
    let (status, stored) = api(
        &gateway,
        Method::POST,
        "/credentials/providers",
        Some(json!({"name": "scripted", "apiKey": "sk-from-the-vault-0001"})),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["restartRequired"], true);
    let (status, _) = api(
        &gateway,
        Method::POST,
        "/credentials/providers",
        Some(json!({"name": "nobody", "apiKey": "k"})),
    )
    .await;
    assert_eq!(status, 422);
    let (_, providers) = api(&gateway, Method::GET, "/credentials/providers", None).await;
    assert_eq!(providers["providers"][0]["source"], "vault", "{providers}");
    let (_, listed) = api(&gateway, Method::GET, "/credentials", None).await;
    assert_eq!(
        listed["credentials"],
        json!([]),
        "provider keys are not user credentials"
    );
    gateway.process.terminate().await.unwrap();
    gateway
        .process
        .wait_exit(std::time::Duration::from_secs(20))
        .await
        .unwrap();

    env.set(
        "/providers/scripted",
        json!({"apiBase": env.model.base_url()}),
    );
    let gateway = env.serve().await;
    let response = gateway
        .post_chat(
            &json!({"model": "scripted-1", "messages": [{"role": "user", "content": "hi"}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        env.model.requests()[0].header("authorization").as_deref(),
        Some("Bearer sk-from-the-vault-0001")
    );
    gateway.process.terminate().await.unwrap();
    gateway
        .process
        .wait_exit(std::time::Duration::from_secs(20))
        .await
        .unwrap();

    // Without the key that sealed them, the node does not start (nor make a new key).
    let key_file = env.dir.path().join("data").join("master.key");
    std::fs::remove_file(&key_file).unwrap();
    let refused = env.cli(&["serve", "--port", "0"]).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no master key"),
        "{}",
        stderr(&refused)
    );
    assert!(!key_file.exists());
}
