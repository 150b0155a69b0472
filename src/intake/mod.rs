//! Intake: turns stored messages into cases, per organisation policy.
//!
//! The worker takes the oldest pending message, parses it off the async
//! runtime (a panic in the parser is caught), classifies it, and in one
//! `BEGIN IMMEDIATE` transaction files it — a new case, or correspondence
//! on an existing one — and marks the message filed. A crash before the
//! commit leaves the message pending, so it is filed exactly once. A message
//! that cannot be parsed or exceeds a bound is quarantined with its reason;
//! it is never lost and never blocks the queue.
//!
//! Intake knows nothing of SMTP sessions: it reads what the store holds.

pub mod archive;
pub mod extract;
pub mod mime;
pub mod report;
pub mod unlock;

use crate::cases::store::{self as case_store, NewCase, NewEvidence};
use crate::cases::{CaseKind, CaseState};
use crate::outbound::{self, OutboundConfig};
use crate::policy::{Policy, PolicySet};
use crate::store::Store;
use crate::store::seal::Sealer;
use mime::{Mail, MimeLimits};
use sqlx::AnyConnection;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    NewCase { reference: String, kind: CaseKind },
    Correspondence { reference: String },
    Quarantined { reason: String },
}

/// How a message relates to the organisation's cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Names an existing case (reference, id): append to it.
    Reply(String, i64),
    Flagged,
    Unflagged,
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

/// One pending message, as the worker reads it.
struct Pending {
    id: i64,
    mail_from: String,
    raw: Vec<u8>,
    received_at: i64,
    rcpt_to: Vec<String>,
    tls_version: Option<String>,
    tls_cipher: Option<String>,
}

/// The intake worker over one store.
pub struct Intake {
    store: Store,
    policies: Arc<PolicySet>,
    limits: MimeLimits,
    receipts: Receipts,
    /// Filing failures per message id. A message that keeps failing (a
    /// database refusal, not a parse error) is quarantined after
    /// `MAX_FILING_FAILURES`, so it cannot block the queue.
    failures: std::sync::Mutex<std::collections::HashMap<i64, u32>>,
}

/// Failed filing attempts before a message is quarantined. Three rides out
/// a transient lock timeout or a restarting database.
const MAX_FILING_FAILURES: u32 = 3;

/// What intake needs to queue receipts.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Our host name, for receipt Message-IDs.
    pub hostname: String,
    pub outbound: OutboundConfig,
}

impl Intake {
    pub fn new(store: Store, policies: Arc<PolicySet>, receipts: Receipts) -> Self {
        Intake {
            store,
            policies,
            limits: MimeLimits::default(),
            receipts,
            failures: Default::default(),
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

    /// Files the oldest pending message, if any.
    ///
    /// PostgreSQL, where several receivers may share the database: the
    /// message is claimed `FOR UPDATE SKIP LOCKED` inside the filing
    /// transaction, so each worker takes a different one and none waits.
    /// SQLite, one node: it is read and parsed first, so the write lock is
    /// held only for the short filing transaction; filing re-checks that the
    /// message is still pending, so it can never be filed twice.
    async fn file_next(&self, conn: &mut AnyConnection) -> Result<Option<Filed>, IntakeError> {
        let begin = case_store::begin_write(conn);
        let (id, attempt) = if begin == "BEGIN" {
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            let Some(p) =
                next_pending(&mut tx, " FOR UPDATE SKIP LOCKED", self.store.sealer()).await?
            else {
                tx.commit().await?;
                return Ok(None);
            };
            let parsed = self.parse(&p).await;
            let attempt = match self.record(&mut tx, &p, parsed).await {
                Ok(filed) => tx.commit().await.map(|()| filed).map_err(IntakeError::from),
                Err(e) => Err(e),
            };
            (p.id, attempt)
        } else {
            let Some(p) = next_pending(conn, "", self.store.sealer()).await? else {
                return Ok(None);
            };
            let parsed = self.parse(&p).await;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            let attempt = match self.record(&mut tx, &p, parsed).await {
                Ok(filed) => tx.commit().await.map(|()| filed).map_err(IntakeError::from),
                Err(e) => Err(e),
            };
            (p.id, attempt)
        };
        let filed = match attempt {
            Ok(filed) => {
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                filed
            }
            Err(e) => {
                let count = {
                    let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
                    let n = map.entry(id).or_insert(0);
                    *n += 1;
                    *n
                };
                if count < MAX_FILING_FAILURES {
                    return Err(e);
                }
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                quarantine(conn, id, &format!("filing failed {count} times: {e}")).await?
            }
        };
        match &filed {
            Filed::NewCase { reference, kind } => {
                info!(%reference, kind = kind.as_str(), "case opened")
            }
            Filed::Correspondence { reference } => info!(%reference, "correspondence filed"),
            Filed::Quarantined { reason } => warn!(reason, "message quarantined"),
        }
        Ok(Some(filed))
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

    /// Parses off the async runtime: hostile MIME is CPU work and may panic
    /// inside the parser; the panic is caught and becomes a reason.
    async fn parse(&self, p: &Pending) -> Result<Mail, String> {
        let limits = self.limits.clone();
        let raw = p.raw.clone();
        tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(|| mime::parse(&raw, &limits))
                .map_err(|_| "the MIME parser panicked".to_owned())
        })
        .await
        .map_err(|e| format!("intake task failed: {e}"))
        .and_then(|r| r)
        .and_then(|r| r.map_err(|e| e.to_string()))
    }

    /// Files one message inside the caller's transaction.
    async fn record(
        &self,
        tx: &mut AnyConnection,
        p: &Pending,
        parsed: Result<Mail, String>,
    ) -> Result<Filed, IntakeError> {
        let Some(policy) = p.rcpt_to.iter().find_map(|r| self.policies.for_address(r)) else {
            return quarantine(tx, p.id, "no policy owns any recipient").await;
        };
        let mail = match parsed {
            Ok(mail) => mail,
            Err(reason) => return quarantine(tx, p.id, &reason).await,
        };
        match classify(tx, policy, &mail).await? {
            Classification::Reply(reference, case_id) => {
                let detail = format!("correspondence received: {}", mail.subject);
                case_store::add_event(
                    tx,
                    self.store.sealer(),
                    case_id,
                    p.received_at,
                    "correspondence",
                    "intake",
                    &detail,
                    Some(p.id),
                )
                .await?;
                mark_filed(tx, p.id, case_id).await?;
                Ok(Filed::Correspondence { reference })
            }
            classification => {
                let kind = if classification == Classification::Flagged {
                    CaseKind::Disclosure
                } else {
                    CaseKind::Unflagged
                };
                let new = new_case(policy, kind, &mail, p);
                let (case_id, reference) =
                    case_store::insert(tx, self.store.sealer(), &new).await?;
                if kind == CaseKind::Disclosure {
                    self.queue_receipt(tx, policy, case_id, &reference, &mail, &new, p)
                        .await?;
                }
                mark_filed(tx, p.id, case_id).await?;
                Ok(Filed::NewCase { reference, kind })
            }
        }
    }
}

impl Intake {
    /// The receipt, in the report's language, or a suppressed entry saying
    /// why there is none. Unflagged mail gets no receipt: it may not be a
    /// report at all.
    #[allow(clippy::too_many_arguments)]
    async fn queue_receipt(
        &self,
        conn: &mut AnyConnection,
        policy: &Policy,
        case_id: i64,
        reference: &str,
        mail: &Mail,
        new: &NewCase,
        p: &Pending,
    ) -> Result<(), sqlx::Error> {
        let to = mail.from_address.as_deref().filter(|_| !new.anonymous);
        let now = jiff::Timestamp::now().as_second();
        if let Some(reason) = outbound::refusal(to, &p.mail_from, mail.auto_submitted.as_deref()) {
            return outbound::record_suppressed(conn, case_id, to, reason, now).await;
        }
        let Some(to) = to else { return Ok(()) };
        let danish = new.fields.language == Some(report::Language::Da);
        let (subject, body) = outbound::compose(policy, danish, reference, &mail.subject);
        let message_id = format!("<{reference}.receipt@{}>", self.receipts.hostname);
        let parent = mail.message_id.as_deref().map(|id| format!("<{id}>"));
        outbound::enqueue_receipt(
            conn,
            self.store.sealer(),
            &self.receipts.outbound,
            case_id,
            to,
            &subject,
            &body,
            &message_id,
            parent.as_deref(),
            now,
        )
        .await?;
        Ok(())
    }
}

async fn classify(
    conn: &mut AnyConnection,
    policy: &Policy,
    mail: &Mail,
) -> Result<Classification, sqlx::Error> {
    let mut candidates = references_in(policy, &mail.subject);
    for id in &mail.refers_to {
        candidates.extend(references_in(policy, id));
    }
    for reference in candidates {
        if let Some(id) = case_store::find(conn, &policy.id, &reference).await? {
            return Ok(Classification::Reply(reference, id));
        }
    }
    Ok(if is_flagged(policy, &mail.subject) {
        Classification::Flagged
    } else {
        Classification::Unflagged
    })
}

fn new_case(policy: &Policy, kind: CaseKind, mail: &Mail, p: &Pending) -> NewCase {
    let mut text = mail.text.clone();
    for f in &mail.forwarded_text {
        text.push_str("\n\n");
        text.push_str(f);
    }
    let fields = report::extract(&text, Some(policy));
    let mut suggestions = report::suggestions(&text, policy);
    let deadlines = policy.deadlines(
        jiff::Timestamp::from_second(p.received_at).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    );
    let anonymous = mail
        .from_address
        .as_deref()
        .is_none_or(|a| a.is_empty() || !a.contains('@'));
    let mut locked = false;
    let evidence = mail
        .attachments
        .iter()
        .map(|a| {
            let sniffed = mime::sniff_image(&a.data);
            let info = archive::inspect(&a.data);
            if let Some(info) = &info {
                locked |= info.is_encrypted();
                if info.encryption == "zipcrypto" || info.encryption == "mixed" && info.format == archive::Format::Zip {
                    suggestions.push(report::Suggestion {
                        kind: "warning".into(),
                        name: "zipcrypto".into(),
                        label: "Legacy ZipCrypto encryption is weak: ask the reporter to use AES-256 (7z or zip) next time"
                            .into(),
                        matched: a.name.clone().unwrap_or_else(|| "(unnamed attachment)".into()),
                    });
                }
            }
            NewEvidence {
                screenshot: sniffed.is_some(),
                opened: false,
                archive: info.and_then(|i| serde_json::to_string(&i).ok()),
                name: a.name.clone(),
                declared_type: a.declared_type.clone(),
                sniffed_type: sniffed.map(str::to_owned),
                forwarded: a.forwarded,
                data: a.data.clone(),
            }
        })
        .collect();
    NewCase {
        org: policy.id.clone(),
        state: if locked {
            CaseState::AwaitingPassword
        } else {
            CaseState::New
        },
        reference_prefix: policy.reference_prefix.clone(),
        kind,
        subject: mail.subject.clone(),
        reporter_name: mail.from_name.clone(),
        reporter_address: mail.from_address.clone(),
        anonymous,
        fields,
        suggestions,
        tls_version: p.tls_version.clone(),
        tls_cipher: p.tls_cipher.clone(),
        authentication_results: mail.authentication_results.clone(),
        message_id: mail.message_id.clone(),
        received_at: p.received_at,
        acknowledge_by: deadlines.acknowledge_by.as_second(),
        feedback_by: deadlines.feedback_by.as_second(),
        message_row: p.id,
        evidence,
    }
}

async fn next_pending(
    conn: &mut AnyConnection,
    lock: &'static str,
    sealer: &Sealer,
) -> Result<Option<Pending>, IntakeError> {
    use sqlx::Row;
    let sql = format!(
        "SELECT id, queue_id, mail_from, raw, received_at, rcpt_to, tls_version, tls_cipher FROM messages
         WHERE state = 'pending' ORDER BY id LIMIT 1{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let rcpt: String = r.try_get("rcpt_to")?;
    let queue_id: String = r.try_get("queue_id")?;
    let sealed: Vec<u8> = r.try_get("raw")?;
    Ok(Some(Pending {
        id: r.try_get("id")?,
        mail_from: r.try_get("mail_from")?,
        raw: sealer
            .open(&format!("message:{queue_id}"), &sealed)
            .map_err(crate::store::StoreError::from)?,
        received_at: r.try_get("received_at")?,
        rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
        tls_version: r.try_get("tls_version")?,
        tls_cipher: r.try_get("tls_cipher")?,
    }))
}

async fn mark_filed(
    conn: &mut AnyConnection,
    message: i64,
    case_id: i64,
) -> Result<(), sqlx::Error> {
    let done = sqlx::query(
        "UPDATE messages SET state = 'filed', case_id = $1 WHERE id = $2 AND state = 'pending'",
    )
    .bind(case_id)
    .bind(message)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        // Filed by someone else meanwhile: roll back rather than file twice.
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

async fn quarantine(
    conn: &mut AnyConnection,
    message: i64,
    reason: &str,
) -> Result<Filed, IntakeError> {
    sqlx::query("UPDATE messages SET state = 'quarantined', quarantine_reason = $1 WHERE id = $2 AND state = 'pending'")
        .bind(reason)
        .bind(message)
        .execute(&mut *conn)
        .await?;
    Ok(Filed::Quarantined {
        reason: reason.to_owned(),
    })
}
