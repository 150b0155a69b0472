//! Unlock attempts and the per-case unlock lock: the rows that let every
//! receiver and the CLI agree on who is unlocking a case and how many
//! guesses it has had.

use super::seal::{Label, Sealer};
use super::{StoreError, WriteTx};
use sqlx::Row;

/// What `begin_attempt` found.
pub enum Admission {
    /// Recorded; the attempt's id.
    Recorded(i64),
    /// Another unlock of the case holds the lock.
    Busy,
    /// `failed` attempts in the window already.
    Exhausted,
}

/// How long a holder keeps the lock, and the failure limit: failed
/// attempts allowed (`max_failed`) within `window` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub lease: i64,
    pub window: i64,
    pub max_failed: i64,
}

/// Checks the lock and the failure limit and records the attempt, inside
/// the caller's transaction, so simultaneous guesses cannot slip past the
/// limit between the check and the record. An attempt still running
/// counts as failed.
pub async fn begin_attempt(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    actor: &str,
    holder: &str,
    now: i64,
    rules: Rules,
) -> Result<Admission, StoreError> {
    let Rules {
        lease,
        window,
        max_failed,
    } = rules;
    let conn = tx.conn();
    let busy: Option<(i64,)> = sqlx::query_as(
        "SELECT expires_at FROM unlock_locks WHERE case_id = $1 AND expires_at > $2",
    )
    .bind(case_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if busy.is_some() {
        return Ok(Admission::Busy);
    }
    let (failed,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM unlock_attempts
         WHERE case_id = $1 AND at > $2 AND (outcome IS NULL OR outcome = 'wrong-password')",
    )
    .bind(case_id)
    .bind(now - window)
    .fetch_one(&mut *conn)
    .await?;
    if failed >= max_failed {
        return Ok(Admission::Exhausted);
    }
    let (attempt,): (i64,) = sqlx::query_as(
        "INSERT INTO unlock_attempts (case_id, at, actor) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(case_id)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM unlock_locks WHERE case_id = $1")
        .bind(case_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO unlock_locks (case_id, holder, expires_at) VALUES ($1, $2, $3)")
        .bind(case_id)
        .bind(holder)
        .bind(now + lease)
        .execute(&mut *conn)
        .await?;
    Ok(Admission::Recorded(attempt))
}

/// How an attempt ended: `opened`, `wrong-password`, `failed`,
/// `nothing-locked`.
pub async fn close_attempt(
    tx: &mut WriteTx<'_>,
    attempt: i64,
    outcome: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE unlock_attempts SET outcome = $1 WHERE id = $2")
        .bind(outcome)
        .bind(attempt)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Gives the case's lock back, if `holder` still holds it.
pub async fn release(tx: &mut WriteTx<'_>, case_id: i64, holder: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM unlock_locks WHERE case_id = $1 AND holder = $2")
        .bind(case_id)
        .bind(holder)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A locked archive of a case, opened from its seal.
pub struct Locked {
    pub id: i64,
    pub object_id: String,
    pub name: String,
    pub data: Vec<u8>,
}

pub async fn locked_archives(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
) -> Result<Vec<Locked>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, data, object_id FROM case_evidence
         WHERE case_id = $1 AND archive_locked = 1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            let object_id: String = r
                .try_get::<Option<String>, _>("object_id")?
                .unwrap_or_default();

            let sealed: Vec<u8> = r.try_get("data")?;
            Ok(Locked {
                id: r.try_get("id")?,
                name: sealer
                    .open_opt(Label::EvidenceField(&object_id, "name"), r.try_get("name")?)?
                    .unwrap_or_else(|| "(unnamed)".into()),
                data: sealer.open(Label::Evidence(&object_id), &sealed)?,
                object_id,
            })
        })
        .collect()
}

/// How many of the case's archives are still locked.
pub async fn count_locked(tx: &mut WriteTx<'_>, case_id: i64) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM case_evidence WHERE case_id = $1 AND archive_locked = 1",
    )
    .bind(case_id)
    .fetch_one(tx.conn())
    .await?;
    Ok(n)
}
