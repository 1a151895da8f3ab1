//! Cluster mode: several real `facio serve` processes sharing one PostgreSQL database,
//! one Redis and one scripted model. Any node answers any request; a session's turns
//! run on the node that owns it, wherever they arrive; a review is decided on any node
//! and resumes its run once; a dead or paused owner loses its sessions to a live node
//! without losing or doubling anything.
//! Needs `FACIO_TEST_POSTGRES_URL` and `FACIO_TEST_REDIS_URL` (tests/run.sh sets both);
//! each test skips, saying so, without them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use facio_tests::model::{Reply, ScriptedModel};
use facio_tests::process::FacioProcess;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::postgres::{Backend, Database};
use crate::support::{Env, PATIENCE, facio_bin, http, path_str, stderr, stdout};

const TOKEN: &str = "mgmt-cluster-token";
const INTERNAL_TOKEN: &str = "cluster-internal-secret";
const NODE_HEADER: &str = "x-facio-node";
/// How often a test looks again at something it waits for.
const POLL: Duration = Duration::from_millis(100);
/// How long after a node's lease runs out the others may take to notice.
const GRACE: Duration = Duration::from_secs(8);
/// How long a node that listens may take to appear in every node's view.
const JOIN: Duration = Duration::from_secs(10);

// --- the harness ---------------------------------------------------------------

/// One `facio serve` of a cluster.
struct Node {
    id: String,
    config: PathBuf,
    /// None while the node is down (killed and not restarted).
    process: Option<FacioProcess>,
    /// `http://127.0.0.1:PORT` of its latest start.
    url: String,
    /// What earlier runs of the node printed (before a kill or restart).
    past_output: Vec<String>,
    /// Stopped with SIGSTOP and not yet continued.
    paused: bool,
}

impl Node {
    fn process(&self) -> &FacioProcess {
        self.process
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is down", self.id))
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.process().pid().expect("the node has a pid");
        let pid = libc::pid_t::try_from(pid).expect("pid in range");
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            sent,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Everything this node printed, over all its runs.
    fn log(&self) -> String {
        let mut runs = self.past_output.clone();
        if let Some(process) = &self.process {
            runs.push(process.output());
        }
        runs.iter()
            .enumerate()
            .map(|(i, text)| format!("--- run {} ---\n{text}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// n nodes on one fresh PostgreSQL database, one Redis database and one scripted
/// model, sharing the management token, the internal token, the master key (it seals
/// the shared audit log) and the workspace (so a command's side effect lands in one
/// file, whichever node runs it). Each node has its own config file and data dir.
/// When a test fails, every node's log is printed and the temp dir is kept.
struct Cluster {
    dir: Option<tempfile::TempDir>,
    model: ScriptedModel,
    database: Option<Database>,
    master_key: String,
    nodes: Vec<Node>,
    lease_ttl: Duration,
}

impl Cluster {
    /// Starts `n` nodes (`redis_db` keeps this test's nodes apart from other tests'
    /// in a shared Redis) and waits until every node lists every node. None, after
    /// saying so, when PostgreSQL or Redis is not configured.
    async fn start(
        n: usize,
        lease_ttl_s: u64,
        redis_db: u8,
        model: ScriptedModel,
    ) -> Option<Cluster> {
        Cluster::start_with(n, lease_ttl_s, redis_db, model, json!({})).await
    }

    /// As [`Cluster::start`], with `extra`'s top-level keys added to every node's
    /// config (e.g. `telemetry`).
    async fn start_with(
        n: usize,
        lease_ttl_s: u64,
        redis_db: u8,
        model: ScriptedModel,
        extra: Value,
    ) -> Option<Cluster> {
        let Some(redis) = std::env::var("FACIO_TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("skipped: FACIO_TEST_REDIS_URL is not set (tests/run.sh sets it)");
            return None;
        };
        // `postgres::Database` makes its databases only through `Backend::apply`,
        // which writes the URL into an `Env`'s config; `start_on` reads it back.
        Cluster::start_on(
            n,
            lease_ttl_s,
            redis_database(&redis, redis_db),
            model,
            &extra,
        )
        .await
    }

    /// As [`Cluster::start`], against the Redis at `redis_url`.
    async fn start_on(
        n: usize,
        lease_ttl_s: u64,
        redis_url: String,
        model: ScriptedModel,
        extra: &Value,
    ) -> Option<Cluster> {
        let mut scratch = Env::new(vec![]).await;
        let database = Backend::Postgres.apply(&mut scratch).await.ok()??;
        let database_url = scratch.config["storage"]["url"]
            .as_str()
            .expect("the database URL")
            .to_owned();
        let suffix = unique_suffix();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("workspace")).expect("workspace dir");
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("node-{}-{suffix}", (b'a' + i as u8) as char);
            let home = dir.path().join(&id);
            std::fs::create_dir_all(&home).expect("node dir");
            let config = json!({
                "agents": {"defaults": {
                    "model": "scripted-1",
                    "provider": "scripted",
                    "maxToolIterations": 10,
                    "requestTimeoutS": 20,
                    "maxRetries": 2
                }},
                "providers": {"scripted": {"apiKey": "sk-test-not-secret", "apiBase": model.base_url()}},
                "storage": {"dataDir": home.join("data"), "url": database_url},
                "api": {"host": "127.0.0.1", "port": 0, "managementToken": TOKEN},
                "cluster": {
                    "redisUrl": redis_url,
                    "nodeId": id,
                    "leaseTtlS": lease_ttl_s,
                    "internalToken": INTERNAL_TOKEN
                },
                "limits": {"tenantRequestsPerMinute": 100_000_000, "tokenRequestsPerMinute": 100_000_000},
                "logging": {"level": "info"}
            });
            let mut config = config;
            if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
                config.extend(extra.clone());
            }
            let path = home.join("config.json");
            std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap())
                .expect("write a node's config");
            nodes.push(Node {
                id,
                config: path,
                process: None,
                url: String::new(),
                past_output: Vec::new(),
                paused: false,
            });
        }
        let mut cluster = Cluster {
            dir: Some(dir),
            model,
            database: Some(database),
            master_key: master_key(),
            nodes,
            lease_ttl: Duration::from_secs(lease_ttl_s),
        };
        // The first node migrates the fresh database alone; the others then start
        // together.
        cluster.boot(0).await;
        for i in 1..n {
            cluster.nodes[i].process = Some(cluster.spawn(i));
        }
        for i in 1..n {
            cluster.nodes[i].url = listening_url(cluster.nodes[i].process()).await;
        }
        let all: Vec<usize> = (0..n).collect();
        cluster.wait_for_members(&all, &all, JOIN).await;
        Some(cluster)
    }

    fn workspace(&self) -> PathBuf {
        self.root().join("workspace")
    }

    fn root(&self) -> &Path {
        self.dir.as_ref().expect("the cluster's dir").path()
    }

    fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    fn url(&self, i: usize) -> &str {
        &self.nodes[i].url
    }

    fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// The index of the node with this id.
    fn index_of(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("{id} is not a node of this cluster"))
    }

    fn spawn(&self, i: usize) -> FacioProcess {
        let node = &self.nodes[i];
        let workspace = self.workspace();
        FacioProcess::spawn(
            facio_bin(),
            &[
                "serve",
                "--config",
                path_str(&node.config),
                "--workspace",
                path_str(&workspace),
            ],
            &[("FACIO_MASTER_KEY", &self.master_key)],
            self.root(),
        )
        .expect("spawn facio serve")
    }

    /// Starts node `i` and waits until it listens.
    async fn boot(&mut self, i: usize) {
        self.nodes[i].process = Some(self.spawn(i));
        self.nodes[i].url = listening_url(self.nodes[i].process()).await;
    }

    /// kill -9 node `i` and reap it.
    async fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let process = node.process.take().expect("the node is up");
        process.kill().await.expect("kill -9 the node");
        node.past_output.push(process.output());
    }

    /// Starts node `i` again with the same config (same id) after a kill, and waits
    /// until every live node lists it.
    async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].process.is_none(), "kill the node first");
        self.boot(i).await;
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| self.nodes[j].process.is_some())
            .collect();
        self.wait_for_members(&live, &live, JOIN).await;
    }

    /// SIGSTOP: the node freezes mid-whatever, its leases unrenewed.
    fn pause(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGSTOP);
        self.nodes[i].paused = true;
    }

    /// SIGCONT: the node carries on as if nothing happened.
    fn resume(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGCONT);
        self.nodes[i].paused = false;
    }

    /// `GET /api/v1/cluster` on node `i`.
    async fn view(&self, i: usize) -> Answer {
        call(self.url(i), reqwest::Method::GET, "/api/v1/cluster", None).await
    }

    /// The ids `GET /api/v1/cluster` on node `i` lists; None while it cannot answer.
    async fn members(&self, i: usize) -> Option<BTreeSet<String>> {
        let answer = try_call(
            self.url(i),
            reqwest::Method::GET,
            "/api/v1/cluster",
            None,
            &[],
        )
        .await?;
        (answer.status == 200).then(|| {
            answer.body["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["id"].as_str().map(str::to_owned))
                .collect()
        })
    }

    /// Waits until every node of `askers` lists every node of `expected` (other
    /// tests' nodes may be listed too, should Redis be shared after all).
    async fn wait_for_members(&self, askers: &[usize], expected: &[usize], within: Duration) {
        let want: BTreeSet<String> = expected.iter().map(|&j| self.id(j).to_owned()).collect();
        for &i in askers {
            let deadline = Deadline::new(format!("node {} lists {want:?}", self.id(i)), within);
            loop {
                let seen = self.members(i).await;
                if seen.as_ref().is_some_and(|s| want.is_subset(s)) {
                    break;
                }
                deadline.tick(&seen).await;
            }
        }
    }

    /// Waits until every node of `askers` no longer lists node `gone`.
    async fn wait_until_gone(&self, askers: &[usize], gone: usize, within: Duration) {
        let id = self.id(gone).to_owned();
        for &i in askers {
            let deadline = Deadline::new(format!("node {} drops {id}", self.id(i)), within);
            loop {
                let seen = self.members(i).await;
                if seen.as_ref().is_some_and(|s| !s.contains(&id)) {
                    break;
                }
                deadline.tick(&seen).await;
            }
        }
    }

    /// `facio ARGS` with node `i`'s config, the shared workspace and master key.
    async fn cli(&self, i: usize, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(facio_bin());
        command
            .args(args)
            .arg("--config")
            .arg(&self.nodes[i].config)
            .arg("--workspace")
            .arg(self.workspace())
            .env("FACIO_MASTER_KEY", &self.master_key)
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("facio CLI finished in time")
            .expect("run facio CLI")
    }

    /// `facio audit verify` against the shared database passes.
    async fn assert_audit_verifies(&self, i: usize) {
        let verified = self.cli(i, &["audit", "verify"]).await;
        let text = stdout(&verified);
        assert!(
            verified.status.success(),
            "audit verify failed:\n{text}{}",
            stderr(&verified)
        );
        assert!(text.contains(", intact;"), "{text}");
    }

    /// Polls `GET /api/v1/runs/{id}` (on running nodes in turn) until the run has
    /// ended.
    async fn run_ended(&self, run_id: &str) -> Value {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| self.nodes[j].process.is_some() && !self.nodes[j].paused)
            .collect();
        let deadline = Deadline::new(format!("run {run_id} ends"), PATIENCE);
        let mut turn = 0;
        loop {
            let i = live[turn % live.len()];
            turn += 1;
            let path = format!("/api/v1/runs/{run_id}");
            let answer = try_call(self.url(i), reqwest::Method::GET, &path, None, &[]).await;
            if let Some(answer) = &answer
                && answer.status == 200
                && !matches!(
                    answer.body["status"].as_str(),
                    Some("queued" | "running" | "awaiting_review")
                )
            {
                return answer.body.clone();
            }
            deadline.tick(&answer.map(|a| a.body)).await;
        }
    }

    /// Stops every node and drops the database.
    async fn finish(mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].process.is_some() {
                // A paused node must be able to die.
                self.resume(i);
                self.kill(i).await;
            }
        }
        if let Some(database) = self.database.take() {
            database.drop_it().await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Some(dir) = self.dir.take() else { return };
        let root = dir.keep();
        eprintln!(
            "cluster test failed; its files and node logs are kept in {}",
            root.display()
        );
        for node in &self.nodes {
            let log = node.log();
            let path = root.join(format!("{}.log", node.id));
            let _ = std::fs::write(&path, &log);
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(150)..];
            eprintln!(
                "===== {} ({}; last {} lines, all in {}) =====\n{}",
                node.id,
                node.url,
                tail.len(),
                path.display(),
                tail.join("\n")
            );
        }
    }
}

/// What a node answered: status, the `X-Facio-Node` header, the JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    node: Option<String>,
    body: Value,
}

/// Calls `base + path` with the management token; panics when the node cannot be
/// reached.
async fn call(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
    try_call(base, method.clone(), path, body, &[])
        .await
        .unwrap_or_else(|| panic!("{method} {base}{path}: no answer"))
}

/// [`call`] with extra headers; None when the node does not answer in time.
async fn try_call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Option<Answer> {
    let mut request = http()
        .request(method, format!("{base}{path}"))
        .timeout(Duration::from_secs(30))
        .bearer_auth(TOKEN);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let node = node_header(response.headers());
    let body = response.json().await.unwrap_or(Value::Null);
    Some(Answer { status, node, body })
}

fn node_header(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// One non-streamed OpenAI turn through `base` for `session`.
async fn chat(base: &str, session: &str, content: &str) -> Answer {
    let body = json!({"model": "scripted-1", "messages": [{"role": "user", "content": content}]});
    let response = http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("X-Session-Key", session)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}/v1/chat/completions for {session}: {e}"));
    let status = response.status().as_u16();
    let node = node_header(response.headers());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, node, body }
}

/// The same turn through the official `openai` Python client (the session by a
/// default header), in strict validation mode; returns (content, X-Facio-Node).
async fn chat_with_python(base: &str, session: &str, content: &str) -> (String, Option<String>) {
    const SCRIPT: &str = r#"
import json, sys
import openai
base, token, session, content = sys.argv[1:5]
client = openai.OpenAI(base_url=base, api_key=token, max_retries=0,
                       default_headers={"X-Session-Key": session},
                       _strict_response_validation=True)
raw = client.chat.completions.with_raw_response.create(
    model="scripted-1", messages=[{"role": "user", "content": content}])
completion = raw.parse()
print(json.dumps({"content": completion.choices[0].message.content,
                  "node": raw.headers.get("x-facio-node"),
                  "session": raw.headers.get("x-session-key")}))
"#;
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = tokio::process::Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(format!("{base}/v1"))
        .arg(TOKEN)
        .arg(session)
        .arg(content)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the Python openai client");
    assert!(
        output.status.success(),
        "the openai client failed for {session} (install it with `pip install -r tests/python/requirements.txt`):\n{}",
        stderr(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the client's report");
    assert_eq!(report["session"], session, "{report}");
    (
        report["content"].as_str().unwrap_or_default().to_owned(),
        report["node"].as_str().map(str::to_owned),
    )
}

/// A session's history as `GET /api/v1/sessions/{key}` shows it: (seq, role, content).
async fn history(base: &str, session: &str) -> Vec<(i64, String, Option<String>)> {
    let answer = call(
        base,
        reqwest::Method::GET,
        &format!("/api/v1/sessions/{session}"),
        None,
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "history of {session}: {:?}",
        answer.body
    );
    answer.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().expect("seq"),
                m["message"]["role"].as_str().unwrap_or_default().to_owned(),
                m["message"]["content"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The (role, content) of a history's user and assistant text messages, in order
/// (an assistant message that only calls tools has no text).
fn conversation(history: &[(i64, String, Option<String>)]) -> Vec<(String, String)> {
    history
        .iter()
        .filter(|(_, role, content)| {
            (role == "user" || role == "assistant")
                && content.as_deref().is_some_and(|c| !c.is_empty())
        })
        .map(|(_, role, content)| (role.clone(), content.clone().unwrap_or_default()))
        .collect()
}

fn assert_seqs_increase(session: &str, history: &[(i64, String, Option<String>)]) {
    let seqs: Vec<i64> = history.iter().map(|(seq, ..)| *seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "{session}: positions repeat or go back: {seqs:?}"
    );
}

/// Polls something until it holds; panics, saying what was awaited and what was last
/// seen, once `within` has passed.
struct Deadline {
    what: String,
    at: Instant,
}

impl Deadline {
    fn new(what: impl Into<String>, within: Duration) -> Deadline {
        Deadline {
            what: what.into(),
            at: Instant::now() + within,
        }
    }

    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    async fn tick(&self, last_seen: &dyn std::fmt::Debug) {
        assert!(
            !self.passed(),
            "gave up waiting until {}; last seen: {last_seen:?}",
            self.what
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Reads the `listening on http://ADDR` line of a starting node.
async fn listening_url(process: &FacioProcess) -> String {
    let line = process
        .wait_for_line(r"listening on http://", PATIENCE)
        .await
        .expect("facio serve announced its address");
    line.split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address in the listening line")
        .to_owned()
}

/// `redis://host:port` with its database number set to `db`.
fn redis_database(url: &str, db: u8) -> String {
    let (scheme, rest) = url.split_once("://").expect("a Redis URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{db}")
}

/// Unique enough across tests and runs sharing one Redis.
fn unique_suffix() -> String {
    format!(
        "{}{:x}",
        std::process::id(),
        std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos() & 0xff_ffff_ffff
    )
}

/// 32 random bytes as 64 hex characters, for `FACIO_MASTER_KEY`.
fn master_key() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A small xorshift generator: which node a request goes to. Seeded from the clock
/// and printed, so a failing order can be replayed by hand.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos() as u64 | 1;
        eprintln!("node order seed: {seed}");
        Dice(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The lines of the shared counter file (none when it does not exist).
fn counter_lines(cluster: &Cluster, name: &str) -> Vec<String> {
    std::fs::read_to_string(cluster.workspace().join(name))
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The kinds of a run's audit events, asked of node `i`.
async fn audit_kinds(cluster: &Cluster, i: usize, run_id: &str) -> Vec<String> {
    let answer = call(
        cluster.url(i),
        reqwest::Method::GET,
        &format!("/api/v1/audit?run={run_id}"),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// Posts a message through node `i` and waits (`?wait=20`) for the run to end or stop
/// at a review.
async fn ask(cluster: &Cluster, i: usize, session: &str, content: &str) -> Answer {
    call(
        cluster.url(i),
        reqwest::Method::POST,
        &format!("/api/v1/sessions/{session}/messages?wait=20"),
        Some(json!({"content": content})),
    )
    .await
}

// --- the tests -----------------------------------------------------------------

const SESSIONS: usize = 300;
const TURNS: usize = 3;

fn turn_text(session: usize, turn: usize) -> String {
    format!("session {session} turn {turn}")
}

#[tokio::test]
async fn three_nodes_route_every_session_to_its_owner() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(30))
        .await
        .expect("start the scripted model");
    let Some(cluster) = Cluster::start(3, 3, 1, model).await else {
        return;
    };
    let ids = cluster.ids();

    // Every node knows the whole cluster and itself in it.
    for i in 0..3 {
        let view = cluster.view(i).await;
        assert_eq!(view.status, 200, "{:?}", view.body);
        assert_eq!(view.node.as_deref(), Some(cluster.id(i)), "X-Facio-Node");
        assert_eq!(view.body["mode"], "cluster", "{}", view.body);
        assert_eq!(view.body["self"], cluster.id(i), "{}", view.body);
        let nodes = view.body["nodes"].as_array().expect("nodes");
        for (j, id) in ids.iter().enumerate() {
            let node = nodes
                .iter()
                .find(|n| n["id"] == id.as_str())
                .unwrap_or_else(|| panic!("node {} does not list {id}: {}", ids[i], view.body));
            assert_eq!(
                node["advertiseUrl"],
                cluster.url(j),
                "by default a node advertises the address it listens on: {node}"
            );
            assert_eq!(node["self"], i == j, "{node}");
            assert!(node["startedAt"].is_string(), "{node}");
            assert!(node["sessions"].is_u64(), "{node}");
        }
    }

    // 300 sessions, 3 turns each, each turn through some node: the first at random,
    // the next ones through the others, so most turns arrive at a node that does not
    // own their session. Every fifth session takes its second turn through the
    // Python openai client.
    let urls: Vec<String> = (0..3).map(|i| cluster.url(i).to_owned()).collect();
    let mut dice = Dice::new();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(24));
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let (urls, permits) = (urls.clone(), permits.clone());
        let first = dice.below(3);
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let key = format!("spread:{s}");
            let mut served = Vec::new();
            for t in 0..TURNS {
                let to = (first + t) % 3;
                let (content, node) = if t == 1 && s % 5 == 0 {
                    chat_with_python(&urls[to], &key, &turn_text(s, t)).await
                } else {
                    let answer = chat(&urls[to], &key, &turn_text(s, t)).await;
                    assert_eq!(answer.status, 200, "{key} turn {t}: {:?}", answer.body);
                    let content = answer.body["choices"][0]["message"]["content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    (content, answer.node)
                };
                assert_eq!(content, "ok", "{key} turn {t}");
                served.push((to, node));
            }
            (key, served)
        }));
    }
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut forwarded = 0;
    for task in tasks {
        let (key, served) = task.await.expect("a session's turns");
        let nodes: BTreeSet<Option<String>> = served.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(
            nodes.len(),
            1,
            "{key}: its turns ran on different nodes: {served:?}"
        );
        let owner = served[0]
            .1
            .clone()
            .unwrap_or_else(|| panic!("{key}: no X-Facio-Node header on its answers: {served:?}"));
        assert!(ids.contains(&owner), "{key}: unknown node {owner}");
        forwarded += served
            .iter()
            .filter(|(to, _)| cluster.id(*to) != owner)
            .count();
        owners.insert(key, owner);
    }
    assert!(
        forwarded >= SESSIONS,
        "at most one turn of each session can reach its owner directly: {forwarded}"
    );
    let distinct: BTreeSet<&String> = owners.values().collect();
    assert!(
        distinct.len() >= 2,
        "every session went to one node, the others serve nothing: {distinct:?}"
    );

    // Every session's history is complete and in order, whichever node is asked.
    for s in 0..SESSIONS {
        let key = format!("spread:{s}");
        let messages = history(cluster.url(dice.below(3)), &key).await;
        assert_seqs_increase(&key, &messages);
        let expected: Vec<(String, String)> = (0..TURNS)
            .flat_map(|t| {
                [
                    ("user".to_owned(), turn_text(s, t)),
                    ("assistant".to_owned(), "ok".to_owned()),
                ]
            })
            .collect();
        assert_eq!(conversation(&messages), expected, "{key}");
    }
    // And each turn reached the model with every earlier turn of its session, no
    // more, no less: the owner never answered from a stale or foreign history.
    let requests = cluster.model.requests();
    assert_eq!(requests.len(), SESSIONS * TURNS);
    for request in &requests {
        let users: Vec<String> = request
            .messages()
            .iter()
            .filter(|m| m["role"] == "user")
            .filter_map(|m| m["content"].as_str().map(str::to_owned))
            .collect();
        let last = users.last().expect("a user message");
        let (s, t) = last
            .strip_prefix("session ")
            .and_then(|rest| rest.split_once(" turn "))
            .and_then(|(s, t)| Some((s.parse::<usize>().ok()?, t.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("unexpected input {last:?}"));
        let expected: Vec<String> = (0..=t).map(|t| turn_text(s, t)).collect();
        assert_eq!(users, expected, "what the model saw for session {s}");
    }

    // A streamed turn through a node that does not own the session streams all the
    // way from the owner.
    let key = "spread:0";
    let owner = cluster.index_of(&owners[key]);
    let other = (owner + 1) % 3;
    let body = json!({"model": "scripted-1", "stream": true,
        "messages": [{"role": "user", "content": "stream through another node"}]});
    let response = http()
        .post(format!("{}/v1/chat/completions", cluster.url(other)))
        .bearer_auth(TOKEN)
        .header("X-Session-Key", key)
        .json(&body)
        .send()
        .await
        .expect("POST a streamed turn");
    assert_eq!(response.status(), 200);
    assert_eq!(
        node_header(response.headers()).as_deref(),
        Some(cluster.id(owner))
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut frames = Vec::new();
    let mut buffer = String::new();
    let mut bytes = response.bytes_stream();
    let read = async {
        while let Some(piece) = bytes.next().await {
            buffer.push_str(&String::from_utf8_lossy(&piece.expect("a chunk")));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    frames.push(data.to_owned());
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the stream ended");
    assert_eq!(
        frames.last().map(String::as_str),
        Some("[DONE]"),
        "{frames:?}"
    );
    let streamed: String = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(streamed, "ok", "{frames:?}");
    let messages = history(cluster.url(other), key).await;
    let conversation = conversation(&messages);
    assert_eq!(conversation.len(), TURNS * 2 + 2, "{conversation:?}");
    assert_eq!(
        conversation[TURNS * 2],
        ("user".to_owned(), "stream through another node".to_owned())
    );

    cluster.assert_audit_verifies(0).await;
    cluster.finish().await;
}

#[tokio::test]
async fn a_review_made_on_one_node_is_decided_on_another_and_runs_once() {
    let model = ScriptedModel::start(vec![
        Reply::tool_call("exec", json!({"command": "echo reviewed >> counter.txt"})),
        Reply::text("Ran it once."),
        Reply::text("Still on the same node."),
    ])
    .await
    .expect("start the scripted model");
    let receiver = crate::observe::Receiver::start().await;
    let telemetry = json!({"telemetry": {"otlpEndpoint": receiver.url}});
    let Some(cluster) = Cluster::start_with(3, 3, 2, model, telemetry).await else {
        return;
    };
    let key = "review:across";
    let asked = ask(&cluster, 0, key, "Count, once approved.").await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    assert_eq!(asked.body["status"], "awaiting_review", "{}", asked.body);
    let owner_id = asked.node.clone().expect("X-Facio-Node");
    let owner = cluster.index_of(&owner_id);
    let run_id = asked.body["runId"].as_str().unwrap().to_owned();
    let review_id = asked.body["reviews"][0].as_str().unwrap().to_owned();
    assert!(
        counter_lines(&cluster, "counter.txt").is_empty(),
        "nothing ran before the decision"
    );

    // Every node shows the review as pending.
    for i in 0..3 {
        let pending = call(
            cluster.url(i),
            reqwest::Method::GET,
            "/api/v1/reviews?status=pending",
            None,
        )
        .await;
        let listed: Vec<&str> = pending.body["reviews"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(listed, [review_id.as_str()], "on {}", cluster.id(i));
    }

    // Decided through a node that neither received the message nor owns the session;
    // a second decision through the third node is refused.
    let decider = (1..3).find(|&i| i != owner).expect("a third node");
    let third = (0..3).find(|&i| i != owner && i != decider).unwrap();
    let decide = json!({"response": {"selectedOption": "approve"}, "reviewer": "carol"});
    let path = format!("/api/v1/reviews/{review_id}/decide");
    let decided = call(
        cluster.url(decider),
        reqwest::Method::POST,
        &path,
        Some(decide.clone()),
    )
    .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    assert_eq!(decided.body["status"], "decided", "{}", decided.body);
    let again = call(
        cluster.url(third),
        reqwest::Method::POST,
        &path,
        Some(decide),
    )
    .await;
    assert_eq!(again.status, 409, "decided twice: {:?}", again.body);

    let done = cluster.run_ended(&run_id).await;
    assert_eq!(
        (done["status"].as_str(), done["content"].as_str()),
        (Some("completed"), Some("Ran it once.")),
        "{done}"
    );
    assert_eq!(
        counter_lines(&cluster, "counter.txt"),
        ["reviewed"],
        "the approved command ran exactly once"
    );
    assert_eq!(cluster.model.requests().len(), 2, "the run resumed once");
    let kinds = audit_kinds(&cluster, third, &run_id).await;
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(
        (count("review_decided"), count("tool_call")),
        (1, 1),
        "{kinds:?}"
    );

    // The session stayed with its owner: the next turn, sent to the decider, runs
    // there too.
    let next = chat(cluster.url(decider), key, "Are you still there?").await;
    assert_eq!(next.status, 200, "{:?}", next.body);
    assert_eq!(next.node.as_deref(), Some(owner_id.as_str()));
    assert_eq!(
        next.body["choices"][0]["message"]["content"],
        "Still on the same node."
    );
    assert_eq!(counter_lines(&cluster, "counter.txt"), ["reviewed"]);

    // One trace from the decision to the resumed turn: the decider's server span,
    // the owner's inbox entry (carried through the Redis stream) under it, and the
    // resumed turn under that.
    let decider_id = cluster.id(decider).to_owned();
    let resumed_after_inbox = |spans: &[crate::observe::SeenSpan]| {
        spans.iter().find_map(|turn| {
            if turn.name != "invoke_agent facio"
                || turn.attr("facio.run.id") != Some(run_id.as_str())
                || turn.attr("facio.run.resumed") != Some("true")
            {
                return None;
            }
            let inbox = spans.iter().find(|p| p.id == turn.parent)?;
            let decision = spans.iter().find(|q| q.id == inbox.parent)?;
            Some((turn.clone(), inbox.clone(), decision.clone()))
        })
    };
    let spans = receiver
        .wait_for("the resumed turn under the inbox entry", |spans| {
            resumed_after_inbox(spans).is_some()
        })
        .await;
    let (turn, inbox, decision) = resumed_after_inbox(&spans).expect("the resumed turn");
    assert_eq!(inbox.name, "inbox receive", "{inbox:#?}");
    assert_eq!(inbox.kind, 5, "CONSUMER");
    assert_eq!(
        (inbox.node.as_str(), turn.node.as_str()),
        (owner_id.as_str(), owner_id.as_str())
    );
    assert_eq!(decision.name, "POST /api/v1/reviews/{id}/decide");
    assert_eq!(decision.node, decider_id);
    assert_eq!(
        (inbox.trace.as_str(), turn.trace.as_str()),
        (decision.trace.as_str(), decision.trace.as_str()),
        "one trace through the Redis stream"
    );

    cluster.assert_audit_verifies(decider).await;
    cluster.finish().await;
}

#[tokio::test]
async fn killing_the_owner_while_a_review_waits_loses_nothing() {
    let model = ScriptedModel::start(vec![
        Reply::tool_call("exec", json!({"command": "echo once >> counter.txt"})),
        Reply::text("Counted once, after the crash."),
        Reply::text("Carrying on."),
        Reply::text("Still one."),
    ])
    .await
    .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(3, 2, 3, model).await else {
        return;
    };
    let key = "review:crash";
    let asked = ask(&cluster, 0, key, "Count once.").await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    assert_eq!(asked.body["status"], "awaiting_review", "{}", asked.body);
    let owner = cluster.index_of(asked.node.as_deref().expect("X-Facio-Node"));
    let run_id = asked.body["runId"].as_str().unwrap().to_owned();
    let review_id = asked.body["reviews"][0].as_str().unwrap().to_owned();

    cluster.kill(owner).await;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != owner).collect();
    let (b, c) = (survivors[0], survivors[1]);

    // The human does not know a node died: the review is still pending, and the
    // decision is taken at once, through a survivor.
    let review = call(
        cluster.url(b),
        reqwest::Method::GET,
        &format!("/api/v1/reviews/{review_id}"),
        None,
    )
    .await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    assert_eq!(review.body["status"], "pending", "{}", review.body);
    let decided = call(
        cluster.url(b),
        reqwest::Method::POST,
        &format!("/api/v1/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}, "reviewer": "dave"})),
    )
    .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);

    // The dead node leaves the cluster, and a survivor finishes the run.
    cluster
        .wait_until_gone(&survivors, owner, cluster.lease_ttl + GRACE)
        .await;
    let done = cluster.run_ended(&run_id).await;
    assert_eq!(
        (done["status"].as_str(), done["content"].as_str()),
        (Some("completed"), Some("Counted once, after the crash.")),
        "{done}"
    );
    assert_eq!(
        counter_lines(&cluster, "counter.txt"),
        ["once"],
        "the approved command ran exactly once"
    );
    assert_eq!(cluster.model.requests().len(), 2, "the run resumed once");

    // The session carries on on a survivor, with its whole history.
    let next = chat(cluster.url(c), key, "And now?").await;
    assert_eq!(next.status, 200, "{:?}", next.body);
    assert_eq!(
        next.body["choices"][0]["message"]["content"],
        "Carrying on."
    );
    let new_owner = next.node.clone().expect("X-Facio-Node");
    assert_ne!(new_owner, cluster.id(owner), "a dead node answered");
    let messages = history(cluster.url(c), key).await;
    assert_seqs_increase(key, &messages);
    let tools = messages
        .iter()
        .filter(|(_, role, _)| role == "tool")
        .count();
    assert_eq!(tools, 1, "one tool result: {messages:?}");
    assert_eq!(
        conversation(&messages)
            .into_iter()
            .filter(|(role, _)| role == "assistant")
            .map(|(_, content)| content)
            .collect::<Vec<_>>(),
        ["Counted once, after the crash.", "Carrying on."],
        "{messages:?}"
    );

    // The dead node comes back with the same config: it runs nothing again.
    cluster.restart(owner).await;
    let again = call(
        cluster.url(owner),
        reqwest::Method::GET,
        &format!("/api/v1/runs/{run_id}"),
        None,
    )
    .await;
    assert_eq!(again.body["status"], "completed", "{:?}", again.body);
    let after_restart = chat(cluster.url(owner), key, "Still one?").await;
    assert_eq!(after_restart.status, 200, "{:?}", after_restart.body);
    assert_eq!(
        after_restart.body["choices"][0]["message"]["content"],
        "Still one."
    );
    assert_eq!(
        after_restart.node.as_deref(),
        Some(new_owner.as_str()),
        "the restarted node took back a session a live node owns"
    );
    assert_eq!(counter_lines(&cluster, "counter.txt"), ["once"]);

    cluster.assert_audit_verifies(b).await;
    cluster.finish().await;
}

#[tokio::test]
async fn a_forged_internal_token_is_refused() {
    let model = ScriptedModel::start(vec![Reply::text("answered")])
        .await
        .expect("start the scripted model");
    let Some(cluster) = Cluster::start(2, 3, 4, model).await else {
        return;
    };
    let key = "forged:1";
    let forged = "forged-internal-token";
    let chat_body =
        json!({"model": "scripted-1", "messages": [{"role": "user", "content": "let me in"}]});
    for (i, bearer) in [(0, true), (1, false)] {
        for (method, path, body) in [
            (
                reqwest::Method::POST,
                "/v1/chat/completions".to_owned(),
                Some(chat_body.clone()),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/sessions/{key}/messages"),
                Some(json!({"content": "let me in"})),
            ),
            (
                reqwest::Method::GET,
                format!("/api/v1/sessions/{key}"),
                None,
            ),
            (reqwest::Method::GET, "/api/v1/cluster".to_owned(), None),
        ] {
            let mut request = http()
                .request(method.clone(), format!("{}{path}", cluster.url(i)))
                .header("X-Session-Key", key)
                .header("X-Facio-Internal-Token", forged);
            if bearer {
                request = request.bearer_auth(TOKEN);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("send a forged request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(
                status,
                403,
                "{method} {path} on {} (bearer: {bearer}) with a forged internal token: {text}",
                cluster.id(i)
            );
            assert!(!text.contains(forged), "the forged token is echoed: {text}");
        }
    }
    assert!(
        cluster.model.requests().is_empty(),
        "a forged request ran a turn"
    );
    let missing = call(
        cluster.url(1),
        reqwest::Method::GET,
        &format!("/api/v1/sessions/{key}"),
        None,
    )
    .await;
    assert_eq!(
        missing.status, 404,
        "a forged request made a session: {:?}",
        missing.body
    );

    // Without the forged header the same caller is served.
    let honest = chat(cluster.url(1), key, "let me in").await;
    assert_eq!(honest.status, 200, "{:?}", honest.body);
    assert_eq!(honest.body["choices"][0]["message"]["content"], "answered");
    assert!(honest.node.is_some(), "no X-Facio-Node header");
    cluster.finish().await;
}

#[tokio::test]
async fn a_paused_owner_past_its_lease_writes_nothing() {
    let model = ScriptedModel::start(vec![
        // Answered while its node is frozen; read only after it thaws.
        Reply::text("stale answer").delayed(Duration::from_secs(1)),
        // The same turn, gone on with by the node that took the session over.
        Reply::text("continued answer"),
        Reply::text("fresh answer"),
        Reply::text("third answer"),
    ])
    .await
    .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(2, 2, 5, model).await else {
        return;
    };
    let key = "pause:1";
    let accepted = call(
        cluster.url(0),
        reqwest::Method::POST,
        &format!("/api/v1/sessions/{key}/messages"),
        Some(json!({"content": "a slow question"})),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let stale_run = accepted.body["runId"].as_str().unwrap().to_owned();
    // The turn is at the model, on its owner: freeze the owner there.
    cluster
        .model
        .wait_for_requests(1, PATIENCE)
        .await
        .expect("the turn reached the model");
    let stale_owner = cluster.index_of(accepted.node.as_deref().expect("X-Facio-Node"));
    let other = 1 - stale_owner;
    cluster.pause(stale_owner);

    // A message sent meanwhile through the other node is forwarded to the frozen
    // owner, which takes the connection and never answers: once the frozen node's
    // registration lapses the caller is told to retry, instead of waiting forever
    // (and what the frozen node may read later it cannot store: it is fenced off).
    let frozen = tokio::time::timeout(
        cluster.lease_ttl + GRACE,
        chat(cluster.url(other), key, "sent while it was frozen"),
    )
    .await
    .expect("a request forwarded to a frozen node is answered");
    assert_eq!(frozen.status, 503, "{:?}", frozen.body);
    assert!(
        frozen.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(cluster.id(stale_owner))),
        "{:?}",
        frozen.body
    );

    // Past its lease, the frozen node is out of the cluster and the next message
    // takes the session over.
    cluster
        .wait_until_gone(&[other], stale_owner, cluster.lease_ttl + GRACE)
        .await;
    let deadline = Deadline::new(
        format!("{} takes {key} over", cluster.id(other)),
        cluster.lease_ttl + GRACE,
    );
    // Refused (still leased) messages are sent again; an accepted one is not.
    let accepted = loop {
        let answer = try_call(
            cluster.url(other),
            reqwest::Method::POST,
            &format!("/api/v1/sessions/{key}/messages?wait=20"),
            Some(json!({"content": "are you there?"})),
            &[],
        )
        .await;
        match answer {
            Some(answer) if matches!(answer.status, 200 | 202) => break answer,
            other => deadline.tick(&other).await,
        }
    };
    assert_eq!(accepted.node.as_deref(), Some(cluster.id(other)));
    // The frozen owner's turn was waiting for the model: the new owner goes on with
    // it from its last recorded step (it asks the model again) before the new message.
    let continued = cluster.run_ended(&stale_run).await;
    assert_eq!(
        (continued["status"].as_str(), continued["content"].as_str()),
        (Some("completed"), Some("continued answer")),
        "{continued}"
    );
    let fresh_run = accepted.body["runId"].as_str().expect("runId").to_owned();
    let fresh = cluster.run_ended(&fresh_run).await;
    assert_eq!(
        (fresh["status"].as_str(), fresh["content"].as_str()),
        (Some("completed"), Some("fresh answer")),
        "{fresh}"
    );

    // The frozen node thaws, reads its model's stale answer, and must keep it to
    // itself: it rejoins the cluster, but the session is no longer its own.
    cluster.resume(stale_owner);
    cluster
        .wait_for_members(&[0, 1], &[0, 1], cluster.lease_ttl + GRACE)
        .await;
    let third = chat(cluster.url(stale_owner), key, "one more").await;
    assert_eq!(third.status, 200, "{:?}", third.body);
    assert_eq!(
        third.node.as_deref(),
        Some(cluster.id(other)),
        "the thawed node still serves the session it lost"
    );
    assert_eq!(
        third.body["choices"][0]["message"]["content"],
        "third answer"
    );
    // Its session actor found itself fenced off and stopped: the thawed node holds
    // no session in memory.
    let deadline = Deadline::new(
        format!("{} stops its fenced session actor", cluster.id(stale_owner)),
        PATIENCE,
    );
    loop {
        let health = call(
            cluster.url(stale_owner),
            reqwest::Method::GET,
            "/health",
            None,
        )
        .await;
        if health.body["activeSessions"] == 0 {
            break;
        }
        deadline.tick(&health.body).await;
    }

    // Watch for a late write for a lease's length: the stale turn never lands.
    let watch = Deadline::new("a lease's length passes", cluster.lease_ttl + POLL);
    loop {
        let messages = history(cluster.url(other), key).await;
        assert!(
            !messages
                .iter()
                .any(|(_, _, c)| c.as_deref() == Some("stale answer")),
            "the stale owner wrote into the history after the takeover: {messages:?}"
        );
        let run = call(
            cluster.url(other),
            reqwest::Method::GET,
            &format!("/api/v1/runs/{stale_run}"),
            None,
        )
        .await;
        assert_eq!(run.body["content"], "continued answer", "{:?}", run.body);
        if watch.passed() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }

    let messages = history(cluster.url(stale_owner), key).await;
    assert_seqs_increase(key, &messages);
    let conversation = conversation(&messages);
    assert_eq!(
        conversation,
        [
            ("user".to_owned(), "a slow question".to_owned()),
            ("assistant".to_owned(), "continued answer".to_owned()),
            ("user".to_owned(), "are you there?".to_owned()),
            ("assistant".to_owned(), "fresh answer".to_owned()),
            ("user".to_owned(), "one more".to_owned()),
            ("assistant".to_owned(), "third answer".to_owned()),
        ],
        "{conversation:?}"
    );
    let assistants = conversation
        .iter()
        .filter(|(role, _)| role == "assistant")
        .count();
    assert_eq!(assistants, 3, "one answer per turn: {conversation:?}");
    let requests = cluster.model.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests[1..]
            .iter()
            .all(|r| !r.body.to_string().contains("stale answer")),
        "the stale answer reached the model"
    );

    cluster.assert_audit_verifies(other).await;
    cluster.finish().await;
}

/// An answer streamed through another node from the session's owner, when the owner
/// freezes mid-answer: the stream does not hang; once the owner has left the cluster
/// it ends with an error event naming the node and when to retry.
#[tokio::test]
async fn a_stream_from_an_owner_that_freezes_mid_answer_ends_with_an_error() {
    let model = ScriptedModel::start(vec![
        Reply::text("hello back"),
        // Still coming when its node freezes.
        Reply::text("never streamed").delayed(Duration::from_secs(20)),
    ])
    .await
    .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(2, 2, 10, model).await else {
        return;
    };
    let key = "freeze:stream";
    let first = chat(cluster.url(0), key, "hello").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let owner = cluster.index_of(first.node.as_deref().expect("X-Facio-Node"));
    let other = 1 - owner;
    let body = json!({"model": "scripted-1", "stream": true,
                      "messages": [{"role": "user", "content": "a long answer, please"}]});
    let response = tokio::time::timeout(
        PATIENCE,
        http()
            .post(format!("{}/v1/chat/completions", cluster.url(other)))
            .bearer_auth(TOKEN)
            .header("X-Session-Key", key)
            .json(&body)
            .send(),
    )
    .await
    .expect("the stream's headers arrive before the model answers")
    .expect("stream through the other node");
    assert_eq!(response.status(), 200);
    assert_eq!(
        node_header(response.headers()).as_deref(),
        Some(cluster.id(owner))
    );
    cluster
        .model
        .wait_for_requests(2, PATIENCE)
        .await
        .expect("the turn reached the model");
    cluster.pause(owner);
    let text = tokio::time::timeout(cluster.lease_ttl + GRACE, response.text())
        .await
        .expect("a stream from a frozen node ends instead of hanging")
        .expect("the stream's body");
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .expect("an event");
    let error: Value = serde_json::from_str(last).expect("the last event is JSON");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(cluster.id(owner)) && message.contains("cannot be reached"),
        "{text}"
    );
    assert!(!text.contains("never streamed"), "{text}");
    cluster.resume(owner);
    cluster.finish().await;
}

/// A Redis of the test's own, on a free port, that the test can kill and start again.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    /// None (after saying so) without `redis-server` on the PATH.
    async fn start() -> Option<OwnRedis> {
        let port = crate::support::free_port_string()
            .parse()
            .expect("a port number");
        let mut redis = OwnRedis {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.up().await.then_some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server on its port and waits until it answers PING.
    async fn up(&mut self) -> bool {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(child) = child else {
            eprintln!("skipped: redis-server is not installed (tests/run.sh installs it)");
            return false;
        };
        self.child = Some(child);
        let deadline = Deadline::new("the test's Redis answers PING", PATIENCE);
        loop {
            let answered = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .ok();
            if let Some(mut stream) = answered {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut pong = [0u8; 7];
                if stream.write_all(b"PING\r\n").await.is_ok()
                    && stream.read_exact(&mut pong).await.is_ok()
                    && &pong == b"+PONG\r\n"
                {
                    return true;
                }
            }
            deadline.tick(&"no PONG yet").await;
        }
    }

    /// kill -9 the server (everything it held is gone: it keeps nothing on disk).
    async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }
}

/// Redis holds no data: while it is gone, every turn still succeeds (a session's
/// holder is found through the store's lease and the last known addresses), and
/// once it is back the nodes find each other again by themselves.
#[tokio::test]
async fn losing_redis_loses_no_turn() {
    let Some(mut redis) = OwnRedis::start().await else {
        return;
    };
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(10))
        .await
        .expect("start the scripted model");
    let Some(cluster) = Cluster::start_on(2, 3, redis.url(), model, &json!({})).await else {
        return;
    };
    const N: usize = 8;
    let mut owner_of: HashMap<usize, String> = HashMap::new();
    let send = async |round: usize, owner_of: &mut HashMap<usize, String>| {
        for s in 0..N {
            let via = (s + round) % 2;
            // Right after Redis comes back a node's registration may lapse for a
            // moment: its sessions then answer 503 with Retry-After, storing
            // nothing; a client that retries as told loses no turn.
            let deadline = Deadline::new(format!("session {s}, round {round}"), JOIN);
            let answer = loop {
                let answer = chat(
                    cluster.url(via),
                    &format!("redis:{s}"),
                    &format!("turn {round}"),
                )
                .await;
                if answer.status != 503 {
                    break answer;
                }
                deadline.tick(&answer.body).await;
            };
            assert_eq!(
                answer.status, 200,
                "session {s}, round {round} via {via}: {:?}",
                answer.body
            );
            let node = answer.node.expect("X-Facio-Node");
            if let Some(before) = owner_of.get(&s) {
                assert_eq!(
                    &node, before,
                    "session {s} kept its node through round {round}"
                );
            }
            owner_of.insert(s, node);
        }
    };
    send(0, &mut owner_of).await;

    redis.down().await;
    // The nodes notice (their view says so) and keep serving every session.
    for i in 0..2 {
        let deadline = Deadline::new(format!("node {} sees Redis gone", cluster.id(i)), JOIN);
        loop {
            let view = cluster.view(i).await;
            if view.body["redis"] == "unreachable" {
                break;
            }
            deadline.tick(&view.body).await;
        }
    }
    for round in 1..4 {
        send(round, &mut owner_of).await;
    }

    // Back again (empty): both nodes register again and list each other.
    assert!(redis.up().await, "redis-server starts again");
    cluster.wait_for_members(&[0, 1], &[0, 1], JOIN).await;
    for i in 0..2 {
        assert_eq!(cluster.view(i).await.body["redis"], "connected");
    }
    send(4, &mut owner_of).await;

    for s in 0..N {
        let messages = history(cluster.url(s % 2), &format!("redis:{s}")).await;
        assert_seqs_increase(&format!("redis:{s}"), &messages);
        let said: Vec<(String, String)> = conversation(&messages);
        let expected: Vec<(String, String)> = (0..5)
            .flat_map(|r| {
                [
                    ("user".to_owned(), format!("turn {r}")),
                    ("assistant".to_owned(), "ok".to_owned()),
                ]
            })
            .collect();
        assert_eq!(said, expected, "session {s}: every turn once, in order");
    }
    cluster.assert_audit_verifies(0).await;
    cluster.finish().await;
}

/// SIGTERM drains a node: it leaves the membership and gives its sessions' leases
/// back as it goes, so another node takes its sessions at once — long before the
/// leases (30 s here) would have run out.
#[tokio::test]
async fn a_drained_node_hands_its_sessions_over_at_once() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(10))
        .await
        .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(2, 30, 6, model).await else {
        return;
    };
    // Sessions on both nodes; find one the first node holds.
    let mut held_by_first = Vec::new();
    for s in 0..12 {
        let key = format!("drain:{s}");
        let answer = chat(cluster.url(1), &key, "before").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        if answer.node.as_deref() == Some(cluster.id(0)) {
            held_by_first.push(key);
        }
    }
    assert!(
        !held_by_first.is_empty(),
        "rendezvous gave the first node none of 12 sessions"
    );

    let stopped = Instant::now();
    cluster.nodes[0]
        .process()
        .terminate()
        .await
        .expect("SIGTERM the node");
    let status = cluster.nodes[0]
        .process()
        .wait_exit(PATIENCE)
        .await
        .expect("the drained node exits");
    assert!(status.success(), "a drained node exits cleanly: {status:?}");
    let process = cluster.nodes[0].process.take().expect("was up");
    cluster.nodes[0].past_output.push(process.output());
    cluster.wait_until_gone(&[1], 0, JOIN).await;

    for key in &held_by_first {
        let answer = chat(cluster.url(1), key, "after").await;
        assert_eq!(answer.status, 200, "{key}: {:?}", answer.body);
        assert_eq!(answer.node.as_deref(), Some(cluster.id(1)), "{key}");
        let said = conversation(&history(cluster.url(1), key).await);
        assert_eq!(said, answered_ok(&["before", "after"]), "{key}");
    }
    assert!(
        stopped.elapsed() < cluster.lease_ttl,
        "taken over in {:?}, not after the lease ran out",
        stopped.elapsed()
    );
    cluster.assert_audit_verifies(1).await;
    cluster.finish().await;
}

/// The management API's `POST /api/v1/sessions/{key}/messages` reaching a node that
/// does not hold the session is carried out on the node that does, `?wait` included.
#[tokio::test]
async fn a_message_to_a_session_held_elsewhere_runs_on_its_holder() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(10))
        .await
        .expect("start the scripted model");
    let receiver = crate::observe::Receiver::start().await;
    let telemetry = json!({"telemetry": {"otlpEndpoint": receiver.url}});
    let Some(cluster) = Cluster::start_with(2, 10, 7, model, telemetry).await else {
        return;
    };
    let mut forwarded = Vec::new();
    for s in 0..6 {
        let key = format!("message:{s}");
        let first = chat(cluster.url(0), &key, "first").await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let owner = first.node.expect("X-Facio-Node");
        let elsewhere = if owner == cluster.id(0) { 1 } else { 0 };
        let posted = call(
            cluster.url(elsewhere),
            reqwest::Method::POST,
            &format!("/api/v1/sessions/{key}/messages?wait=20"),
            Some(json!({"content": "second"})),
        )
        .await;
        assert_eq!(posted.status, 200, "{key}: {:?}", posted.body);
        assert_eq!(posted.node.as_deref(), Some(owner.as_str()), "{key}");
        assert_eq!(
            posted.body["status"], "completed",
            "{key}: {:?}",
            posted.body
        );
        let said = conversation(&history(cluster.url(elsewhere), &key).await);
        assert_eq!(said, answered_ok(&["first", "second"]), "{key}");
        forwarded.push((key, cluster.id(elsewhere).to_owned(), owner));
    }
    // A reset asked of the other node is made by the holder, with its one audit
    // event written in the same transaction there.
    let (key, elsewhere, _) = &forwarded[1];
    let elsewhere = usize::from(elsewhere != cluster.id(0));
    let reset = call(
        cluster.url(elsewhere),
        reqwest::Method::POST,
        "/api/v1/commands/new",
        Some(json!({"sessionKey": key})),
    )
    .await;
    assert_eq!(
        (reset.status, &reset.body["cleared"]),
        (200, &json!(true)),
        "{:?}",
        reset.body
    );
    let gone = call(
        cluster.url(elsewhere),
        reqwest::Method::GET,
        &format!("/api/v1/sessions/{key}"),
        None,
    )
    .await;
    assert_eq!(gone.status, 404, "{:?}", gone.body);
    let recorded = call(
        cluster.url(1 - elsewhere),
        reqwest::Method::GET,
        &format!("/api/v1/audit?type=session_deleted&session={key}"),
        None,
    )
    .await;
    let events = recorded.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(events.len(), 1, "{:?}", recorded.body);
    assert_eq!(events[0]["data"]["command"], "new", "{:?}", events[0]);
    // Each forwarded request is one trace across both nodes: the receiving node's
    // server span, the holder's server span under it, and the turn under that.
    let (key, receiving, holder) = forwarded[0].clone();
    // The second turn: the holder's turn under the holder's server span, which is
    // under the receiving node's server span.
    let forwarded_turn = |spans: &[crate::observe::SeenSpan]| {
        spans.iter().find_map(|turn| {
            if turn.name != "invoke_agent facio"
                || turn.attr("gen_ai.conversation.id") != Some(key.as_str())
            {
                return None;
            }
            let on_holder = spans.iter().find(|p| {
                p.id == turn.parent && p.name == "POST /api/v1/sessions/{key}/messages"
            })?;
            let on_receiver = spans.iter().find(|q| q.id == on_holder.parent)?;
            Some((turn.clone(), on_holder.clone(), on_receiver.clone()))
        })
    };
    let spans = receiver
        .wait_for("the forwarded turn's spans", |spans| {
            forwarded_turn(spans).is_some()
        })
        .await;
    let (turn, on_holder, on_receiver) = forwarded_turn(&spans).expect("the forwarded turn");
    assert_eq!(turn.node, holder);
    assert_eq!(on_holder.node, holder);
    assert_eq!(on_holder.name, "POST /api/v1/sessions/{key}/messages");
    assert_eq!(on_receiver.node, receiving);
    assert_eq!(on_receiver.kind, 2, "the receiving node's SERVER span");
    assert_eq!(
        (on_receiver.trace.as_str(), on_holder.trace.as_str()),
        (turn.trace.as_str(), turn.trace.as_str()),
        "one trace id across the two nodes"
    );
    cluster.finish().await;
}

/// A request for a session whose node just died is refused with 503 and a
/// `Retry-After` that names when the dead node's lease runs out; retried then, it is
/// answered by a live node.
#[tokio::test]
async fn a_session_of_a_dead_node_says_when_to_retry() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(10))
        .await
        .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(2, 3, 8, model).await else {
        return;
    };
    let key = "retry:1";
    let first = chat(cluster.url(0), key, "first").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let owner = cluster.index_of(first.node.as_deref().expect("X-Facio-Node"));
    let survivor = 1 - owner;
    let killed = Instant::now();
    cluster.kill(owner).await;

    let body = json!({"model": "scripted-1", "messages": [{"role": "user", "content": "second"}]});
    let refused = http()
        .post(format!("{}/v1/chat/completions", cluster.url(survivor)))
        .bearer_auth(TOKEN)
        .header("X-Session-Key", key)
        .json(&body)
        .send()
        .await
        .expect("the survivor answers");
    assert_eq!(refused.status().as_u16(), 503);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!(
        (1..=cluster.lease_ttl.as_secs() + 1).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let text = refused.text().await.unwrap_or_default();
    assert!(
        text.contains(cluster.id(owner)),
        "names the gone node: {text}"
    );

    // Retried as told, the session is answered by the survivor, within the TTL and
    // the sweep's grace.
    let deadline = Deadline::new("the survivor takes the session", cluster.lease_ttl + GRACE);
    let answered = loop {
        let answer = chat(cluster.url(survivor), key, "second").await;
        if answer.status == 200 {
            break answer;
        }
        assert_eq!(answer.status, 503, "{:?}", answer.body);
        deadline.tick(&answer.body).await;
    };
    assert_eq!(answered.node.as_deref(), Some(cluster.id(survivor)));
    assert!(killed.elapsed() < cluster.lease_ttl + GRACE);
    let said = conversation(&history(cluster.url(survivor), key).await);
    assert_eq!(
        said,
        answered_ok(&["first", "second"]),
        "the refused attempts stored nothing"
    );
    cluster.finish().await;
}

/// A conversation of these user messages, each answered "ok".
fn answered_ok(said: &[&str]) -> Vec<(String, String)> {
    said.iter()
        .flat_map(|text| {
            [
                ("user".to_owned(), (*text).to_owned()),
                ("assistant".to_owned(), "ok".to_owned()),
            ]
        })
        .collect()
}

/// A flag the load's tasks look at to end.
#[derive(Clone, Default)]
struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The load balancer of the rolling-restart test: every node's current address and
/// whether its `/readyz` answered 200 at the last look (taken every 100 ms), as a
/// Kubernetes Service sees its endpoints.
#[derive(Default)]
struct Rotation {
    urls: std::sync::RwLock<Vec<Option<String>>>,
    ready: std::sync::RwLock<Vec<bool>>,
}

impl Rotation {
    fn ready_urls(&self) -> Vec<String> {
        let urls = self.urls.read().unwrap();
        let ready = self.ready.read().unwrap();
        urls.iter()
            .zip(ready.iter())
            .filter(|(_, r)| **r)
            .filter_map(|(u, _)| u.clone())
            .collect()
    }

    fn set_url(&self, i: usize, url: Option<String>) {
        self.urls.write().unwrap()[i] = url;
        self.ready.write().unwrap()[i] = false;
    }

    async fn watch(self: std::sync::Arc<Self>, stop: Stop) {
        while !stop.is_set() {
            let urls = self.urls.read().unwrap().clone();
            for (i, url) in urls.iter().enumerate() {
                let ready = match url {
                    Some(url) => http()
                        .get(format!("{url}/readyz"))
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200),
                    None => false,
                };
                // The node may have been replaced while we asked.
                if self.urls.read().unwrap()[i] == *url {
                    self.ready.write().unwrap()[i] = ready;
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Every node in turn is sent SIGTERM and started again while clients keep sending
/// turns through whichever nodes are ready: no request fails, no turn is lost or run
/// twice, and every session's history holds exactly the turns that were answered.
#[tokio::test]
async fn a_rolling_restart_under_load_fails_no_request() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(20))
        .await
        .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(3, 3, 9, model).await else {
        return;
    };
    const CLIENTS: usize = 24;
    let rotation = std::sync::Arc::new(Rotation::default());
    *rotation.urls.write().unwrap() = (0..3).map(|i| Some(cluster.url(i).to_owned())).collect();
    *rotation.ready.write().unwrap() = vec![true; 3];
    let stop = Stop::default();
    let watcher = tokio::spawn(rotation.clone().watch(stop.clone()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (rotation, stop) = (rotation.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let key = format!("roll:{c}");
            let mut dice = Dice(((c as u64) << 32) | 0x9e37_79b9);
            let (mut answered, mut failures) = (Vec::new(), Vec::new());
            let mut t = 0;
            while !stop.is_set() {
                let ready = rotation.ready_urls();
                if ready.is_empty() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let url = &ready[dice.below(ready.len())];
                let content = format!("{key} turn {t}");
                let body = json!({"model": "scripted-1",
                    "messages": [{"role": "user", "content": content}]});
                let sent = http()
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(TOKEN)
                    .header("X-Session-Key", &key)
                    .timeout(Duration::from_secs(60))
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => answered.push(content),
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        failures.push(format!("{content} via {url}: {status} {text}"));
                    }
                    Err(e) => failures.push(format!("{content} via {url}: {e}")),
                }
                t += 1;
            }
            (key, answered, failures)
        }));
    }

    for i in 0..3 {
        // Some load on the full cluster first.
        let before = cluster.model.requests().len();
        cluster
            .model
            .wait_for_requests(before + 60, PATIENCE)
            .await
            .expect("turns go on");
        cluster.nodes[i]
            .process()
            .terminate()
            .await
            .expect("SIGTERM the node");
        let status = cluster.nodes[i]
            .process()
            .wait_exit(PATIENCE)
            .await
            .expect("the drained node exits");
        assert!(
            status.success(),
            "{} exits cleanly: {status:?}",
            cluster.id(i)
        );
        rotation.set_url(i, None);
        let process = cluster.nodes[i].process.take().expect("was up");
        cluster.nodes[i].past_output.push(process.output());
        cluster.restart(i).await;
        rotation.set_url(i, Some(cluster.url(i).to_owned()));
    }
    let before = cluster.model.requests().len();
    cluster
        .model
        .wait_for_requests(before + 60, PATIENCE)
        .await
        .expect("turns go on after the restarts");
    stop.set();
    let _ = watcher.await;

    let mut total = 0;
    let mut all_failures = Vec::new();
    for client in clients {
        let (key, answered, failures) = client.await.expect("a client");
        all_failures.extend(failures);
        total += answered.len();
        // Exactly the answered turns, in order, each answered once.
        let said = conversation(&history(cluster.url(0), &key).await);
        let expected: Vec<(String, String)> = answered
            .iter()
            .flat_map(|c| {
                [
                    ("user".to_owned(), c.clone()),
                    ("assistant".to_owned(), "ok".to_owned()),
                ]
            })
            .collect();
        assert_eq!(said, expected, "{key}");
    }
    assert!(
        all_failures.is_empty(),
        "{} of {} requests failed during the rolling restart:\n{}",
        all_failures.len(),
        total + all_failures.len(),
        all_failures.join("\n")
    );
    assert_eq!(
        cluster.model.requests().len(),
        total,
        "one model call per answered turn"
    );
    cluster.assert_audit_verifies(1).await;
    cluster.finish().await;
}

/// The owner dies while a read-only call runs (`read_file` of a named pipe, which
/// blocks until someone writes): the session's new owner runs the call again rather
/// than ending the turn, and the model gets the retried call's result.
#[tokio::test]
async fn a_read_only_call_cut_off_by_its_nodes_death_runs_again_elsewhere() {
    let model = ScriptedModel::start(vec![
        Reply::tool_call("read_file", json!({"path": "slow.pipe"})),
        Reply::text("Read it after the crash."),
    ])
    .await
    .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(2, 2, 0, model).await else {
        return;
    };
    let pipe = cluster.workspace().join("slow.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", pipe.display());
    let key = "readonly:1";
    let accepted = call(
        cluster.url(0),
        reqwest::Method::POST,
        &format!("/api/v1/sessions/{key}/messages"),
        Some(json!({"content": "read the pipe"})),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let run_id = accepted.body["runId"].as_str().unwrap().to_owned();
    let owner = cluster.index_of(accepted.node.as_deref().expect("X-Facio-Node"));

    // The call is on record as started: the owner is blocked reading the pipe.
    let database = cluster.database.as_ref().expect("the database");
    let mut conn = database.connect().await;
    let started =
        format!("SELECT COUNT(*) FROM tool_calls WHERE run_id = '{run_id}' AND status = 'started'");
    let deadline = Deadline::new("the read is on record as started", PATIENCE);
    loop {
        let n = crate::postgres::count_as(&mut conn, Some("default"), &started).await;
        if n == 1 {
            break;
        }
        deadline.tick(&n).await;
    }
    cluster.kill(owner).await;

    // Once the dead node's lease has run out, the survivor's sweep takes the session
    // and reads the pipe again: the read blocks until this writer opens it.
    let writer = tokio::task::spawn_blocking(move || {
        std::fs::write(&pipe, "piped words\n").expect("write into the pipe")
    });
    tokio::time::timeout(cluster.lease_ttl * 3 + GRACE, writer)
        .await
        .expect("the survivor read the pipe again")
        .expect("the writer");
    let done = cluster.run_ended(&run_id).await;
    assert_eq!(
        (done["status"].as_str(), done["content"].as_str()),
        (Some("completed"), Some("Read it after the crash.")),
        "{done}"
    );
    let requests = cluster.model.requests();
    assert_eq!(
        requests.len(),
        2,
        "the model was asked once more, after the read"
    );
    let tool_results: Vec<String> = requests[1]
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        tool_results.len(),
        1,
        "one result for the call: {tool_results:?}"
    );
    assert!(
        tool_results[0].contains("piped words"),
        "the retried read's result: {tool_results:?}"
    );
    let survivor = 1 - owner;
    let messages = history(cluster.url(survivor), key).await;
    assert_seqs_increase(key, &messages);
    cluster.assert_audit_verifies(survivor).await;
    cluster.finish().await;
}

#[tokio::test]
async fn a_channel_message_reaching_another_node_runs_on_the_session_s_owner() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(10))
        .await
        .expect("start the scripted model");
    let secret = "cluster-channel-secret-0123456789";
    let channels =
        json!({"channels": {"webhooks": {"ops": {"secret": secret, "allowFrom": ["alice"]}}}});
    let Some(cluster) = Cluster::start_with(2, 10, 11, model, channels).await else {
        return;
    };
    let hook = |i: usize, id: &str, text: &str| {
        let body = json!({"id": id, "from": "alice", "text": text}).to_string();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signature = crate::channels::signature(secret, ts, body.as_bytes());
        let request = http()
            .post(format!("{}/hooks/ops", cluster.url(i)))
            .header("content-type", "application/json")
            .header("x-facio-timestamp", ts.to_string())
            .header("x-facio-signature", signature)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let node = node_header(response.headers());
            (
                response.status().as_u16(),
                node,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, owner, first) = hook(0, "c1", "first").await;
    assert_eq!(status, 202, "{first}");
    let owner = owner.expect("X-Facio-Node");
    let elsewhere = usize::from(owner == cluster.id(0));
    let session = first["sessionKey"].as_str().unwrap().to_owned();
    // The session's owner has it now; a message that reaches the other node is
    // passed on to it, not dropped (or run on two nodes).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while conversation(&history(cluster.url(0), &session).await).len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first turn never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, ran_on, second) = hook(elsewhere, "c2", "second").await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(ran_on.as_deref(), Some(owner.as_str()), "{second}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let said = conversation(&history(cluster.url(elsewhere), &session).await);
        if said.len() >= 4 {
            assert_eq!(said, answered_ok(&["first", "second"]));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{said:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `turn_queued` events of `session`, read through node `i`.
async fn queued_turns(cluster: &Cluster, i: usize, session: &str) -> Vec<Value> {
    let answer = call(
        cluster.url(i),
        reqwest::Method::GET,
        &format!("/api/v1/audit?type=turn_queued&session={session}&limit=1000"),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until `session` was given at least `n` turns; returns their events.
async fn given_at_least(cluster: &Cluster, i: usize, session: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = queued_turns(cluster, i, session).await;
        if events.len() >= n {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{session} was given {} turns, not {n}",
            events.len()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The nodes whose log says they fired a scheduled job.
fn firing_nodes(cluster: &Cluster) -> Vec<usize> {
    (0..cluster.nodes.len())
        .filter(|&i| cluster.nodes[i].log().contains("a scheduled job fired"))
        .collect()
}

/// A job firing every second on three nodes: each instant becomes one turn, fired by
/// one node only; when that node is killed, another takes the schedule over within
/// the lease TTL and no instant is fired twice.
#[tokio::test]
async fn a_scheduled_job_fires_each_instant_once_across_the_cluster() {
    let model = ScriptedModel::start_fixed("ok", Duration::from_millis(10))
        .await
        .expect("start the scripted model");
    let Some(mut cluster) = Cluster::start(3, 2, 12, model).await else {
        return;
    };
    let job = call(
        cluster.url(0),
        reqwest::Method::POST,
        "/api/v1/cron",
        Some(json!({"name": "tick", "schedule": {"everyS": 1}, "message": "tick"})),
    )
    .await;
    assert_eq!(job.status, 201, "{:?}", job.body);
    let id = job.body["id"].as_str().unwrap().to_owned();
    let session = job.body["sessionKey"].as_str().unwrap().to_owned();
    // A one-off in the same session, due in two seconds: after the kill below, the
    // node taking the schedule over finds its instant still within the catch-up
    // window and must see that it fired.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let once = call(
        cluster.url(2),
        reqwest::Method::POST,
        "/api/v1/cron",
        Some(json!({"schedule": {"at": at}, "message": "once", "sessionKey": session})),
    )
    .await;
    assert_eq!(once.status, 201, "{:?}", once.body);
    let once = once.body["id"].as_str().unwrap().to_owned();
    let fires_of = |events: &[Value], job: &str| {
        events
            .iter()
            .filter(|e| e["data"]["cronJob"] == job)
            .count()
    };
    let deadline = Instant::now() + PATIENCE;
    while fires_of(&queued_turns(&cluster, 1, &session).await, &once) == 0 {
        assert!(Instant::now() < deadline, "the one-off never fired");
        tokio::time::sleep(POLL).await;
    }
    given_at_least(&cluster, 1, &session, 4).await;
    let firing = firing_nodes(&cluster);
    assert_eq!(firing.len(), 1, "one node fires the job: {firing:?}");
    let firer = firing[0];

    cluster.kill(firer).await;
    let live: Vec<usize> = (0..3).filter(|&i| i != firer).collect();
    let before = queued_turns(&cluster, live[0], &session).await.len();
    given_at_least(&cluster, live[0], &session, before + 4).await;
    let survivors: Vec<usize> = firing_nodes(&cluster)
        .into_iter()
        .filter(|&i| i != firer)
        .collect();
    assert_eq!(
        survivors.len(),
        1,
        "one live node took the schedule over: {survivors:?}"
    );
    // Paused through the live node that does not fire it: the firing node, which
    // read the job up to seconds ago, must not fire it again.
    let pauser = live
        .iter()
        .copied()
        .find(|&i| i != survivors[0])
        .expect("a second live node");
    let paused = call(
        cluster.url(pauser),
        reqwest::Method::POST,
        &format!("/api/v1/cron/{id}/pause"),
        None,
    )
    .await;
    assert_eq!(paused.status, 200, "{:?}", paused.body);
    let at_pause = queued_turns(&cluster, pauser, &session).await.len();
    // Three instants of the job's schedule (not a wait for a condition: nothing may
    // happen in it).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = queued_turns(&cluster, pauser, &session).await.len();
    assert!(
        after <= at_pause + 1,
        "a paused job fired {} more times",
        after - at_pause
    );

    // Every fire's run completes (one cut off by the kill goes on elsewhere).
    let deadline = Instant::now() + PATIENCE;
    let events = loop {
        let events = queued_turns(&cluster, live[0], &session).await;
        let mut open = Vec::new();
        for event in &events {
            let run_id = event["runId"].as_str().unwrap();
            let run = call(
                cluster.url(live[0]),
                reqwest::Method::GET,
                &format!("/api/v1/runs/{run_id}"),
                None,
            )
            .await;
            if run.body["status"] != "completed" {
                open.push((run_id.to_owned(), run.body["status"].clone()));
            }
        }
        if open.is_empty() {
            break events;
        }
        assert!(Instant::now() < deadline, "runs not completed: {open:?}");
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(
        fires_of(&events, &once),
        1,
        "the one-off fired again after the takeover: {events:?}"
    );
    let instants: BTreeSet<(&str, &str)> = events
        .iter()
        .map(|e| {
            let data = &e["data"];
            (
                data["cronJob"].as_str().unwrap(),
                data["scheduledFor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        instants.len(),
        events.len(),
        "an instant fired twice: {events:?}"
    );
    let runs: BTreeSet<&str> = events
        .iter()
        .map(|e| e["runId"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), events.len());
    let calls = cluster.model.requests().len();
    assert!(
        calls >= events.len() && calls <= events.len() + 1,
        "{calls} model calls for {} fires (one cut off by the kill may be asked again)",
        events.len()
    );
    cluster.finish().await;
}
