//! The store's conformance suite: every case is written once against `dyn Store` and
//! runs on each backend (SQLite in memory, SQLite in a file, PostgreSQL as an
//! ordinary role). What is specific to one backend stays beside it
//! (`sqlite/tests.rs`).

mod audit;
mod changes;
mod fencing;
mod harness;
mod migrate;
mod records;
mod runs;
mod sessions;
mod steps;

use serde_json::json;

use crate::domain::{ChatMessage, RunId, SessionKey, TenantId, Usage};
use crate::review::{ReviewId, ReviewRequest};
use crate::store::{
    AcceptStep, AuditEventKind, ModelReplyStep, ModelSpend, NewAuditEvent, NewReview, RunScope,
    StepEvent, Store,
};

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn key(name: &str) -> SessionKey {
    SessionKey::new(name).unwrap()
}

fn event(kind: AuditEventKind, n: i64) -> NewAuditEvent {
    NewAuditEvent {
        kind,
        session_key: Some(key("s")),
        run_id: None,
        actor: "agent".into(),
        data: json!({"n": n, "text": "caf\u{e9}", "ratio": 0.1, "big": 1e300}),
    }
}

/// A run of a session whose lease this node has just taken (as a session actor
/// takes it before its first step).
async fn scope(store: &dyn Store, tenant_name: &str, session: &str) -> RunScope {
    let lease = store
        .acquire_lease(
            &tenant(tenant_name),
            &key(session),
            &crate::domain::NodeId::new("conformance").unwrap(),
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    RunScope {
        tenant: tenant(tenant_name),
        session_key: key(session),
        run_id: RunId::generate(),
        actor: "agent".into(),
        epoch: lease.epoch,
    }
}

fn accept(input: &str) -> AcceptStep {
    AcceptStep {
        input: input.into(),
        user: ChatMessage::user(input),
        event: StepEvent::new(AuditEventKind::TurnStarted, json!({"input": input})),
    }
}

fn reply(message: ChatMessage) -> ModelReplyStep {
    ModelReplyStep {
        spend: ModelSpend {
            model: "m".into(),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
                total_tokens: 5,
            },
            cost_micros: 7,
        },
        message,
        event: StepEvent::new(AuditEventKind::ModelCall, json!({"ok": true})),
    }
}

fn approval_request() -> ReviewRequest {
    crate::review::request_from_tool_call(
        "ask_approval",
        &json!({"title": "Deploy?", "description": "ship v2"}),
    )
    .unwrap()
}

fn new_review(run: &RunScope, call_id: &str) -> NewReview {
    NewReview {
        id: ReviewId::generate(),
        session_key: run.session_key.clone(),
        run_id: run.run_id.clone(),
        call_id: call_id.into(),
        tool: "exec".into(),
        origin: "api".into(),
        request: approval_request(),
        context: json!({"arguments": {"command": "deploy"}}),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(24),
    }
}
