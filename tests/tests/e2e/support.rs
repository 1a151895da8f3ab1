//! What every end-to-end test starts from: a temp directory with a workspace, a
//! config pointing at a scripted model, and ways to run Facio through its real doors
//! (the SDK in-process, the `facio` binary as a process).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use facio_tests::binary::workspace_binary;
use facio_tests::model::{Reply, ScriptedModel};
use facio_tests::process::{FacioProcess, free_port};
use serde_json::{Value, json};

/// How long a test waits for something that should take well under a second.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A temp directory holding `config.json`, `workspace/` and `data/`, wired to a
/// scripted model.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub model: ScriptedModel,
    pub config: Value,
}

impl Env {
    /// An environment whose model answers with `replies`, in order.
    pub async fn new(replies: Vec<Reply>) -> Env {
        let model = ScriptedModel::start(replies)
            .await
            .expect("start the scripted model");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("workspace")).expect("workspace dir");
        let config = json!({
            "agents": {"defaults": {
                "model": "scripted-1",
                "provider": "scripted",
                "maxToolIterations": 10,
                "requestTimeoutS": 20,
                "maxRetries": 2
            }},
            "providers": {"scripted": {"apiKey": "sk-test-not-secret", "apiBase": model.base_url()}},
            "storage": {"dataDir": dir.path().join("data")},
            "api": {"host": "127.0.0.1", "port": 0},
            "logging": {"level": "info"}
        });
        let env = Env { dir, model, config };
        env.write_config();
        env
    }

    /// Changes one config value by JSON pointer (`/agents/defaults/maxToolIterations`)
    /// and rewrites `config.json`.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
        let target = self
            .config
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {parent}"));
        target.insert(key.to_owned(), value);
        self.write_config();
        self
    }

    fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("config JSON");
        std::fs::write(self.config_path(), text).expect("write config.json");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("data").join("facio.db")
    }

    /// The SDK, embedded in this test's process.
    pub async fn sdk(&self) -> facio::Facio {
        facio::Facio::from_config(self.config_path(), self.workspace())
            .await
            .expect("start the embedded runtime")
    }

    /// Runs `facio ARGS --config CONFIG --workspace WORKSPACE` to completion.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(facio_bin());
        command
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .arg("--workspace")
            .arg(self.workspace())
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("facio CLI finished in time")
            .expect("run facio CLI")
    }

    /// Starts `facio serve` on a free port and waits until it listens.
    pub async fn serve(&self) -> Gateway {
        self.serve_with(&[]).await
    }

    /// [`Self::serve`] with these environment variables set for the process.
    pub async fn serve_with(&self, vars: &[(&str, &str)]) -> Gateway {
        let port = free_port().expect("free port").to_string();
        let config = self.config_path();
        let workspace = self.workspace();
        let process = FacioProcess::spawn(
            facio_bin(),
            &[
                "serve",
                "--config",
                path_str(&config),
                "--workspace",
                path_str(&workspace),
                "--port",
                &port,
            ],
            vars,
            self.dir.path(),
        )
        .expect("spawn facio serve");
        let line = process
            .wait_for_line(r"listening on http://", PATIENCE)
            .await
            .expect("facio serve announced its address");
        let url = line
            .split("listening on ")
            .nth(1)
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .expect("address in the listening line");
        let token = self
            .config
            .pointer("/api/managementToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Gateway {
            process,
            url,
            token,
        }
    }
}

/// A running `facio serve`.
pub struct Gateway {
    pub process: FacioProcess,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The management token of its config, if any: once auth is configured `/v1`
    /// takes a token too.
    pub token: Option<String>,
}

impl Gateway {
    pub async fn post_chat(&self, body: &Value, session: Option<&str>) -> reqwest::Response {
        let mut request = http()
            .post(format!("{}/v1/chat/completions", self.url))
            .json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = session {
            request = request.header("X-Session-Key", session);
        }
        request.send().await.expect("POST /v1/chat/completions")
    }
}

/// Calls the management API (`/api/v1{path}`) with a bearer token; returns the status
/// and the JSON body (null when there is none).
pub async fn management(
    gateway: &Gateway,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http()
        .request(method, format!("{}/api/v1{path}", gateway.url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("call the management API");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Decides review `review` through the management API with `decision`; returns the
/// status and the answer.
pub async fn decide(gateway: &Gateway, token: &str, review: &str, decision: Value) -> (u16, Value) {
    management(
        gateway,
        token,
        reqwest::Method::POST,
        &format!("/reviews/{review}/decide"),
        Some(decision),
    )
    .await
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// The `facio` binary, built once per test run into this test's target directory.
pub fn facio_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_binary("facio", "facio").expect("build the facio binary"))
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every `content` string of the messages a recorded request carried, joined.
pub fn request_text(request: &facio_tests::model::RecordedRequest) -> String {
    request
        .messages()
        .iter()
        .map(|m| m.get("content").and_then(Value::as_str).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The tool-role messages of a recorded request, as (tool_call_id, content).
pub fn tool_results(request: &facio_tests::model::RecordedRequest) -> Vec<(String, String)> {
    request
        .messages()
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| {
            (
                m.get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                m.get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// Every tool result the model was sent, in order.
pub fn tool_result_texts(env: &Env) -> Vec<String> {
    env.model
        .requests()
        .iter()
        .flat_map(tool_results)
        .map(|(_, content)| content)
        .collect()
}

/// The last tool result the model was sent that holds `needle` (panics, listing them
/// all, when none does).
pub fn tool_result_with(env: &Env, needle: &str) -> String {
    let all = tool_result_texts(env);
    all.iter()
        .rfind(|c| c.contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no tool result holds {needle:?}: {all:#?}"))
}

/// A signed token for `tenant` with `role`, from `facio tokens create` (10 minutes).
pub async fn token(env: &Env, tenant: &str, role: &str) -> String {
    let output = env
        .cli(&[
            "tokens", "create", "--tenant", tenant, "--role", role, "--ttl", "10m",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output).trim().to_owned()
}

/// A free loopback port, as a command-line argument.
pub fn free_port_string() -> String {
    free_port().expect("free port").to_string()
}

/// Follows a run's SSE events (`GET /api/v1/runs/{id}/events`) until `pick` returns
/// something for one of the run states it sends; `None` when the stream ends first.
/// Panics after [`PATIENCE`].
pub async fn follow_run<T>(
    gateway: &Gateway,
    token: &str,
    run_id: &str,
    mut pick: impl FnMut(&Value) -> Option<T>,
) -> Option<T> {
    let follow = async {
        let mut response = http()
            .get(format!("{}/api/v1/runs/{run_id}/events", gateway.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("follow the run's events");
        let mut buffer = String::new();
        let mut seen = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            let lines: Vec<&str> = buffer.lines().collect();
            // The last line may be cut short; read it with the next chunk.
            let complete = if buffer.ends_with('\n') {
                lines.len()
            } else {
                lines.len().saturating_sub(1)
            };
            for line in &lines[seen..complete] {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                if let Ok(run) = serde_json::from_str::<Value>(data)
                    && let Some(found) = pick(&run)
                {
                    return Some(found);
                }
            }
            seen = complete;
        }
        None
    };
    tokio::time::timeout(PATIENCE, follow)
        .await
        .expect("the run moved on in time")
}
