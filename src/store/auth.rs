//! Sender authentication at rest (`model::auth`): one row per filed
//! message once assessed, our header and checks sealed
//! (`Label::CaseChild`); the stored message rewritten with our header on
//! top (`sender_auth::annotate`); the case's `authentication_results`
//! set from its report.

use super::seal::{Label, Sealer};
use super::{StoreError, WriteTx};
use crate::model::auth::Assessment;
use sqlx::{AnyPool, Row};

const TABLE: &str = "message_auth";

/// A filed message not assessed yet, opened.
pub struct Unassessed {
    pub id: i64,
    pub queue_id: String,
    pub case_id: i64,
    pub peer: String,
    pub helo: String,
    pub mail_from: String,
    pub raw: Vec<u8>,
    /// It opened its case (the report), rather than followed up.
    pub opened_case: bool,
}

/// The oldest filed messages without an assessment, at most `limit`.
pub async fn unassessed(
    pool: &AnyPool,
    sealer: &Sealer,
    limit: i64,
) -> Result<Vec<Unassessed>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.id, m.queue_id, m.case_id, m.peer, m.helo, m.mail_from, m.raw,
                (SELECT MIN(x.id) FROM messages x WHERE x.case_id = m.case_id) AS first_id
         FROM messages m
         WHERE m.auth_pending = 1 AND length(m.raw) > 0
         ORDER BY m.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let queue_id: String = r.try_get("queue_id")?;
        let sealed: Vec<u8> = r.try_get("raw")?;
        let id: i64 = r.try_get("id")?;
        let first: Option<i64> = r.try_get("first_id")?;
        out.push(Unassessed {
            raw: sealer.open(Label::Message(&queue_id), &sealed)?,
            id,
            queue_id,
            case_id: r.try_get("case_id")?,
            peer: r.try_get("peer")?,
            helo: r.try_get("helo")?,
            mail_from: r.try_get("mail_from")?,
            opened_case: first == Some(id),
        });
    }
    Ok(out)
}

/// Records `a` for message `m`, and stores `annotated` (if given) as its
/// raw bytes;
/// for the report of a case, `a`'s header becomes the case's
/// `authentication_results`. False if another receiver recorded it first.
pub async fn record(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    m: &Unassessed,
    a: &Assessment,
    annotated: Option<&[u8]>,
    now: i64,
) -> Result<bool, StoreError> {
    let label = Label::CaseChild(m.case_id, TABLE);
    let checks = serde_json::to_string(&a.checks)
        .map_err(|e| StoreError::Corrupt(format!("checks: {e}")))?;
    // Claimed here: another receiver that assessed it too records nothing.
    let claimed =
        sqlx::query("UPDATE messages SET auth_pending = NULL WHERE id = $1 AND auth_pending = 1")
            .bind(m.id)
            .execute(tx.conn())
            .await?;
    if claimed.rows_affected() == 0 {
        return Ok(false);
    }
    // A message filed again (decrypted once its key was unlocked) is
    // assessed again: the newer record replaces the older.
    sqlx::query(
        "INSERT INTO message_auth (message_id, case_id, at, header, checks, authenticated)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (message_id) DO UPDATE SET case_id = excluded.case_id, at = excluded.at,
             header = excluded.header, checks = excluded.checks,
             authenticated = excluded.authenticated",
    )
    .bind(m.id)
    .bind(m.case_id)
    .bind(now)
    .bind(sealer.seal_text(label, &a.header))
    .bind(sealer.seal_text(label, &checks))
    .bind(i64::from(a.authenticated))
    .execute(tx.conn())
    .await?;
    if let Some(annotated) = annotated {
        sqlx::query("UPDATE messages SET raw = $1 WHERE id = $2 AND length(raw) > 0")
            .bind(sealer.seal(Label::Message(&m.queue_id), annotated))
            .bind(m.id)
            .execute(tx.conn())
            .await?;
    }
    if m.opened_case {
        let reference: (String,) = sqlx::query_as("SELECT reference FROM cases WHERE id = $1")
            .bind(m.case_id)
            .fetch_one(tx.conn())
            .await?;
        let field = super::cases::case_field(&reference.0, "authentication_results");
        sqlx::query("UPDATE cases SET authentication_results = $1 WHERE id = $2")
            .bind(sealer.seal_text(field, &a.header))
            .bind(m.case_id)
            .execute(tx.conn())
            .await?;
    }
    Ok(true)
}

/// The assessment of the message that opened case `case_id`, if made.
pub async fn of_case(
    pool: &AnyPool,
    sealer: &Sealer,
    case_id: i64,
) -> Result<Option<Assessment>, StoreError> {
    let row = sqlx::query(
        "SELECT header, checks, authenticated FROM message_auth
         WHERE case_id = $1 AND header != '' ORDER BY message_id LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let label = Label::CaseChild(case_id, TABLE);
    let header = sealer.open_text(label, &r.try_get::<String, _>("header")?)?;
    let checks = sealer.open_text(label, &r.try_get::<String, _>("checks")?)?;
    Ok(Some(Assessment {
        header,
        checks: serde_json::from_str(&checks)
            .map_err(|e| StoreError::Corrupt(format!("checks: {e}")))?,
        authenticated: r.try_get::<i64, _>("authenticated")? != 0,
    }))
}
