//! The `facio` command line: one-shot turns, onboarding, sessions, and bad config.

use facio_tests::model::Reply;
use serde_json::json;

use crate::support::{Env, facio_bin, stderr, stdout};

#[tokio::test]
async fn agent_one_shot_answers_using_a_tool_and_sessions_show_it() {
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo built | tee artifact.txt"})),
        Reply::text("The artifact is built."),
    ])
    .await;
    // exec asks a human by default; the operator allowed these commands in config.
    env.set(
        "/policy",
        json!({"rules": [
            {"action": "allow", "tool": "exec", "params": {"command": "echo built*"}},
            {"action": "allow", "tool": "exec", "params": {"command": "tee artifact.txt"}}
        ]}),
    );

    let output = env
        .cli(&[
            "agent",
            "-m",
            "Build the artifact",
            "--session",
            "cli:build",
        ])
        .await;

    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(stdout(&output).trim(), "The artifact is built.");
    assert!(
        stderr(&output).contains("exec"),
        "tool activity not shown: {}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("artifact.txt")).unwrap(),
        "built\n"
    );
    let tool_result = &crate::support::tool_results(&env.model.requests()[1])[0].1;
    assert!(tool_result.contains("built"), "{tool_result}");

    let list = env.cli(&["sessions", "list"]).await;
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("cli:build"), "{}", stdout(&list));
    let show = env.cli(&["sessions", "show", "cli:build"]).await;
    assert!(show.status.success(), "{}", stderr(&show));
    let history = stdout(&show);
    assert!(
        history.contains("Build the artifact")
            && history.contains("exec")
            && history.contains("The artifact is built."),
        "{history}"
    );
}

#[tokio::test]
async fn a_provider_failure_exits_non_zero_with_a_one_line_reason() {
    let mut env = Env::new(vec![Reply::error(401, "invalid api key")]).await;
    env.set("/agents/defaults/maxRetries", json!(0));

    let output = env.cli(&["agent", "-m", "hello"]).await;

    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("invalid api key"), "{err}");
}

#[tokio::test]
async fn an_invalid_config_fails_fast_naming_the_key_path() {
    let mut env = Env::new(vec![]).await;
    env.set("/agents/defaults/maxToolIterations", json!("lots"));

    let output = env.cli(&["agent", "-m", "hello"]).await;

    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("agents.defaults.maxToolIterations"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not a one-line error: {err}");
    assert!(env.model.requests().is_empty());
}

#[tokio::test]
async fn onboard_writes_a_config_and_workspace_that_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("home/config.json");
    let workspace = dir.path().join("home/workspace");
    let run = |force: bool| {
        let mut command = tokio::process::Command::new(facio_bin());
        command
            .arg("onboard")
            .arg("--config")
            .arg(&config)
            .arg("--workspace")
            .arg(&workspace);
        if force {
            command.arg("--force");
        }
        command.output()
    };

    let first = run(false).await.unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    for file in [
        "AGENTS.md",
        "SOUL.md",
        "USER.md",
        "HEARTBEAT.md",
        "memory/MEMORY.md",
    ] {
        assert!(workspace.join(file).is_file(), "{file} missing");
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("//"), "the starter config is not commented");

    std::fs::write(workspace.join("USER.md"), "my own notes").unwrap();
    let second = run(false).await.unwrap();
    assert!(second.status.success());
    assert!(stdout(&second).contains("kept"), "{}", stdout(&second));
    assert_eq!(
        std::fs::read_to_string(workspace.join("USER.md")).unwrap(),
        "my own notes"
    );

    // The written config loads: the CLI gets past config loading and reports the
    // missing provider key, not a config error.
    let check = tokio::process::Command::new(facio_bin())
        .args(["sessions", "list", "--config"])
        .arg(&config)
        .env("OPENAI_API_KEY", "sk-unused")
        .env("FACIO_DATA_DIR", dir.path().join("data"))
        .output()
        .await
        .unwrap();
    assert!(
        check.status.success(),
        "the onboarded config does not load: {}",
        stderr(&check)
    );

    // The first run explains itself: the token and the inbox are printed, and the
    // config holds that token.
    let printed = stdout(&first);
    let token = printed
        .lines()
        .find_map(|l| l.strip_prefix("management token: "))
        .unwrap_or_else(|| panic!("no token printed: {printed}"))
        .to_owned();
    assert!(printed.contains("/inbox"), "{printed}");
    assert!(text.contains(&token), "the printed token is the config's");

    // No key anywhere: `agent` says in one line what to set, without calling the
    // default host and retrying, and its log has no colour codes.
    let agent = tokio::process::Command::new(facio_bin())
        .args(["agent", "-m", "hello", "--config"])
        .arg(&config)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("FACIO_DATA_DIR", dir.path().join("data"))
        .output()
        .await
        .unwrap();
    assert!(!agent.status.success());
    let said = stderr(&agent);
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(said.contains("OPENAI_API_KEY"), "{said}");
    assert!(
        !said.contains("retrying") && !said.contains('\u{1b}'),
        "{said}"
    );

    // `serve` starts (the inbox and the API work without a model) and says the same
    // in its log, in plain text.
    let gateway = facio_tests::process::FacioProcess::spawn(
        facio_bin(),
        &["serve", "--config", config.to_str().unwrap(), "--port", "0"],
        &[
            ("FACIO_DATA_DIR", dir.path().join("data").to_str().unwrap()),
            ("OPENAI_API_KEY", ""),
            ("ANTHROPIC_API_KEY", ""),
            ("OPENAI_BASE_URL", ""),
        ],
        dir.path(),
    )
    .unwrap();
    let warning = gateway
        .wait_for_line("turns cannot call a model yet", crate::support::PATIENCE)
        .await
        .unwrap();
    assert!(warning.contains("OPENAI_API_KEY"), "{warning}");
    assert!(!warning.contains('\u{1b}'), "{warning}");
}

#[tokio::test]
async fn start_up_errors_name_each_cause_once() {
    let env = Env::new(vec![Reply::text("unused")]).await;
    let first = env.serve().await;
    let port = first.url.rsplit(':').next().unwrap().to_owned();
    // Another node (its own data dir) on a port that is taken.
    let other = Env::new(vec![Reply::text("unused")]).await;
    let config = other.config_path();
    let taken = tokio::process::Command::new(facio_bin())
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--port",
            &port,
        ])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!taken.status.success());
    let text = stderr(&taken);
    assert!(text.contains("cannot listen on"), "{text}");
    let cause = "Address already in use";
    assert_eq!(text.matches(cause).count(), 1, "{text}");

    let bad_key = tokio::process::Command::new(facio_bin())
        .args(["serve", "--config", config.to_str().unwrap(), "--port", "0"])
        .env("FACIO_MASTER_KEY", "not-hex")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!bad_key.status.success());
    let text = stderr(&bad_key);
    let cause = "must be 64 hex characters";
    assert_eq!(text.matches(cause).count(), 1, "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
}
