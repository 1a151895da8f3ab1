//! A human's decision, from any surface (API, inbox, CLI, Placet): validated against
//! the review's type, then applied once.

use std::sync::Arc;

use facio_services::domain::TenantId;
use facio_services::review::{ResponseError, ReviewId, ReviewOutcome, validate_response};
use facio_services::store::{
    AuditEventKind, NewAuditEvent, ReviewRecord, ReviewStatus, StoreError,
};
use facio_services::tenant_cache::TenantCacheEvent;

use super::{CloseError, close_review};
use crate::context::NodeContext;

/// A human's answer to a review.
#[derive(Debug, Clone)]
pub struct ReviewDecision {
    /// The Placet response shape of the review's type.
    pub response: serde_json::Value,
    pub reviewer: Option<String>,
    pub comment: Option<String>,
    /// Approve with edits: the arguments the gated call runs with instead of the ones
    /// the agent proposed (checked against the tool's schema here, and by the policy
    /// again before the call runs).
    pub edited_arguments: Option<serde_json::Value>,
}

/// Why a decision was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("review {0} does not exist")]
    NotFound(ReviewId),
    #[error("review {} is already {}", .0.id, .0.status.as_str())]
    Closed(Box<ReviewRecord>),
    #[error("the response does not fit the review: {0}")]
    Invalid(#[from] ResponseError),
    #[error("editedArguments: {0}")]
    BadEdit(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("vault: {0}")]
    Vault(#[from] facio_services::vault::VaultError),
}

impl From<CloseError> for ReviewError {
    fn from(e: CloseError) -> Self {
        match e {
            CloseError::NotFound(id) => Self::NotFound(id),
            CloseError::Closed(record) => Self::Closed(record),
            CloseError::Store(e) => Self::Store(e),
        }
    }
}

/// Applies a decision to a pending review and resumes its run. A second decision gets
/// [`ReviewError::Closed`]; the gated call runs at most once.
pub(crate) async fn decide(
    deps: &Arc<NodeContext>,
    tenant: &TenantId,
    id: &ReviewId,
    decision: ReviewDecision,
) -> Result<ReviewRecord, ReviewError> {
    let review = deps
        .store
        .get_review(tenant, id)
        .await?
        .ok_or_else(|| ReviewError::NotFound(id.clone()))?;
    if review.status != ReviewStatus::Pending {
        return Err(ReviewError::Closed(Box::new(review)));
    }
    let validated = validate_response(&review.request.payload, &decision.response)?;
    let reviewer = decision.reviewer.clone();
    let (mut outcome, secrets) =
        ReviewOutcome::decided(validated, reviewer, decision.comment.clone());
    if let Some(edited) = &decision.edited_arguments {
        check_edit(deps, &review, &outcome, edited).await?;
        if let ReviewOutcome::Decided { response, .. } = &mut outcome
            && let Some(fields) = response.as_object_mut()
        {
            fields.insert("editedArguments".to_owned(), edited.clone());
        }
    }
    // Password answers go to the vault before anything else sees the decision; the
    // outcome (and so the agent, history and audit) only holds `${credentials.KEY}`.
    // A form never replaces a credential the operator stored: a field named like an
    // existing key is stored under the next free one (`KEY_2`, ...), and the answer
    // the agent gets names that key.
    for (wanted, secret) in &secrets {
        let sealed = deps.vault.seal(secret)?;
        let key = create_free_key(deps, tenant, wanted, &sealed).await?;
        if &key != wanted {
            rename_placeholder(&mut outcome, wanted, &key);
        }
        deps.store
            .append_audit(
                tenant,
                NewAuditEvent {
                    kind: AuditEventKind::CredentialChanged,
                    session_key: Some(review.session_key.clone()),
                    run_id: Some(review.run_id.clone()),
                    actor: decision
                        .reviewer
                        .clone()
                        .unwrap_or_else(|| "reviewer".to_owned()),
                    data: if &key == wanted {
                        serde_json::json!({"key": key, "source": "review", "reviewId": id})
                    } else {
                        serde_json::json!({"key": key, "requestedKey": wanted, "source": "review",
                            "reviewId": id, "note": "the requested key already held a credential; it was kept"})
                    },
                },
            )
            .await?;
    }
    Ok(close_review(deps, tenant, id, outcome, decision.reviewer.as_deref()).await?)
}

/// Stores a form's secret under `wanted`, or under the first of `wanted_2`,
/// `wanted_3`, ... that is free; never over an existing credential.
async fn create_free_key(
    deps: &Arc<NodeContext>,
    tenant: &TenantId,
    wanted: &str,
    sealed: &facio_services::vault::Sealed,
) -> Result<String, ReviewError> {
    for n in 1..=1000u32 {
        let key = if n == 1 {
            wanted.to_owned()
        } else {
            format!("{wanted}_{n}")
        };
        match deps
            .store
            .create_credential(tenant, &key, sealed, false)
            .await
        {
            Ok(()) => {
                // The run resumes with this credential: its turn must open it.
                deps.tenants
                    .changed(TenantCacheEvent::Credentials(tenant.clone()));
                return Ok(key);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ReviewError::Store(StoreError::Conflict(format!(
        "no free credential key like {wanted}"
    ))))
}

/// Points the answer's `${credentials.WANTED}` at the key the secret was stored under.
fn rename_placeholder(outcome: &mut ReviewOutcome, wanted: &str, key: &str) {
    let ReviewOutcome::Decided { response, .. } = outcome else {
        return;
    };
    let from = facio_services::review::credential_placeholder(wanted);
    let to = facio_services::review::credential_placeholder(key);
    if let Some(fields) = response.as_object_mut() {
        for value in fields.values_mut() {
            if value.as_str() == Some(from.as_str()) {
                *value = serde_json::Value::String(to.clone());
            }
        }
    }
}

/// Whether `edited` may replace the arguments of the call `review` gates: only when
/// approving a gated call (not an agent's own question, not an in-doubt check), and
/// only with an object the tool's schema takes (required fields present, no unknown
/// ones, the declared JSON types).
async fn check_edit(
    deps: &Arc<NodeContext>,
    review: &ReviewRecord,
    outcome: &ReviewOutcome,
    edited: &serde_json::Value,
) -> Result<(), ReviewError> {
    let bad = |why: &str| Err(ReviewError::BadEdit(why.to_owned()));
    let approved = matches!(outcome, ReviewOutcome::Decided { response, .. }
        if response.get("selectedOption").and_then(|o| o.as_str()) == Some("approve"));
    if !approved {
        return bad("arguments can be edited only when approving");
    }
    if review.tool.starts_with("ask_") || review.context.get("inDoubt").is_some() {
        return bad("only a gated call's arguments can be edited");
    }
    let Some(fields) = edited.as_object() else {
        return bad("must be a JSON object of the tool's arguments");
    };
    // An edit cannot bring in a credential the proposed call did not use.
    let proposed = facio_services::vault::placeholder_keys(
        &review
            .context
            .get("arguments")
            .map(|a| a.to_string())
            .unwrap_or_default(),
    );
    for key in facio_services::vault::placeholder_keys(&edited.to_string()) {
        if !proposed.contains(&key) {
            return Err(ReviewError::BadEdit(format!(
                "uses the credential {key}, which the proposed call did not"
            )));
        }
    }
    let Some(tool) = deps.tool(&review.tenant, &review.tool).await else {
        return bad("the tool is not known to this node");
    };
    let schema = tool.spec().parameters;
    let properties = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .cloned()
        .unwrap_or_default();
    for required in schema
        .get("required")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
    {
        if !fields.contains_key(required) {
            return Err(ReviewError::BadEdit(format!("{required} is required")));
        }
    }
    for (name, value) in fields {
        let Some(property) = properties.get(name) else {
            return Err(ReviewError::BadEdit(format!(
                "{name} is not an argument of {}",
                review.tool
            )));
        };
        let fits = match property.get("type").and_then(|t| t.as_str()) {
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some("array") => value.is_array(),
            Some("object") => value.is_object(),
            _ => true,
        };
        if !fits {
            return Err(ReviewError::BadEdit(format!("{name} has the wrong type")));
        }
    }
    Ok(())
}
