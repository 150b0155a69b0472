//! Webhook delivery state: each webhook's cursor (the last timeline event
//! it delivered) in `store_meta`, the events after it, and — on a shared
//! PostgreSQL database — the turn that lets one receiver at a time deliver
//! a webhook's events, so each goes out once.

use super::seal::Sealer;
use super::{Backend, SharedLock, Store, StoreError};
use crate::model::case::{CaseState, EventKind};
use sqlx::Row;
use sqlx::pool::PoolConnection;

/// One receiver's turn at a webhook: on PostgreSQL a session advisory
/// lock held on this connection until `finish`.
pub struct Turn {
    conn: PoolConnection<sqlx::Any>,
    /// Holds the advisory lock (PostgreSQL) until `finish`.
    locked: bool,
    name: String,
}

impl Drop for Turn {
    /// A turn dropped unfinished (an error, a cancelled task) must not
    /// hand a connection holding the lock back to the pool.
    fn drop(&mut self) {
        if self.locked {
            self.conn.close_on_drop();
        }
    }
}

/// The timeline entries webhooks report.
const HOOK_KINDS: &str = "'received', 'transition', 'due-soon', 'overdue', 'clock-started'";

fn cursor_key(name: &str) -> String {
    format!("webhook:{name}")
}

/// Seconds the oldest event webhook `name` has not yet delivered has been
/// waiting (0 when it is up to date), for the metrics endpoint.
pub async fn lag(store: &Store, name: &str, now: i64) -> Result<i64, StoreError> {
    let cursor: Option<(String,)> = sqlx::query_as("SELECT value FROM store_meta WHERE name = $1")
        .bind(cursor_key(name))
        .fetch_optional(store.pool())
        .await?;
    let after: i64 = cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0);
    let oldest: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT at FROM case_events WHERE id > $1 AND kind IN ({HOOK_KINDS}) ORDER BY id LIMIT 1"
    )))
    .bind(after)
    .fetch_optional(store.pool())
    .await?;
    Ok(oldest.map_or(0, |(at,)| (now - at).max(0)))
}

/// An event a webhook reports.
pub struct HookEvent {
    pub id: i64,
    pub kind: EventKind,
    pub reference: String,
    pub org: String,
    pub state: CaseState,
    pub at: i64,
    /// For a transition: "from -> to (reason)", our own words.
    pub change: Option<String>,
}

/// The turn at webhook `name`, or None while another receiver has it.
pub async fn take_turn(store: &Store, name: &str) -> Result<Option<Turn>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let shared = store.backend() == Backend::Postgres;
    if shared {
        let (mine,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(SharedLock::Webhook.id() as i32)
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
        if !mine {
            return Ok(None);
        }
    }
    Ok(Some(Turn {
        conn,
        locked: shared,
        name: name.to_owned(),
    }))
}

impl Turn {
    fn key(&self) -> String {
        cursor_key(&self.name)
    }

    /// The last event delivered (0: none yet).
    pub async fn cursor(&mut self) -> Result<i64, StoreError> {
        let cursor: Option<(String,)> =
            sqlx::query_as("SELECT value FROM store_meta WHERE name = $1")
                .bind(self.key())
                .fetch_optional(&mut *self.conn)
                .await?;
        Ok(cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0))
    }

    /// Up to `limit` case creations, state changes, deadline alerts and
    /// regulatory clocks started after `after`.
    pub async fn events_after(
        &mut self,
        sealer: &Sealer,
        after: i64,
        limit: i64,
    ) -> Result<Vec<HookEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT e.id, e.case_id, e.at, e.kind, e.detail, c.reference, c.org, c.state
             FROM case_events e JOIN cases c ON c.id = e.case_id
             WHERE e.id > $1 AND e.kind IN ({HOOK_KINDS})
             ORDER BY e.id LIMIT $2",
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|r| {
                let kind = EventKind::parse(&r.try_get::<String, _>("kind")?).ok_or_else(|| {
                    StoreError::Corrupt("a timeline entry of an unknown kind".into())
                })?;
                let state: String = r.try_get("state")?;
                let case_id: i64 = r.try_get("case_id")?;
                let change = if matches!(
                    kind,
                    EventKind::Transition
                        | EventKind::DueSoon
                        | EventKind::Overdue
                        | EventKind::ClockStarted
                ) {
                    Some(sealer.open_text(
                        super::cases::case_child(case_id, "event"),
                        &r.try_get::<String, _>("detail")?,
                    )?)
                } else {
                    None
                };
                Ok(HookEvent {
                    id: r.try_get("id")?,
                    kind,
                    reference: r.try_get("reference")?,
                    org: r.try_get("org")?,
                    state: CaseState::parse(&state).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown case state {state:?}"))
                    })?,
                    at: r.try_get("at")?,
                    change,
                })
            })
            .collect()
    }

    /// Moves the cursor past event `last`.
    pub async fn set_cursor(&mut self, last: i64) -> Result<(), StoreError> {
        let key = self.key();
        let updated = sqlx::query("UPDATE store_meta SET value = $1 WHERE name = $2")
            .bind(last.to_string())
            .bind(&key)
            .execute(&mut *self.conn)
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO store_meta (name, value) VALUES ($1, $2)")
                .bind(&key)
                .bind(last.to_string())
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }

    /// Ends the turn. A connection whose lock could not be released is
    /// closed, never handed back to the pool holding it.
    pub async fn finish(mut self) {
        if self.locked {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(SharedLock::Webhook.id() as i32)
                .bind(&self.name)
                .execute(&mut *self.conn)
                .await;
            // Released: the connection may go back to the pool. If not,
            // `drop` closes it.
            self.locked = unlocked.is_err();
        }
    }
}
