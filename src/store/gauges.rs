//! What the metrics endpoint reads from the store at each scrape: queue
//! depths, the outbox by state, webhook lag, and open and overdue cases per
//! organisation. Counts and times only; nothing sealed is opened.

use super::{Store, StoreError};
use crate::model::case::CaseState;
use sqlx::Row;

#[derive(Debug, Default)]
pub struct Gauges {
    pub pending: i64,
    pub quarantined: i64,
    /// When the oldest message still waiting for intake arrived.
    pub oldest_pending_at: Option<i64>,
    /// (state, count) for every outbox state present.
    pub outbox: Vec<(String, i64)>,
    /// Per organisation: (org, open, overdue).
    pub cases: Vec<(String, i64, i64)>,
}

/// A quick round trip, for readiness: does the database answer?
pub async fn ping(store: &Store) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").fetch_one(store.pool()).await?;
    Ok(())
}

pub async fn read(store: &Store, now: i64) -> Result<Gauges, StoreError> {
    let pool = store.pool();
    let mut g = Gauges::default();
    for r in sqlx::query(
        "SELECT state, COUNT(*) AS n, MIN(received_at) AS oldest FROM messages
         WHERE state IN ('pending', 'quarantined') GROUP BY state",
    )
    .fetch_all(pool)
    .await?
    {
        let n: i64 = r.try_get("n")?;
        match r.try_get::<String, _>("state")?.as_str() {
            "pending" => {
                g.pending = n;
                g.oldest_pending_at = r.try_get("oldest")?;
            }
            _ => g.quarantined = n,
        }
    }
    for r in sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
        .fetch_all(pool)
        .await?
    {
        g.outbox.push((r.try_get("state")?, r.try_get("n")?));
    }
    // Open cases only, and four columns each: the overdue rule is the
    // case list's own (`cases::read::overdue`).
    let closed: Vec<String> = CaseState::ALL
        .iter()
        .filter(|s| !s.is_open())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT org, state, acknowledge_by, feedback_by, feedback_paused_at, feedback_at
         FROM cases WHERE state NOT IN ({}) ORDER BY org",
        closed.join(", ")
    )))
    .fetch_all(pool)
    .await?;
    for r in rows {
        let org: String = r.try_get("org")?;
        let state = CaseState::parse(&r.try_get::<String, _>("state")?)
            .ok_or_else(|| StoreError::Corrupt("a case in an unknown state".into()))?;
        let paused = r.try_get::<Option<i64>, _>("feedback_paused_at")?.is_some()
            || r.try_get::<Option<i64>, _>("feedback_at")?.is_some();
        let late = super::cases::is_overdue(
            state,
            r.try_get("acknowledge_by")?,
            r.try_get("feedback_by")?,
            paused,
            now,
        );
        match g.cases.last_mut() {
            Some((o, open, overdue)) if *o == org => {
                *open += 1;
                *overdue += i64::from(late);
            }
            _ => g.cases.push((org, 1, i64::from(late))),
        }
    }
    Ok(g)
}
