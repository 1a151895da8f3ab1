//! The audit log: every turn leaves a hash-chained trail that `facio audit verify`
//! checks, and any altered row is named.

use facio_tests::model::Reply;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Env, stderr, stdout};

#[tokio::test]
async fn the_audit_chain_verifies_and_a_tampered_row_is_named() {
    let env = Env::new(vec![
        Reply::tool_call("list_dir", json!({})),
        Reply::text("Listed."),
        Reply::text("Second turn."),
    ])
    .await;
    assert!(
        env.cli(&["agent", "-m", "List the workspace"])
            .await
            .status
            .success()
    );
    assert!(env.cli(&["agent", "-m", "Again"]).await.status.success());

    let verify = env.cli(&["audit", "verify"]).await;
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    assert!(stdout(&verify).contains(", intact;"), "{}", stdout(&verify));
    // Sealed under the node's key: a checkpoint per finished turn, and the newest
    // one is printed to keep; verifying against it passes while nothing changed.
    let line = stdout(&verify);
    let anchor = line
        .split("newest checkpoint ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("an anchor: {line}"))
        .to_owned();
    let anchored = env
        .cli(&[
            "audit", "verify", "--tenant", "default", "--anchor", &anchor,
        ])
        .await;
    assert!(anchored.status.success(), "{}", stdout(&anchored));
    let wrong = env
        .cli(&["audit", "verify", "--tenant", "default", "--anchor", "1:00"])
        .await;
    assert_eq!(wrong.status.code(), Some(1), "{}", stdout(&wrong));
    assert!(stdout(&wrong).contains("rolled back"), "{}", stdout(&wrong));

    // An export an auditor checks alone: no config, no database.
    let file = env.dir.path().join("audit.jsonl");
    let exported = env
        .cli(&["audit", "export", "--out", file.to_str().unwrap()])
        .await;
    assert!(exported.status.success(), "{}", stderr(&exported));
    let offline = tokio::process::Command::new(crate::support::facio_bin())
        .args(["audit", "verify", "--file", file.to_str().unwrap()])
        .current_dir(env.dir.path())
        .output()
        .await
        .unwrap();
    assert!(offline.status.success(), "{}", stdout(&offline));
    assert!(
        stdout(&offline).contains("each chain from its start"),
        "{}",
        stdout(&offline)
    );
    // The README's few lines of Python check the same file.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let audit_section = readme
        .split("\n## Audit\n")
        .nth(1)
        .expect("the README has an Audit section");
    let script = audit_section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the check in Python");
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let checked = tokio::process::Command::new(python)
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert_eq!(stdout(&checked).trim(), "intact");
    let text = std::fs::read_to_string(&file).unwrap();
    let forged = text.replacen("\"actor\":\"agent\"", "\"actor\":\"agenT\"", 1);
    assert_ne!(forged, text, "the export names the agent as actor");
    std::fs::write(&file, forged).unwrap();
    let offline = tokio::process::Command::new(crate::support::facio_bin())
        .args(["audit", "verify", "--file", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!offline.status.success());
    assert!(
        stdout(&offline).contains("broken at line"),
        "{}",
        stdout(&offline)
    );

    // Search from the command line: kinds, one page at a time.
    let listed = env
        .cli(&[
            "audit",
            "list",
            "--type",
            "turn_started,turn_finished",
            "--limit",
            "2",
        ])
        .await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let lines: Vec<Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&listed));
    assert!(
        lines
            .iter()
            .all(|e| e["kind"] == "turn_started" || e["kind"] == "turn_finished")
    );
    let after = lines[1]["seq"].as_i64().unwrap().to_string();
    let next = env
        .cli(&[
            "audit",
            "list",
            "--type",
            "turn_started,turn_finished",
            "--after",
            &after,
        ])
        .await;
    assert_eq!(stdout(&next).lines().count(), 2, "{}", stdout(&next));

    // A typo verifies nothing: an unknown tenant is an error, exit 2.
    let typo = env
        .cli(&["audit", "verify", "--tenant", "no-such-tenant"])
        .await;
    assert_eq!(typo.status.code(), Some(2), "{}", stdout(&typo));
    assert!(
        stderr(&typo).contains("no such tenant no-such-tenant"),
        "{}",
        stderr(&typo)
    );
    assert!(!stdout(&typo).contains("intact"));

    let url = format!("sqlite://{}", env.database().display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let kinds: Vec<(String,)> = sqlx::query_as("SELECT kind FROM audit_events ORDER BY seq")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let kinds: Vec<String> = kinds.into_iter().map(|(k,)| k).collect();
    for expected in ["turn_started", "model_call", "tool_call", "turn_finished"] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected} event in {kinds:?}"
        );
    }

    // The database itself refuses edits to the log.
    let refused = sqlx::query("UPDATE audit_events SET data = '{}' WHERE seq = 3")
        .execute(&mut db)
        .await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    let refused = sqlx::query("DELETE FROM audit_events WHERE seq = 3")
        .execute(&mut db)
        .await;
    assert!(refused.is_err());

    // Someone with file access drops the guard and edits a row.
    let trigger: (String,) = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events' AND name LIKE '%no_update%'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {}", trigger.0)))
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET data = json_set(data, '$.forged', 1) WHERE seq = 3")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    let verify = env.cli(&["audit", "verify"]).await;
    assert!(
        !verify.status.success(),
        "a tampered chain verified: {}",
        stdout(&verify)
    );
    assert!(
        stdout(&verify).contains("broken at event 3"),
        "{}",
        stdout(&verify)
    );
}

#[tokio::test]
async fn read_logs_shows_the_agent_its_own_tenants_trail_and_nothing_of_another() {
    const ACME_SECRET_WORD: &str = "acme-only-marker-7731";
    const OTHER_SESSION_WORD: &str = "other-session-marker-5512";
    let mut env = Env::new(vec![
        Reply::text("acme's answer"),
        Reply::text("the other session's answer"),
        Reply::tool_call("read_logs", json!({"level": "warn"})),
        Reply::text("Read my trail."),
    ])
    .await;
    env.set("/api/managementToken", json!("read-logs-token"));
    env.set(
        "/auth",
        json!({"hs256Secret": "read-logs-secret-that-is-long-enough"}),
    );
    assert!(
        env.cli(&["tenants", "create", "acme"])
            .await
            .status
            .success()
    );
    let acme = crate::support::token(&env, "acme", "client").await;
    let gateway = env.serve().await;
    let post_to = |session: &'static str, token: String, body: Value| {
        let url = format!("{}/api/v1/sessions/{session}/messages?wait=20", gateway.url);
        async move {
            crate::support::http()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let post = |token: String, body: Value| post_to("logs:one", token, body);
    let acme_run = post(acme, json!({"content": ACME_SECRET_WORD})).await;
    assert_eq!(acme_run.status(), 200);
    // Another session of the same tenant: a colleague's conversation.
    let other = post_to(
        "logs:two",
        "read-logs-token".into(),
        json!({"content": OTHER_SESSION_WORD}),
    )
    .await;
    assert_eq!(other.status(), 200);
    // A warning about the default tenant: a request that tried to choose its origin.
    let refused = post(
        "read-logs-token".into(),
        json!({"content": "x", "origin": "cron"}),
    )
    .await;
    assert_eq!(refused.status(), 422);
    let run = post(
        "read-logs-token".into(),
        json!({"content": "What happened?"}),
    )
    .await;
    let run: Value = run.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    let results = crate::support::tool_results(env.model.requests().last().unwrap());
    let trail = &results.last().unwrap().1;
    assert!(
        trail.contains("audit #") && trail.contains("turn_started"),
        "{trail}"
    );
    assert!(trail.contains("tried to choose its own origin"), "{trail}");
    assert!(
        !trail.contains(ACME_SECRET_WORD) && !trail.contains("acme's answer"),
        "nothing of the other tenant's turn: {trail}"
    );
    assert!(
        !trail.contains(OTHER_SESSION_WORD),
        "nothing of another session of the tenant: {trail}"
    );
}
