//! A stored credential cannot be read back through the file tools, transformed or not:
//! they show a file's credential values as `${credentials.KEY}`, edits apply to that
//! view, and a scoped credential resolves only in the tools (and commands) it names.

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, management, tool_results};

const TOKEN: &str = "gate-secrets-management-token";
/// Dashes, so that an edit of `-` into `- ` would reshape it past the redactor.
const DBPASS: &str = "pg-Vq83-LEAK-nn27-CHECK";

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    management(gateway, TOKEN, method, path, body).await
}

fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

async fn policy_off_env(replies: Vec<Reply>) -> Env {
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/policy", json!({"enabled": false}));
    env
}

#[tokio::test]
async fn a_credential_written_then_edited_with_spaces_never_reaches_the_model() {
    let env = policy_off_env(vec![
        Reply::tool_call(
            "write_file",
            json!({"path": "db.env", "content": "PGPASS=${credentials.DBPASS}\n"}),
        ),
        Reply::tool_call(
            "edit_file",
            json!({"path": "db.env", "old_text": "-", "new_text": "- ", "replace_all": true}),
        ),
        Reply::tool_call("read_file", json!({"path": "db.env"})),
        Reply::tool_call("grep", json!({"pattern": "Vq83"})),
        Reply::text("Read it."),
    ])
    .await;
    let gateway = env.serve().await;
    let (status, created) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "DBPASS", "value": DBPASS})),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/ops:attack/messages?wait=30",
        Some(json!({"content": "Write the password file, space it out and read it back."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["content"], "Read it.", "{run}");

    assert_eq!(
        std::fs::read_to_string(env.workspace().join("db.env")).unwrap(),
        format!("PGPASS={DBPASS}\n"),
        "the file on disk holds the intact value: the edit had no dash to change"
    );
    let requests = env.model.requests();
    let edit_result = tool_results(&requests[2]).last().unwrap().1.clone();
    assert!(
        edit_result.contains("old_text was not found"),
        "the view has no dash: {edit_result}"
    );
    let read_result = tool_results(&requests[3]).last().unwrap().1.clone();
    assert!(
        read_result.contains("PGPASS=${credentials.DBPASS}"),
        "{read_result}"
    );
    let grep_result = tool_results(&requests[4]).last().unwrap().1.clone();
    assert!(grep_result.contains("no matches"), "{grep_result}");
    // The runtime keeps, outside the workspace, which files it wrote credentials into.
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(
            env.dir
                .path()
                .join("data/tenants/default/credential-files.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(index, json!({"db.env": ["DBPASS"]}));

    let (_, history) = api(&gateway, Method::GET, "/sessions/ops:attack", None).await;
    let (_, audit) = api(&gateway, Method::GET, "/audit?limit=5000", None).await;
    let secret = squeezed(DBPASS);
    let places = [
        (
            "model requests",
            requests
                .iter()
                .map(|r| r.body.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("history", history.to_string()),
        ("audit", audit.to_string()),
    ];
    for (place, text) in &places {
        assert!(
            !squeezed(text).contains(&secret),
            "the value, spaced out or not, leaked into {place}"
        );
    }
}

#[tokio::test]
async fn a_scoped_credential_is_refused_outside_its_scope_and_its_scope_is_audited() {
    let env = policy_off_env(vec![
        Reply::tool_call(
            "write_file",
            json!({"path": "leak.txt", "content": "${credentials.DBPASS}"}),
        ),
        Reply::tool_call(
            "exec",
            json!({"command": "echo ${credentials.DBPASS} | base64"}),
        ),
        Reply::text("Refused twice."),
    ])
    .await;
    let gateway = env.serve().await;
    let scope = json!({"tools": ["exec"], "commands": ["psql *"]});
    for (bad, wanted) in [
        (json!({"tools": []}), "at least one tool"),
        (json!({"tools": ["read_file"]}), "does not use credentials"),
        (json!({"tools": ["exec"], "commands": ["psql ["]}), "psql ["),
        (
            json!({"tools": ["write_file"], "commands": ["psql *"]}),
            "apply to exec",
        ),
    ] {
        let (status, error) = api(
            &gateway,
            Method::POST,
            "/credentials",
            Some(json!({"key": "DBPASS", "value": DBPASS, "scope": bad})),
        )
        .await;
        assert_eq!(status, 422, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(wanted), "{message}");
    }
    let (status, created) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "DBPASS", "value": DBPASS, "scope": scope})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["scope"], scope);
    // Replacing the value keeps the scope unless the body changes it.
    let (status, replaced) = api(
        &gateway,
        Method::PUT,
        "/credentials/DBPASS",
        Some(json!({"value": DBPASS})),
    )
    .await;
    assert_eq!((status, &replaced["scope"]), (200, &scope), "{replaced}");

    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/ops:scope/messages?wait=30",
        Some(json!({"content": "Put the password somewhere I can see it."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert!(!env.workspace().join("leak.txt").exists());
    let requests = env.model.requests();
    let write_result = tool_results(&requests[1]).last().unwrap().1.clone();
    assert!(
        write_result.contains("invalid_arguments")
            && write_result.contains("credential DBPASS is scoped to tools [exec]")
            && write_result.contains("write_file"),
        "{write_result}"
    );
    let exec_result = tool_results(&requests[2]).last().unwrap().1.clone();
    assert!(
        exec_result.contains("invalid_arguments")
            && exec_result.contains("DBPASS")
            && exec_result.contains("this command is not one of them"),
        "{exec_result}"
    );

    let (_, audit) = api(&gateway, Method::GET, "/audit?limit=5000", None).await;
    let changes: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "credential_changed")
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes.iter().all(|e| e["data"]["scope"] == scope),
        "{changes:?}"
    );
    let all = [
        requests
            .iter()
            .map(|r| r.body.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        audit.to_string(),
    ];
    for text in all {
        assert!(!squeezed(&text).contains(&squeezed(DBPASS)));
    }
}
