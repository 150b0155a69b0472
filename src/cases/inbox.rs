//! The inbox: turns stored messages into cases, per organisation policy.
//!
//! The loop claims the oldest pending messages, records each attempt in
//! the database *before* parsing, has a parse worker (`intake::worker`)
//! analyse them under its memory and CPU budget, and in one write
//! transaction files each — a new case, or a follow-up in an existing
//! case's conversation — and marks it filed. A crash anywhere before that
//! commit leaves the message pending with its attempt counted, so it is
//! filed exactly once; a message whose attempts never complete (the worker
//! killed by a limit, or the whole service killed while parsing it) is
//! quarantined after `max_attempts`, never retried forever.
//!
//! A quarantined report is not a lost report: it becomes an `unparsed`
//! case of the organisation that owns the recipient, keeping the sealed
//! raw message, the reason, and the clocks from arrival; `cases retry`
//! parses it again with a larger budget and fills that case.

use super::CaseKind;
use super::decrypt;
use super::filing;
use crate::intake::mime::MimeLimits;
use crate::intake::worker::{self, Failure, WorkerPool};
use crate::intake::{IntakeSettings, analysis};
use crate::keyring::Keyring;
use crate::outbound::OutboundConfig;
use crate::policy::{Policy, PolicySet};
use crate::store::messages::{self, Batch, Claimed};
use crate::store::{Store, WriteTx};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("message {0} was filed by another receiver meanwhile")]
    AlreadyFiled(String),
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
    /// An aggregate TLS report, recorded for delivery health.
    TlsReport {
        organization: String,
    },
    /// This attempt failed (the reason is recorded); the message waits for
    /// its next attempt.
    Retrying {
        reason: String,
    },
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
    /// Mail to the TLS-RPT address: the report, or why it is none.
    TlsReport(Result<crate::model::delivery::TlsReport, String>),
}

/// What intake needs to queue receipts.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Our host name, for receipt Message-IDs.
    pub hostname: String,
    pub outbound: OutboundConfig,
    /// Hold each receipt until the sender is assessed
    /// (`cases::authenticate`): sender authentication is on.
    pub hold_for_sender_auth: bool,
}

/// The inbox loop over one store.
pub struct Inbox {
    store: Store,
    policies: Arc<PolicySet>,
    limits: MimeLimits,
    receipts: Receipts,
    workers: Arc<WorkerPool>,
    settings: IntakeSettings,
    /// The organisations' decryption keys (`keyring`).
    keyring: Arc<Keyring>,
    /// Most plaintext one encrypted message may open to: the message size
    /// limit, so decryption cannot make a report larger than one we would
    /// have accepted in clear.
    max_plain: usize,
    /// Told after a pass that filed something (sender authentication
    /// waits on it).
    filed: Option<Arc<tokio::sync::Notify>>,
    /// The TLS-RPT addresses (`[mta_sts] tls_rpt`), lower case: mail to
    /// them only is a TLS report, recorded for delivery health, not a case.
    tls_rpt: Vec<String>,
}

impl Inbox {
    pub fn new(
        store: Store,
        policies: Arc<PolicySet>,
        receipts: Receipts,
        workers: Arc<WorkerPool>,
        settings: IntakeSettings,
    ) -> Self {
        Inbox {
            store,
            policies,
            limits: MimeLimits::default(),
            receipts,
            workers,
            settings,
            keyring: Arc::new(Keyring::default()),
            max_plain: 25 * 1024 * 1024,
            filed: None,
            tls_rpt: Vec::new(),
        }
    }

    /// Tells `filed` after each pass that filed a message.
    pub fn notifying(mut self, filed: Arc<tokio::sync::Notify>) -> Self {
        self.filed = Some(filed);
        self
    }

    /// Takes mail to `addresses` (`mailto:` URIs or addresses) as TLS
    /// reports.
    pub fn with_tls_rpt(mut self, addresses: &[String]) -> Self {
        self.tls_rpt = addresses
            .iter()
            .filter_map(|a| a.strip_prefix("mailto:").or(Some(a)))
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        self
    }

    /// Decrypts reports with `keyring`, to at most `max_plain` bytes each.
    pub fn with_keyring(mut self, keyring: Arc<Keyring>, max_plain: usize) -> Self {
        self.keyring = keyring;
        self.max_plain = max_plain;
        self
    }

    /// Files pending messages until none is left; returns what each became.
    ///
    /// Messages are claimed in batches (one transaction records every
    /// attempt before any parse), parsed by the workers side by side, and
    /// settled in one write transaction per batch, each message under its
    /// own savepoint: one message the database refuses cannot undo the
    /// others, and a batch costs two commits however many it holds.
    pub async fn drain(&self) -> Result<Vec<Filed>, InboxError> {
        let mut out = Vec::new();
        let limits = Batch {
            max_messages: MAX_BATCH,
            max_bytes: MAX_BATCH_BYTES,
            wall: self.settings.parse_wall_seconds as i64,
        };
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let mut batch = messages::claim(&mut tx, sealer, now(), limits).await?;
        tx.commit().await?;
        while !batch.is_empty() {
            let started = std::time::Instant::now();
            let settled_before = out.len();
            let outcomes = self.parse_all(&mut batch).await;
            let mut tx = self.store.write().await?;
            let mut no_worker = None;
            for (p, outcome) in batch.iter().zip(outcomes) {
                if let Outcome::NoWorker(failure) = outcome {
                    messages::unclaim(&mut tx, p.id).await?;
                    no_worker = Some(failure);
                    continue;
                }
                let filed = self.settle(&mut tx, p, outcome).await?;
                log(&p.queue_id, &filed);
                out.push(filed);
            }
            let settled = out.len() - settled_before;
            if let Some(failure) = no_worker {
                tx.commit().await?;
                return Err(failure.into());
            }
            // The next batch is claimed in the same commit that files this
            // one: one fsync per batch.
            batch = messages::claim(&mut tx, sealer, now(), limits).await?;
            tx.commit().await?;
            // Each message's time in intake: claimed to committed.
            let took = started.elapsed().as_secs_f64();
            for filed in &out[out.len() - settled..] {
                metrics::histogram!(INTAKE_DURATION).record(took);
                metrics::counter!(INTAKE_FILED, "outcome" => filed.outcome()).increment(1);
            }
        }
        Ok(out)
    }

    /// Parses a batch in the workers, side by side; in order.
    async fn parse_all(&self, batch: &mut [Claimed]) -> Vec<Outcome> {
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
            if !self.tls_rpt.is_empty()
                && p.rcpt_to
                    .iter()
                    .all(|r| self.tls_rpt.contains(&r.to_ascii_lowercase()))
            {
                let raw = std::mem::take(&mut p.raw);
                jobs.spawn(async move {
                    let parsed =
                        tokio::task::spawn_blocking(move || crate::intake::tlsrpt::parse(&raw))
                            .await
                            .unwrap_or_else(|_| Err("the TLS report parser failed".into()));
                    (i, Outcome::TlsReport(parsed))
                });
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
            let (keyring, max_plain) = (Arc::clone(&self.keyring), self.max_plain);
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
                let parsed = match parsed {
                    Ok((Ok(a), stats)) => {
                        decrypt::open(&keyring, &workers, &policy_id, a, &limits, max_plain)
                            .await
                            .map(|a| (Ok(a), stats))
                    }
                    other => other,
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
        tx: &mut WriteTx<'_>,
        p: &Claimed,
        outcome: Outcome,
    ) -> Result<Filed, InboxError> {
        let policy = p.rcpt_to.iter().find_map(|r| self.policies.for_address(r));
        let reason = match (outcome, policy) {
            (Outcome::TlsReport(Ok(report)), _) => {
                crate::store::tlsrpt::record(tx, self.store.sealer(), p.id, p.received_at, &report)
                    .await?;
                return Ok(Filed::TlsReport {
                    organization: report.organization,
                });
            }
            (Outcome::TlsReport(Err(reason)), _) => {
                return self.quarantine(tx, p, None, &reason).await;
            }
            (Outcome::Parsed(analysis), Some(policy)) => {
                let mut sp = tx.savepoint().await?;
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
        messages::release(tx, p.id, Some(&reason)).await?;
        Ok(Filed::Retrying { reason })
    }

    /// Quarantines `p`, opening an `unparsed` case for its organisation.
    async fn quarantine(
        &self,
        tx: &mut WriteTx<'_>,
        p: &Claimed,
        policy: Option<&Policy>,
        reason: &str,
    ) -> Result<Filed, InboxError> {
        let sealer = self.store.sealer();
        let mut sp = tx.savepoint().await?;
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
        if let Err(e) = messages::clear_dead_leases(&self.store).await {
            warn!(error = %e, "intake cannot release old leases");
        }
        loop {
            match self.drain().await {
                Ok(filed) if !filed.is_empty() => {
                    if let Some(n) = &self.filed {
                        n.notify_one();
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "intake pass failed; retrying"),
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

/// Seconds each message spent in intake, claimed to committed (histogram).
pub const INTAKE_DURATION: &str = "dmx_intake_duration_seconds";
/// Messages intake settled, by `outcome` (`Filed::outcome`).
pub const INTAKE_FILED: &str = "dmx_intake_messages_total";

impl Filed {
    /// A label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Filed::NewCase { .. } => "new_case",
            Filed::Correspondence { .. } => "follow_up",
            Filed::Refiled { .. } => "refiled",
            Filed::Quarantined { .. } => "quarantined",
            Filed::Retrying { .. } => "retrying",
            Filed::TlsReport { .. } => "tls_report",
        }
    }
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
        Filed::TlsReport { organization } => {
            info!(%queue_id, %organization, "TLS report recorded")
        }
    }
}
