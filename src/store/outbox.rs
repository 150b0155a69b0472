//! The outbox repository: receipts and replies waiting for the relay, sent,
//! failed or suppressed. Subjects and bodies are sealed; what to send and
//! when is `outbound`'s decision.

use super::seal::{Label, Sealer};
use super::{Store, StoreError, WriteTx};
use sqlx::Row;

/// One message for the outbox.
pub struct Outgoing<'a> {
    /// `receipt` (automatic) or `reply` (written by an analyst).
    pub kind: &'static str,
    pub case_id: i64,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
}

/// Where a new receipt would go, as the receipt limits count it.
pub struct Target<'a> {
    /// The address normalised (lower case, no `+tag`).
    pub normal: &'a str,
    pub domain: &'a str,
    /// The delivering MTA's address.
    pub client_ip: &'a str,
}

/// Receipts not suppressed in the last day (to the address, its domain,
/// caused by the client) and the last hour (all); each count stops at its
/// cap, so a flood of suppressed receipts costs nothing here (they are
/// outside the partial indexes).
pub struct Recent {
    pub address: i64,
    pub domain: i64,
    pub client: i64,
    pub hour: i64,
}

/// The caps the counts stop at: address, domain, client, hour.
pub type Caps = [u32; 4];

pub async fn recent_receipts(
    tx: &mut WriteTx<'_>,
    to: &Target<'_>,
    caps: Caps,
    now: i64,
) -> Result<Recent, StoreError> {
    const RECENT: &str = "kind = 'receipt' AND state != 'suppressed'";
    let sql = format!(
        "SELECT
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE to_normal = $1 AND {RECENT} AND created_at > $5 LIMIT $6) AS a),
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE to_domain = $2 AND {RECENT} AND created_at > $5 LIMIT $7) AS d),
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE client_ip = $3 AND {RECENT} AND created_at > $5 LIMIT $8) AS c),
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE {RECENT} AND created_at > $4 LIMIT $9) AS h)"
    );
    let (address, domain, client, hour): (i64, i64, i64, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(to.normal)
            .bind(to.domain)
            .bind(to.client_ip)
            .bind(now - 3600)
            .bind(now - 86_400)
            .bind(i64::from(caps[0]))
            .bind(i64::from(caps[1]))
            .bind(i64::from(caps[2]))
            .bind(i64::from(caps[3]))
            .fetch_one(tx.conn())
            .await?;
    Ok(Recent {
        address,
        domain,
        client,
        hour,
    })
}

/// Writes `entry` pending, or suppressed for `suppressed_because`;
/// `normal` is its address as the limits count it.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    entry: &Outgoing<'_>,
    normal: (&str, &str),
    suppressed_because: Option<&str>,
    client_ip: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (case_id, kind, to_address, subject, body, message_id, in_reply_to, state, reason,
             next_attempt_at, created_at, to_normal, to_domain, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(entry.case_id)
    .bind(entry.kind)
    .bind(entry.to.to_ascii_lowercase())
    .bind(sealer.seal_text(Label::Outbox(entry.message_id, "subject"), entry.subject))
    .bind(sealer.seal_text(Label::Outbox(entry.message_id, "body"), entry.body))
    .bind(entry.message_id)
    .bind(entry.in_reply_to)
    .bind(if suppressed_because.is_some() { "suppressed" } else { "pending" })
    .bind(suppressed_because)
    .bind(now)
    .bind(now)
    .bind(normal.0)
    .bind(normal.1)
    .bind(client_ip)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records a receipt that will not be sent, and why.
pub async fn record_suppressed(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    to: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (case_id, kind, to_address, subject, body, message_id, state, reason, next_attempt_at, created_at)
         VALUES ($1, 'receipt', $2, '', '', '', 'suppressed', $3, $4, $5)",
    )
    .bind(case_id)
    .bind(to.unwrap_or(""))
    .bind(reason)
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One outbox entry as `outbox list` shows it (no body).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub case_id: i64,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub message_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
}

pub async fn list(store: &Store) -> Result<Vec<OutboxEntry>, StoreError> {
    let sealer = store.sealer();
    let rows = sqlx::query(
        "SELECT id, case_id, kind, to_address, subject, message_id, state, reason, attempts, next_attempt_at, sent_at
         FROM outbox ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxEntry {
                id: r.try_get("id")?,
                case_id: r.try_get("case_id")?,
                kind: r.try_get("kind")?,
                to_address: r.try_get("to_address")?,
                // A suppressed receipt has no subject: nothing to open.
                subject: match r.try_get::<String, _>("subject")? {
                    empty if empty.is_empty() => empty,
                    sealed => sealer.open_text(
                        Label::Outbox(&r.try_get::<String, _>("message_id")?, "subject"),
                        &sealed,
                    )?,
                },
                message_id: r.try_get("message_id")?,
                state: r.try_get("state")?,
                reason: r.try_get("reason")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                sent_at: r.try_get("sent_at")?,
            })
        })
        .collect()
}

/// A due entry, claimed and opened.
pub struct Due {
    pub id: i64,
    /// The organisation of its case, whose address sends it.
    pub org: String,
    pub automatic: bool,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub attempts: i64,
    /// The reporter's public OpenPGP key, when their report carried one:
    /// the mail goes out encrypted to it.
    pub encrypt_to: Option<String>,
}

/// Claims the oldest due entry for `lease` seconds: its next attempt moves
/// past the lease, in a transaction of its own, so no other receiver
/// takes it while this one talks to the relay (PostgreSQL skips rows
/// another receiver is claiming) and no lock is held meanwhile. An entry
/// whose sender died is due again when the lease runs out.
pub async fn claim_due(store: &Store, now: i64, lease: i64) -> Result<Option<Due>, StoreError> {
    // A read first: most passes find nothing due, and should not take the
    // write lock (SQLite's is the receiver's too) to learn it.
    let due: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(store.pool())
    .await?;
    if due.is_none() {
        return Ok(None);
    }
    let mut tx = store.write().await?;
    let sql = format!(
        "SELECT o.id, o.case_id, o.kind, o.to_address, o.subject, o.body, o.message_id, o.in_reply_to, o.attempts, c.org
         FROM outbox o JOIN cases c ON c.id = o.case_id
         WHERE o.state = 'pending' AND o.next_attempt_at <= $1 ORDER BY o.id LIMIT 1{}",
        tx.backend().skip_locked_of("o")
    );
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .fetch_optional(tx.conn())
        .await?
    else {
        return Ok(None);
    };
    let id: i64 = r.try_get("id")?;
    sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2")
        .bind(now + lease)
        .bind(id)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    let sealer = store.sealer();
    let message_id: String = r.try_get("message_id")?;
    let case_id: i64 = r.try_get("case_id")?;
    let encrypt_to = super::crypto::reporter_key(store.pool(), sealer, case_id).await?;
    Ok(Some(Due {
        id,
        org: r.try_get("org")?,
        automatic: r.try_get::<String, _>("kind")? == "receipt",
        to: r.try_get("to_address")?,
        subject: sealer.open_text(
            Label::Outbox(&message_id, "subject"),
            &r.try_get::<String, _>("subject")?,
        )?,
        body: sealer.open_text(
            Label::Outbox(&message_id, "body"),
            &r.try_get::<String, _>("body")?,
        )?,
        message_id,
        in_reply_to: r.try_get("in_reply_to")?,
        attempts: r.try_get("attempts")?,
        encrypt_to,
    }))
}

pub async fn mark_sent(store: &Store, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, reason = NULL WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Records a failed attempt: `failed` for good, or pending again at
/// `next_attempt_at`.
pub async fn mark_attempt_failed(
    store: &Store,
    id: i64,
    attempts: i64,
    failed: bool,
    next_attempt_at: i64,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = $1, attempts = $2, next_attempt_at = $3, reason = $4 WHERE id = $5",
    )
    .bind(if failed { "failed" } else { "pending" })
    .bind(attempts)
    .bind(next_attempt_at)
    .bind(reason)
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Suppresses the case's `kind` messages still waiting for the relay,
/// with `reason`; returns how many.
pub async fn suppress_pending(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    kind: &str,
    reason: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'suppressed', reason = $1
         WHERE case_id = $2 AND kind = $3 AND state = 'pending'",
    )
    .bind(reason)
    .bind(case_id)
    .bind(kind)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// Puts back in the queue the case's `kind` messages suppressed for
/// `reason` (and only for it); returns how many.
pub async fn resume_suppressed(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    kind: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'pending', reason = NULL, next_attempt_at = $1
         WHERE case_id = $2 AND kind = $3 AND state = 'suppressed' AND reason = $4",
    )
    .bind(now)
    .bind(case_id)
    .bind(kind)
    .bind(reason)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// Changes why the case's suppressed `kind` messages wait: from `from`
/// to `to`; returns how many.
pub async fn resuppress(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    kind: &str,
    from: &str,
    to: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET reason = $1
         WHERE case_id = $2 AND kind = $3 AND state = 'suppressed' AND reason = $4",
    )
    .bind(to)
    .bind(case_id)
    .bind(kind)
    .bind(from)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// What an operator sees of one entry before retrying or cancelling it.
pub struct EntryState {
    pub case_reference: String,
    pub state: String,
    pub kind: String,
    /// A suppressed receipt that was never written has no body to send.
    pub has_body: bool,
}

pub async fn entry_state(store: &Store, id: i64) -> Result<Option<EntryState>, StoreError> {
    let row = sqlx::query(
        "SELECT c.reference, o.state, o.kind, o.body FROM outbox o JOIN cases c ON c.id = o.case_id
         WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| {
        Ok(EntryState {
            case_reference: r.try_get("reference")?,
            state: r.try_get("state")?,
            kind: r.try_get("kind")?,
            has_body: !r.try_get::<String, _>("body")?.is_empty(),
        })
    })
    .transpose()
}

/// Due now, with a fresh count of attempts, if it is still `from`
/// (pending or failed); false when another change got there first.
pub async fn retry_now(
    tx: &mut WriteTx<'_>,
    id: i64,
    from: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, reason = NULL
         WHERE id = $2 AND state = $3",
    )
    .bind(now)
    .bind(id)
    .bind(from)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Never sent: suppressed with `reason`, if it is still `from`.
pub async fn cancel(
    tx: &mut WriteTx<'_>,
    id: i64,
    from: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'suppressed', reason = $1 WHERE id = $2 AND state = $3",
    )
    .bind(reason)
    .bind(id)
    .bind(from)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}
