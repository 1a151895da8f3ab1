//! Allow and deny rules read the command with a real shell grammar: a hostile
//! model cannot slip a side effect past an allow rule, nor dress up a denied
//! program so the deny rule misses it.

use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, tool_results};

const TOKEN: &str = "gate-shell-token";

async fn api(gateway: &Gateway, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let (status, value) = crate::support::management(gateway, TOKEN, method, path, body).await;
    assert_eq!(status, 200, "{path}: {value}");
    value
}

/// An environment whose model runs each command with `exec`, then says "done".
async fn env_running(commands: &[&str], policy: Value) -> Env {
    let mut replies: Vec<Reply> = commands
        .iter()
        .map(|c| Reply::tool_call("exec", json!({"command": c})))
        .collect();
    replies.push(Reply::text("done"));
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/policy", policy);
    env
}

async fn ask(gateway: &Gateway, session: &str) -> Value {
    api(
        gateway,
        reqwest::Method::POST,
        &format!("/sessions/{session}/messages?wait=20"),
        Some(json!({"content": "Run the commands."})),
    )
    .await
}

/// Follows the run's events until it is waiting on its `n`th review (returns that
/// review) or has ended (returns `None`).
async fn next_review(gateway: &Gateway, run_id: &str, n: usize) -> Option<String> {
    crate::support::follow_run(gateway, TOKEN, run_id, |run| {
        let reviews = run["reviews"].as_array()?;
        (run["status"] == "awaiting_review" && reviews.len() >= n)
            .then(|| reviews[n - 1].as_str().map(str::to_owned))
            .flatten()
    })
    .await
}

#[tokio::test]
async fn an_allow_rule_covers_the_plain_command_and_nothing_dressed_around_it() {
    let smuggled = [
        "git status $(touch p1)",
        "git status `touch p2`",
        "git status > p3",
        "git statusx",
    ];
    let mut commands = vec!["git status"];
    commands.extend(smuggled);
    let env = env_running(
        &commands,
        json!({"rules": [{"action": "allow", "tool": "exec", "params": {"command": "git status*"}}]}),
    )
    .await;
    let init = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(env.workspace())
        .status()
        .unwrap();
    assert!(init.success());
    let gateway = env.serve().await;

    let run = ask(&gateway, "shell:allow").await;
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let plain = &tool_results(&env.model.requests()[1])[0].1;
    assert!(
        plain.contains("exit code: 0"),
        "plain git status ran without a review: {plain}"
    );
    for (n, command) in smuggled.iter().enumerate() {
        let review = next_review(&gateway, &run_id, n + 1)
            .await
            .unwrap_or_else(|| panic!("{command:?} ran without a review"));
        let pending = api(
            &gateway,
            reqwest::Method::GET,
            "/reviews?status=pending",
            None,
        )
        .await;
        assert_eq!(pending["reviews"][0]["id"], review.as_str());
        assert_eq!(
            pending["reviews"][0]["context"]["arguments"]["command"],
            *command
        );
        for marker in ["p1", "p2", "p3"] {
            assert!(
                !env.workspace().join(marker).exists(),
                "{marker} was written before any decision"
            );
        }
        api(
            &gateway,
            reqwest::Method::POST,
            &format!("/reviews/{review}/decide"),
            Some(json!({"response": {"selectedOption": "reject"}, "reviewer": "alice"})),
        )
        .await;
    }
    assert_eq!(
        next_review(&gateway, &run_id, smuggled.len() + 1).await,
        None
    );
    for marker in ["p1", "p2", "p3"] {
        assert!(
            !env.workspace().join(marker).exists(),
            "{marker} was written"
        );
    }
}

#[tokio::test]
async fn a_deny_rule_catches_a_program_however_it_is_spelled_with_gates_off() {
    let evasions = [
        "t''ouch m1",
        "/usr/bin/touch m2",
        "env touch m3",
        "sh -c 'touch m4'",
        "{ touch m5; }",
    ];
    let mut commands = evasions.to_vec();
    commands.push("echo ran > control");
    let env = env_running(
        &commands,
        json!({"enabled": false,
               "rules": [{"action": "deny", "tool": "exec", "params": {"command": "touch *"}}]}),
    )
    .await;
    let gateway = env.serve().await;

    let run = ask(&gateway, "shell:deny").await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["content"], "done");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("control")).unwrap(),
        "ran\n",
        "with gates off, a command no rule denies runs"
    );
    for marker in ["m1", "m2", "m3", "m4", "m5"] {
        assert!(
            !env.workspace().join(marker).exists(),
            "{marker} was written"
        );
    }
    let results = tool_results(env.model.requests().last().unwrap());
    for (evasion, (_, result)) in evasions.iter().zip(&results) {
        assert!(
            result.contains("policy refused"),
            "{evasion:?} was not refused: {result}"
        );
    }
    let audit = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/audit?run={}", run["runId"].as_str().unwrap()),
        None,
    )
    .await;
    let denied = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "tool_denied")
        .count();
    assert_eq!(denied, evasions.len(), "{audit}");
}
