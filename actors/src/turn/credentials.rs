//! The tenant's credentials during a turn: opened from the vault on the first tool
//! call, handed to tools for `${credentials.KEY}` placeholders, and used to redact
//! every tool result before the model, the history or the audit log see it.

use std::sync::Arc;

use facio_services::vault::Secrets;

use super::{StopReason, TurnError, TurnTask};

impl TurnTask {
    /// The tenant's credentials, opened once per turn.
    pub(super) async fn secrets(&self) -> Result<Arc<Secrets>, TurnError> {
        self.secrets
            .get_or_try_init(|| async {
                let rows = self.deps.store.list_credentials(&self.tenant).await?;
                let mut entries = Vec::with_capacity(rows.len());
                for row in rows {
                    let value = self.deps.vault.open_sealed(&row.sealed).map_err(|e| {
                        TurnError::Stopped(StopReason::Internal(format!(
                            "credential {}: {e}",
                            row.key
                        )))
                    })?;
                    entries.push((row.key, value, row.exposed));
                }
                Ok(Arc::new(Secrets::new(entries)))
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
