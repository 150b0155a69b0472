//! The messages repository, as intake works it: claiming pending messages
//! under a lease, settling each one (filed, quarantined, or released for
//! another attempt). The receiver's side — committing what arrived — is
//! `Writer` in `mod.rs`.

use super::seal::{Label, Sealer};

use super::{Backend, EnvelopeRecord, MessageSummary, Store, StoreError, WriteTx};
use sqlx::Row;

/// Margin of a lease beyond the parse's own wall budget, for filing.
const LEASE_MARGIN_SECONDS: i64 = 20;

/// One claimed message, opened.
pub struct Claimed {
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

/// How much one claim may take.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub max_messages: usize,
    /// Raw bytes together (at least one message is always claimed).
    pub max_bytes: i64,
    /// The parse's wall budget in seconds; the lease outlasts it.
    pub wall: i64,
}

/// Claims the oldest pending messages no other receiver holds, inside the
/// caller's write transaction: counts each one's attempt and takes a lease,
/// which the caller commits before anything parses them. The lease outlasts
/// the attempt (`wall` seconds times the message's budget factor, plus a
/// margin), so another receiver never takes a message that is being
/// parsed. On PostgreSQL the rows are locked `FOR UPDATE SKIP LOCKED` while
/// claiming, so two receivers never claim the same message.
pub async fn claim(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    now: i64,
    limits: Batch,
) -> Result<Vec<Claimed>, StoreError> {
    let sql = format!(
        "SELECT id, size FROM messages WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY id LIMIT $2{}",
        tx.backend().skip_locked()
    );
    let candidates: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limits.max_messages as i64)
        .fetch_all(tx.conn())
        .await?;
    let mut total = 0;
    let mut batch = Vec::new();
    for (id, size) in candidates {
        if !batch.is_empty() && total + size > limits.max_bytes {
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
        .bind(limits.wall)
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
        let rcpt: String = r.try_get("rcpt_to")?;
        let queue_id: String = r.try_get("queue_id")?;
        let sealed: Vec<u8> = r.try_get("raw")?;
        batch.push(Claimed {
            id,
            raw: sealer.open(Label::Message(&queue_id), &sealed)?,
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
pub async fn release(
    tx: &mut WriteTx<'_>,
    message: i64,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE messages SET claimed_until = NULL, intake_failure = COALESCE($1, intake_failure)
         WHERE id = $2 AND state = 'pending'",
    )
    .bind(reason)
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Gives a claim back uncounted (no worker could run: not the message).
pub async fn unclaim(tx: &mut WriteTx<'_>, message: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE messages SET claimed_until = NULL, intake_attempts = intake_attempts - 1
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// On SQLite (one node) a lease left by a process that died is nobody's
/// any more: its messages need not wait it out. PostgreSQL receivers keep
/// each other's leases.
pub async fn clear_dead_leases(store: &Store) -> Result<(), StoreError> {
    if store.backend() == Backend::Sqlite {
        sqlx::query(
            "UPDATE messages SET claimed_until = NULL WHERE state = 'pending' AND claimed_until IS NOT NULL",
        )
        .execute(store.pool())
        .await?;
    }
    Ok(())
}

/// Marks a pending message filed into `case_id`. False if it was no longer
/// pending (filed by someone else meanwhile).
pub async fn mark_filed(
    tx: &mut WriteTx<'_>,
    message: i64,
    case_id: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE messages SET state = 'filed', case_id = $1, claimed_until = NULL, intake_failure = NULL,
             auth_pending = 1
         WHERE id = $2 AND state = 'pending'",
    )
    .bind(case_id)
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a pending message quarantined with `reason`. False if it was no
/// longer pending.
pub async fn mark_quarantined(
    tx: &mut WriteTx<'_>,
    message: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE messages SET state = 'quarantined', quarantine_reason = $1, claimed_until = NULL,
             budget_factor = 1
         WHERE id = $2 AND state = 'pending'",
    )
    .bind(reason)
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ties a message to the case opened for it.
pub async fn link_case(tx: &mut WriteTx<'_>, message: i64, case_id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE messages SET case_id = $1 WHERE id = $2")
        .bind(case_id)
        .bind(message)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Messages as ops see them, and putting quarantined ones back.
impl Store {
    /// Messages without content, oldest first, optionally by state.
    pub async fn list(&self, state: Option<&str>) -> Result<Vec<MessageSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT queue_id, received_at, peer, helo, tls_version, tls_cipher, mail_from, rcpt_to, size, state,
                    quarantine_reason
             FROM messages WHERE ($1 IS NULL OR state = $1) ORDER BY id",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let rcpt: String = r.try_get("rcpt_to")?;
                Ok(MessageSummary {
                    envelope: EnvelopeRecord {
                        queue_id: r.try_get("queue_id")?,
                        received_at: r.try_get("received_at")?,
                        peer: r.try_get("peer")?,
                        helo: r.try_get("helo")?,
                        tls_version: r.try_get("tls_version")?,
                        tls_cipher: r.try_get("tls_cipher")?,
                        mail_from: r.try_get("mail_from")?,
                        rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
                    },
                    size: r.try_get("size")?,
                    state: r.try_get("state")?,
                    quarantine_reason: r.try_get("quarantine_reason")?,
                })
            })
            .collect()
    }

    /// Puts a quarantined message back in the queue (after the cause was
    /// fixed, e.g. a policy added). Returns whether one was requeued.
    pub async fn requeue(&self, queue_id: &str) -> Result<bool, StoreError> {
        self.requeue_with(queue_id, 1).await
    }

    /// Requeues a quarantined message with its attempts reset and a parse
    /// budget `factor` times the usual one.
    /// A message whose raw bytes were erased (`retention`) stays where it
    /// is: there is nothing left to parse.
    async fn requeue_with(&self, queue_id: &str, factor: u32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET state = 'pending', quarantine_reason = NULL, intake_attempts = 0,
                 intake_failure = NULL, claimed_until = NULL, budget_factor = $1
             WHERE queue_id = $2 AND state = 'quarantined' AND length(raw) > 0",
        )
        .bind(i64::from(factor.max(1)))
        .bind(queue_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues the message of `unparsed` case `reference` again with a
    /// budget `factor` times larger; returns its queue id.
    pub async fn retry_unparsed(&self, reference: &str, factor: u32) -> Result<String, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT m.queue_id FROM messages m JOIN cases c ON c.id = m.case_id
             WHERE c.reference = $1 AND c.kind = 'unparsed' AND m.state = 'quarantined'",
        )
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        let Some((queue_id,)) = row else {
            return Err(StoreError::NotFound(format!(
                "no unparsed case {reference} with a quarantined message"
            )));
        };
        if !self.requeue_with(&queue_id, factor).await? {
            return Err(StoreError::NotFound(format!(
                "message {queue_id} is not quarantined"
            )));
        }
        Ok(queue_id)
    }

    /// The stored message a case was opened from, opened: what arrived,
    /// with our `Received:` header on top.
    pub async fn raw_of_case(&self, reference: &str) -> Result<Vec<u8>, StoreError> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT m.queue_id, m.raw FROM messages m JOIN cases c ON c.id = m.case_id
             WHERE c.reference = $1 ORDER BY m.id LIMIT 1",
        )
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        let (queue_id, sealed) =
            row.ok_or_else(|| StoreError::NotFound(format!("no message for case {reference}")))?;
        if sealed.is_empty() {
            // Erased (`retention`): nothing to open.
            return Ok(Vec::new());
        }
        Ok(self.sealer.open(Label::Message(&queue_id), &sealed)?)
    }

    /// Opens a write transaction: `BEGIN IMMEDIATE` on SQLite (the write
    /// lock up front, so a read inside never has to be upgraded), `BEGIN`
    /// on PostgreSQL. Everything one operation changes, with its timeline
    /// and audit entries, commits or rolls back together.
    pub async fn write(&self) -> Result<WriteTx<'static>, StoreError> {
        let tx = self.pool.begin_with(self.backend.begin_write()).await?;
        Ok(WriteTx {
            tx,
            backend: self.backend,
        })
    }
}
