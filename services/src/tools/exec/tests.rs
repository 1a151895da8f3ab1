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
        grant: Default::default(),
        records: None,
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

    // In a pid namespace `$!` is not a pid the test can see: look for the process by
    // its command line instead.
    ExecTool
        .execute(&ctx, json!({"command": "sleep 7301 & echo started"}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running("7301") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!running("7301"), "the background sleep survived the call");
}

/// Whether a live (not zombie) process has `marker` in its command line.
fn running(marker: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let zombie = std::fs::read_to_string(path.join("stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true);
        !zombie
            && String::from_utf8_lossy(&cmdline)
                .split('\0')
                .any(|arg| arg.contains(marker))
    })
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
            // Git's own hardening variables are set by exec itself.
            json!({"command": "env | cut -d= -f1 | grep -v '^GIT_' | sort | tr '\\n' ' '"}),
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
                "OLDPWD", "PAGER"
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

#[tokio::test]
async fn the_sandbox_keeps_writes_in_the_workspace_and_ends_every_process() {
    assert!(
        sandbox_status().is_available(true),
        "this machine cannot sandbox: {}",
        sandbox_status()
    );
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, ToolsConfig::default());
    let target = outside.path().join("outside");
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": format!(
                "echo x > {}; echo in > inside; echo t > \"$TMPDIR/t\" && echo tmp-ok; \
                 echo n > /dev/null && echo null-ok; echo \"tmp=$TMPDIR\"",
                target.display()
            )}),
        )
        .await
        .unwrap();
    assert!(!target.exists(), "a write outside the workspace landed");
    assert!(out.content.contains("Permission denied"), "{}", out.content);
    assert!(dir.path().join("inside").exists(), "{}", out.content);
    assert!(
        out.content.contains("tmp-ok") && out.content.contains("null-ok"),
        "{}",
        out.content
    );
    let tmp = out
        .content
        .lines()
        .find_map(|l| l.strip_prefix("tmp="))
        .unwrap();
    assert!(tmp.contains("facio-exec-"), "{tmp}");
    assert!(
        !std::path::Path::new(tmp).exists(),
        "the call's temp dir is removed"
    );

    // A process that leaves the shell's session and process group still dies with
    // the call: the call returns when the shell exits, and `f` never appears.
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": "setsid sh -c 'sleep 1; echo late >> f' & echo started"}),
        )
        .await
        .unwrap();
    assert!(out.content.contains("started"), "{}", out.content);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert!(
            !dir.path().join("f").exists(),
            "a background process outlived its call"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_network_is_there_only_when_the_call_is_granted_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(&dir, ToolsConfig::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let command = format!("bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo connected");
    let cut = ExecTool
        .execute(&ctx, json!({"command": command}))
        .await
        .unwrap();
    assert!(!cut.content.contains("connected"), "{}", cut.content);

    ctx.grant.network = true;
    let granted = ExecTool
        .execute(&ctx, json!({"command": command}))
        .await
        .unwrap();
    assert!(granted.content.contains("connected"), "{}", granted.content);
}

#[tokio::test]
async fn a_planted_git_config_or_path_entry_runs_no_program() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, ToolsConfig::default());
    let init = std::process::Command::new("git")
        .args(["init", "-q", "."])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(init.success());
    let config = dir.path().join(".git/config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[core]\n\tfsmonitor = \"touch PWNED\"\n");
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
    let out = ExecTool
        .execute(&ctx, json!({"command": "git status --porcelain"}))
        .await
        .unwrap();
    assert!(out.content.contains("a.txt"), "{}", out.content);
    assert!(
        !dir.path().join("PWNED").exists(),
        "git ran the workspace's fsmonitor hook"
    );

    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let path = std::env::join_paths([
        std::path::PathBuf::from("relative"),
        std::path::PathBuf::new(),
        bin.clone(),
        std::path::PathBuf::from("/usr/bin"),
        std::path::PathBuf::from("/does/not/exist"),
    ])
    .unwrap();
    assert_eq!(env::safe_path(&path, dir.path()), "/usr/bin");
}

#[tokio::test]
async fn user_config_and_a_fake_bare_repository_in_the_workspace_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, ToolsConfig::default());
    // HOME is the call's own empty directory, not the workspace.
    std::fs::write(dir.path().join(".curlrc"), "output = PWNED_curl\n").unwrap();
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": "test -e \"$HOME/.curlrc\" && echo seen || echo unseen"}),
        )
        .await
        .unwrap();
    assert!(out.content.contains("unseen"), "{}", out.content);

    // The workspace laid out as a bare repository whose config runs a program.
    std::fs::write(dir.path().join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::create_dir_all(dir.path().join("objects")).unwrap();
    std::fs::create_dir_all(dir.path().join("refs/heads")).unwrap();
    std::fs::write(
        dir.path().join("config"),
        "[diff]\n\texternal = touch PWNED_diff\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "b\n").unwrap();
    let _ = ExecTool
        .execute(
            &ctx,
            json!({"command": "git diff --no-index --ext-diff a.txt b.txt"}),
        )
        .await
        .unwrap();
    assert!(
        !dir.path().join("PWNED_diff").exists(),
        "git took the workspace for a bare repository and ran its diff.external"
    );
}

#[tokio::test]
async fn with_the_sandbox_off_commands_run_unconfined() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let mut config = ToolsConfig::default();
    config.exec.sandbox = ExecSandbox::Off;
    let ctx = ctx(&dir, config);
    let target = outside.path().join("outside");
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": format!("echo x > {} && echo written", target.display())}),
        )
        .await
        .unwrap();
    assert!(out.content.contains("written"), "{}", out.content);
    assert!(target.exists());
}

#[test]
fn an_unavailable_sandbox_names_what_is_missing_and_the_opt_out() {
    let status = SandboxStatus {
        landlock_abi: None,
        landlock_missing: Some("the kernel has no Landlock".to_owned()),
        namespaces: Some(NamespaceMode::Root),
        namespaces_missing: None,
    };
    assert!(
        status.is_available(false),
        "Landlock is needed only to confine writes"
    );
    let missing = status.missing(true).unwrap();
    let error = SandboxError::Unavailable {
        mode: "auto",
        missing,
    };
    assert_eq!(
        error.to_string(),
        "tools.exec.sandbox is \"auto\" but this machine cannot sandbox commands: the kernel \
         has no Landlock. Set tools.exec.sandbox to \"off\" to run commands unconfined"
    );
    let mut config = ToolsConfig::default();
    assert!(require_sandbox(&config).is_ok(), "{}", sandbox_status());
    config.exec.sandbox = ExecSandbox::On;
    assert!(require_sandbox(&config).is_ok(), "{}", sandbox_status());
}

#[tokio::test]
async fn hidden_paths_look_empty_to_commands() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("master.key"), "master-key-bytes").unwrap();
    let single = other.path().join("config.json");
    std::fs::write(&single, "provider-api-key").unwrap();
    let mut config = ToolsConfig::default();
    config.exec.hide_paths = vec![secrets.path().to_owned(), single.clone()];
    let ctx = ctx(&dir, config);
    let out = ExecTool
        .execute(
            &ctx,
            json!({"command": format!(
                "cat {}/master.key; cat {}; echo \"entries=$(ls -A {} | wc -l)\"",
                secrets.path().display(),
                single.display(),
                secrets.path().display()
            )}),
        )
        .await
        .unwrap();
    assert!(
        !out.content.contains("master-key-bytes") && !out.content.contains("provider-api-key"),
        "{}",
        out.content
    );
    assert!(out.content.contains("entries=0"), "{}", out.content);
    assert_eq!(
        std::fs::read_to_string(&single).unwrap(),
        "provider-api-key",
        "only the command's view changes"
    );

    let mut config = ToolsConfig::default();
    config.exec.hide_paths = vec![dir.path().parent().unwrap().to_owned()];
    let ctx = self::ctx(&dir, config);
    let refused = ExecTool
        .execute(&ctx, json!({"command": "true"}))
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("cannot be hidden"),
        "{}",
        refused.message
    );
}
