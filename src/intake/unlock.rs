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

use super::analysis::{ArchiveOutcome, OpenedFile};
use super::extract::{ExtractError, ExtractLimits};
use super::worker::{Budget, Failure, Worker};
use crate::audit::{self, Who};
use crate::cases::CaseState;
use crate::cases::store::{self as case_store, NewEvidence};
use crate::policy::PolicySet;
use crate::store::seal::Sealer;
use crate::store::{Backend, Store};
use sqlx::{AnyConnection, Row};
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
    #[error("no case {0}")]
    NotFound(String),
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
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Case(#[from] case_store::CaseError),
}

/// What an unlock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockOutcome {
    pub opened: usize,
    /// Archives refused by a cap or damage, with the reason.
    pub refused: Vec<String>,
    pub extracted_files: usize,
    /// Case fields filled from report text found inside.
    pub fields_filled: Vec<&'static str>,
    /// Locked archives beyond `max_archives`, left for another attempt.
    pub left_locked: usize,
}

struct Locked {
    id: i64,
    object_id: String,
    name: String,
    data: Vec<u8>,
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

    /// Unlocks the locked archives of case `reference` that open with
    /// `password`.
    pub async fn unlock(
        &self,
        reference: &str,
        password: Zeroizing<String>,
        who: &Who<'_>,
    ) -> Result<UnlockOutcome, UnlockError> {
        let mut conn = self.store.connection().await?;
        let row = sqlx::query("SELECT id, org FROM cases WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&mut conn)
            .await?
            .ok_or_else(|| UnlockError::NotFound(reference.to_owned()))?;
        let case_id: i64 = row.try_get("id")?;
        let org: String = row.try_get("org")?;
        let turn = self.turn(case_id);
        let _turn = turn.lock().await;

        let holder = case_store::object_id();
        let attempt = begin_attempt(
            &mut conn,
            self.store.sealer(),
            case_id,
            reference,
            &holder,
            self.budget.wall.as_secs() as i64 + 60,
            who,
        )
        .await?;
        let result = self
            .attempt(&mut conn, case_id, &org, reference, attempt, password, who)
            .await;
        // The lock goes whatever happened; a crash leaves it to expire.
        sqlx::query("DELETE FROM unlock_locks WHERE case_id = $1 AND holder = $2")
            .bind(case_id)
            .bind(&holder)
            .execute(&mut conn)
            .await?;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        conn: &mut AnyConnection,
        case_id: i64,
        org: &str,
        reference: &str,
        attempt: i64,
        password: Zeroizing<String>,
        who: &Who<'_>,
    ) -> Result<UnlockOutcome, UnlockError> {
        let sealer = self.store.sealer();
        let mut locked = load_locked(conn, sealer, case_id).await?;
        if locked.is_empty() {
            close_attempt(conn, attempt, "nothing-locked").await?;
            return Err(UnlockError::NothingLocked(reference.to_owned()));
        }
        let left_locked = locked.len().saturating_sub(self.limits.max_archives);
        locked.truncate(self.limits.max_archives);
        let archives: Vec<&[u8]> = locked.iter().map(|l| l.data.as_slice()).collect();
        let opened = async {
            let mut worker = Worker::spawn(self.budget, self.policies.sources()).await?;
            worker
                .open_archives(password.as_bytes(), &archives, Some(org), &self.limits)
                .await
        }
        .await;
        drop(password);
        let (opened, _) = match opened {
            Ok(o) => o,
            Err(failure) => {
                let detail = failure.to_string();
                close_attempt(conn, attempt, "failed").await?;
                let mut tx = begin(conn).await?;
                case_store::add_event(
                    &mut tx,
                    sealer,
                    case_id,
                    now(),
                    "unlock-failed",
                    who.actor,
                    &detail,
                    None,
                )
                .await?;
                audit::record(
                    &mut tx,
                    sealer,
                    &who.entry(
                        "unlock-failed",
                        reference,
                        "the extraction did not complete",
                    ),
                )
                .await?;
                tx.commit().await?;
                return Err(failure.into());
            }
        };

        let now = now();
        if opened
            .archives
            .iter()
            .all(|o| matches!(o, ArchiveOutcome::Failed(ExtractError::WrongPassword)))
        {
            let mut tx = begin(conn).await?;
            close_attempt(&mut tx, attempt, "wrong-password").await?;
            case_store::add_event(
                &mut tx,
                sealer,
                case_id,
                now,
                "unlock-failed",
                who.actor,
                "wrong password",
                None,
            )
            .await?;
            audit::record(
                &mut tx,
                sealer,
                &who.entry("unlock-failed", reference, "wrong password"),
            )
            .await?;
            tx.commit().await?;
            return Err(UnlockError::WrongPassword);
        }

        let mut tx = begin(conn).await?;
        let mut outcome = UnlockOutcome {
            opened: 0,
            refused: Vec::new(),
            extracted_files: 0,
            fields_filled: Vec::new(),
            left_locked,
        };
        for (l, result) in locked.iter().zip(opened.archives) {
            match result {
                ArchiveOutcome::Opened { files, symlinks } => {
                    outcome.opened += 1;
                    outcome.extracted_files += files.len();
                    store_extracted(&mut tx, sealer, case_id, l.id, files, &symlinks, now).await?;
                    case_store::mark_opened(&mut tx, sealer, l.id, &l.object_id, now, None).await?;
                }
                // Another archive of the case took this password; this one
                // stays locked for its own.
                ArchiveOutcome::Failed(ExtractError::WrongPassword) => {}
                ArchiveOutcome::Failed(e) => {
                    let problem = e.to_string();
                    case_store::mark_opened(
                        &mut tx,
                        sealer,
                        l.id,
                        &l.object_id,
                        now,
                        Some(&problem),
                    )
                    .await?;
                    outcome.refused.push(format!("{}: {problem}", l.name));
                }
            }
        }
        if let Some(fields) = &opened.fields {
            outcome.fields_filled =
                case_store::fill_empty_fields(&mut tx, sealer, case_id, reference, fields).await?;
        }
        let mut detail = format!(
            "opened {} archive(s), {} file(s) extracted",
            outcome.opened, outcome.extracted_files
        );
        for r in &outcome.refused {
            detail.push_str(&format!("; refused {r}"));
        }
        if left_locked > 0 {
            detail.push_str(&format!(
                "; {left_locked} archive(s) left for another attempt (limit max_archives)"
            ));
        }
        case_store::add_event(
            &mut tx, sealer, case_id, now, "unlocked", who.actor, &detail, None,
        )
        .await?;
        let summary = format!(
            "opened {} archive(s), refused {}",
            outcome.opened,
            outcome.refused.len()
        );
        audit::record(&mut tx, sealer, &who.entry("unlocked", reference, &summary)).await?;
        close_attempt(&mut tx, attempt, "opened").await?;
        let (still_locked, state): (i64, String) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM case_evidence WHERE case_id = $1 AND archive_locked = 1), state
             FROM cases WHERE id = $1",
        )
        .bind(case_id)
        .fetch_one(&mut *tx)
        .await?;
        if still_locked == 0 && CaseState::parse(&state) == Some(CaseState::AwaitingPassword) {
            case_store::transition_in(
                &mut tx,
                sealer,
                reference,
                CaseState::New,
                Some("all archives opened"),
                who,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn begin(conn: &mut AnyConnection) -> Result<sqlx::Transaction<'_, sqlx::Any>, sqlx::Error> {
    let begin = Backend::of(conn).begin_write();
    sqlx::Connection::begin_with(conn, begin).await
}

/// Checks the limit and the lock, and records the attempt, in one write
/// transaction; returns the attempt's id.
async fn begin_attempt(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    holder: &str,
    lease: i64,
    who: &Who<'_>,
) -> Result<i64, UnlockError> {
    let now = now();
    let mut tx = begin(conn).await?;
    let busy: Option<(i64,)> = sqlx::query_as(
        "SELECT expires_at FROM unlock_locks WHERE case_id = $1 AND expires_at > $2",
    )
    .bind(case_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if busy.is_some() {
        tx.commit().await?;
        return Err(UnlockError::Busy);
    }
    let (failed,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM unlock_attempts
         WHERE case_id = $1 AND at > $2 AND (outcome IS NULL OR outcome = 'wrong-password')",
    )
    .bind(case_id)
    .bind(now - ATTEMPT_WINDOW)
    .fetch_one(&mut *tx)
    .await?;
    if failed >= MAX_FAILED_ATTEMPTS {
        audit::record(
            &mut tx,
            sealer,
            &who.entry("unlock-refused", reference, "too many failed attempts"),
        )
        .await?;
        tx.commit().await?;
        return Err(UnlockError::TooManyAttempts(ATTEMPT_WINDOW / 60));
    }
    let (attempt,): (i64,) = sqlx::query_as(
        "INSERT INTO unlock_attempts (case_id, at, actor) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(case_id)
    .bind(now)
    .bind(who.actor)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM unlock_locks WHERE case_id = $1")
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO unlock_locks (case_id, holder, expires_at) VALUES ($1, $2, $3)")
        .bind(case_id)
        .bind(holder)
        .bind(now + lease)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(attempt)
}

async fn close_attempt(
    conn: &mut AnyConnection,
    attempt: i64,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE unlock_attempts SET outcome = $1 WHERE id = $2")
        .bind(outcome)
        .bind(attempt)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn load_locked(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
) -> Result<Vec<Locked>, UnlockError> {
    let rows = sqlx::query(
        "SELECT id, name, data, object_id FROM case_evidence
         WHERE case_id = $1 AND archive_locked = 1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let object_id: String = r
                .try_get::<Option<String>, _>("object_id")?
                .unwrap_or_default();
            let aad = format!("evidence:{object_id}");
            let sealed: Vec<u8> = r.try_get("data")?;
            Ok(Locked {
                id: r.try_get("id")?,
                name: sealer
                    .open_opt(&format!("{aad}:name"), r.try_get("name")?)
                    .map_err(crate::store::StoreError::from)?
                    .unwrap_or_else(|| "(unnamed)".into()),
                data: sealer
                    .open(&aad, &sealed)
                    .map_err(crate::store::StoreError::from)?,
                object_id,
            })
        })
        .collect()
}

/// Stores extracted files as evidence under their archive.
async fn store_extracted(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    parent: i64,
    files: Vec<OpenedFile>,
    symlinks: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    for f in files {
        // A nested archive was extracted in the same pass.
        let opened = f.archive.is_some();
        let evidence = NewEvidence {
            screenshot: f.sniffed.is_some(),
            opened,
            archive: f.archive,
            conversation_id: None,
            name: Some(f.name),
            declared_type: "application/octet-stream".into(),
            sniffed_type: f.sniffed,
            forwarded: false,
            data: f.data,
        };
        case_store::insert_evidence(
            conn,
            sealer,
            case_id,
            &evidence,
            Some(parent),
            opened.then_some(now),
        )
        .await?;
    }
    for link in symlinks {
        let evidence = NewEvidence {
            screenshot: false,
            opened: false,
            archive: None,
            conversation_id: None,
            name: Some(link.clone()),
            declared_type: "inode/symlink".into(),
            sniffed_type: None,
            forwarded: false,
            data: Vec::new(),
        };
        case_store::insert_evidence(conn, sealer, case_id, &evidence, Some(parent), None).await?;
    }
    Ok(())
}
