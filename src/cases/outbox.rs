//! Operators' hands on the outbox: send a message again now (`retry`), or
//! never (`cancel`). The rules are here, once, for every door: a sent
//! message cannot be retried or cancelled, a suppressed one is released
//! only by its own rule (`cases release-receipt`), and each change leaves
//! a timeline entry on the case and an audit entry, in one transaction.

use super::service::{Change, record};
use super::{CaseError, Cases, Principal};
use crate::model::case::EventKind;
use crate::store::audit::AuditAction;
use crate::store::outbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxAction {
    Retry,
    Cancel,
}

impl Cases {
    /// Retries or cancels outbox message `id`, acting for `principal`,
    /// who must be allowed its case.
    pub async fn outbox_change(
        &self,
        principal: &Principal,
        id: i64,
        action: OutboxAction,
    ) -> Result<(), CaseError> {
        let entry = outbox::entry_state(&self.store, id)
            .await?
            .ok_or(CaseError::NoOutboxEntry(id))?;
        // A case the principal may not see: its messages do not exist.
        let case = self
            .open(principal, &entry.case_reference)
            .await
            .map_err(|e| match e {
                CaseError::NotFound(_) => CaseError::NoOutboxEntry(id),
                other => other,
            })?;
        let refuse = |why| CaseError::OutboxState {
            id,
            state: entry.state.clone(),
            why,
        };
        match (entry.state.as_str(), action) {
            ("sent", _) => return Err(refuse("it has gone; nothing to change")),
            ("suppressed", OutboxAction::Cancel) => return Err(refuse("it will not be sent")),
            ("suppressed", OutboxAction::Retry) if !entry.has_body => {
                return Err(refuse("nothing was written for it (see its reason)"));
            }
            ("suppressed", OutboxAction::Retry) => {
                return Err(refuse(
                    "a held receipt is released with `cases release-receipt`",
                ));
            }
            _ => {}
        }
        let now = self.now();
        let who = case.principal().who();
        let mut tx = self.store.write().await?;
        let (changed, timeline, audit_action, audit) = match action {
            OutboxAction::Retry => (
                outbox::retry_now(&mut tx, id, &entry.state, now).await?,
                format!("{} (outbox {id}) queued again by an operator", entry.kind),
                AuditAction::OutboxRetry,
                format!("outbox {id} retried"),
            ),
            OutboxAction::Cancel => (
                outbox::cancel(&mut tx, id, &entry.state, "cancelled by an operator").await?,
                format!("{} (outbox {id}) cancelled by an operator", entry.kind),
                AuditAction::OutboxCancel,
                format!("outbox {id} cancelled"),
            ),
        };
        if !changed {
            return Err(refuse("it changed meanwhile; look again"));
        }
        record(
            &mut tx,
            self.store.sealer(),
            &case,
            &who,
            now,
            Change {
                event: EventKind::Outbox,
                timeline: &timeline,
                action: audit_action,
                audit: &audit,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
