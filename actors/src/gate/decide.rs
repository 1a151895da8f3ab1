//! A human's decision, from any surface (API, inbox, CLI, Placet): validated against
//! the review's type, then applied once.

use std::sync::Arc;

use facio_services::domain::TenantId;
use facio_services::review::{ResponseError, ReviewId, ReviewOutcome, validate_response};
use facio_services::store::{
    AuditEventKind, NewAuditEvent, ReviewRecord, ReviewStatus, StoreError,
};

use super::{CloseError, close_review};
use crate::turn::TurnDeps;

/// A human's answer to a review.
#[derive(Debug, Clone)]
pub struct ReviewDecision {
    /// The Placet response shape of the review's type.
    pub response: serde_json::Value,
    pub reviewer: Option<String>,
    pub comment: Option<String>,
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
    deps: &Arc<TurnDeps>,
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
    deps: &Arc<TurnDeps>,
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
            Ok(()) => return Ok(key),
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
