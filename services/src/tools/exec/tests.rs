use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::ToolsConfig;
use crate::tools::Workspace;

fn ctx(dir: &tempfile::TempDir, config: ToolsConfig) -> ToolContext {
    ToolContext {
        workspace: Workspace::new(dir.path(), true).unwrap(),
        config: Arc::new(config),
        cancel: CancellationToken::new(),
        secrets: Default::default(),
    }
}

#[tokio::test]
async fn runs_in_the_workspace_and_reports_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, ToolsConfig::default());
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": "echo hi > f.txt; cat f.txt; echo oops >&2; exit 3"}),
        )
        .await
        .unwrap();
    assert!(out.content.starts_with("exit code: 3"), "{}", out.content);
    assert!(out.content.contains("hi") && out.content.contains("oops"));
    assert!(dir.path().join("f.txt").exists());
}

#[tokio::test]
async fn a_timeout_stops_the_command_and_background_processes_die() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, ToolsConfig::default());
    let started = Instant::now();
    let err = ExecTool
        .execute(&ctx, json!({"command": "sleep 30", "timeout_s": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ToolErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout did not stop the command"
    );

    let out = ExecTool
        .execute(&ctx, json!({"command": "sleep 300 & echo $!"}))
        .await
        .unwrap();
    let pid: i32 = out.content.lines().nth(2).unwrap().trim().parse().unwrap();
    // SIGKILL lands asynchronously; give the kernel a moment, bounded.
    let gone = || {
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        !alive
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone(), "background process {pid} survived the call");
}

#[tokio::test]
async fn deny_patterns_env_scrub_truncation_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ToolsConfig::default();
    config.exec.max_output_chars = 100;
    let ctx = ctx(&dir, config);
    let denied = ExecTool
        .execute(&ctx, json!({"command": "rm -rf / "}))
        .await
        .unwrap_err();
    assert_eq!(denied.kind, ToolErrorKind::Denied);

    let env = ExecTool
        .execute(
            &ctx,
            json!({"command": "env | cut -d= -f1 | sort | tr '\\n' ' '"}),
        )
        .await
        .unwrap();
    for name in env
        .content
        .lines()
        .nth(2)
        .unwrap_or_default()
        .split_whitespace()
    {
        assert!(
            [
                "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TERM", "TZ", "PWD", "SHLVL", "_",
                "OLDPWD"
            ]
            .contains(&name),
            "{name} leaked"
        );
    }

    let long = ExecTool
        .execute(&ctx, json!({"command": "seq 1 1000"}))
        .await
        .unwrap();
    assert!(
        long.content.contains("characters omitted") && long.content.contains("1000"),
        "{}",
        long.content
    );

    ctx.cancel.cancel();
    let cancelled = ExecTool
        .execute(&ctx, json!({"command": "sleep 30"}))
        .await
        .unwrap_err();
    assert_eq!(cancelled.kind, ToolErrorKind::Cancelled);
}

#[tokio::test]
async fn credentials_reach_the_command_only_through_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(&dir, ToolsConfig::default());
    ctx.secrets = Arc::new(crate::vault::Secrets::new([
        (
            "NAMED".to_owned(),
            crate::review::SecretString::new("named-value"),
            false,
        ),
        (
            "EXPOSED".to_owned(),
            crate::review::SecretString::new("exposed-value"),
            true,
        ),
        (
            "HIDDEN".to_owned(),
            crate::review::SecretString::new("hidden-value"),
            false,
        ),
    ]));
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": "echo \"${credentials.NAMED}|$EXPOSED|${HIDDEN:-unset}\"; ps -o args= -p $$"}),
        )
        .await
        .unwrap();
    assert!(
        out.content
            .contains("[REDACTED:NAMED]|[REDACTED:EXPOSED]|unset"),
        "the command saw the values and its output is redacted: {}",
        out.content
    );
    assert!(
        out.content.contains("sh -c echo \"${NAMED}|"),
        "the command line holds a variable reference, not the value: {}",
        out.content
    );
    let e = ExecTool
        .execute(&ctx, json!({"command": "echo ${credentials.MISSING}"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no credential MISSING"), "{e}");
}

#[tokio::test]
async fn output_is_redacted_before_it_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ToolsConfig::default();
    // "exit code: 0\n--- stdout ---\n" is 28 characters: the head keeps 7 more, which
    // would be the first 7 of the secret if the cut came first.
    config.exec.max_output_chars = 70;
    let mut ctx = ctx(&dir, config);
    ctx.secrets = Arc::new(crate::vault::Secrets::new([(
        "NAMED".to_owned(),
        crate::review::SecretString::new("named-value-0123456789"),
        false,
    )]));
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": "echo \"${credentials.NAMED}$(printf 'z%.0s' $(seq 1 200))\""}),
        )
        .await
        .unwrap();
    assert!(
        out.content.contains("characters omitted"),
        "{}",
        out.content
    );
    assert!(!out.content.contains("named-v"), "{}", out.content);
}
