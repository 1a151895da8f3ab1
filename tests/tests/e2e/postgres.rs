//! `facio serve` on PostgreSQL, as an ordinary role that owns its database: a turn
//! with a tool call through the strict `openai` client, then `facio audit verify` on
//! the same database; and PostgreSQL itself refusing to change an audit row.
//! Each test makes its own database and role through `FACIO_TEST_POSTGRES_URL`
//! (a superuser URL; tests/run.sh starts a server and sets it).

use facio_tests::model::Reply;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Env, PATIENCE, stderr, stdout};

/// A database owned by its own LOGIN role (not a superuser, not BYPASSRLS).
pub(crate) struct Database {
    admin: String,
    name: String,
    password: String,
    /// As the role, password included.
    url: String,
}

/// Where a crash test keeps its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Points `env`'s gateway at this backend: a fresh database owned by an ordinary
    /// role for PostgreSQL. `Err(())` when PostgreSQL is asked for and not configured
    /// (the test then has nothing to run; it says so).
    pub(crate) async fn apply(self, env: &mut Env) -> Result<Option<Database>, ()> {
        match self {
            Backend::Sqlite => Ok(None),
            Backend::Postgres => {
                let database = Database::create().await.ok_or(())?;
                env.set("/storage/url", json!(database.url));
                Ok(Some(database))
            }
        }
    }
}

impl Database {
    /// None (after saying so) when no PostgreSQL is configured.
    async fn create() -> Option<Database> {
        let Some(admin) = std::env::var("FACIO_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("skipped: FACIO_TEST_POSTGRES_URL is not set (tests/run.sh sets it)");
            return None;
        };
        let suffix = std::process::id().to_string()
            + &format!("{:x}", std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos());
        let name = format!("facio_e2e_{suffix}");
        let password = format!("secret{suffix}");
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        for sql in [
            format!("CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'"),
            format!("CREATE DATABASE {name} OWNER {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let (scheme, rest) = admin.split_once("://").unwrap();
        let authority = rest.split('/').next().unwrap();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let url = format!("{scheme}://{name}:{password}@{host}/{name}");
        Some(Database {
            admin,
            name,
            password,
            url,
        })
    }

    /// A connection as the role.
    pub(crate) async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    pub(crate) async fn drop_it(self) {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {}", self.name),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// `SELECT COUNT(*) …` as the role, in a transaction that set `tenant` (or none).
pub(crate) async fn count_as(
    conn: &mut sqlx::PgConnection,
    tenant: Option<&str>,
    sql: &str,
) -> i64 {
    let mut tx = conn.begin().await.unwrap();
    if let Some(tenant) = tenant {
        sqlx::query("SELECT set_config('facio.tenant', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    count
}

#[tokio::test]
async fn a_gateway_on_postgres_runs_a_tool_call_and_its_audit_chain_verifies() {
    let Some(database) = Database::create().await else {
        return;
    };
    let mut env = Env::new(vec![
        Reply::tool_call("write_file", json!({"path": "hello.txt", "content": "hi"})),
        Reply::text("Strictly valid."),
        Reply::text("Streamed and valid."),
    ])
    .await;
    env.set("/storage/url", json!(database.url));

    let migrated = env.cli(&["migrate"]).await;
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let line = stdout(&migrated);
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/postgres"
    ))
    .unwrap()
    .count();
    assert!(
        line.contains(&format!("applied {migrations} migrations")),
        "{line}"
    );
    assert!(line.contains(":***@"), "{line}");
    assert!(!line.contains(&database.password), "{line}");

    let gateway = env.serve().await;
    let store_line = gateway
        .process
        .wait_for_line(r"store: (sqlite|postgres)", PATIENCE)
        .await
        .unwrap();
    assert!(store_line.contains("postgres://"), "{store_line}");
    assert!(!store_line.contains(&database.password), "{store_line}");

    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/openai_strict.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/v1", gateway.url))
        .arg("py:postgres")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the openai client rejected a response:\n{}",
        stderr(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["content"], "Strictly valid.");
    assert_eq!(report["streamed"], "Streamed and valid.");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("hello.txt")).unwrap(),
        "hi"
    );

    // What the turn wrote is in PostgreSQL, visible to the role only with its tenant set.
    let mut conn = database.connect().await;
    let calls = "SELECT COUNT(*) FROM tool_calls WHERE status = 'succeeded'";
    assert_eq!(count_as(&mut conn, Some("default"), calls).await, 1);
    assert_eq!(count_as(&mut conn, None, calls).await, 0);
    let turns = "SELECT COUNT(*) FROM runs WHERE status = 'completed'";
    assert_eq!(count_as(&mut conn, Some("default"), turns).await, 2);

    let verified = env.cli(&["audit", "verify"]).await;
    let text = stdout(&verified);
    assert!(verified.status.success(), "{text}{}", stderr(&verified));
    assert!(text.contains("tenant default: "), "{text}");
    assert!(text.contains(", intact;"), "{text}");
    let sessions = env.cli(&["sessions", "list"]).await;
    assert!(
        stdout(&sessions).contains("py:postgres"),
        "{}",
        stdout(&sessions)
    );

    gateway.process.terminate().await.unwrap();
    gateway.process.wait_exit(PATIENCE).await.unwrap();
    assert!(
        !gateway.process.output().contains(&database.password),
        "the gateway logged the database password"
    );
    drop(conn);
    database.drop_it().await;
}

#[tokio::test]
async fn postgres_refuses_to_change_an_audit_row() {
    let Some(database) = Database::create().await else {
        return;
    };
    let mut env = Env::new(vec![]).await;
    env.set("/storage/url", json!(database.url));
    // `tenants create` audits in the default tenant's chain and the new one's.
    let created = env.cli(&["tenants", "create", "acme"]).await;
    assert!(created.status.success(), "{}", stderr(&created));

    let mut conn = database.connect().await;
    let events = "SELECT COUNT(*) FROM audit_events";
    assert_eq!(count_as(&mut conn, Some("acme"), events).await, 1);
    for sql in [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT set_config('facio.tenant', 'acme', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let refused = sqlx::query(sql).execute(&mut *tx).await.unwrap_err();
        assert!(
            refused.to_string().contains("append-only"),
            "{sql}: {refused}"
        );
        tx.rollback().await.unwrap();
    }
    assert_eq!(count_as(&mut conn, Some("acme"), events).await, 1);
    let verified = env.cli(&["audit", "verify", "--tenant", "acme"]).await;
    assert!(verified.status.success(), "{}", stdout(&verified));
    drop(conn);
    database.drop_it().await;
}

/// A run as the API shows it, asked of `gateway`.
async fn run_on(gateway: &crate::support::Gateway, run_id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/api/v1/runs/{run_id}", gateway.url))
        .bearer_auth(crate::hitl::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Gives `to` the master key of `from`: one cluster, one key (it opens the shared
/// credentials and seals the shared audit log).
fn share_master_key(from: &Env, to: &Env) {
    std::fs::create_dir_all(to.dir.path().join("data")).unwrap();
    std::fs::copy(
        from.dir.path().join("data").join("master.key"),
        to.dir.path().join("data").join("master.key"),
    )
    .unwrap();
}

/// Two nodes on one database: a node that starts (and recovers) while another is in
/// the middle of a turn must leave that turn alone, since the session's live lease is
/// the other node's. Before leases scoped recovery, the newcomer closed it as
/// `interrupted` under the running node.
#[tokio::test]
async fn a_node_starting_on_a_shared_database_leaves_a_live_nodes_turn_alone() {
    let Some(database) = Database::create().await else {
        return;
    };
    let token = crate::hitl::TOKEN;
    let mut a = Env::new(vec![
        Reply::text("answered on node a").delayed(std::time::Duration::from_secs(3)),
    ])
    .await;
    a.set("/storage/url", json!(database.url));
    a.set("/cluster", json!({"nodeId": "node-a"}));
    a.set("/api/managementToken", json!(token));
    let node_a = a.serve().await;
    let accepted: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions/shared:1/messages", node_a.url))
        .bearer_auth(token)
        .json(&json!({"content": "take your time"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = accepted["runId"].as_str().unwrap().to_owned();
    // The turn is at the model: running on node a.
    a.model.wait_for_requests(1, PATIENCE).await.unwrap();

    let mut b = Env::new(vec![]).await;
    b.set("/storage/url", json!(database.url));
    b.set("/cluster", json!({"nodeId": "node-b"}));
    b.set("/api/managementToken", json!(token));
    share_master_key(&a, &b);
    let node_b = b.serve().await;
    let run = run_on(&node_b, &run_id).await;
    assert_eq!(run["status"], "running", "node b took node a's turn: {run}");

    let done = crate::hitl::finished(&node_a, &run_id).await;
    assert_eq!(
        (done["status"].as_str(), done["content"].as_str()),
        (Some("completed"), Some("answered on node a")),
        "{done}"
    );
    drop((node_a, node_b));
    database.drop_it().await;
}

/// A node dies mid-turn (kill -9) while another node is up: once the dead node's
/// lease runs out, the next message for the session on the live node takes the
/// session over: the orphaned turn, which was waiting for the model, goes on from its
/// last recorded step there (never left `running`), and then the message is answered.
#[tokio::test]
async fn a_dead_nodes_turn_is_taken_over_by_the_next_message_on_another_node() {
    let Some(database) = Database::create().await else {
        return;
    };
    let token = crate::hitl::TOKEN;
    let shared = |env: &mut Env, node: &str| {
        env.set("/storage/url", json!(database.url));
        env.set("/cluster", json!({"nodeId": node, "leaseTtlS": 2}));
        env.set("/api/managementToken", json!(token));
    };
    let mut a = Env::new(vec![
        Reply::text("never arrives").delayed(std::time::Duration::from_secs(30)),
    ])
    .await;
    shared(&mut a, "node-a");
    let node_a = a.serve().await;
    let post = |url: String, content: &'static str| async move {
        reqwest::Client::new()
            .post(format!("{url}/api/v1/sessions/takeover:1/messages"))
            .bearer_auth(token)
            .json(&json!({"content": content}))
            .send()
            .await
            .unwrap()
    };
    let orphan: Value = post(node_a.url.clone(), "slow").await.json().await.unwrap();
    let orphan_id = orphan["runId"].as_str().unwrap().to_owned();
    a.model.wait_for_requests(1, PATIENCE).await.unwrap();

    let mut b = Env::new(vec![
        // Node a's turn, which was waiting for the model, goes on here first.
        Reply::text("continued on node b"),
        Reply::text("answered on node b"),
    ])
    .await;
    shared(&mut b, "node-b");
    share_master_key(&a, &b);
    let node_b = b.serve().await;
    node_a.process.kill().await.expect("kill -9 node a");
    drop(node_a);

    // Until node a's lease runs out, node b refuses the session; then it takes it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let accepted = loop {
        let response = post(node_b.url.clone(), "are you there?").await;
        if response.status().as_u16() == 202 {
            break response.json::<Value>().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node b never took the session: {}",
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let done = crate::hitl::finished(&node_b, accepted["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "answered on node b", "{done}");
    // The turn node a left waiting for the model went on from its last recorded step.
    let orphan = crate::hitl::finished(&node_b, &orphan_id).await;
    assert_eq!(orphan["status"], "completed", "{orphan}");
    assert_eq!(orphan["content"], "continued on node b", "{orphan}");
    let asked = b.model.requests();
    assert_eq!(asked.len(), 2, "one model call per turn on node b");
    drop(node_b);
    database.drop_it().await;
}
