//! The record of operator changes: every management write, through the API or the
//! CLI, is exactly one audit event (one per log it belongs to) naming its kind, its
//! actor, the surface and request it came through and what changed — and no secret
//! value ever reaches the record.

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Env, Gateway, http, stderr, stdout};

const TOKEN: &str = "record-test-management-token";
const SECRET: &str = "record-test-signing-secret-long-enough";
const PLANTED: [&str; 3] = [
    "planted-credential-value-1",
    "planted-credential-value-2",
    "planted-provider-key-3",
];

/// One event as the store holds it.
#[derive(Debug)]
struct Event {
    tenant: String,
    kind: String,
    actor: String,
    data: Value,
}

/// The audit log read straight from the database, from where the test last looked.
struct Trail {
    db: sqlx::SqliteConnection,
    seen: i64,
}

impl Trail {
    async fn open(env: &Env) -> Trail {
        let url = format!("sqlite://{}", env.database().display());
        let db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut trail = Trail { db, seen: 0 };
        trail.new_events().await;
        trail
    }

    /// Events written since the last look, oldest first.
    async fn new_events(&mut self) -> Vec<Event> {
        let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
            "SELECT rowid, tenant_id, kind, actor, data FROM audit_events \
             WHERE rowid > ? ORDER BY rowid",
        )
        .bind(self.seen)
        .fetch_all(&mut self.db)
        .await
        .unwrap();
        if let Some(last) = rows.last() {
            self.seen = last.0;
        }
        rows.into_iter()
            .map(|(_, tenant, kind, actor, data)| Event {
                tenant,
                kind,
                actor,
                data: serde_json::from_str(&data).unwrap(),
            })
            .collect()
    }

    /// The one event the last write made, in `tenant`'s log, of `kind`.
    async fn one(&mut self, tenant: &str, kind: &str) -> Event {
        let mut events = self.new_events().await;
        assert_eq!(events.len(), 1, "exactly one event per write: {events:#?}");
        let event = events.remove(0);
        assert_eq!(
            (event.tenant.as_str(), event.kind.as_str()),
            (tenant, kind),
            "{event:#?}"
        );
        event
    }

    /// The one event of an API write by the management token.
    async fn api(&mut self, tenant: &str, kind: &str) -> Value {
        let event = self.one(tenant, kind).await;
        assert_eq!(event.actor, "management-token", "{event:#?}");
        assert_eq!(event.data["surface"], "api", "{event:#?}");
        assert_eq!(event.data["actorTenant"], "default", "{event:#?}");
        assert!(
            event.data["requestId"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{event:#?}"
        );
        event.data
    }

    /// The one event of a CLI write, by the OS user.
    async fn cli(&mut self, tenant: &str, kind: &str) -> Value {
        let event = self.one(tenant, kind).await;
        assert!(event.actor.starts_with("cli ("), "{event:#?}");
        assert_eq!(event.data["surface"], "cli", "{event:#?}");
        event.data
    }
}

async fn call(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

/// Calls the API and insists on `status`.
async fn ok(gateway: &Gateway, method: Method, path: &str, body: Option<Value>, status: u16) {
    let (got, answer) = call(gateway, method.clone(), path, body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
}

#[tokio::test]
async fn every_operator_write_is_one_audit_event_with_its_actor_and_what_changed() {
    let mut env = Env::new(vec![
        Reply::text("One."),
        Reply::text("Two."),
        Reply::tool_call("exec", json!({"command": "echo waits for a human"})),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/auth", json!({"hs256Secret": SECRET}));
    let gateway = env.serve().await;
    for session in ["chat:1", "chat:2"] {
        let path = format!("/sessions/{session}/messages?wait=20");
        ok(
            &gateway,
            Method::POST,
            &path,
            Some(json!({"content": "Hi."})),
            200,
        )
        .await;
    }
    let mut trail = Trail::open(&env).await;

    // A tenant, created with the caller's request id: in the system's log and its own.
    let created = http()
        .post(format!("{}/api/v1/tenants", gateway.url))
        .bearer_auth(TOKEN)
        .header("X-Request-Id", "record-test-1")
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["x-request-id"], "record-test-1");
    let events = trail.new_events().await;
    let logs: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.tenant.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        logs,
        [("default", "tenant_created"), ("acme", "tenant_created")],
        "{events:#?}"
    );
    for event in &events {
        assert_eq!(event.actor, "management-token");
        assert_eq!(event.data["requestId"], "record-test-1", "{event:#?}");
        assert_eq!(event.data["tenant"], "acme");
    }

    // Its settings: which changed, before and after.
    let patch = json!({"tokensPerDay": 1000, "models": ["scripted-1"]});
    ok(&gateway, Method::PATCH, "/tenants/acme", Some(patch), 200).await;
    let data = trail.api("acme", "settings_changed").await;
    assert_eq!(data["changed"], json!(["models", "tokensPerDay"]), "{data}");
    assert_eq!(
        data["before"],
        json!({"models": null, "tokensPerDay": null})
    );
    assert_eq!(
        data["after"],
        json!({"models": ["scripted-1"], "tokensPerDay": 1000})
    );
    // The same settings again change nothing and record nothing.
    let same = json!({"tokensPerDay": 1000});
    ok(&gateway, Method::PATCH, "/tenants/acme", Some(same), 200).await;
    assert!(trail.new_events().await.is_empty());

    let patch = json!({"tenant": {"tokensPerRun": 5000}});
    ok(&gateway, Method::PATCH, "/settings", Some(patch), 200).await;
    let data = trail.api("default", "settings_changed").await;
    assert_eq!(data["tenant"]["changed"], json!(["tokensPerRun"]), "{data}");
    assert_eq!(data["tenant"]["after"]["tokensPerRun"], 5000);

    // Policy: a rule added and removed, all cleared, the settings switched.
    let rule = json!({"action": "allow", "tool": "exec", "params": {"command": "make test*"}});
    ok(&gateway, Method::POST, "/policy", Some(rule.clone()), 200).await;
    let data = trail.api("default", "policy_changed").await;
    assert_eq!(
        (&data["change"], &data["rule"]["tool"]),
        (&json!("rule_added"), &json!("exec"))
    );
    ok(&gateway, Method::DELETE, "/policy", Some(rule.clone()), 200).await;
    let data = trail.api("default", "policy_changed").await;
    assert_eq!(data["change"], "rule_removed");
    ok(&gateway, Method::POST, "/policy", Some(rule), 200).await;
    trail.api("default", "policy_changed").await;
    ok(&gateway, Method::DELETE, "/policy/all", None, 200).await;
    let data = trail.api("default", "policy_changed").await;
    assert_eq!(data["change"], "rules_cleared");
    assert_eq!(data["removed"].as_array().map(Vec::len), Some(1), "{data}");

    let refused = json!({"reviewTimeoutS": 0});
    ok(
        &gateway,
        Method::PATCH,
        "/policy/settings",
        Some(refused),
        422,
    )
    .await;
    assert!(
        trail.new_events().await.is_empty(),
        "a refused change records nothing"
    );
    let off = json!({"enabled": false, "reviewTimeoutS": 600});
    ok(&gateway, Method::PATCH, "/policy/settings", Some(off), 200).await;
    let data = trail.api("default", "policy_changed").await;
    assert_eq!(
        (&data["settingsBefore"], &data["settingsAfter"]),
        (
            &json!({"enabled": true, "skipCron": false, "reviewTimeoutS": null}),
            &json!({"enabled": false, "skipCron": false, "reviewTimeoutS": 600})
        ),
        "{data}"
    );
    let (_, policy) = call(&gateway, Method::GET, "/policy", None).await;
    assert_eq!(policy["reviewTimeoutS"], 600, "{policy}");
    let on = json!({"enabled": true});
    ok(&gateway, Method::PATCH, "/policy/settings", Some(on), 200).await;
    trail.api("default", "policy_changed").await;

    // Credentials: by key, never by value.
    let new = json!({"key": "DEPLOY_TOKEN", "value": PLANTED[0]});
    ok(&gateway, Method::POST, "/credentials", Some(new), 201).await;
    let data = trail.api("default", "credential_changed").await;
    assert_eq!(
        (&data["key"], &data["action"]),
        (&json!("DEPLOY_TOKEN"), &json!("created"))
    );
    let replaced = json!({"value": PLANTED[1]});
    ok(
        &gateway,
        Method::PUT,
        "/credentials/DEPLOY_TOKEN",
        Some(replaced),
        200,
    )
    .await;
    assert_eq!(
        trail.api("default", "credential_changed").await["action"],
        "updated"
    );
    let exposed = json!({"exposed": true});
    ok(
        &gateway,
        Method::PUT,
        "/credentials/DEPLOY_TOKEN/exposed",
        Some(exposed),
        200,
    )
    .await;
    let data = trail.api("default", "credential_changed").await;
    assert_eq!(
        (&data["action"], &data["exposed"]),
        (&json!("exposed"), &json!(true))
    );
    ok(
        &gateway,
        Method::DELETE,
        "/credentials/DEPLOY_TOKEN",
        None,
        204,
    )
    .await;
    assert_eq!(
        trail.api("default", "credential_changed").await["action"],
        "deleted"
    );
    ok(
        &gateway,
        Method::DELETE,
        "/credentials/DEPLOY_TOKEN",
        None,
        404,
    )
    .await;
    assert!(
        trail.new_events().await.is_empty(),
        "nothing deleted, nothing recorded"
    );
    let provider = json!({"name": "scripted", "apiKey": PLANTED[2]});
    ok(
        &gateway,
        Method::POST,
        "/credentials/providers",
        Some(provider),
        201,
    )
    .await;
    trail.api("default", "credential_changed").await;
    ok(
        &gateway,
        Method::DELETE,
        "/credentials/providers/scripted",
        None,
        204,
    )
    .await;
    trail.api("default", "credential_changed").await;

    // Skills, scripts and other files of the workspace.
    let skill = "/workspace/file?path=skills/release/SKILL.md";
    let content = json!({"content": "# Release\nTag, then push.\n"});
    ok(&gateway, Method::PUT, skill, Some(content.clone()), 200).await;
    let data = trail.api("default", "workspace_changed").await;
    assert_eq!(
        (&data["what"], &data["action"]),
        (&json!("skill"), &json!("created")),
        "{data}"
    );
    ok(&gateway, Method::PUT, skill, Some(content.clone()), 200).await;
    assert_eq!(
        trail.api("default", "workspace_changed").await["action"],
        "updated"
    );
    let script = "/workspace/file?path=scripts/deploy.sh";
    ok(&gateway, Method::PUT, script, Some(content), 200).await;
    assert_eq!(
        trail.api("default", "workspace_changed").await["what"],
        "script"
    );
    ok(&gateway, Method::DELETE, skill, None, 204).await;
    let data = trail.api("default", "workspace_changed").await;
    assert_eq!(
        (&data["what"], &data["action"]),
        (&json!("skill"), &json!("deleted"))
    );

    // Sessions: started afresh by the chat command, or deleted.
    let new = json!({"sessionKey": "chat:1"});
    ok(&gateway, Method::POST, "/commands/new", Some(new), 200).await;
    let data = trail.api("default", "session_deleted").await;
    assert_eq!(
        (&data["sessionKey"], &data["command"], &data["reset"]),
        (&json!("chat:1"), &json!("new"), &json!(true)),
        "{data}"
    );
    ok(&gateway, Method::DELETE, "/sessions/chat:2", None, 204).await;
    let data = trail.api("default", "session_deleted").await;
    assert_eq!(
        (&data["sessionKey"], &data["reset"]),
        (&json!("chat:2"), &json!(false))
    );

    // A session stopped while its turn waits for a human: the stop is one event (the
    // run's own events, its review withdrawn, are the run's, by the agent or system).
    let path = "/sessions/chat:3/messages?wait=20";
    let (status, run) = call(
        &gateway,
        Method::POST,
        path,
        Some(json!({"content": "Run it."})),
    )
    .await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("awaiting_review")),
        "{run}"
    );
    trail.new_events().await;
    let stop = json!({"sessionKey": "chat:3"});
    let (status, stopped) = call(&gateway, Method::POST, "/commands/stop", Some(stop)).await;
    assert_eq!(
        (status, &stopped["stopped"]),
        (200, &json!(true)),
        "{stopped}"
    );
    // Once the run has ended, its last events are written too.
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let ended = crate::hitl::finished_with(&gateway, TOKEN, &run_id).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    // The withdrawn call's own record (written as the run winds down) comes last.
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    while !events
        .iter()
        .any(|e: &Event| e.kind == "tool_call" && e.data["status"] == "cancelled")
    {
        assert!(tokio::time::Instant::now() < deadline, "{events:#?}");
        events.extend(trail.new_events().await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let by_operator: Vec<&Event> = events
        .iter()
        .filter(|e| e.actor == "management-token")
        .collect();
    assert_eq!(by_operator.len(), 1, "{events:#?}");
    assert_eq!(by_operator[0].kind, "session_stopped");
    assert_eq!(by_operator[0].data["sessionKey"], "chat:3");
    assert_eq!(by_operator[0].data["surface"], "api");

    // Tokens: issued by the CLI, revoked by the CLI and the API.
    let issue = |tenant: &'static str| {
        let env = &env;
        async move {
            let out = env
                .cli(&[
                    "tokens", "create", "--tenant", tenant, "--role", "reviewer", "--ttl", "1h",
                ])
                .await;
            assert!(out.status.success(), "{}", stderr(&out));
        }
    };
    issue("acme").await;
    let data = trail.cli("acme", "token_issued").await;
    assert_eq!(
        (&data["tenant"], &data["roles"]),
        (&json!("acme"), &json!(["reviewer"])),
        "{data}"
    );
    assert!(
        data["expiresAt"].is_string() && data["subject"].is_string(),
        "{data}"
    );
    let jti = data["jti"].as_str().unwrap().to_owned();
    let revoked = env
        .cli(&["tokens", "revoke", &jti, "--tenant", "acme"])
        .await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(
        trail.cli("acme", "token_revoked").await["jti"],
        jti.as_str()
    );
    let again = env
        .cli(&["tokens", "revoke", &jti, "--tenant", "acme"])
        .await;
    assert!(
        stdout(&again).contains("already revoked"),
        "{}",
        stdout(&again)
    );
    assert!(trail.new_events().await.is_empty());
    issue("default").await;
    let jti = trail.cli("default", "token_issued").await["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &gateway,
        Method::DELETE,
        &format!("/tokens/{jti}"),
        None,
        200,
    )
    .await;
    let data = trail.api("default", "token_revoked").await;
    assert_eq!(
        (&data["jti"], &data["tenant"]),
        (&json!(jti), &json!("default"))
    );

    // Tenants from the CLI.
    let created = env.cli(&["tenants", "create", "beta"]).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let events = trail.new_events().await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| e.kind == "tenant_created" && e.actor.starts_with("cli ("))
    );
    let set = env
        .cli(&["tenants", "set", "beta", "--tokens-per-day", "5"])
        .await;
    assert!(set.status.success(), "{}", stderr(&set));
    let data = trail.cli("beta", "settings_changed").await;
    assert_eq!(
        (&data["changed"], &data["after"]),
        (&json!(["tokensPerDay"]), &json!({"tokensPerDay": 5}))
    );

    // No secret value anywhere in the record, and the record verifies.
    let everything: Vec<(String,)> = sqlx::query_as("SELECT data FROM audit_events")
        .fetch_all(&mut trail.db)
        .await
        .unwrap();
    for (data,) in &everything {
        for planted in PLANTED {
            assert!(
                !data.contains(planted),
                "a secret value in the record: {data}"
            );
        }
    }
    drop(gateway);
    let verify = env.cli(&["audit", "verify"]).await;
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
}
