//! Personal data at rest, for retention and erasure (`cases::retention`):
//! which cases are due, which cases hold an address, and the erasure of
//! what identifies a person — the envelope (sender, peer address, HELO),
//! the raw messages, conversation senders, the outbox's addresses and the
//! reporter columns. The case's technical record stays.

use super::seal::Sealer;
use super::{Backend, Store, StoreError, WriteTx};
use crate::model::case::CaseState;
use sqlx::Row;

/// A case whose personal data may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub id: i64,
    pub reference: String,
    pub org: String,
}

fn held(r: &sqlx::any::AnyRow) -> Result<Held, StoreError> {
    Ok(Held {
        id: r.try_get("id")?,
        reference: r.try_get("reference")?,
        org: r.try_get("org")?,
    })
}

/// Cases of `org`, not yet erased, that have been resolved, closed or
/// junked since before `before` (the time of their last transition).
pub async fn due(pool: &sqlx::AnyPool, org: &str, before: i64) -> Result<Vec<Held>, StoreError> {
    let done: Vec<String> = CaseState::ALL
        .into_iter()
        .filter(|s| !s.is_open())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let sql = format!(
        "SELECT c.id, c.reference, c.org FROM cases c
         WHERE c.org = $1 AND c.erased_at IS NULL AND c.state IN ({})
           AND COALESCE((SELECT MAX(e.at) FROM case_events e WHERE e.case_id = c.id AND e.kind = 'transition'),
                        c.received_at) < $2
         ORDER BY c.id",
        done.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(org)
        .bind(before)
        .fetch_all(pool)
        .await?
        .iter()
        .map(held)
        .collect()
}

/// Every case that holds `address` (lower case): as an envelope sender,
/// as an outbox recipient, or by one of the blind `sender_terms`.
pub async fn holding(
    pool: &sqlx::AnyPool,
    address: &str,
    sender_terms: &[i64],
) -> Result<Vec<Held>, StoreError> {
    let mut marks = Vec::new();
    for i in 0..sender_terms.len() {
        marks.push(format!("${}", i + 2));
    }
    let by_term = if marks.is_empty() {
        String::new()
    } else {
        format!(
            " OR c.id IN (SELECT case_id FROM case_terms WHERE term IN ({}))",
            marks.join(", ")
        )
    };
    let sql = format!(
        "SELECT c.id, c.reference, c.org FROM cases c
         WHERE c.id IN (SELECT case_id FROM messages WHERE LOWER(mail_from) = $1 AND case_id IS NOT NULL)
            OR c.id IN (SELECT case_id FROM outbox WHERE to_normal = $1 OR LOWER(to_address) = $1){by_term}
         ORDER BY c.id"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(address);
    for t in sender_terms {
        q = q.bind(*t);
    }
    q.fetch_all(pool).await?.iter().map(held).collect()
}

/// What an erasure removed, by kind, for the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    pub raw_messages: u64,
    pub envelopes: u64,
    pub conversation_senders: u64,
    pub outbox_addresses: u64,
    pub index_entries: u64,
}

/// Erases a case's personal data in clear columns and its raw mail, and
/// the search index's entries (the caller indexes what remains again).
/// Pending mail to the reporter is suppressed: there is no one to send
/// it to.
pub async fn erase(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    now: i64,
) -> Result<Removed, StoreError> {
    let empty_sender = sealer.seal_text(super::cases::case_child(case_id, "conversation"), "");
    let raw = sqlx::query(
        "UPDATE messages SET raw = $1, mail_from = '', peer = '', helo = '', auth_pending = NULL
         WHERE case_id = $2",
    )
    .bind(Vec::<u8>::new())
    .bind(case_id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let senders = sqlx::query("UPDATE case_messages SET sender = $1 WHERE case_id = $2")
        .bind(&empty_sender)
        .bind(case_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    // A public key names its owner; our authentication results name the
    // envelope sender.
    super::crypto::erase_keys(tx, case_id).await?;
    sqlx::query("UPDATE message_auth SET header = '', checks = '' WHERE case_id = $1")
        .bind(case_id)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "UPDATE outbox SET state = 'suppressed', reason = 'erased' WHERE case_id = $1 AND state = 'pending'",
    )
    .bind(case_id)
    .execute(tx.conn())
    .await?;
    let outbox = sqlx::query(
        "UPDATE outbox SET to_address = '', to_normal = '', to_domain = '', client_ip = '' WHERE case_id = $1",
    )
    .bind(case_id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let terms = sqlx::query("DELETE FROM case_terms WHERE case_id = $1")
        .bind(case_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    sqlx::query(
        "UPDATE cases SET reporter_name = NULL, reporter_address = NULL, contact = NULL, channel = NULL,
             authentication_results = NULL, erased_at = $1
         WHERE id = $2",
    )
    .bind(now)
    .bind(case_id)
    .execute(tx.conn())
    .await?;
    Ok(Removed {
        raw_messages: raw,
        envelopes: raw,
        conversation_senders: senders,
        outbox_addresses: outbox,
        index_entries: terms,
    })
}

/// Rewrites a conversation message's subject and text (a redaction).
pub async fn rewrite_message(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    id: i64,
    subject: &str,
    text: &str,
) -> Result<(), StoreError> {
    let aad = super::cases::case_child(case_id, "conversation");
    sqlx::query("UPDATE case_messages SET subject = $1, body = $2 WHERE id = $3 AND case_id = $4")
        .bind(sealer.seal_text(aad, subject))
        .bind(sealer.seal_text(aad, text))
        .bind(id)
        .bind(case_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Rewrites a case's subject (a redaction).
pub async fn rewrite_subject(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET subject = $1 WHERE id = $2")
        .bind(sealer.seal_text(super::cases::case_field(reference, "subject"), subject))
        .bind(case_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Makes erased values unrecoverable from the database files: SQLite
/// zeroes freed pages already (`secure_delete`), and the WAL is folded
/// into the database and truncated; PostgreSQL's old row versions are
/// vacuumed away.
pub async fn compact(store: &Store) -> Result<(), StoreError> {
    let sql = match store.backend() {
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
        Backend::Postgres => "VACUUM cases, messages, case_messages, outbox, case_terms",
    };
    sqlx::raw_sql(sql).execute(store.pool()).await?;
    Ok(())
}
