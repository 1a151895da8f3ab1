//! Opening a gate from inside a turn: persist, record, arm the timer, tell the caller.

use std::sync::Arc;

use chrono::Utc;
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::review::{ReviewId, ReviewRequest};
use facio_services::store::{
    AuditEventKind, Epoch, GateOpenedStep, NewReview, RunScope, StepEvent, StoreError,
};

use super::arm;
use crate::context::NodeContext;
use crate::context::Notice;

/// What a turn asks a human.
pub(crate) struct GateRequest {
    pub tenant: TenantId,
    pub session_key: SessionKey,
    pub run_id: RunId,
    /// The epoch of the session lease the opener holds.
    pub epoch: Epoch,
    pub call_id: String,
    pub tool: String,
    pub origin: String,
    pub request: ReviewRequest,
    /// Arguments, the policy's reason, the last messages: what a reviewer needs.
    pub context: serde_json::Value,
}

/// The review for a side-effecting call that was running when the process died.
pub(crate) fn in_doubt_request(
    tenant: TenantId,
    epoch: Epoch,
    run: &facio_services::store::RunRecord,
    call: &facio_services::domain::ToolCall,
) -> GateRequest {
    let arguments = call.arguments_value();
    let reason = "the process stopped while this call was running, so it may or may not have \
                  taken effect; it will not run again unless you approve";
    let description = format!(
        "`{}` was running when Facio stopped. Check whether it took effect, then approve to run \
         it again or reject to tell the agent it did not complete.\n\n```json\n{}\n```",
        call.name,
        serde_json::to_string_pretty(&arguments).unwrap_or_default()
    );
    let request = facio_services::review::request_from_tool_call(
        "ask_approval",
        &serde_json::json!({
            "title": format!("In doubt: run {} again?", call.name),
            "description": description,
            "allowComment": true,
        }),
    )
    .unwrap_or_else(|_| ReviewRequest {
        title: format!("In doubt: run {} again?", call.name),
        description: None,
        payload: facio_services::review::ReviewPayload::Freeform(
            facio_services::review::FreeformPayload {},
        ),
        timeout_s: facio_services::review::DEFAULT_REVIEW_TIMEOUT_S,
    });
    GateRequest {
        tenant,
        session_key: run.session_key.clone(),
        run_id: run.run_id.clone(),
        epoch,
        call_id: call.id.clone(),
        tool: call.name.clone(),
        origin: "interactive".to_owned(),
        request,
        context: serde_json::json!({"arguments": arguments, "reason": reason, "inDoubt": true}),
    }
}

/// Writes the review, moves the run to `awaiting_review`, records both and starts the
/// review's timer. The review exists in the store before anyone can see it.
pub(crate) async fn open_gate(
    deps: &Arc<NodeContext>,
    gate: GateRequest,
) -> Result<ReviewId, StoreError> {
    let mut gate = gate;
    // What a reviewer reads may come from the model: no terminal escapes, overrides
    // or invisible characters in it, whichever surface shows it.
    gate.request.title = facio_services::review::displayable(&gate.request.title, false);
    gate.request.description = gate
        .request
        .description
        .as_deref()
        .map(|d| facio_services::review::displayable(d, true));
    if let Some(reason) = gate.context.get("reason").and_then(|r| r.as_str()) {
        let shown = facio_services::review::displayable(reason, false);
        gate.context["reason"] = serde_json::Value::String(shown);
    }
    // The trace of the call that asked: the wait's span goes there once it is over.
    if let Some(traceparent) = facio_services::telemetry::traceparent() {
        gate.context["traceparent"] = serde_json::Value::String(traceparent);
    }
    let id = ReviewId::generate();
    let timeout_s = i64::try_from(gate.request.timeout_s).unwrap_or(i64::MAX);
    let expires_at = Utc::now() + chrono::Duration::seconds(timeout_s);
    let audit_data = serde_json::json!({
        "reviewId": id,
        "callId": gate.call_id,
        "tool": gate.tool,
        "origin": gate.origin,
        "type": gate.request.review_type(),
        "title": gate.request.title,
        "description": gate.request.description,
        "payload": gate.request.payload,
        "reason": gate.context.get("reason"),
        "arguments": gate.context.get("arguments"),
        "expiresAt": expires_at,
    });
    let scope = RunScope {
        tenant: gate.tenant.clone(),
        session_key: gate.session_key.clone(),
        run_id: gate.run_id.clone(),
        actor: "runtime".to_owned(),
        epoch: gate.epoch,
    };
    // One step: the review, the run waiting on it and both events. The inbox and the
    // review API read pending reviews from the store directly, so the review is
    // delivered there as it commits.
    let record = deps
        .store
        .record_gate_opened(
            &scope,
            GateOpenedStep {
                review: NewReview {
                    id: id.clone(),
                    session_key: gate.session_key.clone(),
                    run_id: gate.run_id.clone(),
                    call_id: gate.call_id,
                    tool: gate.tool,
                    origin: gate.origin,
                    request: gate.request,
                    context: gate.context,
                    expires_at,
                },
                events: vec![
                    StepEvent::new(AuditEventKind::ReviewRequested, audit_data),
                    StepEvent::new(
                        AuditEventKind::ReviewDelivered,
                        serde_json::json!({"reviewId": id, "surface": "inbox"}),
                    ),
                ],
            },
        )
        .await?;
    facio_services::telemetry::metrics().reviews_opened.add(
        1,
        &[
            facio_services::telemetry::metrics::tenant(&record.tenant),
            opentelemetry::KeyValue::new(
                facio_services::telemetry::names::REVIEW_TYPE,
                record.request.review_type().as_str(),
            ),
        ],
    );
    arm(deps.clone(), &record).await;
    super::placet::deliver(deps.clone(), record);
    let _ = deps.notices.send(Notice::RunChanged {
        tenant: gate.tenant,
        run_id: gate.run_id,
    });
    Ok(id)
}
