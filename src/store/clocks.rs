//! Regulatory clocks at rest: a case's flags, marks and clocks
//! (`model::clock`). The due times are written as the cases service
//! computed them (`cases::clocks`); nothing here computes one. Times,
//! names and the authority's submission reference only: no report content.

use super::{StoreError, WriteTx};
use crate::model::clock::{Flag, FlagRecord, Mark};
use sqlx::{Any, AnyConnection, Executor, Row};

/// One stored clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockRow {
    pub clock: String,
    pub due: Option<i64>,
    pub met_at: Option<i64>,
    pub reference: Option<String>,
}

/// What a case's clocks are computed from.
#[derive(Debug, Clone, Default)]
pub struct ClockFacts {
    pub flags: Vec<FlagRecord>,
    pub marks: Vec<(Mark, i64)>,
    pub clocks: Vec<ClockRow>,
}

/// A case's facts, inside a change.
pub async fn facts_in(tx: &mut WriteTx<'_>, case_id: i64) -> Result<ClockFacts, StoreError> {
    facts(tx.conn(), case_id).await
}

/// A case's facts, for reading.
pub async fn facts_of(pool: &sqlx::AnyPool, case_id: i64) -> Result<ClockFacts, StoreError> {
    let mut conn = pool.acquire().await?;
    facts(&mut conn, case_id).await
}

async fn facts(conn: &mut AnyConnection, case_id: i64) -> Result<ClockFacts, StoreError> {
    let mut out = ClockFacts::default();
    for r in sqlx::query(
        "SELECT flag, aware_at, flagged_at FROM case_flags WHERE case_id = $1 ORDER BY flag",
    )
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await?
    {
        let name: String = r.try_get("flag")?;
        out.flags.push(FlagRecord {
            flag: Flag::parse(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown flag {name:?}")))?,
            aware_at: r.try_get("aware_at")?,
            flagged_at: r.try_get("flagged_at")?,
        });
    }
    for r in sqlx::query("SELECT mark, at FROM case_marks WHERE case_id = $1 ORDER BY mark")
        .bind(case_id)
        .fetch_all(&mut *conn)
        .await?
    {
        let name: String = r.try_get("mark")?;
        let mark = Mark::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown mark {name:?}")))?;
        out.marks.push((mark, r.try_get("at")?));
    }
    out.clocks = sqlx::query(
        "SELECT clock, due, met_at, reference FROM case_clocks WHERE case_id = $1 ORDER BY clock",
    )
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ClockRow {
            clock: r.try_get("clock")?,
            due: r.try_get("due")?,
            met_at: r.try_get("met_at")?,
            reference: r.try_get("reference")?,
        })
    })
    .collect::<Result<_, StoreError>>()?;
    Ok(out)
}

/// Records a flag, or moves its awareness time.
pub async fn set_flag(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    flag: Flag,
    aware_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_flags (case_id, flag, aware_at, flagged_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (case_id, flag) DO UPDATE SET aware_at = excluded.aware_at",
    )
    .bind(case_id)
    .bind(flag.as_str())
    .bind(aware_at)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn set_mark(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    mark: Mark,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_marks (case_id, mark, at) VALUES ($1, $2, $3)
         ON CONFLICT (case_id, mark) DO UPDATE SET at = excluded.at",
    )
    .bind(case_id)
    .bind(mark.as_str())
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Writes a clock's due time (a new clock, or a moved one); its
/// submission, if any, stays.
pub async fn put_clock(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    clock: &str,
    due: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_clocks (case_id, clock, due) VALUES ($1, $2, $3)
         ON CONFLICT (case_id, clock) DO UPDATE SET due = excluded.due",
    )
    .bind(case_id)
    .bind(clock)
    .bind(due)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records a clock's submission.
pub async fn meet(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    clock: &str,
    at: i64,
    reference: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE case_clocks SET met_at = $1, reference = $2 WHERE case_id = $3 AND clock = $4",
    )
    .bind(at)
    .bind(reference)
    .bind(case_id)
    .bind(clock)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A running clock of some case, for alerts and the dashboard.
#[derive(Debug, Clone)]
pub struct OpenClock {
    pub case_id: i64,
    pub org: String,
    pub reference: String,
    pub clock: String,
    pub due: i64,
}

/// Every clock not yet met that falls due by `until`, soonest first; of
/// the organisations in `orgs` (`None`: all).
pub async fn open_clocks<'e, E>(
    ex: E,
    until: i64,
    orgs: Option<&[String]>,
) -> Result<Vec<OpenClock>, StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let rows = sqlx::query(
        "SELECT k.case_id, c.org, c.reference, k.clock, k.due FROM case_clocks k
         JOIN cases c ON c.id = k.case_id
         WHERE k.met_at IS NULL AND k.due IS NOT NULL AND k.due <= $1
         ORDER BY k.due, c.reference",
    )
    .bind(until)
    .fetch_all(ex)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let org: String = r.try_get("org")?;
        if orgs.is_some_and(|o| !o.contains(&org)) {
            continue;
        }
        out.push(OpenClock {
            case_id: r.try_get("case_id")?,
            org,
            reference: r.try_get("reference")?,
            clock: r.try_get("clock")?,
            due: r.try_get("due")?,
        });
    }
    Ok(out)
}
