//! `read_logs`: the agent reads its own trail: its tenant's audit events and the
//! node's log records about its tenant, by level, time range, pattern and run. Never
//! another tenant's; every line is redacted again on its way out (all tool results
//! are), and the output is capped.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};
use crate::logs::LogRecord;
use crate::store::{AuditEvent, AuditEventKind, AuditFilter};

/// Most records one call returns, and most characters of output.
const MAX_RECORDS: usize = 200;
const MAX_CHARS: usize = 20_000;

/// Where a call's records come from, bound to the calling turn's tenant by the runtime.
#[async_trait]
pub trait RecordSource: Send + Sync + std::fmt::Debug {
    /// The tenant's audit events that pass `filter`.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, String>;
    /// The node's kept log records about the session, oldest first.
    fn logs(&self) -> Vec<LogRecord>;
}

/// The tool; it answers only when the runtime gave the call a [`RecordSource`].
pub struct ReadLogsTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// `audit`, `logs` or `both` (default).
    source: Option<String>,
    /// Least severe log level shown (default `info`).
    level: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// A regular expression the record's text must match.
    pattern: Option<String>,
    run_id: Option<String>,
    /// An audit event kind (`tool_call`, `review_decided`, ...).
    kind: Option<String>,
    limit: Option<usize>,
}

fn rank(level: &str) -> Option<u8> {
    Some(match level.to_ascii_lowercase().as_str() {
        "error" => 0,
        "warn" | "warning" => 1,
        "info" => 2,
        "debug" => 3,
        "trace" => 4,
        _ => return None,
    })
}

fn invalid(message: String) -> ToolError {
    ToolError::new(ToolErrorKind::InvalidArguments, message)
}

fn time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ToolError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| invalid(format!("{name} must be an RFC 3339 time: {e}")))
        })
        .transpose()
}

#[async_trait]
impl Tool for ReadLogsTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read_logs".into(),
            description: "Read your own trail: this session's audit events (turns, model and tool \
                calls, reviews and their decisions, credential use by key) and this node's log \
                records about this session. Filter by source, level, time range, \
                a regex pattern, run id or event kind; newest last, at most 200 records."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "source": {"type": "string", "enum": ["audit", "logs", "both"], "description": "Which records (default both)"},
                    "level": {"type": "string", "enum": ["error", "warn", "info", "debug", "trace"], "description": "Least severe log level shown (default info)"},
                    "since": {"type": "string", "description": "RFC 3339 time"},
                    "until": {"type": "string", "description": "RFC 3339 time"},
                    "pattern": {"type": "string", "description": "Regular expression the record must match"},
                    "run_id": {"type": "string", "description": "Only this run"},
                    "kind": {"type": "string", "description": "Only this audit event kind"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "description": "Most records (default 50)"}
                },
                "additionalProperties": false
            }),
            risk: RiskTier::ReadOnly,
        }
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = parse_args(args)?;
        let Some(source) = ctx.records.clone() else {
            return Err(ToolError::new(
                ToolErrorKind::Failed,
                "this runtime keeps no records for read_logs",
            ));
        };
        let which = args.source.as_deref().unwrap_or("both");
        let (audit, logs) = match which {
            "audit" => (true, false),
            "logs" => (false, true),
            "both" => (true, true),
            other => {
                return Err(invalid(format!(
                    "source {other:?}: use audit, logs or both"
                )));
            }
        };
        let level = match args.level.as_deref() {
            None => 2,
            Some(l) => rank(l).ok_or_else(|| invalid(format!("level {l:?} is not a log level")))?,
        };
        let pattern = args
            .pattern
            .as_deref()
            .map(|p| {
                regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| invalid(format!("pattern is not a regular expression: {e}")))
            })
            .transpose()?;
        let kind = args
            .kind
            .as_deref()
            .map(|k| {
                AuditEventKind::parse(k).ok_or_else(|| invalid(format!("unknown event kind {k:?}")))
            })
            .transpose()?;
        let since = time("since", args.since)?;
        let until = time("until", args.until)?;
        let limit = args.limit.unwrap_or(50).clamp(1, MAX_RECORDS);
        let matches = |text: &str| pattern.as_ref().is_none_or(|p| p.is_match(text));

        let mut lines: Vec<(DateTime<Utc>, String)> = Vec::new();
        if audit {
            let filter = AuditFilter {
                run_id: args
                    .run_id
                    .clone()
                    .map(crate::domain::RunId::new)
                    .transpose()
                    .map_err(|e| invalid(e.to_string()))?,
                kind,
                since,
                until,
                limit: Some(u32::try_from(MAX_RECORDS * 5).unwrap_or(1000)),
                ..AuditFilter::default()
            };
            let events = source.audit(&filter).await.map_err(|e| {
                ToolError::new(ToolErrorKind::Failed, format!("the audit log: {e}"))
            })?;
            for event in events {
                let text = format!(
                    "audit #{} {} {} actor={}{} {}",
                    event.seq,
                    event.created_at.to_rfc3339(),
                    event.kind.as_str(),
                    event.actor,
                    event
                        .run_id
                        .as_ref()
                        .map(|r| format!(" run={r}"))
                        .unwrap_or_default(),
                    event.data
                );
                if matches(&text) {
                    lines.push((event.created_at, text));
                }
            }
        }
        if logs && kind.is_none() {
            for record in source.logs() {
                let shown = rank(&record.level).is_some_and(|r| r <= level)
                    && since.is_none_or(|s| record.at >= s)
                    && until.is_none_or(|u| record.at <= u)
                    && args
                        .run_id
                        .as_deref()
                        .is_none_or(|run| record.run.as_deref() == Some(run));
                if !shown {
                    continue;
                }
                let text = format!(
                    "log {} {} {} {}",
                    record.at.to_rfc3339(),
                    record.level,
                    record.target,
                    record.message
                );
                if matches(&text) {
                    lines.push((record.at, text));
                }
            }
        }
        lines.sort_by_key(|(at, _)| *at);
        let skipped = lines.len().saturating_sub(limit);
        let mut out = String::new();
        if skipped > 0 {
            out.push_str(&format!(
                "({skipped} older records left out; narrow the filter)\n"
            ));
        }
        for (_, line) in lines.into_iter().skip(skipped) {
            if out.len() + line.len() > MAX_CHARS {
                out.push_str("(output cut at 20000 characters)\n");
                break;
            }
            out.push_str(&line);
            out.push('\n');
        }
        if out.is_empty() {
            out.push_str("no records match");
        }
        Ok(ToolOutput::text(out))
    }
}

/// Shared so the registry can hold the tool.
pub fn tool() -> Arc<dyn Tool> {
    Arc::new(ReadLogsTool)
}
