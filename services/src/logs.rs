//! The node's recent log records, kept in memory for the agent's `read_logs` tool:
//! a bounded ring (the oldest record goes first), each record already redacted of
//! every secret the process knows, and tagged with the tenant and run it names.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many records the node keeps.
const KEPT: usize = 5_000;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    pub at: DateTime<Utc>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    pub target: String,
    /// The message and its other fields, redacted.
    pub message: String,
    /// The tenant the record is about (its `tenant` field), if it names one.
    pub tenant: Option<String>,
    /// The run it is about (its `run` or `run_id` field), if it names one.
    pub run: Option<String>,
    /// The session it is about (its `session` field), if it names one.
    pub session: Option<String>,
}

fn ring() -> &'static Mutex<VecDeque<LogRecord>> {
    static RING: OnceLock<Mutex<VecDeque<LogRecord>>> = OnceLock::new();
    RING.get_or_init(|| Mutex::new(VecDeque::with_capacity(KEPT)))
}

/// Keeps `record` (redacting its message first).
pub fn keep(mut record: LogRecord) {
    if let Some(clean) = crate::vault::redact_known(&record.message) {
        record.message = clean;
    }
    // A provider's error body can be large; a record keeps its first 4 KiB.
    if record.message.len() > 4096 {
        let mut end = 4096;
        while !record.message.is_char_boundary(end) {
            end -= 1;
        }
        record.message.truncate(end);
        record.message.push('…');
    }
    if let Ok(mut ring) = ring().lock() {
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(record);
    }
}

/// The kept records about one session of `tenant`, oldest first. Records that name
/// no tenant, another tenant or another session are never returned.
pub fn of_session(tenant: &str, session: &str) -> Vec<LogRecord> {
    ring()
        .lock()
        .map(|ring| {
            ring.iter()
                .filter(|r| {
                    r.tenant.as_deref() == Some(tenant) && r.session.as_deref() == Some(session)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}
