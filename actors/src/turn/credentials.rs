//! The tenant's credentials during a turn: opened from the vault when the turn starts
//! (to redact its input), handed to tools for `${credentials.KEY}` placeholders, and used to redact
//! every tool result before the model, the history or the audit log see it.

use std::sync::Arc;

use facio_services::vault::Secrets;

use super::{StopReason, TurnError, TurnTask};

impl TurnTask {
    /// The tenant's credentials, taken once per turn from the tenant cache (opened
    /// from the vault only when they changed or the cached ones are old).
    pub(super) async fn secrets(&self) -> Result<Arc<Secrets>, TurnError> {
        self.secrets
            .get_or_try_init(|| async {
                self.deps
                    .tenants
                    .credentials(self.deps.store.as_ref(), &self.deps.vault, &self.tenant)
                    .await
                    .map_err(|e| TurnError::Stopped(StopReason::Internal(e.to_string())))
            })
            .await
            .cloned()
    }

    /// `text` with every credential value the turn has opened redacted.
    pub(super) fn redact(&self, text: String) -> String {
        match self.secrets.get() {
            Some(secrets) if !secrets.is_empty() => secrets.redact(&text),
            _ => text,
        }
    }
}
