//! The embedding SDK: a turn with tools, hooks that observe and veto, sessions that
//! keep separate histories, the iteration budget.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use facio::{RunOptions, TurnHooks};
use facio_actors::{HookDecision, ToolUse};
use facio_services::domain::ToolCall;
use facio_services::providers::{ChatRequest, ChatResponse};
use facio_tests::model::Reply;
use serde_json::json;

use crate::support::{Env, request_text, tool_results};

#[tokio::test]
async fn a_turn_uses_tools_and_returns_content_tools_and_messages() {
    let env = Env::new(vec![
        Reply::tool_call(
            "write_file",
            json!({"path": "notes/plan.txt", "content": "step one\nstep two\n"}),
        ),
        Reply::tool_call("read_file", json!({"path": "notes/plan.txt"})),
        Reply::text("The plan has two steps."),
    ])
    .await;
    std::fs::write(
        env.workspace().join("AGENTS.md"),
        "Always answer like a pirate-ZX81.",
    )
    .unwrap();
    let facio = env.sdk().await;

    let result = facio
        .run(
            "Write the plan and read it back.",
            RunOptions::session("sdk:plan").unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(result.content, "The plan has two steps.");
    let names: Vec<_> = result.tools_used.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["write_file", "read_file"]);
    assert!(
        result.tools_used.iter().all(|t| t.ok),
        "{:?}",
        result.tools_used
    );
    assert!(
        result.tools_used[1].output.contains("step two"),
        "{}",
        result.tools_used[1].output
    );
    // user, assistant(tool call), tool, assistant(tool call), tool, assistant(answer)
    assert_eq!(result.messages.len(), 6, "{:#?}", result.messages);
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("notes/plan.txt")).unwrap(),
        "step one\nstep two\n"
    );

    let requests = env.model.requests();
    assert_eq!(requests.len(), 3);
    // The runtime built the system prompt from the workspace and offered the tools.
    let system = requests[0].messages()[0].clone();
    assert_eq!(system["role"], "system");
    assert!(system["content"].as_str().unwrap().contains("pirate-ZX81"));
    let offered = requests[0].tool_names();
    for tool in [
        "read_file",
        "write_file",
        "edit_file",
        "patch_file",
        "list_dir",
        "glob",
        "grep",
        "exec",
        "web_fetch",
    ] {
        assert!(
            offered.iter().any(|o| o == tool),
            "{tool} not offered: {offered:?}"
        );
    }
    // The model saw the file content as the read_file result.
    let results = tool_results(&requests[2]);
    assert!(
        results
            .iter()
            .any(|(_, content)| content.contains("step one")),
        "{results:?}"
    );
    facio.shutdown(Duration::from_secs(5)).await;
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

#[async_trait]
impl TurnHooks for Recorder {
    async fn before_model_call(&self, request: &ChatRequest) {
        self.events
            .lock()
            .unwrap()
            .push(format!("before_model:{}", request.messages.len()));
    }
    async fn after_model_call(&self, _response: &ChatResponse) {
        self.events.lock().unwrap().push("after_model".into());
    }
    async fn before_tool_call(&self, call: &ToolCall) -> HookDecision {
        self.events
            .lock()
            .unwrap()
            .push(format!("before_tool:{}", call.name));
        if call.name == "exec" {
            HookDecision::Veto("no shell commands in this project".into())
        } else {
            HookDecision::Allow
        }
    }
    async fn after_tool_call(&self, call: &ToolCall, result: &ToolUse) {
        self.events
            .lock()
            .unwrap()
            .push(format!("after_tool:{}:{}", call.name, result.ok));
    }
}

#[tokio::test]
async fn hooks_observe_every_call_and_can_veto_a_tool() {
    let env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "touch vetoed.txt"})),
        Reply::tool_call("list_dir", json!({})),
        Reply::text("I could not run the command."),
    ])
    .await;
    let facio = env.sdk().await;
    let hooks = Arc::new(Recorder::default());

    let options = RunOptions::session("sdk:hooks")
        .unwrap()
        .with_hook(hooks.clone());
    let result = facio.run("Create vetoed.txt", options).await.unwrap();

    assert_eq!(result.content, "I could not run the command.");
    assert!(
        !env.workspace().join("vetoed.txt").exists(),
        "a vetoed command ran"
    );
    let exec = &result.tools_used[0];
    assert!(!exec.ok);
    assert!(
        exec.output.contains("no shell commands in this project"),
        "{}",
        exec.output
    );
    let seen = env.model.requests();
    assert!(
        tool_results(&seen[1])[0]
            .1
            .contains("no shell commands in this project")
    );

    let events = hooks.events.lock().unwrap().clone();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e.split(':').take(2).collect::<Vec<_>>().join(":"))
        .collect();
    assert_eq!(
        kinds,
        [
            "before_model:2",
            "after_model",
            "before_tool:exec",
            "after_tool:exec",
            "before_model:4",
            "after_model",
            "before_tool:list_dir",
            "after_tool:list_dir",
            "before_model:6",
            "after_model"
        ],
        "{events:?}"
    );
    facio.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn different_session_keys_keep_separate_histories() {
    let env = Env::new(vec![
        Reply::text("Noted: blue."),
        Reply::text("Noted: green."),
        Reply::text("Your colour is blue."),
    ])
    .await;
    let facio = env.sdk().await;

    facio
        .run(
            "My colour is blue.",
            RunOptions::session("sdk:alice").unwrap(),
        )
        .await
        .unwrap();
    facio
        .run(
            "My colour is green.",
            RunOptions::session("sdk:bob").unwrap(),
        )
        .await
        .unwrap();
    let third = facio
        .run(
            "What is my colour?",
            RunOptions::session("sdk:alice").unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(third.content, "Your colour is blue.");
    let requests = env.model.requests();
    let bob = request_text(&requests[1]);
    assert!(
        !bob.contains("blue"),
        "bob's turn saw alice's history: {bob}"
    );
    let alice = request_text(&requests[2]);
    assert!(
        alice.contains("My colour is blue.") && alice.contains("Noted: blue."),
        "{alice}"
    );
    assert!(
        !alice.contains("green"),
        "alice's turn saw bob's history: {alice}"
    );
    facio.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_exhausted_iteration_budget_ends_the_turn_with_a_clear_message() {
    let mut env = Env::new(vec![
        Reply::tool_call("list_dir", json!({})),
        Reply::tool_call("list_dir", json!({})),
        Reply::tool_call("list_dir", json!({})),
    ])
    .await;
    env.set("/agents/defaults/maxToolIterations", json!(2));
    let facio = env.sdk().await;

    let result = facio
        .run("Loop forever.", RunOptions::session("sdk:budget").unwrap())
        .await
        .unwrap();

    assert!(result.budget_exhausted);
    assert!(
        result.content.contains("limit of 2 model calls"),
        "{}",
        result.content
    );
    assert_eq!(
        env.model.requests().len(),
        2,
        "the runtime called the model past its budget"
    );
    facio.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn invalid_arguments_and_unknown_tools_reach_the_model_as_errors() {
    let env = Env::new(vec![
        Reply::RawToolCall {
            name: "read_file".into(),
            arguments: "{not json".into(),
        },
        Reply::tool_call("summon_dragon", json!({})),
        Reply::tool_call("read_file", json!({"path": "missing.txt"})),
        Reply::text("Nothing worked."),
    ])
    .await;
    let facio = env.sdk().await;

    let result = facio
        .run("Try things.", RunOptions::session("sdk:errors").unwrap())
        .await
        .unwrap();

    assert_eq!(result.content, "Nothing worked.");
    assert_eq!(result.tools_used.len(), 3);
    assert!(result.tools_used.iter().all(|t| !t.ok));
    let requests = env.model.requests();
    let invalid = &tool_results(&requests[1])[0].1;
    assert!(invalid.contains("not valid JSON"), "{invalid}");
    let unknown = tool_results(&requests[2]).last().unwrap().1.clone();
    assert!(unknown.contains("summon_dragon"), "{unknown}");
    let missing = tool_results(&requests[3]).last().unwrap().1.clone();
    assert!(missing.contains("missing.txt"), "{missing}");
    facio.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_run_over_its_token_cap_stops_cleanly_before_the_next_model_call() {
    let mut env = Env::new(vec![
        Reply::tool_call("list_dir", json!({})),
        Reply::text("A new turn starts with a fresh budget."),
    ])
    .await;
    env.set("/limits", json!({"maxTokensPerRun": 50}));
    let facio = env.sdk().await;

    let result = facio
        .run(
            "List the workspace.",
            RunOptions::session("sdk:tokens").unwrap(),
        )
        .await
        .unwrap();
    assert!(result.budget_exhausted);
    assert!(
        result.content.contains("budget of 50 tokens"),
        "{}",
        result.content
    );
    assert_eq!(env.model.requests().len(), 1, "no model call past the cap");
    assert_eq!(
        result.tools_used.len(),
        1,
        "the call the model asked for ran and was recorded"
    );

    let db = format!("sqlite://{}", env.database().display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let events: Vec<String> =
        sqlx::query_scalar("SELECT data FROM audit_events WHERE kind = 'budget_exhausted'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        events.iter().any(|e| e.contains("\"tokenLimit\":50")),
        "{events:?}"
    );
    let next = facio
        .run("Go on.", RunOptions::session("sdk:tokens").unwrap())
        .await
        .unwrap();
    assert_eq!(next.content, "A new turn starts with a fresh budget.");
}
