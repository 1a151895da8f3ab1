//! The management API's operator routes: the workspace (confined whatever the path
//! says), sessions deleted and started afresh, and the commands.

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, management};

const TOKEN: &str = "manage-management-token";

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    management(gateway, TOKEN, method, path, body).await
}

#[tokio::test]
async fn the_workspace_api_reads_and_writes_inside_the_workspace_only() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let outside = env.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside the workspace").unwrap();
    std::os::unix::fs::symlink(&outside, env.workspace().join("link")).unwrap();
    let gateway = env.serve().await;

    let (status, written) = api(
        &gateway,
        Method::PUT,
        "/workspace/file?path=notes/plan.md",
        Some(json!({"content": "# Plan\n"})),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("notes/plan.md")).unwrap(),
        "# Plan\n"
    );
    let (_, read) = api(
        &gateway,
        Method::GET,
        "/workspace/file?path=notes/plan.md",
        None,
    )
    .await;
    assert_eq!(read["content"], "# Plan\n");
    let (status, tree) = api(&gateway, Method::GET, "/workspace/tree?depth=2", None).await;
    assert_eq!(status, 200);
    let notes = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "notes")
        .unwrap_or_else(|| panic!("{tree}"));
    assert_eq!(notes["type"], "dir");
    assert_eq!(notes["children"][0]["path"], "notes/plan.md");
    let link = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "link")
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert!(link.get("children").is_none(), "symlinks are not followed");

    for path in [
        "../outside/secret.txt",
        "notes/../../outside/secret.txt",
        "/etc/passwd",
        &outside.join("secret.txt").display().to_string(),
        "link/secret.txt",
    ] {
        let encoded: String = url_encode(path);
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let body = (method == Method::PUT).then(|| json!({"content": "overwritten"}));
            let (status, error) = api(
                &gateway,
                method.clone(),
                &format!("/workspace/file?path={encoded}"),
                body,
            )
            .await;
            assert_eq!(status, 400, "{method} {path}: {error}");
            assert_eq!(error["error"]["param"], "path", "{error}");
            let root = env.workspace().canonicalize().unwrap();
            assert!(
                !error.to_string().contains(root.to_str().unwrap()),
                "the refusal does not reveal where the workspace lives: {error}"
            );
        }
        let (status, _) = api(
            &gateway,
            Method::GET,
            &format!("/workspace/tree?path={encoded}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "tree {path}");
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "outside the workspace",
        "nothing outside was changed"
    );

    assert_eq!(
        api(
            &gateway,
            Method::DELETE,
            "/workspace/file?path=notes/plan.md",
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        api(
            &gateway,
            Method::DELETE,
            "/workspace/file?path=notes/plan.md",
            None
        )
        .await
        .0,
        404
    );
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=workspace_changed", None).await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn sessions_are_deleted_or_started_afresh_but_not_while_a_turn_waits() {
    let mut env = Env::new(vec![
        Reply::text("First conversation."),
        Reply::text("A fresh start."),
        Reply::tool_call("exec", json!({"command": "echo gated > gated.txt"})),
        Reply::text("Starting over."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    let send = |session: &'static str, text: &'static str| {
        let gateway = &gateway;
        async move {
            api(
                gateway,
                Method::POST,
                &format!("/sessions/{session}/messages?wait=20"),
                Some(json!({"content": text})),
            )
            .await
        }
    };
    assert_eq!(send("m:1", "Hello.").await.0, 200);
    let (status, stopped) = api(
        &gateway,
        Method::POST,
        "/commands/stop",
        Some(json!({"sessionKey": "m:1"})),
    )
    .await;
    assert_eq!((status, &stopped["stopped"]), (200, &json!(false)));
    let (status, fresh) = api(
        &gateway,
        Method::POST,
        "/commands/new",
        Some(json!({"sessionKey": "m:1"})),
    )
    .await;
    assert_eq!((status, &fresh["cleared"]), (200, &json!(true)), "{fresh}");
    assert_eq!(
        api(&gateway, Method::GET, "/sessions/m:1", None).await.0,
        404
    );
    let (_, again) = send("m:1", "Hello again.").await;
    assert_eq!(again["content"], "A fresh start.");
    let (_, history) = api(&gateway, Method::GET, "/sessions/m:1", None).await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "{history}"
    );
    let second_request = &env.model.requests()[1];
    assert!(
        !crate::support::request_text(second_request).contains("First conversation"),
        "the model does not see the deleted history"
    );
    assert_eq!(
        api(&gateway, Method::DELETE, "/sessions/m:1", None).await.0,
        204
    );
    assert_eq!(
        api(&gateway, Method::DELETE, "/sessions/m:1", None).await.0,
        404
    );

    let (_, waiting) = send("m:2", "Run it.").await;
    assert_eq!(waiting["status"], "awaiting_review", "{waiting}");
    let (status, busy) = api(&gateway, Method::DELETE, "/sessions/m:2", None).await;
    assert_eq!(
        (status, busy["error"]["code"].as_str()),
        (409, Some("session_busy"))
    );
    let (_, status_view) = api(&gateway, Method::GET, "/commands/status", None).await;
    assert_eq!(status_view["pendingReviews"], 1, "{status_view}");
    assert_eq!(status_view["model"], "scripted-1");
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=session_deleted", None).await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");

    // Stop reaches a run waiting for a human: its review is withdrawn, the run ends
    // cancelled without asking the model again, and the session is free.
    let review = waiting["reviews"][0].as_str().unwrap().to_owned();
    let run = waiting["runId"].as_str().unwrap().to_owned();
    let (status, stopped) = api(
        &gateway,
        Method::POST,
        "/commands/stop",
        Some(json!({"sessionKey": "m:2"})),
    )
    .await;
    assert_eq!(
        (status, &stopped["stopped"]),
        (200, &json!(true)),
        "{stopped}"
    );
    let (_, withdrawn) = api(&gateway, Method::GET, &format!("/reviews/{review}"), None).await;
    assert_eq!(withdrawn["status"], "cancelled", "{withdrawn}");
    let ended = tokio::time::timeout(crate::support::PATIENCE, async {
        loop {
            let (_, view) = api(&gateway, Method::GET, &format!("/runs/{run}"), None).await;
            if view["status"] != "awaiting_review" && view["status"] != "running" {
                return view;
            }
            let events = crate::support::http()
                .get(format!("{}/api/v1/runs/{run}/events", gateway.url))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let _ = events.text().await;
        }
    })
    .await
    .expect("the stopped run ended");
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert!(
        !env.workspace().join("gated.txt").exists(),
        "the gated call never ran"
    );
    assert_eq!(
        env.model.requests().len(),
        3,
        "no model call after the stop"
    );
    let (status, next) = send("m:2", "Never mind.").await;
    assert_eq!(
        (status, &next["content"]),
        (200, &json!("Starting over.")),
        "{next}"
    );
    let results = crate::support::tool_results(&env.model.requests()[3]);
    assert!(
        results
            .iter()
            .any(|(_, text)| text.contains("stopped before this call ran")),
        "the call has its result in the history: {results:?}"
    );
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=review_cancelled", None).await;
    assert_eq!(audit["events"][0]["actor"], "stop command", "{audit}");
    assert_eq!(
        api(&gateway, Method::DELETE, "/sessions/m:2", None).await.0,
        204
    );
}

#[tokio::test]
async fn skills_and_scripts_in_the_workspace_are_listed_and_offered_to_the_agent() {
    let mut env = Env::new(vec![Reply::text("noted")]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let skill = env.workspace().join("skills/release");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: release\ndescription: Cut and publish a release\n---\n\nStep one: the body stays out of the prompt.\n",
    )
    .unwrap();
    let scripts = env.workspace().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("backup.sh"),
        "#!/bin/sh\n# Back up the database\necho done\n",
    )
    .unwrap();
    let gateway = env.serve().await;

    let (status, skills) = api(&gateway, Method::GET, "/skills", None).await;
    assert_eq!(status, 200, "{skills}");
    assert_eq!(skills["skills"][0]["name"], "release");
    assert_eq!(
        skills["skills"][0]["description"],
        "Cut and publish a release"
    );
    assert_eq!(skills["skills"][0]["path"], "skills/release/SKILL.md");
    let (status, listed) = api(&gateway, Method::GET, "/scripts", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["scripts"][0]["path"], "scripts/backup.sh");
    assert_eq!(listed["scripts"][0]["description"], "Back up the database");
    assert_eq!(listed["scripts"][0]["interpreter"], "sh");

    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/ops:1/messages?wait=20",
        Some(json!({"content": "what can you do?"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let requests = env.model.requests();
    let system = requests[0].messages()[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        system.contains("release (skills/release/SKILL.md): Cut and publish a release"),
        "{system}"
    );
    assert!(
        system.contains("scripts/backup.sh: Back up the database"),
        "{system}"
    );
    assert!(
        !system.contains("the body stays out of the prompt"),
        "a skill's body is read on demand, not put in every prompt"
    );
}

#[tokio::test]
async fn stopping_a_step_of_several_calls_answers_each_and_opens_no_new_review() {
    let mut env = Env::new(vec![
        Reply::ToolCalls(vec![
            ("exec".into(), json!({"command": "echo a > a.txt"})),
            ("exec".into(), json!({"command": "echo b > b.txt"})),
            ("read_file".into(), json!({"path": "AGENTS.md"})),
        ]),
        Reply::text("Fine, stopped."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    let (_, waiting) = api(
        &gateway,
        Method::POST,
        "/sessions/multi:1/messages?wait=20",
        Some(json!({"content": "Do both."})),
    )
    .await;
    assert_eq!(waiting["status"], "awaiting_review", "{waiting}");
    let run = waiting["runId"].as_str().unwrap().to_owned();
    let (status, stopped) = api(
        &gateway,
        Method::POST,
        "/commands/stop",
        Some(json!({"sessionKey": "multi:1"})),
    )
    .await;
    assert_eq!((status, &stopped["stopped"]), (200, &json!(true)));
    let events = crate::support::http()
        .get(format!("{}/api/v1/runs/{run}/events", gateway.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    tokio::time::timeout(crate::support::PATIENCE, events.text())
        .await
        .expect("the stopped run ended")
        .unwrap();
    let (_, view) = api(&gateway, Method::GET, &format!("/runs/{run}"), None).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    let (_, reviews) = api(&gateway, Method::GET, "/reviews?session=multi:1", None).await;
    let reviews = reviews["reviews"].as_array().unwrap().clone();
    assert_eq!(reviews.len(), 1, "no second review was opened: {reviews:?}");
    assert_eq!(reviews[0]["status"], "cancelled");
    assert!(!env.workspace().join("a.txt").exists());
    assert!(!env.workspace().join("b.txt").exists());
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=session_stopped", None).await;
    let stops = audit["events"].as_array().unwrap();
    assert_eq!(stops.len(), 1, "the stop command is on record: {audit}");
    assert_eq!(stops[0]["data"]["sessionKey"], "multi:1");
    assert_eq!(stops[0]["data"]["surface"], "api");

    let (status, next) = api(
        &gateway,
        Method::POST,
        "/sessions/multi:1/messages?wait=20",
        Some(json!({"content": "OK, leave it."})),
    )
    .await;
    assert_eq!(
        (status, &next["content"]),
        (200, &json!("Fine, stopped.")),
        "{next}"
    );
    let results = crate::support::tool_results(&env.model.requests()[1]);
    assert_eq!(results.len(), 3, "every call has its result: {results:?}");
    assert!(
        results[0].1.contains("stopped before this call ran"),
        "{results:?}"
    );
    assert!(
        results[1].1.contains("stopped before this call ran"),
        "{results:?}"
    );
    assert!(
        results[2].1.contains("stopped before this call ran"),
        "{results:?}"
    );
}
