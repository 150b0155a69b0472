//! Triage of what a public security address receives: junk in bulk, and
//! promoting a report that forgot the subject flag.
//!
//! Bulk triage selects, within the organisation of a case the analyst has
//! open, every case from the same sender, the same domain, the same
//! client address, or with the same text (blind selector terms written at
//! filing, `search::Selector`), and moves those that may to `junk`: one
//! action, a timeline entry on each case, one audit entry for the batch.
//! Promotion turns an unflagged case into a disclosure case: the clocks run
//! from its arrival, as they always did, and the receipt goes out by the
//! same rules and limits as at intake.

use super::filing::client_ip;
use super::principal::{Authorized, Case};
use super::search::{self, Selector};
use super::service::{Cases, move_case, record};
use super::{CaseError, CaseKind, CaseState, EventKind, Reason};
use crate::model::report::Language;
use crate::model::thread::MessageKind;
use crate::outbound::{self, ReceiptFacts, Recipient};
use crate::store::audit::{self, AuditAction};
use crate::store::cases::{self as repo, triage};

/// Cases one bulk action moves at most: a flood larger than this takes
/// another action (the outcome says how many are left), so no single
/// transaction holds the store's write lock for long.
pub const MAX_BULK: usize = 10_000;

/// What a bulk action does to the cases it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Junk,
}

impl BulkAction {
    pub fn parse(s: &str) -> Option<BulkAction> {
        (s == "junk").then_some(BulkAction::Junk)
    }

    fn target(self) -> CaseState {
        match self {
            BulkAction::Junk => CaseState::Junk,
        }
    }
}

/// What a bulk action found and did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BulkOutcome {
    /// Cases the selector found in the organisation (the case itself too).
    pub selected: usize,
    /// Those moved (or, in a dry run, that would be).
    pub moved: Vec<String>,
    /// Selected but already there, or in a state that cannot move.
    pub unchanged: usize,
    /// Movable beyond `MAX_BULK`, left for another action.
    pub left: usize,
    pub dry_run: bool,
}

impl Cases {
    /// The value of `by` for `case`: its sender, their domain, the client
    /// that delivered it, or a digest of its text (as filing indexed them).
    async fn selector_value(
        &self,
        tx: &mut crate::store::WriteTx<'_>,
        case: &Case,
        by: Selector,
    ) -> Result<String, CaseError> {
        let sealer = self.store.sealer();
        let report = repo::message_of_kind(tx, sealer, case.id, MessageKind::Report).await?;
        let report = match report {
            Some(r) => Some(r),
            None => repo::message_of_kind(tx, sealer, case.id, MessageKind::CoveringNote).await?,
        };
        let mail = triage::first_mail(tx, case.id).await?;
        let client = mail
            .as_ref()
            .map(|m| client_ip(&m.peer))
            .unwrap_or_default();
        let Some(report) = report else {
            // Filed before its text was kept: nothing to compare by.
            return Err(CaseError::NoSelector {
                reference: case.reference.clone(),
                by: by.as_str(),
            });
        };
        search::selectors(&report.sender, &client, &report.text)
            .into_iter()
            .find(|(s, v)| *s == by && !v.is_empty())
            .map(|(_, v)| v)
            .ok_or_else(|| CaseError::NoSelector {
                reference: case.reference.clone(),
                by: by.as_str(),
            })
    }

    /// Applies `action` to every case of `like`'s organisation that shares
    /// its `by`; with `dry_run`, only says which.
    pub async fn bulk(
        &self,
        like: &Authorized<Case>,
        by: Selector,
        action: BulkAction,
        dry_run: bool,
    ) -> Result<BulkOutcome, CaseError> {
        let sealer = self.store.sealer();
        let now = self.now();
        let mut tx = self.store.write().await?;
        let value = self.selector_value(&mut tx, like, by).await?;
        let terms = search::selector_terms(sealer, std::slice::from_ref(&like.org), by, &value);
        let found: Vec<triage::Selected> = triage::cases_with_terms(&mut tx, &terms)
            .await?
            .into_iter()
            .filter(|c| c.org == like.org)
            .collect();
        let target = action.target();
        let (movable, unchanged): (Vec<_>, Vec<_>) =
            found.iter().partition(|c| c.state.may_become(target));
        let left = movable.len().saturating_sub(MAX_BULK);
        let moving: Vec<&triage::Selected> = movable.into_iter().take(MAX_BULK).collect();
        let outcome = BulkOutcome {
            selected: found.len(),
            moved: moving.iter().map(|c| c.reference.clone()).collect(),
            unchanged: unchanged.len(),
            left,
            dry_run,
        };
        if dry_run || moving.is_empty() {
            return Ok(outcome);
        }
        let who = like.principal().who();
        let reason = Reason::new(Some(&format!(
            "bulk: same {} as {}",
            by.as_str(),
            like.reference
        )))?;
        for c in &moving {
            let case = Case {
                id: c.id,
                reference: c.reference.clone(),
                org: c.org.clone(),
            };
            move_case(&mut tx, sealer, &case, &who, target, &reason, now, false).await?;
        }
        let summary = format!(
            "{} case(s) moved to {}, selected by {} like {}",
            moving.len(),
            target.as_str(),
            by.as_str(),
            like.reference
        );
        audit::record(
            &mut tx,
            sealer,
            &who.entry(AuditAction::Bulk, &like.reference, &summary),
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Makes an unflagged case a disclosure report: its clocks run from
    /// its arrival, and the receipt goes out (or is suppressed, saying
    /// why) by the rules and limits intake applies. Returns where the
    /// receipt goes, if anywhere.
    pub async fn promote(&self, case: &Authorized<Case>) -> Result<Option<String>, CaseError> {
        let sealer = self.store.sealer();
        let now = self.now();
        let mut tx = self.store.write().await?;
        let standing = triage::standing(&mut tx, sealer, case.id, &case.reference).await?;
        if standing.kind != CaseKind::Unflagged {
            return Err(CaseError::NotUnflagged {
                reference: case.reference.clone(),
                kind: standing.kind.as_str(),
            });
        }
        if !standing.state.is_open() {
            return Err(CaseError::NotOpen {
                reference: case.reference.clone(),
                state: standing.state.as_str(),
            });
        }
        let policy = self
            .policies
            .get(&case.org)
            .ok_or_else(|| CaseError::NoPolicy(case.org.clone()))?;
        triage::set_kind(&mut tx, case.id, CaseKind::Disclosure).await?;
        let facts = repo::reply_facts(&mut tx, sealer, case.id, &case.reference).await?;
        let mail = triage::first_mail(&mut tx, case.id).await?;
        let from = facts
            .reporter_address
            .as_deref()
            .filter(|_| !standing.anonymous);
        let envelope = mail.as_ref().map(|m| m.mail_from.as_str()).unwrap_or("");
        // Intake's RFC 3834 rule holds here too: no receipt to automatic
        // mail (read from the stored mail's own header).
        let auto_submitted = match &mail {
            Some(m) => repo::raw_mail(self.store.pool(), sealer, case.id, m.id)
                .await?
                .and_then(|raw| auto_submitted(&super::thread::headers_of(&raw).text)),
            None => None,
        };
        let sent_to = match outbound::receipt_recipient(from, envelope, auto_submitted.as_deref()) {
            Err(reason) => {
                crate::store::outbox::record_suppressed(&mut tx, case.id, from, reason, now)
                    .await?;
                None
            }
            Ok(to) => {
                let facts_out = ReceiptFacts {
                    received_at: mail.as_ref().map_or(now, |m| m.received_at),
                    tls_version: mail.as_ref().and_then(|m| m.tls_version.as_deref()),
                    awaiting_password: standing.state == CaseState::AwaitingPassword,
                };
                let danish =
                    standing.language.as_deref().and_then(Language::parse) == Some(Language::Da);
                let (subject, body) =
                    outbound::compose(policy, danish, &case.reference, &facts_out);
                let message_id = format!(
                    "<{}.{}@{}>",
                    case.reference,
                    repo::object_id(),
                    self.hostname
                );
                let parent = facts
                    .message_id
                    .as_deref()
                    .map(|m| format!("<{}>", m.trim_matches(['<', '>'])));
                let client = mail
                    .as_ref()
                    .map(|m| client_ip(&m.peer))
                    .unwrap_or_default();
                let queued = outbound::enqueue_receipt(
                    &mut tx,
                    sealer,
                    &self.outbound,
                    case.id,
                    &Recipient {
                        address: to,
                        client_ip: &client,
                    },
                    &subject,
                    &body,
                    &message_id,
                    parent.as_deref(),
                    now,
                )
                .await?;
                queued.then(|| to.to_owned())
            }
        };
        let what = match &sent_to {
            Some(_) => "promoted to a disclosure report; receipt queued",
            None => "promoted to a disclosure report; no receipt (see the outbox)",
        };
        record(
            &mut tx,
            sealer,
            case,
            &case.principal().who(),
            now,
            super::service::Change {
                event: EventKind::Promote,
                timeline: what,
                action: AuditAction::Promote,
                audit: what,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(sent_to)
    }
}

/// The `Auto-Submitted` header's value in a header section, if any.
fn auto_submitted(headers: &str) -> Option<String> {
    headers.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("auto-submitted")
            .then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_auto_submitted_header_is_found_in_any_case() {
        let h = "Received: from x\r\nauto-submitted: auto-replied\r\nSubject: Out of office\r\n";
        assert_eq!(super::auto_submitted(h).as_deref(), Some("auto-replied"));
        assert_eq!(super::auto_submitted("Subject: hi\r\n"), None);
    }
}
