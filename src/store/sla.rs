//! The facts the service-level figures are computed from (`cases::sla`):
//! per case its state, clocks, and when our receipt and first feedback
//! were accepted by the relay. All of it is in clear (times and states,
//! never content).

use super::StoreError;
use crate::model::case::{CaseKind, CaseState};
use sqlx::AnyPool;
use sqlx::Row;

/// One case's clocks and what was sent for it.
#[derive(Debug, Clone)]
pub struct CaseClock {
    pub state: CaseState,
    pub kind: CaseKind,
    pub received_at: i64,
    pub acknowledge_by: i64,
    pub feedback_by: i64,
    pub paused: bool,
    /// Feedback was given (queued): the clock stopped.
    pub feedback_given: bool,
    /// A receipt was owed: one was queued (not suppressed).
    pub receipt_owed: bool,
    /// When the relay accepted the first receipt.
    pub receipt_sent: Option<i64>,
    /// When the relay accepted the first reply or feedback update.
    pub feedback_sent: Option<i64>,
}

/// The cases of `org` received since `since`, and every open one.
pub async fn clocks(pool: &AnyPool, org: &str, since: i64) -> Result<Vec<CaseClock>, StoreError> {
    let closed: Vec<String> = CaseState::ALL
        .into_iter()
        .filter(|s| !s.is_open())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let sql = format!(
        "SELECT c.state, c.kind, c.received_at, c.acknowledge_by, c.feedback_by, c.feedback_paused_at, c.feedback_at,
            (SELECT COUNT(*) FROM outbox o WHERE o.case_id = c.id AND o.kind = 'receipt' AND o.state != 'suppressed') AS owed,
            (SELECT MIN(o.sent_at) FROM outbox o WHERE o.case_id = c.id AND o.kind = 'receipt' AND o.state = 'sent') AS receipt_sent,
            (SELECT MIN(o.sent_at) FROM outbox o WHERE o.case_id = c.id AND o.kind IN ('reply', 'feedback') AND o.state = 'sent') AS feedback_sent
         FROM cases c WHERE c.org = $1 AND (c.received_at >= $2 OR c.state NOT IN ({}))",
        closed.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(org)
        .bind(since)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            let kind: String = r.try_get("kind")?;
            Ok(CaseClock {
                state: CaseState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown case state {state:?}")))?,
                kind: CaseKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown case kind {kind:?}")))?,
                received_at: r.try_get("received_at")?,
                acknowledge_by: r.try_get("acknowledge_by")?,
                feedback_by: r.try_get("feedback_by")?,
                paused: r.try_get::<Option<i64>, _>("feedback_paused_at")?.is_some(),
                feedback_given: r.try_get::<Option<i64>, _>("feedback_at")?.is_some(),
                receipt_owed: r.try_get::<i64, _>("owed")? > 0,
                receipt_sent: r.try_get("receipt_sent")?,
                feedback_sent: r.try_get("feedback_sent")?,
            })
        })
        .collect()
}

/// An open disclosure case whose receipt or feedback deadline falls
/// before a time.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: i64,
    pub reference: String,
    pub org: String,
    pub state: CaseState,
    pub acknowledge_by: i64,
    pub feedback_by: i64,
    /// Paused, or stopped by feedback given.
    pub feedback_stopped: bool,
}

/// Open disclosure cases with a deadline at or before `until`.
pub async fn clock_candidates(pool: &AnyPool, until: i64) -> Result<Vec<Candidate>, StoreError> {
    let open: Vec<String> = CaseState::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let sql = format!(
        "SELECT id, reference, org, state, acknowledge_by, feedback_by, feedback_paused_at, feedback_at FROM cases
         WHERE kind = 'disclosure' AND state IN ({}) AND (acknowledge_by <= $1 OR feedback_by <= $1)",
        open.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(until)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            Ok(Candidate {
                id: r.try_get("id")?,
                reference: r.try_get("reference")?,
                org: r.try_get("org")?,
                state: CaseState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown case state {state:?}")))?,
                acknowledge_by: r.try_get("acknowledge_by")?,
                feedback_by: r.try_get("feedback_by")?,
                feedback_stopped: r.try_get::<Option<i64>, _>("feedback_paused_at")?.is_some()
                    || r.try_get::<Option<i64>, _>("feedback_at")?.is_some(),
            })
        })
        .collect()
}

/// Records alert `kind` of `clock` for case `case_id` and deadline `due`;
/// false when it was raised already.
pub async fn note_alert(
    tx: &mut super::WriteTx<'_>,
    case_id: i64,
    clock: &str,
    kind: &str,
    due: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO clock_alerts (case_id, clock, kind, due) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(case_id)
    .bind(clock)
    .bind(kind)
    .bind(due)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// The last day (local date) `org`'s digest went out, if ever.
pub async fn digest_day(pool: &AnyPool, org: &str) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM store_meta WHERE name = $1")
        .bind(format!("digest:{org}"))
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(v,)| v))
}

/// Records that `org`'s digest for `day` went out.
pub async fn set_digest_day(
    tx: &mut super::WriteTx<'_>,
    org: &str,
    day: &str,
) -> Result<(), StoreError> {
    let name = format!("digest:{org}");
    sqlx::query("DELETE FROM store_meta WHERE name = $1")
        .bind(&name)
        .execute(tx.conn())
        .await?;
    sqlx::query("INSERT INTO store_meta (name, value) VALUES ($1, $2)")
        .bind(&name)
        .bind(day)
        .execute(tx.conn())
        .await?;
    Ok(())
}
