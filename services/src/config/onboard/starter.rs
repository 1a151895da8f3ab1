//! The starter files `facio onboard` writes. The config shows every area with its
//! defaults and says what each does; it must load unchanged (a test holds it to that).

/// The starter `config.json`, pointing the agent at `workspace`, with `token` as the
/// management token.
pub(super) fn config_json(workspace: &str, token: &str) -> String {
    // A path is data, not a template: keep a literal `${` from being substituted.
    let workspace = serde_json::Value::String(workspace.replace("${", "$${")).to_string();
    let token = serde_json::Value::String(token.to_owned()).to_string();
    CONFIG_TEMPLATE
        .replace("\"{{WORKSPACE}}\"", &workspace)
        .replace("\"{{TOKEN}}\"", &token)
}

const CONFIG_TEMPLATE: &str = r#"// Facio configuration (JSON with comments; trailing commas are fine).
//
// Keys are camelCase (snake_case works too). Any string may use ${VAR} to read an
// environment variable, or ${VAR:-fallback} when it may be unset; write $${ for a
// literal "${". Every key can also be overridden from the environment with FACIO_
// and "__" between keys, e.g. FACIO_API__PORT=9000 or
// FACIO_AGENTS__DEFAULTS__MODEL=gpt-4o. Relative paths are relative to this file.
{
  // What an agent runs with unless a session says otherwise.
  "agents": {
    "defaults": {
      // Model id; prefix it with a provider name to pick one, e.g. "anthropic/claude-sonnet-4-5".
      "model": "gpt-4o-mini",
      // The agent's files: AGENTS.md, SOUL.md, USER.md, memory/. Tools are confined here.
      "workspace": "{{WORKSPACE}}",
      // Most model calls in one turn, and most tokens per reply.
      "maxToolIterations": 50,
      "maxTokens": 4096,
      "temperature": 0.1,
      // How much context the model accepts; older history is trimmed to fit.
      "contextWindowTokens": 128000,
      // Seconds per provider call, and retries on 429/5xx/connection errors.
      "requestTimeoutS": 120,
      "maxRetries": 3,
    },
  },

  // Model backends by name. "anthropic" speaks Anthropic's API; any other name speaks
  // the OpenAI-compatible API. Keep keys in the environment, never in this file.
  "providers": {
    "openai": {
      "apiKey": "${OPENAI_API_KEY:-}",
      "apiBase": "${OPENAI_BASE_URL:-https://api.openai.com/v1}",
    },
    // "anthropic": { "apiKey": "${ANTHROPIC_API_KEY}" },
    // A local server (Ollama, vLLM, LM Studio): select it with model "ollama/llama3.1".
    // "ollama": { "apiBase": "http://localhost:11434/v1" },
  },

  // Limits and confinement for the built-in tools.
  "tools": {
    // Keep file tools and commands inside the workspace.
    "restrictToWorkspace": true,
    // Seconds any tool call may take.
    "timeoutS": 120,
    "exec": {
      "timeoutS": 60,
      "maxOutputChars": 10000,
      // "auto": commands run in an OS sandbox (writes only in the workspace, no
      // network unless granted, no process outlives its call); "off" opts out.
      "sandbox": "auto",
      // Regexes of refused commands. Setting this list replaces the built-in one,
      // which already refuses rm -rf /, mkfs, shutdown, fork bombs and the like.
      // "denyPatterns": ["\\bgit\\s+push\\b"],
    },
    "web": {
      "fetchMaxChars": 50000,
      // Private or loopback hosts web_fetch may reach anyway.
      "allowPrivateHosts": [],
    },
  },

  // The HTTP gateway. Binding beyond 127.0.0.1 exposes it to your network.
  "api": {
    "host": "127.0.0.1",
    "port": 8900,
    // The operator's bearer token for /api/v1 and the inbox (made at random by
    // `facio onboard`; FACIO_MANAGEMENT_TOKEN wins). Keep this file private.
    "managementToken": "{{TOKEN}}",
  },

  // Where state lives. Default: SQLite in the data directory (FACIO_DATA_DIR or ~/.facio).
  "storage": {
    // "url": "postgres://facio:${PGPASSWORD}@localhost/facio",
  },

  // The append-only audit log of every tool call and decision.
  "audit": {
    "maxFieldChars": 4000,
  },

  // Log output: a tracing filter ("info", "info,facio=debug"); RUST_LOG wins.
  "logging": {
    "level": "info",
    "format": "text", // or "json"
  },
}
"#;

/// Workspace files, relative to the workspace, with their starter text.
pub(super) const WORKSPACE_FILES: [(&str, &str); 5] = [
    ("AGENTS.md", AGENTS_MD),
    ("SOUL.md", SOUL_MD),
    ("USER.md", USER_MD),
    ("HEARTBEAT.md", HEARTBEAT_MD),
    ("memory/MEMORY.md", MEMORY_MD),
];

const AGENTS_MD: &str = "# Agent instructions

How to work in this workspace. This file is part of every system prompt.

- Read the relevant files before changing them; prefer small, reviewable edits.
- Say what you are about to do before running a command that changes things.
- When a tool returns an error, read it and adapt instead of repeating the call.
- Keep lasting facts about the user or the project in memory/MEMORY.md.
- Finish each turn with a short answer: what you did, what is left, what you need.
";

const SOUL_MD: &str = "# Soul

Who the agent is. Edit freely; this file is part of every system prompt.

- Helpful and direct: answer first, then explain if it helps.
- Honest about uncertainty; never invent results of commands or files not read.
- Careful with anything destructive or irreversible: ask first.
";

const USER_MD: &str = "# User

Facts about you that help the agent (this file is part of every system prompt).

- Name:
- Time zone:
- Preferred language and tone:
- Current projects:
";

const HEARTBEAT_MD: &str = "# Heartbeat

Tasks the agent checks on each periodic heartbeat. One task per line; leave the
list empty to do nothing.

<!-- Example:
- Every morning, summarize new files in inbox/.
-->
";

const MEMORY_MD: &str = "# Memory

Long-term notes the agent keeps across sessions (part of every system prompt).
Keep entries short and dated; remove what is no longer true.
";
