//! Encrypted reports at rest (`model::crypto`): one row per encrypted
//! message, with the reporter's public key sealed (`Label::CaseChild`),
//! so our replies can be encrypted to it.

use super::seal::{Label, Sealer};
use super::{StoreError, WriteTx};
use crate::model::crypto::{Decryption, Encryption, Envelope, Signature, SignatureStatus};
use sqlx::{AnyPool, Row};

const TABLE: &str = "message_encryption";

/// Records what became of encrypted message `message_id` of `case_id`
/// (replacing an earlier record of it, e.g. before a key was unlocked).
pub async fn record(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    message_id: i64,
    case_id: i64,
    e: &Encryption,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM message_encryption WHERE message_id = $1")
        .bind(message_id)
        .execute(tx.conn())
        .await?;
    let key = e
        .reporter_key
        .as_deref()
        .map(|k| sealer.seal(Label::CaseChild(case_id, TABLE), k.as_bytes()));
    sqlx::query(
        "INSERT INTO message_encryption (message_id, case_id, envelope, decryption, key_ids,
             signer, signature, reason, reporter_key, reporter_key_fingerprint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(message_id)
    .bind(case_id)
    .bind(e.envelope.as_str())
    .bind(e.decryption.as_str())
    .bind(e.key_ids.join(" "))
    .bind(e.signature.as_ref().map(|s| s.signer.clone()))
    .bind(e.signature.as_ref().map(|s| s.status.as_str()))
    .bind(e.reason.clone())
    .bind(key)
    .bind(e.reporter_key_fingerprint.clone())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Every encrypted message of a case, oldest first: (message row id,
/// record without the key itself).
pub async fn of_case(pool: &AnyPool, case_id: i64) -> Result<Vec<(i64, Encryption)>, StoreError> {
    let rows = sqlx::query(
        "SELECT message_id, envelope, decryption, key_ids, signer, signature, reason,
                reporter_key_fingerprint
         FROM message_encryption WHERE case_id = $1 ORDER BY message_id",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await?;
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("unknown {what} {v:?}"));
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let envelope: String = r.try_get("envelope")?;
        let decryption: String = r.try_get("decryption")?;
        let key_ids: String = r.try_get("key_ids")?;
        let signer: Option<String> = r.try_get("signer")?;
        let status: Option<String> = r.try_get("signature")?;
        let signature = match (signer, status) {
            (Some(signer), Some(status)) => Some(Signature {
                status: SignatureStatus::parse(&status)
                    .ok_or_else(|| corrupt("signature status", &status))?,
                signer,
            }),
            _ => None,
        };
        out.push((
            r.try_get("message_id")?,
            Encryption {
                envelope: Envelope::parse(&envelope)
                    .ok_or_else(|| corrupt("envelope", &envelope))?,
                decryption: Decryption::parse(&decryption)
                    .ok_or_else(|| corrupt("decryption", &decryption))?,
                key_ids: key_ids.split_whitespace().map(str::to_owned).collect(),
                signature,
                reason: r.try_get("reason")?,
                reporter_key: None,
                reporter_key_fingerprint: r.try_get("reporter_key_fingerprint")?,
            },
        ));
    }
    Ok(out)
}

/// The newest reporter's public key a case holds (armored), opened.
pub async fn reporter_key(
    pool: &AnyPool,
    sealer: &Sealer,
    case_id: i64,
) -> Result<Option<String>, StoreError> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT reporter_key FROM message_encryption
         WHERE case_id = $1 AND reporter_key IS NOT NULL ORDER BY message_id DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(pool)
    .await?;
    match row {
        Some((sealed,)) => {
            let plain = sealer.open(Label::CaseChild(case_id, TABLE), &sealed)?;
            Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
        }
        None => Ok(None),
    }
}

/// Removes the reporter's keys of a case (retention and erasure: a
/// public key names its owner).
pub async fn erase_keys(tx: &mut WriteTx<'_>, case_id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE message_encryption SET reporter_key = NULL, reporter_key_fingerprint = NULL,
             signer = NULL, signature = NULL
         WHERE case_id = $1",
    )
    .bind(case_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Moves a case out of `awaiting-key` into `state` once its report is
/// decrypted (nothing if an analyst moved it meanwhile).
pub async fn leave_awaiting_key(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    state: crate::model::case::CaseState,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cases SET state = $1, updated_at = $2 WHERE id = $3 AND state = 'awaiting-key'",
    )
    .bind(state.as_str())
    .bind(now)
    .bind(case_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Queues again, for intake to decrypt, the report of every case of `org`
/// that waits for its key: the message that opened the case. Returns how
/// many.
pub async fn requeue_awaiting_key(pool: &AnyPool, org: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE messages SET state = 'pending', intake_attempts = 0, intake_failure = NULL,
             claimed_until = NULL, budget_factor = 1
         WHERE state = 'filed' AND length(raw) > 0 AND id IN (
             SELECT e.message_id FROM message_encryption e JOIN cases c ON c.id = e.case_id
             WHERE c.org = $1 AND c.state = 'awaiting-key' AND e.decryption = 'awaiting-key'
               AND e.message_id = (SELECT MIN(m.id) FROM messages m WHERE m.case_id = c.id))",
    )
    .bind(org)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Drops the text a case kept of message `message_row` as its report
/// (the covering note of a report that could not be decrypted yet),
/// before the message is filed again.
pub async fn forget_report_text(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    message_row: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM case_messages WHERE case_id = $1 AND message_row = $2 AND kind = 'report'",
    )
    .bind(case_id)
    .bind(message_row)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A case's password-encrypted messages were opened by an unlock.
pub async fn opened_with_password(tx: &mut WriteTx<'_>, case_id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE message_encryption SET decryption = 'decrypted'
         WHERE case_id = $1 AND decryption = 'password'",
    )
    .bind(case_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}
