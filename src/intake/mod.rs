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
pub mod unlock;
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
    pub async fn drain(&self, conn: &mut AnyConnection) -> Result<Vec<Filed>, IntakeError> {
        let mut out = Vec::new();
        while let Some(filed) = self.file_next(conn).await? {
            out.push(filed);
        }
        Ok(out)
    }

    /// Claims the oldest pending message and takes one attempt at it.
    async fn file_next(&self, conn: &mut AnyConnection) -> Result<Option<Filed>, IntakeError> {
        let now = jiff::Timestamp::now().as_second();
        let lease = self.lease(1).as_secs() as i64;
        let Some(p) = claim_next(conn, self.store.sealer(), now, lease).await? else {
            return Ok(None);
        };
        let policy = p.rcpt_to.iter().find_map(|r| self.policies.for_address(r));
        let filed = if p.attempts > self.settings.max_attempts {
            let reason = p.failure.clone().unwrap_or_else(|| {
                format!(
                    "intake did not complete in {} attempts (the service stopped while parsing it)",
                    self.settings.max_attempts
                )
            });
            self.quarantine(conn, &p, policy, &reason).await?
        } else if let Some(policy) = policy {
            self.attempt(conn, &p, policy).await?
        } else {
            self.quarantine(conn, &p, None, "no policy owns any recipient")
                .await?
        };
        log(&p.queue_id, &filed);
        Ok(Some(filed))
    }

    /// The lease on a claimed message: longer than any attempt can take,
    /// so another receiver never takes a message that is being parsed.
    fn lease(&self, factor: u32) -> Duration {
        self.settings.parse_budget().scaled(factor).wall + Duration::from_secs(60)
    }

    async fn attempt(
        &self,
        conn: &mut AnyConnection,
        p: &Pending,
        policy: &Policy,
    ) -> Result<Filed, IntakeError> {
        let parsed = if p.budget_factor > 1 {
            worker::pool::analyse_once(
                self.workers.budget().scaled(p.budget_factor),
                self.workers.policies(),
                &p.raw,
                Some(&policy.id),
                &self.limits,
            )
            .await
        } else {
            self.workers
                .analyse(&p.raw, Some(&policy.id), &self.limits)
                .await
        };
        let analysis = match parsed {
            Ok((Ok(a), stats)) => {
                info!(queue_id = %p.queue_id, cpu_ms = stats.cpu_ms, peak_rss_kib = stats.peak_rss_kib, "parsed");
                a
            }
            // Beyond the MIME limits: the same every time, so at once.
            Ok((Err(reason), _)) => return self.quarantine(conn, p, Some(policy), &reason).await,
            Err(failure) if failure.blames_message() => {
                let reason = failure.to_string();
                if p.attempts >= self.settings.max_attempts {
                    return self.quarantine(conn, p, Some(policy), &reason).await;
                }
                release(conn, p.id, Some(&reason)).await?;
                return Ok(Filed::Retrying { reason });
            }
            // No worker could run: not the message's fault.
            Err(failure) => {
                unclaim(conn, p.id).await?;
                return Err(failure.into());
            }
        };
        match filing::file(
            conn,
            &self.store,
            policy,
            &self.receipts,
            p,
            analysis,
            jiff::Timestamp::now().as_second(),
        )
        .await
        {
            Ok(filed) => Ok(filed),
            Err(e) => {
                // A database refusal: recorded like any failed attempt, so
                // a message the database keeps refusing is quarantined.
                let reason = format!("filing failed: {e}");
                if p.attempts >= self.settings.max_attempts {
                    return self.quarantine(conn, p, Some(policy), &reason).await;
                }
                release(conn, p.id, Some(&reason)).await?;
                Ok(Filed::Retrying { reason })
            }
        }
    }

    /// Quarantines `p`, opening an `unparsed` case for its organisation.
    async fn quarantine(
        &self,
        conn: &mut AnyConnection,
        p: &Pending,
        policy: Option<&Policy>,
        reason: &str,
    ) -> Result<Filed, IntakeError> {
        let sealer = self.store.sealer();
        match filing::quarantine(conn, sealer, policy, p, reason, now()).await {
            Ok(reference) => Ok(Filed::Quarantined {
                reason: reason.to_owned(),
                reference,
            }),
            // The database refuses the case too: the message is still
            // quarantined, so it cannot hold the queue.
            Err(e) if policy.is_some() => {
                let reason = format!("{reason}; no case could be opened for it: {e}");
                filing::quarantine(conn, sealer, None, p, &reason, now()).await?;
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

/// Claims the oldest pending message no other receiver holds: counts the
/// attempt and takes a lease, in a committed transaction, before anything
/// parses it. On PostgreSQL the row is locked `FOR UPDATE SKIP LOCKED`
/// while claiming, so two receivers never claim the same message.
async fn claim_next(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    now: i64,
    lease: i64,
) -> Result<Option<Pending>, IntakeError> {
    use sqlx::Row;
    let backend = crate::store::Backend::of(conn);
    let mut tx = sqlx::Connection::begin_with(&mut *conn, backend.begin_write()).await?;
    let sql = format!(
        "SELECT id, queue_id, mail_from, peer, raw, received_at, rcpt_to, tls_version, tls_cipher,
                intake_attempts, intake_failure, budget_factor, case_id
         FROM messages WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY id LIMIT 1{}",
        backend.skip_locked()
    );
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tx.commit().await?;
        return Ok(None);
    };
    let id: i64 = r.try_get("id")?;
    let attempts = r.try_get::<i64, _>("intake_attempts")? + 1;
    sqlx::query("UPDATE messages SET intake_attempts = $1, claimed_until = $2 WHERE id = $3")
        .bind(attempts)
        .bind(now + lease)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let rcpt: String = r.try_get("rcpt_to")?;
    let queue_id: String = r.try_get("queue_id")?;
    let sealed: Vec<u8> = r.try_get("raw")?;
    Ok(Some(Pending {
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
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        failure: r.try_get("intake_failure")?,
        budget_factor: u32::try_from(r.try_get::<i64, _>("budget_factor")?.max(1)).unwrap_or(1),
        case_id: r.try_get("case_id")?,
    }))
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
