//! Start-up recovery: turns that were running when the process stopped are closed as
//! `interrupted`, and tool calls left without a result get one that says so, so the
//! next turn's history never holds a call without its result.
//!
//! A run none of whose side-effecting calls had started goes on instead, from its last
//! recorded step: read-only calls that had started are simply run again
//! ([`can_continue`], [`retry_read_only`]); its session's next owner (this node after a
//! restart, another node after a failover) continues it.
//!
//! A call with side effects that had started when the process died may or may not have
//! taken effect. It is never re-run silently and never silently dropped: its run stays
//! open and the call goes back to a human as "in doubt".

use facio_services::domain::{ChatMessage, NodeId, TenantId, ToolCall};
use facio_services::store::{
    AuditEventKind, Lease, NewAuditEvent, RunRecord, RunStatus, Store, StoreError, ToolCallStatus,
};

/// What recovery found and closed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecoveryReport {
    pub interrupted_runs: usize,
    pub orphaned_tool_calls: usize,
    /// Side-effecting calls that started but never finished; each needs a human.
    /// Each with its session's lease, still held: its gate opens under it.
    pub in_doubt: Vec<(RunRecord, ToolCall, Lease)>,
    /// Sessions whose running run goes on from its last recorded step once their
    /// actor takes them (nothing of it is closed here).
    pub continued: Vec<facio_services::domain::SessionKey>,
}

/// The result a read-only call that was cut off gets before it runs again.
const RETRIED: &str = "retried: the process running this read-only call stopped; it runs again";

const IN_DOUBT: &str = "in doubt: the process stopped while this call was running";

pub(crate) async fn recover(
    store: &dyn Store,
    tenant: &TenantId,
    side_effecting: &(dyn Fn(&str) -> bool + Sync),
    node: &NodeId,
    lease_ttl: std::time::Duration,
) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport::default();
    for run in store.running_runs(tenant).await? {
        // Only a run whose session nobody else holds is this node's to close: on a
        // shared database another live node may be running it right now.
        let lease = match store
            .acquire_lease(tenant, &run.session_key, node, lease_ttl)
            .await
        {
            Ok(lease) => lease,
            Err(StoreError::LeaseHeld { owner, .. }) => {
                tracing::info!(run = %run.run_id, owner = %owner, "a running turn belongs to a live node; left to it");
                continue;
            }
            Err(e) => return Err(e),
        };
        if can_continue(store, tenant, &run, side_effecting).await? {
            // Its session's actor takes it over and goes on with it.
            store.release_lease(&lease).await?;
            report.continued.push(run.session_key.clone());
            facio_services::telemetry::metrics()
                .lease_takeovers
                .add(1, &[facio_services::telemetry::metrics::tenant(tenant)]);
            continue;
        }
        let mut doubt = None;
        let closed =
            recover_run(store, tenant, side_effecting, &run, &mut report, &mut doubt).await;
        match doubt {
            // Kept until its gate has opened: no other node may take the session
            // while its run waits, unanswered, for a human.
            Some((run, call)) if closed.is_ok() => report.in_doubt.push((run, call, lease)),
            _ => store.release_lease(&lease).await?,
        }
        closed?;
    }
    Ok(report)
}

/// Whether a run left `running` by an owner that is gone can simply go on: none of
/// its side-effecting calls had started without finishing (such a call may or may
/// not have taken effect, and is settled by [`recover_run`] instead). Read-only calls
/// that had started run again ([`retry_read_only`]).
pub(crate) async fn can_continue(
    store: &dyn Store,
    tenant: &TenantId,
    run: &RunRecord,
    side_effecting: &(dyn Fn(&str) -> bool + Sync),
) -> Result<bool, StoreError> {
    Ok(store
        .tool_calls(tenant, &run.run_id)
        .await?
        .iter()
        .all(|c| c.status != ToolCallStatus::Started || !side_effecting(&c.tool)))
}

/// Settles the read-only calls of `run` that had started when their node stopped, so
/// the run, going on, runs them again (their calls stay unanswered in the history).
/// Returns how many.
pub(crate) async fn retry_read_only(
    store: &dyn Store,
    tenant: &TenantId,
    run: &RunRecord,
) -> Result<usize, StoreError> {
    let started: Vec<_> = store
        .tool_calls(tenant, &run.run_id)
        .await?
        .into_iter()
        .filter(|c| c.status == ToolCallStatus::Started)
        .collect();
    for call in &started {
        store
            .tool_call_finished(
                tenant,
                &run.run_id,
                &call.call_id,
                ToolCallStatus::Failed,
                RETRIED,
            )
            .await?;
    }
    Ok(started.len())
}

/// Closes one run left running, under its session's lease.
pub(crate) async fn recover_run(
    store: &dyn Store,
    tenant: &TenantId,
    side_effecting: &(dyn Fn(&str) -> bool + Sync),
    run: &RunRecord,
    report: &mut RecoveryReport,
    doubt_found: &mut Option<(RunRecord, ToolCall)>,
) -> Result<(), StoreError> {
    {
        let history: Vec<ChatMessage> = store
            .history(tenant, &run.session_key)
            .await?
            .into_iter()
            .map(|m| m.message)
            .collect();
        let orphans = facio_services::context::unanswered_tool_calls(&history);
        let started: Vec<String> = store
            .tool_calls(tenant, &run.run_id)
            .await?
            .into_iter()
            .filter(|c| c.status == ToolCallStatus::Started)
            .map(|c| c.call_id)
            .collect();
        if let Some(doubt) = orphans
            .iter()
            .find(|c| started.contains(&c.id) && side_effecting(&c.name))
        {
            // The run stays open: calls that never started stay unanswered and run on
            // resume; read-only ones are simply retried; the doubtful one asks a human.
            for call in orphans.iter().filter(|c| started.contains(&c.id)) {
                store
                    .tool_call_finished(
                        tenant,
                        &run.run_id,
                        &call.id,
                        ToolCallStatus::Failed,
                        IN_DOUBT,
                    )
                    .await?;
            }
            *doubt_found = Some((run.clone(), doubt.clone()));
            return Ok(());
        }
        let mut results = Vec::new();
        for call in &orphans {
            let text = if started.contains(&call.id) {
                "interrupted: the process stopped while this tool call was running; it may or may not \
                 have taken effect. Check before repeating it."
            } else {
                "interrupted: the process stopped before this tool call ran; it did not run."
            };
            results.push(ChatMessage::tool_result(
                call,
                serde_json::json!({"error": {"type": "interrupted", "message": text}}).to_string(),
            ));
            if started.contains(&call.id) {
                store
                    .tool_call_finished(tenant, &run.run_id, &call.id, ToolCallStatus::Failed, text)
                    .await?;
            }
        }
        if !results.is_empty() {
            store
                .append_messages(tenant, &run.session_key, Some(&run.run_id), &results)
                .await?;
        }
        store
            .finish_run(tenant, &run.run_id, RunStatus::Interrupted, None, run.usage)
            .await?;
        store
            .append_audit(
                tenant,
                NewAuditEvent {
                    kind: AuditEventKind::TurnFinished,
                    session_key: Some(run.session_key.clone()),
                    run_id: Some(run.run_id.clone()),
                    actor: "system".to_owned(),
                    data: serde_json::json!({
                        "status": "interrupted",
                        "reason": "the process stopped while this turn was running",
                        "toolCallsInDoubt": orphans.iter().filter(|c| started.contains(&c.id)).count(),
                    }),
                },
            )
            .await?;
        report.interrupted_runs += 1;
        report.orphaned_tool_calls += orphans.len();
    }
    Ok(())
}
