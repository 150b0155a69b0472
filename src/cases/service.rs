//! The cases service: every rule about cases, in one place.
//!
//! The CLI, the JSON API and the web pages parse their input, call a method
//! here and render what it returns; they hold no rule of their own. Opening
//! a case checks access once (`open` → `Authorized<Case>`); every operation
//! takes that proof. Each operation that changes a case writes its timeline
//! entry and its audit entry in the same transaction as the change, and
//! each read that shows report content writes its audit entry itself, so
//! every door leaves the same trail.
//!
//! What it must never do: answer differently for a case of another
//! organisation than for a missing one, move a case against
//! `CaseState::may_become`, or take a deadline from anywhere but the
//! case's policy.

use super::input::{FieldText, NoteText, Reason};
use super::principal::{Authorized, Case, Principal};
use super::unlock::{UnlockOutcome, Unlocker};
use super::{CaseError, CaseState, CloseReason, EventKind};
use crate::model::thread::{FieldSource, ReportField};
use crate::policy::PolicySet;
use crate::store::analysts;
use crate::store::audit::{self, AuditAction, Who};
use crate::store::cases as repo;
use crate::store::seal::Sealer;
use crate::store::{Store, WriteTx};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The time the service acts at: the system clock, or a fixed one in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What an evidence read is for: a download is audited, an inline preview
/// of an image on the case page the analyst already opened is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceUse {
    Download,
    Preview,
}

/// Cases a page of the list may hold at most.
pub const MAX_PAGE: u32 = 500;

/// A page of the list: where it starts (a `cursor` the list gave) and how
/// many cases it holds (`None`: every one).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// The cases service; one per process, shared by its doors.
pub struct Cases {
    pub(super) store: Store,
    pub(super) policies: Arc<PolicySet>,
    pub(super) unlocker: Arc<Unlocker>,
    /// Our host name, for the Message-ID of replies.
    pub(super) hostname: String,
    /// How much larger the parse budget of a retried message is.
    pub(super) retry_budget_factor: u32,
    /// The receipt limits, for a receipt a promotion sends.
    pub(super) outbound: crate::outbound::OutboundConfig,
    pub(super) clock: Clock,
    /// The organisations' decryption keys (`keyring`), for unlocking and
    /// publishing them.
    pub(super) keyring: Arc<crate::keyring::Keyring>,
}

impl Cases {
    pub fn new(
        store: Store,
        policies: Arc<PolicySet>,
        unlocker: Arc<Unlocker>,
        hostname: String,
        retry_budget_factor: u32,
    ) -> Cases {
        Cases {
            store,
            policies,
            unlocker,
            hostname,
            retry_budget_factor,
            outbound: crate::outbound::OutboundConfig::default(),
            clock: Arc::new(|| jiff::Timestamp::now().as_second()),
            keyring: Arc::new(crate::keyring::Keyring::default()),
        }
    }

    /// The outbound configuration (receipt limits) intake uses too.
    /// The same service holding `keyring`.
    pub fn with_keyring(mut self, keyring: Arc<crate::keyring::Keyring>) -> Cases {
        self.keyring = keyring;
        self
    }

    pub fn with_outbound(mut self, outbound: crate::outbound::OutboundConfig) -> Cases {
        self.outbound = outbound;
        self
    }

    /// The same service acting at the times `clock` gives (tests).
    pub fn with_clock(mut self, clock: Clock) -> Cases {
        self.clock = clock;
        self
    }

    pub(super) fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The one access check: the case if it exists and belongs to one of
    /// the principal's organisations. A case elsewhere is refused exactly
    /// like a missing one, so references cannot be probed.
    pub async fn open(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<Authorized<Case>, CaseError> {
        let found = repo::locate(self.store.pool(), reference).await?;
        match found {
            Some((id, org)) if principal.may_see(&org) => Ok(Authorized::new(
                Case {
                    id,
                    reference: reference.to_owned(),
                    org,
                },
                principal,
            )),
            _ => Err(CaseError::NotFound(reference.to_owned())),
        }
    }

    /// Moves a case to `next`, by the lifecycle rules. Closing needs a
    /// reason (a duplicate names an existing case of the same
    /// organisation). Entering "needs information" pauses the feedback
    /// clock; leaving it moves the feedback deadline on by the pause.
    pub async fn transition(
        &self,
        case: &Authorized<Case>,
        next: CaseState,
        reason: &Reason,
    ) -> Result<(), CaseError> {
        let mut tx = self.store.write().await?;
        let who = case.principal().who();
        transition_in(
            &mut tx,
            self.store.sealer(),
            case,
            &who,
            next,
            reason,
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An internal note on the timeline.
    pub async fn note(&self, case: &Authorized<Case>, text: &NoteText) -> Result<(), CaseError> {
        let mut tx = self.store.write().await?;
        record(
            &mut tx,
            self.store.sealer(),
            case,
            &case.principal().who(),
            self.now(),
            Change {
                event: EventKind::Note,
                timeline: text.as_str(),
                action: AuditAction::Note,
                audit: "internal note added",
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives the case to `assignee` (an analyst's stable identity), or
    /// takes it back (`None`). Only someone who has signed in with a role
    /// for the case's organisation can take it. Giving it to whoever has it
    /// already changes nothing and records nothing.
    pub async fn assign(
        &self,
        case: &Authorized<Case>,
        assignee: Option<&str>,
    ) -> Result<(), CaseError> {
        if let Some(who) = assignee {
            // No stable identity is longer (`web::auth::saml`): a longer
            // name is refused without a look-up.
            let known = if who.len() > 256 {
                None
            } else {
                analysts::find(&self.store, who).await?
            };
            if !known.is_some_and(|a| a.works(&case.org)) {
                return Err(CaseError::NotAnAnalyst {
                    who: who.chars().filter(|c| !c.is_control()).take(120).collect(),
                    org: case.org.clone(),
                });
            }
        }
        let mut tx = self.store.write().await?;
        if repo::assignee(&mut tx, case.id).await?.as_deref() == assignee {
            return Ok(());
        }
        repo::set_assignee(&mut tx, case.id, assignee).await?;
        let what = match assignee {
            Some(who) => format!("assigned to {who}"),
            None => "unassigned".to_owned(),
        };
        record(
            &mut tx,
            self.store.sealer(),
            case,
            &case.principal().who(),
            self.now(),
            Change {
                event: EventKind::Assign,
                timeline: &what,
                action: AuditAction::Assign,
                audit: &what,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes (or, with `None`, clears) report field `field` as an
    /// analyst's: from then on nothing extracted (an archive's report)
    /// overwrites it. Writing the value it has changes nothing.
    pub async fn edit_field(
        &self,
        case: &Authorized<Case>,
        field: ReportField,
        text: Option<&FieldText>,
    ) -> Result<(), CaseError> {
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let (mut fields, mut sources) =
            repo::fields_of(&mut tx, sealer, case.id, &case.reference).await?;
        let value = text.map(|t| t.as_str().to_owned());
        let source = text.map(|_| FieldSource::Analyst);
        if *field.slot(&mut fields) == value && sources.get(field) == source {
            return Ok(());
        }
        *field.slot(&mut fields) = value;
        sources.set(field, text.map(|_| FieldSource::Analyst));
        repo::write_text_fields(&mut tx, sealer, case.id, &case.reference, &fields, &sources)
            .await?;
        if let Some(t) = text {
            super::search::index(&mut tx, sealer, &case.org, case.id, &[t.as_str()]).await?;
        }
        let what = match text {
            Some(_) => format!("{} written by an analyst", field.as_str()),
            None => format!("{} cleared by an analyst", field.as_str()),
        };
        record(
            &mut tx,
            sealer,
            case,
            &case.principal().who(),
            self.now(),
            Change {
                event: EventKind::Edit,
                timeline: &what,
                action: AuditAction::EditField,
                audit: &what,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues an `unparsed` case's message again with a larger parse
    /// budget; returns its queue id.
    pub async fn retry(&self, case: &Authorized<Case>) -> Result<String, CaseError> {
        let queue_id = self
            .store
            .retry_unparsed(&case.reference, self.retry_budget_factor)
            .await?;
        self.audit_read(
            case.principal(),
            AuditAction::Retry,
            &case.reference,
            "unparsed message queued with a larger budget",
        )
        .await?;
        Ok(queue_id)
    }

    pub fn retry_budget_factor(&self) -> u32 {
        self.retry_budget_factor
    }

    /// Opens the case's locked archives with the reporter's password.
    pub async fn unlock(
        &self,
        case: &Authorized<Case>,
        password: Zeroizing<String>,
    ) -> Result<UnlockOutcome, CaseError> {
        self.unlocker.unlock(case, password).await
    }

    /// An audit entry for a read, in a transaction of its own.
    pub(super) async fn audit_read(
        &self,
        principal: &Principal,
        action: AuditAction,
        target: &str,
        detail: &str,
    ) -> Result<(), CaseError> {
        let mut tx = self.store.write().await?;
        audit::record(
            &mut tx,
            self.store.sealer(),
            &principal.who().entry(action, target, detail),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `Cases::transition` inside the caller's transaction: unlocking moves an
/// `awaiting-password` case to `new` in the same transaction as the files
/// it extracted, by the same rules.
pub(crate) async fn transition_in(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case: &Case,
    who: &Who<'_>,
    next: CaseState,
    reason: &Reason,
    now: i64,
) -> Result<(), CaseError> {
    move_case(tx, sealer, case, who, next, reason, now, true).await
}

/// `transition_in`; with `audited` false the move is on the case's
/// timeline only, for a bulk action that writes one audit entry for all.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn move_case(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case: &Case,
    who: &Who<'_>,
    next: CaseState,
    reason: &Reason,
    now: i64,
    audited: bool,
) -> Result<(), CaseError> {
    let life = repo::lifecycle(tx, case.id).await?;
    if !life.state.may_become(next) {
        return Err(CaseError::Transition {
            from: life.state.as_str(),
            to: next.as_str(),
        });
    }
    let close_reason = if next == CaseState::Closed {
        let r = CloseReason::parse(reason.as_deref().unwrap_or("")).map_err(CaseError::Reason)?;
        if let CloseReason::Duplicate(original) = &r
            && (*original == case.reference || repo::find(tx, &case.org, original).await?.is_none())
        {
            return Err(CaseError::NoOriginal(original.clone()));
        }
        Some(r.render())
    } else {
        None
    };
    let (paused_at, feedback_by) = match (life.state, next, life.paused_at) {
        (_, CaseState::NeedsInformation, _) => (Some(now), life.feedback_by),
        (CaseState::NeedsInformation, _, Some(p)) => (None, life.feedback_by + (now - p).max(0)),
        (_, _, p) => (p, life.feedback_by),
    };
    repo::set_lifecycle(
        tx,
        case.id,
        &repo::Lifecycle {
            state: next,
            paused_at,
            feedback_by,
        },
        close_reason.as_deref(),
    )
    .await?;
    if life.state == CaseState::Junk {
        // Not junk after all: the receipt junking held back goes out.
        crate::store::outbox::resume_suppressed(tx, case.id, "receipt", "junk", now).await?;
    }
    if next == CaseState::Junk {
        // No receipt for junk: one still waiting for the relay stays here.
        crate::store::outbox::suppress_pending(tx, case.id, "receipt", "junk").await?;
    }
    let moved = format!("{} -> {}", life.state.as_str(), next.as_str());
    let detail = match close_reason.as_deref().or(reason.as_deref()) {
        Some(r) => format!("{moved} ({r})"),
        None => moved.clone(),
    };
    if !audited {
        repo::add_event(
            tx,
            sealer,
            case.id,
            now,
            EventKind::Transition,
            who.actor,
            &detail,
            None,
        )
        .await?;
        return Ok(());
    }
    record(
        tx,
        sealer,
        case,
        who,
        now,
        Change {
            event: EventKind::Transition,
            timeline: &detail,
            action: AuditAction::Transition,
            audit: &moved,
        },
    )
    .await
}

/// What one change to a case leaves behind: its timeline entry (sealed,
/// may quote the analyst's text) and its audit entry (a fixed phrase).
pub(crate) struct Change<'a> {
    pub event: EventKind,
    pub timeline: &'a str,
    pub action: AuditAction,
    pub audit: &'a str,
}

/// A change's timeline entry and audit entry, in the caller's transaction:
/// every change to a case leaves both, or neither.
pub(crate) async fn record(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case: &Case,
    who: &Who<'_>,
    now: i64,
    change: Change<'_>,
) -> Result<(), CaseError> {
    let Change {
        event,
        timeline,
        action,
        audit,
    } = change;
    repo::add_event(tx, sealer, case.id, now, event, who.actor, timeline, None).await?;
    audit::record(tx, sealer, &who.entry(action, &case.reference, audit)).await?;
    Ok(())
}
