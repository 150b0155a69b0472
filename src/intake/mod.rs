//! Intake: turns stored messages into cases, per organisation policy.
//!
//! The loop claims the oldest pending message, records the attempt in the
//! database *before* parsing, has a parse worker (`worker`) analyse it
//! under its memory and CPU budget, and in one write transaction files it
//! — a new case, or a follow-up in an existing case's conversation — and
//! marks it filed. A crash anywhere before that commit leaves the message
//! pending with its attempt counted, so it is filed exactly once; a
//! message whose attempts never complete (the worker killed by a limit,
//! or the whole service killed while parsing it) is quarantined after
//! `max_attempts`, never retried forever.
//!
//! A quarantined report is not a lost report: it becomes an `unparsed`
//! case of the organisation that owns the recipient, keeping the sealed
//! raw message, the reason, and the clocks from arrival; `cases retry`
//! parses it again with a larger budget and fills that case.
//!
//! Intake knows nothing of SMTP sessions: it reads what the store holds.

pub mod analysis;
pub mod archive;
pub mod extract;
pub mod filing;
pub mod html;
pub mod mime;
pub mod plaintext;
pub mod report;
pub mod worker;

use crate::cases::CaseKind;
use crate::outbound::OutboundConfig;
use crate::policy::{Policy, PolicySet};
use crate::store::Store;
use crate::store::seal::Sealer;
use mime::MimeLimits;
use serde::Deserialize;
use sqlx::AnyConnection;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};
use worker::{Budget, Failure, WorkerPool};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Worker(#[from] Failure),
    #[error(transparent)]
    Case(#[from] crate::cases::CaseError),
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    NewCase {
        reference: String,
        kind: CaseKind,
    },
    /// A follow-up in a case's conversation.
    Correspondence {
        reference: String,
        from_reporter: bool,
    },
    /// Parsed again on request and filed into its `unparsed` case.
    Refiled {
        reference: String,
    },
    /// Quarantined with its reason; `reference` is the `unparsed` case
    /// opened for it, when an organisation owns the recipient.
    Quarantined {
        reason: String,
        reference: Option<String>,
    },
    /// This attempt failed (the reason is recorded); the message waits for
    /// its next attempt.
    Retrying {
        reason: String,
    },
}

/// `[intake]`: the parse workers and their budgets. Every limit here
/// says why; `README.md` lists them with their defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    /// File stored messages into cases inside `serve`.
    pub enabled: bool,
    /// Seconds between passes when no new message wakes the worker; a
    /// safety net, since every commit wakes it at once.
    pub poll_interval: u64,
    /// Parse workers for intake and unlocks (2): one busy with a slow
    /// message leaves another for the rest.
    pub workers: usize,
    /// Parse workers for the plaintext rule during SMTP sessions (2), apart
    /// from intake's, so a flood of plaintext mail cannot stall filing.
    pub check_workers: usize,
    /// Memory a parse may add to its worker, in MiB (256): a 25 MiB message
    /// parses in well under 100 MiB; a bomb stops here.
    pub parse_memory_mib: u64,
    /// CPU seconds a parse may use (2): the largest real report takes a
    /// fraction of a second.
    pub parse_cpu_seconds: u64,
    /// Wall seconds a parse may take (10), for a worker that waits rather
    /// than computes; then it is killed.
    pub parse_wall_seconds: u64,
    /// Memory an unlock may add to its worker, in MiB (768): the 7z decoder
    /// cap (256 MiB) plus the extraction total (100 MiB) plus the archives.
    pub unlock_memory_mib: u64,
    /// CPU seconds one unlock may use, all archives together (30).
    pub unlock_cpu_seconds: u64,
    /// Attempts at a message that never complete (worker killed, service
    /// killed) before it is quarantined (3): rides out a crash elsewhere,
    /// and a poison message costs at most three budgets.
    pub max_attempts: u32,
    /// How much larger the budget of `cases retry` is (4).
    pub retry_budget_factor: u32,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            enabled: true,
            poll_interval: 5,
            workers: 2,
            check_workers: 2,
            parse_memory_mib: 256,
            parse_cpu_seconds: 2,
            parse_wall_seconds: 10,
            unlock_memory_mib: 768,
            unlock_cpu_seconds: 30,
            max_attempts: 3,
            retry_budget_factor: 4,
        }
    }
}

impl IntakeSettings {
    pub fn parse_budget(&self) -> Budget {
        Budget {
            memory_mib: self.parse_memory_mib,
            cpu_seconds: self.parse_cpu_seconds,
            wall: Duration::from_secs(self.parse_wall_seconds),
        }
    }

    /// The unlock budget; its wall time follows the extraction limit.
    pub fn unlock_budget(&self, max_time: Duration) -> Budget {
        Budget {
            memory_mib: self.unlock_memory_mib,
            cpu_seconds: self.unlock_cpu_seconds,
            wall: max_time + Duration::from_secs(5),
        }
    }
}

/// Whether `subject` carries one of the policy's flags: case-insensitive,
/// after RFC 2047 decoding (done by the MIME parser), with runs of spaces
/// and brackets ignored, so "[Responsible  Disclosure]" and
/// "Fwd: RE: responsible disclosure - XSS" both count. A policy without
/// flags treats all mail to its addresses as reports.
pub fn is_flagged(policy: &Policy, subject: &str) -> bool {
    if policy.subject_flags.is_empty() {
        return true;
    }
    let normal = |s: &str| {
        s.to_lowercase()
            .replace(['[', ']', '(', ')', '_'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let subject = normal(subject);
    policy
        .subject_flags
        .iter()
        .any(|f| subject.contains(&normal(f)))
}

/// Case references of this organisation named in `text`
/// (`PREFIX-YYYY-NNNN`).
pub fn references_in(policy: &Policy, text: &str) -> Vec<String> {
    let prefix = format!("{}-", policy.reference_prefix);
    let upper = text.to_ascii_uppercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = upper[from..].find(&prefix) {
        let start = from + i;
        let candidate = upper.get(start..start + prefix.len() + 9).unwrap_or("");
        let tail = &candidate[prefix.len().min(candidate.len())..];
        let shaped = tail.len() == 9
            && tail.as_bytes()[4] == b'-'
            && tail
                .bytes()
                .enumerate()
                .all(|(k, b)| k == 4 || b.is_ascii_digit());
        let boundary = upper[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if shaped && boundary && !out.contains(&candidate.to_owned()) {
            out.push(candidate.to_owned());
        }
        from = start + prefix.len();
    }
    out
}

/// Messages claimed at once. Enough that a batch's two commits cost
/// little per message; few enough that a crash counts an attempt against
/// only these, and that filing a batch holds SQLite's write lock (which
/// the receiver's commits wait on) for tens of milliseconds at most.
const MAX_BATCH: usize = 32;
/// Raw bytes claimed at once: a batch of large messages stays bounded in
/// memory (at least one message is always claimed).
const MAX_BATCH_BYTES: i64 = 64 * 1024 * 1024;

/// What one parse attempt came to.
enum Outcome {
    Parsed(Box<analysis::Analysis>),
    /// Cannot be parsed, and never will be: quarantine at once.
    Unparseable(String),
    /// The worker died or ran out of budget: a failed attempt.
    Failed(String),
    /// No worker could run: not the message's fault.
    NoWorker(Failure),
}

/// One claimed message, as the loop reads it.
pub(crate) struct Pending {
    pub id: i64,
    pub queue_id: String,
    pub mail_from: String,
    pub peer: String,
    pub raw: Vec<u8>,
    pub received_at: i64,
    pub rcpt_to: Vec<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    /// Attempts started, this one included.
    pub attempts: u32,
    /// Why the previous attempt failed, if one did and said so.
    pub failure: Option<String>,
    /// >1: parse with a budget this many times larger (`cases retry`).
    pub budget_factor: u32,
    /// The `unparsed` case this message already has, if any.
    pub case_id: Option<i64>,
}

/// What intake needs to queue receipts.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Our host name, for receipt Message-IDs.
    pub hostname: String,
    pub outbound: OutboundConfig,
}

/// The intake loop over one store.
pub struct Intake {
    store: Store,
    policies: Arc<PolicySet>,
    limits: MimeLimits,
    receipts: Receipts,
    workers: Arc<WorkerPool>,
    settings: IntakeSettings,
}

impl Intake {
    pub fn new(
        store: Store,
        policies: Arc<PolicySet>,
        receipts: Receipts,
        workers: Arc<WorkerPool>,
        settings: IntakeSettings,
    ) -> Self {
        Intake {
            store,
            policies,
            limits: MimeLimits::default(),
            receipts,
            workers,
            settings,
        }
    }

    /// Files pending messages until none is left; returns what each became.
    ///
    /// Messages are claimed in batches (one transaction records every
    /// attempt before any parse), parsed by the workers side by side, and
    /// settled in one write transaction per batch, each message under its
    /// own savepoint: one message the database refuses cannot undo the
    /// others, and a batch costs two commits however many it holds.
    pub async fn drain(&self, conn: &mut AnyConnection) -> Result<Vec<Filed>, IntakeError> {
        let mut out = Vec::new();
        let wall = self.settings.parse_wall_seconds as i64;
        let sealer = self.store.sealer();
        let begin = crate::store::Backend::of(conn).begin_write();
        let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
        let mut batch = claim_batch(&mut tx, sealer, now(), wall).await?;
        tx.commit().await?;
        while !batch.is_empty() {
            let outcomes = self.parse_all(&mut batch).await;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            let mut no_worker = None;
            for (p, outcome) in batch.iter().zip(outcomes) {
                if let Outcome::NoWorker(failure) = outcome {
                    unclaim(&mut tx, p.id).await?;
                    no_worker = Some(failure);
                    continue;
                }
                let filed = self.settle(&mut tx, p, outcome).await?;
                log(&p.queue_id, &filed);
                out.push(filed);
            }
            if let Some(failure) = no_worker {
                tx.commit().await?;
                return Err(failure.into());
            }
            // The next batch is claimed in the same commit that files this
            // one: one fsync per batch.
            batch = claim_batch(&mut tx, sealer, now(), wall).await?;
            tx.commit().await?;
        }
        Ok(out)
    }

    /// Parses a batch in the workers, side by side; in order.
    async fn parse_all(&self, batch: &mut [Pending]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::new();
        let mut jobs = tokio::task::JoinSet::new();
        for (i, p) in batch.iter_mut().enumerate() {
            outcomes.push(None);
            let policy = p.rcpt_to.iter().find_map(|r| self.policies.for_address(r));
            if p.attempts > self.settings.max_attempts {
                let reason = p.failure.clone().unwrap_or_else(|| {
                    format!(
                        "intake did not complete in {} attempts (the service stopped while parsing it)",
                        self.settings.max_attempts
                    )
                });
                outcomes[i] = Some(Outcome::Unparseable(reason));
                continue;
            }
            let Some(policy) = policy else {
                outcomes[i] = Some(Outcome::Unparseable("no policy owns any recipient".into()));
                continue;
            };
            let (workers, raw, policy_id) = (
                Arc::clone(&self.workers),
                std::mem::take(&mut p.raw),
                policy.id.clone(),
            );
            let (limits, factor, queue_id) =
                (self.limits.clone(), p.budget_factor, p.queue_id.clone());
            jobs.spawn(async move {
                let parsed = if factor > 1 {
                    worker::pool::analyse_once(
                        workers.budget().scaled(factor),
                        workers.policies(),
                        &raw,
                        Some(&policy_id),
                        &limits,
                    )
                    .await
                } else {
                    workers.analyse(&raw, Some(&policy_id), &limits).await
                };
                let outcome = match parsed {
                    Ok((Ok(a), stats)) => {
                        info!(%queue_id, cpu_ms = stats.cpu_ms, peak_rss_kib = stats.peak_rss_kib, "parsed");
                        Outcome::Parsed(Box::new(a))
                    }
                    // Beyond the MIME limits: the same every time.
                    Ok((Err(reason), _)) => Outcome::Unparseable(reason),
                    Err(f) if f.blames_message() => Outcome::Failed(f.to_string()),
                    Err(f) => Outcome::NoWorker(f),
                };
                (i, outcome)
            });
        }
        while let Some(done) = jobs.join_next().await {
            if let Ok((i, outcome)) = done {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Failed("the parse task failed".into())))
            .collect()
    }

    /// Files, retries or quarantines one message inside the batch's
    /// transaction, under a savepoint of its own.
    async fn settle(
        &self,
        tx: &mut AnyConnection,
        p: &Pending,
        outcome: Outcome,
    ) -> Result<Filed, IntakeError> {
        let policy = p.rcpt_to.iter().find_map(|r| self.policies.for_address(r));
        let reason = match (outcome, policy) {
            (Outcome::Parsed(analysis), Some(policy)) => {
                let mut sp = sqlx::Connection::begin(&mut *tx).await?;
                let filed = filing::file(
                    &mut sp,
                    &self.store,
                    policy,
                    &self.receipts,
                    p,
                    *analysis,
                    now(),
                )
                .await;
                match filed {
                    Ok(filed) => {
                        sp.commit().await?;
                        return Ok(filed);
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        // A database refusal: a failed attempt like any
                        // other, so one the database keeps refusing is
                        // quarantined.
                        format!("filing failed: {e}")
                    }
                }
            }
            (Outcome::Unparseable(reason), _) => {
                return self.quarantine(tx, p, policy, &reason).await;
            }
            (Outcome::Failed(reason), _) => reason,
            (Outcome::Parsed(_), None) | (Outcome::NoWorker(_), _) => {
                return self
                    .quarantine(tx, p, None, "no policy owns any recipient")
                    .await;
            }
        };
        if p.attempts >= self.settings.max_attempts {
            return self.quarantine(tx, p, policy, &reason).await;
        }
        release(tx, p.id, Some(&reason)).await?;
        Ok(Filed::Retrying { reason })
    }

    /// Quarantines `p`, opening an `unparsed` case for its organisation.
    async fn quarantine(
        &self,
        tx: &mut AnyConnection,
        p: &Pending,
        policy: Option<&Policy>,
        reason: &str,
    ) -> Result<Filed, IntakeError> {
        let sealer = self.store.sealer();
        let mut sp = sqlx::Connection::begin(&mut *tx).await?;
        match filing::quarantine(&mut sp, sealer, policy, p, reason, now()).await {
            Ok(reference) => {
                sp.commit().await?;
                Ok(Filed::Quarantined {
                    reason: reason.to_owned(),
                    reference,
                })
            }
            // The database refuses the case too: the message is still
            // quarantined, so it cannot hold the queue.
            Err(e) if policy.is_some() => {
                sp.rollback().await?;
                let reason = format!("{reason}; no case could be opened for it: {e}");
                filing::quarantine(tx, sealer, None, p, &reason, now()).await?;
                Ok(Filed::Quarantined {
                    reason,
                    reference: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Runs until `stop` fires: drains, then waits for `wake` or `every`.
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut conn = match self.store.connection().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "intake cannot open the store");
                return;
            }
        };
        // SQLite has one node: a lease left by a process that died is
        // nobody's any more, and its messages need not wait it out.
        if crate::store::Backend::of(&conn) == crate::store::Backend::Sqlite
            && let Err(e) = sqlx::query(
                "UPDATE messages SET claimed_until = NULL WHERE state = 'pending' AND claimed_until IS NOT NULL",
            )
            .execute(&mut conn)
            .await
        {
            warn!(error = %e, "intake cannot release old leases");
        }
        loop {
            if let Err(e) = self.drain(&mut conn).await {
                warn!(error = %e, "intake pass failed; retrying");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn log(queue_id: &str, filed: &Filed) {
    match filed {
        Filed::NewCase { reference, kind } => {
            info!(%queue_id, %reference, kind = kind.as_str(), "case opened")
        }
        Filed::Correspondence {
            reference,
            from_reporter,
        } => info!(%queue_id, %reference, from_reporter, "follow-up filed"),
        Filed::Refiled { reference } => info!(%queue_id, %reference, "parsed on retry"),
        Filed::Quarantined { reason, reference } => {
            warn!(%queue_id, reason, case = reference.as_deref().unwrap_or("-"), "message quarantined")
        }
        Filed::Retrying { reason } => warn!(%queue_id, reason, "intake attempt failed"),
    }
}

/// Margin of a lease beyond the parse's own wall budget, for filing.
const LEASE_MARGIN_SECONDS: i64 = 20;

/// Claims the oldest pending messages no other receiver holds (up to
/// `MAX_BATCH` of them and `MAX_BATCH_BYTES` together), inside the
/// caller's write transaction: counts each one's attempt and takes a lease,
/// which the caller commits before anything parses them. The lease outlasts the attempt (`wall` seconds times the
/// message's budget factor, plus a margin), so another receiver never takes
/// a message that is being parsed. On PostgreSQL the rows are locked `FOR
/// UPDATE SKIP LOCKED` while claiming, so two receivers never claim the
/// same message.
async fn claim_batch(
    tx: &mut AnyConnection,
    sealer: &Sealer,
    now: i64,
    wall: i64,
) -> Result<Vec<Pending>, IntakeError> {
    use sqlx::Row;
    let (max, max_bytes) = (MAX_BATCH, MAX_BATCH_BYTES);
    let backend = crate::store::Backend::of(tx);
    let sql = format!(
        "SELECT id, size FROM messages WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY id LIMIT $2{}",
        backend.skip_locked()
    );
    let candidates: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await?;
    let mut total = 0;
    let mut batch = Vec::new();
    for (id, size) in candidates {
        if !batch.is_empty() && total + size > max_bytes {
            break;
        }
        total += size;
        let r = sqlx::query(
            "UPDATE messages SET intake_attempts = intake_attempts + 1,
                 claimed_until = $1 + $2 * budget_factor WHERE id = $3
             RETURNING id, queue_id, mail_from, peer, raw, received_at, rcpt_to, tls_version, tls_cipher,
                 intake_attempts, intake_failure, budget_factor, case_id",
        )
        .bind(now + LEASE_MARGIN_SECONDS)
        .bind(wall)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let rcpt: String = r.try_get("rcpt_to")?;
        let queue_id: String = r.try_get("queue_id")?;
        let sealed: Vec<u8> = r.try_get("raw")?;
        batch.push(Pending {
            id,
            raw: sealer
                .open(&format!("message:{queue_id}"), &sealed)
                .map_err(crate::store::StoreError::from)?,
            queue_id,
            mail_from: r.try_get("mail_from")?,
            peer: r.try_get("peer")?,
            received_at: r.try_get("received_at")?,
            rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
            tls_version: r.try_get("tls_version")?,
            tls_cipher: r.try_get("tls_cipher")?,
            attempts: u32::try_from(r.try_get::<i64, _>("intake_attempts")?).unwrap_or(u32::MAX),
            failure: r.try_get("intake_failure")?,
            budget_factor: u32::try_from(r.try_get::<i64, _>("budget_factor")?.max(1)).unwrap_or(1),
            case_id: r.try_get("case_id")?,
        });
    }
    Ok(batch)
}

/// Ends a failed attempt: the reason is kept, the lease released, the
/// attempt stays counted.
async fn release(
    conn: &mut AnyConnection,
    message: i64,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET claimed_until = NULL, intake_failure = COALESCE($1, intake_failure)
         WHERE id = $2 AND state = 'pending'",
    )
    .bind(reason)
    .bind(message)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives a claim back uncounted (no worker could run: not the message).
async fn unclaim(conn: &mut AnyConnection, message: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET claimed_until = NULL, intake_attempts = intake_attempts - 1
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(message)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
