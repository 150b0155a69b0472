//! Unlocking a case's encrypted archives with the out-of-band password.
//!
//! The same `Unlocker` serves the CLI (`disclosure-mx unlock`) and the web
//! interface. Every attempt follows one order:
//!
//! 1. wait for this case's turn: one unlock per case at a time in this
//!    process (others queue), and a lock row in the database across
//!    receivers and the CLI;
//! 2. in one write transaction, check the failure limit and record the
//!    attempt — before any work, so simultaneous guesses cannot slip past
//!    the limit between the check and the record;
//! 3. open at most `max_archives` archives in one parse worker under one
//!    deadline and one byte budget for all of them (`extract_all`), with
//!    7zAES key derivation capped at 2^19 rounds;
//! 4. in one write transaction, file what was opened and close the attempt.
//!
//! The password is held in zeroizing buffers, handed to the worker through
//! its pipe, never stored and never logged; attempts are recorded on the
//! case (who, when; never the password). With the right password every
//! archive that opens is extracted; report text found inside fills the case
//! fields the mail left empty; images become screenshots, anything else
//! evidence. An archive that hits a cap or is damaged is recorded with its
//! reason and no longer holds the case.

use super::service::{Change, record, transition_in};
use super::{Authorized, Case, CaseError, CaseState, EventKind, Reason};
use crate::intake::analysis::{ArchiveOutcome, OpenedFile};
use crate::intake::evidence::Evidence;
use crate::intake::extract::{ExtractError, ExtractLimits};
use crate::intake::worker::{Budget, Failure, Worker};
use crate::model::thread::MessageKind;
use crate::policy::PolicySet;
use crate::store::audit::{self, AuditAction, Who};
use crate::store::cases::{self as case_store, NewMessage, Placement};
use crate::store::seal::Sealer;
use crate::store::unlocks::{self, Admission};
use crate::store::{Store, StoreError, WriteTx};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Failed attempts allowed per case in `ATTEMPT_WINDOW` seconds. The
/// password is long and random in practice; five tries cover typos and stop
/// guessing through this door. An attempt still running counts as failed.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;
/// The window, in seconds, over which failed attempts count.
pub const ATTEMPT_WINDOW: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("case {0} holds no locked archive")]
    NothingLocked(String),
    #[error("too many failed attempts on this case; try again in {0} minutes")]
    TooManyAttempts(i64),
    #[error("another unlock of this case is running; try again when it has finished")]
    Busy,
    #[error("wrong password: nothing was changed")]
    WrongPassword,
    #[error("the archives could not be opened: {0}")]
    Worker(#[from] Failure),
}

/// What an unlock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockOutcome {
    pub opened: usize,
    /// Archives refused by a cap or damage, with the reason.
    pub refused: Vec<String>,
    pub extracted_files: usize,
    /// Case fields taken from report text found inside.
    pub fields_filled: Vec<&'static str>,
    /// Report text was found inside: it is now the case's report, and the
    /// mail's own text its covering note.
    pub report_found: bool,
    /// Locked archives beyond `max_archives`, left for another attempt.
    pub left_locked: usize,
}

/// Unlocks cases' archives; one per process, shared by its doors.
pub struct Unlocker {
    store: Store,
    policies: Arc<PolicySet>,
    budget: Budget,
    limits: ExtractLimits,
    /// A queue per case: one unlock of a case runs at a time here.
    turns: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl Unlocker {
    pub fn new(
        store: Store,
        policies: Arc<PolicySet>,
        budget: Budget,
        limits: ExtractLimits,
    ) -> Unlocker {
        Unlocker {
            store,
            policies,
            budget,
            limits,
            turns: Mutex::new(HashMap::new()),
        }
    }

    fn turn(&self, case_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Forget cases nobody waits on, so the map stays small.
        turns.retain(|_, t| Arc::strong_count(t) > 1);
        Arc::clone(turns.entry(case_id).or_default())
    }

    /// Unlocks the locked archives of the case that open with `password`.
    pub async fn unlock(
        &self,
        case: &Authorized<Case>,
        password: Zeroizing<String>,
    ) -> Result<UnlockOutcome, CaseError> {
        let who = case.principal().who();
        let turn = self.turn(case.id);
        let _turn = turn.lock().await;

        let holder = case_store::object_id();
        let lease = self.budget.wall.as_secs() as i64 + 60;
        let mut tx = self.store.write().await?;
        let admitted = unlocks::begin_attempt(
            &mut tx,
            case.id,
            who.actor,
            &holder,
            now(),
            unlocks::Rules {
                lease,
                window: ATTEMPT_WINDOW,
                max_failed: MAX_FAILED_ATTEMPTS,
            },
        )
        .await?;
        let attempt = match admitted {
            Admission::Recorded(attempt) => attempt,
            Admission::Busy => return Err(UnlockError::Busy.into()),
            Admission::Exhausted => {
                audit::record(
                    &mut tx,
                    self.store.sealer(),
                    &who.entry(
                        AuditAction::UnlockRefused,
                        &case.reference,
                        "too many failed attempts",
                    ),
                )
                .await?;
                tx.commit().await?;
                return Err(UnlockError::TooManyAttempts(ATTEMPT_WINDOW / 60).into());
            }
        };
        tx.commit().await?;
        let result = self.attempt(case, &who, attempt, password).await;
        // The lock goes whatever happened; a crash leaves it to expire.
        let mut tx = self.store.write().await?;
        unlocks::release(&mut tx, case.id, &holder).await?;
        tx.commit().await?;
        result
    }

    async fn attempt(
        &self,
        case: &Case,
        who: &Who<'_>,
        attempt: i64,
        password: Zeroizing<String>,
    ) -> Result<UnlockOutcome, CaseError> {
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let mut locked = unlocks::locked_archives(&mut tx, sealer, case.id).await?;
        if locked.is_empty() {
            unlocks::close_attempt(&mut tx, attempt, "nothing-locked").await?;
            tx.commit().await?;
            return Err(UnlockError::NothingLocked(case.reference.clone()).into());
        }
        // Nothing is held while the worker runs.
        tx.commit().await?;
        let left_locked = locked.len().saturating_sub(self.limits.max_archives);
        locked.truncate(self.limits.max_archives);
        let archives: Vec<&[u8]> = locked.iter().map(|l| l.data.as_slice()).collect();
        let opened = async {
            let mut worker = Worker::spawn(self.budget, self.policies.sources()).await?;
            worker
                .open_archives(
                    password.as_bytes(),
                    &archives,
                    Some(&case.org),
                    &self.limits,
                )
                .await
        }
        .await;
        drop(password);
        let now = now();
        let (opened, _) = match opened {
            Ok(o) => o,
            Err(failure) => {
                let mut tx = self.store.write().await?;
                let why = failure.to_string();
                let f = Failed(attempt, "failed", &why, "the extraction did not complete");
                failed(&mut tx, sealer, case, who, now, f).await?;
                tx.commit().await?;
                return Err(UnlockError::Worker(failure).into());
            }
        };
        if opened
            .archives
            .iter()
            .all(|o| matches!(o, ArchiveOutcome::Failed(ExtractError::WrongPassword)))
        {
            let mut tx = self.store.write().await?;
            let f = Failed(
                attempt,
                "wrong-password",
                "wrong password",
                "wrong password",
            );
            failed(&mut tx, sealer, case, who, now, f).await?;
            tx.commit().await?;
            return Err(UnlockError::WrongPassword.into());
        }

        self.file_opened(case, who, attempt, locked, opened, left_locked, now)
            .await
    }

    /// Files what one attempt opened, in one write transaction: the files
    /// under their archives, the archives marked opened or refused, the
    /// fields found inside, the timeline and audit entries, and — once no
    /// archive is left locked — the case's move to `new`.
    #[allow(clippy::too_many_arguments)]
    async fn file_opened(
        &self,
        case: &Case,
        who: &Who<'_>,
        attempt: i64,
        locked: Vec<unlocks::Locked>,
        opened: crate::intake::analysis::Opened,
        left_locked: usize,
        now: i64,
    ) -> Result<UnlockOutcome, CaseError> {
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let mut outcome = UnlockOutcome {
            opened: 0,
            refused: Vec::new(),
            extracted_files: 0,
            fields_filled: Vec::new(),
            report_found: false,
            left_locked,
        };
        for (l, result) in locked.iter().zip(opened.archives) {
            match result {
                ArchiveOutcome::Opened { files, symlinks } => {
                    outcome.opened += 1;
                    outcome.extracted_files += files.len();
                    store_extracted(&mut tx, sealer, case.id, l.id, files, &symlinks, now).await?;
                    case_store::mark_opened(&mut tx, sealer, l.id, &l.object_id, now, None).await?;
                }
                // Another archive of the case took this password; this one
                // stays locked for its own.
                ArchiveOutcome::Failed(ExtractError::WrongPassword) => {}
                ArchiveOutcome::Failed(e) => {
                    let problem = e.to_string();
                    let refused = Some(problem.as_str());
                    case_store::mark_opened(&mut tx, sealer, l.id, &l.object_id, now, refused)
                        .await?;
                    outcome.refused.push(format!("{}: {problem}", l.name));
                }
            }
        }
        if let (Some(fields), Some(text)) = (&opened.fields, &opened.report_text) {
            outcome.fields_filled =
                case_store::merge_archive_fields(&mut tx, sealer, case.id, &case.reference, fields)
                    .await?;
            let names: Vec<&str> = locked.iter().map(|l| l.name.as_str()).collect();
            keep_archive_report(&mut tx, sealer, case.id, text, &names.join(", "), now).await?;
            let mut texts = vec![text.as_str()];
            texts.extend(fields.assets.iter().map(|a| a.value.as_str()));
            texts.extend(
                fields
                    .cve_ids
                    .iter()
                    .chain(&fields.cwe_ids)
                    .map(String::as_str),
            );
            super::search::index(&mut tx, sealer, &case.org, case.id, &texts).await?;
            let assets: Vec<&str> = fields.assets.iter().map(|a| a.value.as_str()).collect();
            super::search::index_hosts(&mut tx, sealer, &case.org, case.id, &assets).await?;
            outcome.report_found = true;
        }
        let (detail, summary) = outcome.describe();
        record(
            &mut tx,
            sealer,
            case,
            who,
            now,
            Change {
                event: EventKind::Unlocked,
                timeline: &detail,
                action: AuditAction::Unlocked,
                audit: &summary,
            },
        )
        .await?;
        unlocks::close_attempt(&mut tx, attempt, "opened").await?;
        let still_locked = unlocks::count_locked(&mut tx, case.id).await?;
        let state = case_store::lifecycle(&mut tx, case.id).await?.state;
        if still_locked == 0 {
            crate::store::crypto::opened_with_password(&mut tx, case.id).await?;
        }
        if still_locked == 0 && state == CaseState::AwaitingPassword {
            let reason = Reason::new(Some("all archives opened"))?;
            transition_in(&mut tx, sealer, case, who, CaseState::New, &reason, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

/// The report found inside archives `names` becomes the case's report;
/// the mail's own text stays, as its covering note.
async fn keep_archive_report(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    text: &str,
    names: &str,
    now: i64,
) -> Result<(), CaseError> {
    let mail = case_store::message_of_kind(tx, sealer, case_id, MessageKind::Report).await?;
    case_store::relabel_messages(tx, case_id, MessageKind::Report, MessageKind::CoveringNote)
        .await?;
    let report = NewMessage {
        kind: MessageKind::ArchiveReport,
        message_row: mail.as_ref().and_then(|m| m.message_row),
        at: mail.as_ref().map_or(now, |m| m.at),
        from_reporter: true,
        token: false,
        sender: mail.as_ref().map(|m| m.sender.clone()).unwrap_or_default(),
        subject: format!("the report inside {names}"),
        text: text.to_owned(),
        tls_version: mail.and_then(|m| m.tls_version),
    };
    case_store::add_message(tx, sealer, case_id, &report).await?;
    Ok(())
}

impl UnlockOutcome {
    /// The timeline's detail and the audit trail's (our words only: archive
    /// names and refusal reasons go to the sealed timeline, not the trail).
    fn describe(&self) -> (String, String) {
        let mut detail = format!(
            "opened {} archive(s), {} file(s) extracted",
            self.opened, self.extracted_files
        );
        for r in &self.refused {
            detail.push_str(&format!("; refused {r}"));
        }
        if self.left_locked > 0 {
            detail.push_str(&format!(
                "; {} archive(s) left for another attempt (limit max_archives)",
                self.left_locked
            ));
        }
        let summary = format!(
            "opened {} archive(s), refused {}",
            self.opened,
            self.refused.len()
        );
        (detail, summary)
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A failed attempt: its id, outcome, timeline text and audit detail.
struct Failed<'a>(i64, &'static str, &'a str, &'static str);

/// Closes a failed attempt and records it on the timeline and the trail.
async fn failed(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case: &Case,
    who: &Who<'_>,
    now: i64,
    Failed(attempt, outcome, timeline, audit): Failed<'_>,
) -> Result<(), CaseError> {
    unlocks::close_attempt(tx, attempt, outcome).await?;
    record(
        tx,
        sealer,
        case,
        who,
        now,
        Change {
            event: EventKind::UnlockFailed,
            timeline,
            action: AuditAction::UnlockFailed,
            audit,
        },
    )
    .await
}

/// Stores extracted files as evidence under their archive.
async fn store_extracted(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    parent: i64,
    files: Vec<OpenedFile>,
    symlinks: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let under = Placement {
        parent: Some(parent),
        ..Placement::default()
    };
    for f in files {
        let evidence = Evidence::of_extracted(f);
        // A nested archive was extracted in the same pass.
        let at = Placement {
            opened_at: evidence.opened().then_some(now),
            ..under
        };
        case_store::insert_evidence(tx, sealer, case_id, &evidence, at).await?;
    }
    for link in symlinks {
        let evidence = Evidence::of_symlink(link.clone());
        case_store::insert_evidence(tx, sealer, case_id, &evidence, under).await?;
    }
    Ok(())
}
