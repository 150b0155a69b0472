//! The case list: one page at a time in a stable order (received time,
//! then reference), filtered and scoped in SQL, so a page costs the same
//! with 100 cases or 100,000, and only the subjects of its rows are
//! opened. A search matches the blind index (`store::search`): keyed
//! hashes of words, never the words.

use super::case_field;
use super::read::{CaseSummary, kind_of, overdue, state_of};
use crate::model::case::{CaseKind, CaseState};
use crate::model::clock::ClockState;
use crate::store::StoreError;
use crate::store::seal::Sealer;
use sqlx::AnyPool;
use sqlx::Row;

/// What to list. The doors fill the first fields; the cases service sets
/// `scope` and `terms` (`Cases::list`), which the store only applies.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub org: Option<String>,
    pub state: Option<CaseState>,
    pub kind: Option<CaseKind>,
    pub overdue: bool,
    /// Only the cases assigned to this analyst.
    pub assignee: Option<String>,
    /// Only cases flagged as a personal-data breach.
    pub breach: bool,
    /// Only cases with a regulatory clock in this state.
    pub clock: Option<ClockState>,
    /// Received at or after (Unix seconds).
    pub received_from: Option<i64>,
    /// Received before (Unix seconds).
    pub received_until: Option<i64>,
    /// The organisations the principal may see; `None`: all of them.
    pub scope: Option<Vec<String>>,
    /// One set of blind terms per searched word: a case matches when it
    /// has a term of every set (a word's terms differ per organisation).
    pub terms: Vec<Vec<i64>>,
}

/// Where a page starts: after this case, in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub received_at: i64,
    pub reference: String,
}

impl Cursor {
    pub fn of(c: &CaseSummary) -> Cursor {
        Cursor {
            received_at: c.received_at,
            reference: c.reference.clone(),
        }
    }

    /// `TIME.REFERENCE`: only what the row itself shows, so a cursor says
    /// nothing about other organisations' cases.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.received_at, self.reference)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (time, reference) = s.split_once('.')?;
        let ok_ref = !reference.is_empty()
            && reference.len() <= 64
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if time.is_empty()
            || time.len() > 18
            || !time.bytes().all(|b| b.is_ascii_digit())
            || !ok_ref
        {
            return None;
        }
        Some(Cursor {
            received_at: time.parse().ok()?,
            reference: reference.to_owned(),
        })
    }
}

/// One page of the list.
#[derive(Debug, Clone)]
pub struct Listing {
    pub cases: Vec<CaseSummary>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
    /// How many cases match, on every page.
    pub total: i64,
}

enum Arg {
    Int(i64),
    Text(String),
}

/// A WHERE clause and its arguments, numbered as they are added.
#[derive(Default)]
struct Clause {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Clause {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn list(&mut self, items: impl IntoIterator<Item = Arg>) -> String {
        let marks: Vec<String> = items.into_iter().map(|a| self.arg(a)).collect();
        marks.join(", ")
    }

    fn text(&self) -> String {
        if self.conditions.is_empty() {
            "TRUE".to_owned()
        } else {
            self.conditions.join(" AND ")
        }
    }
}

fn states(keep: impl Fn(CaseState) -> bool) -> String {
    CaseState::ALL
        .into_iter()
        .filter(|s| keep(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn clause(f: &Filter, now: i64) -> Clause {
    let mut c = Clause::default();
    match f.scope.as_deref() {
        Some([one]) => {
            // One organisation: its (org, received_at, reference) index
            // gives the list's order directly.
            let m = c.arg(Arg::Text(one.clone()));
            c.conditions.push(format!("org = {m}"));
        }
        Some(scope) => {
            // Several: kept off the org index (`|| ''`), so the planner
            // walks (received_at, reference) in order and stops at the
            // page's end instead of sorting every case of them.
            let marks = c.list(scope.iter().cloned().map(Arg::Text));
            c.conditions.push(format!("(org || '') IN ({marks})"));
        }
        None => {}
    }
    if let Some(org) = &f.org {
        let m = c.arg(Arg::Text(org.clone()));
        c.conditions.push(format!("org = {m}"));
    }
    if let Some(state) = f.state {
        let m = c.arg(Arg::Text(state.as_str().to_owned()));
        c.conditions.push(format!("state = {m}"));
    }
    if let Some(kind) = f.kind {
        let m = c.arg(Arg::Text(kind.as_str().to_owned()));
        c.conditions.push(format!("kind = {m}"));
    }
    if let Some(who) = &f.assignee {
        let m = c.arg(Arg::Text(who.clone()));
        c.conditions.push(format!("assignee = {m}"));
    }
    if f.breach {
        c.conditions.push("breach_notify_by IS NOT NULL".into());
    }
    if let Some(state) = f.clock {
        let m = c.arg(Arg::Int(now));
        let when = match state {
            ClockState::Waiting => "k.due IS NULL AND k.met_at IS NULL".to_owned(),
            ClockState::Due => format!("k.met_at IS NULL AND k.due >= {m}"),
            ClockState::Overdue => format!("k.met_at IS NULL AND k.due < {m}"),
            ClockState::Met => "k.met_at IS NOT NULL".to_owned(),
        };
        c.conditions.push(format!(
            "EXISTS (SELECT 1 FROM case_clocks k WHERE k.case_id = cases.id AND {when})"
        ));
    }
    if let Some(t) = f.received_from {
        let m = c.arg(Arg::Int(t));
        c.conditions.push(format!("received_at >= {m}"));
    }
    if let Some(t) = f.received_until {
        let m = c.arg(Arg::Int(t));
        c.conditions.push(format!("received_at < {m}"));
    }
    if f.overdue {
        // `read::overdue`, in SQL: the state names come from the lifecycle.
        let m = c.arg(Arg::Int(now));
        c.conditions.push(format!(
            "((state IN ({}) AND acknowledge_by < {m}) OR (state IN ({}) AND feedback_paused_at IS NULL AND feedback_at IS NULL AND feedback_by < {m}))",
            states(|s| s.is_open() && !s.acknowledged()),
            states(CaseState::is_open),
        ));
    }
    for word in &f.terms {
        let marks = c.list(word.iter().copied().map(Arg::Int));
        c.conditions.push(format!(
            "id IN (SELECT case_id FROM case_terms WHERE term IN ({marks}))"
        ));
    }
    c
}

fn query<'q>(
    sql: String,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(s) => q.bind(s.as_str()),
        };
    }
    q
}

/// One page of the cases matching `f`, after `after`, at most `limit`
/// (all with `None`), and how many match in all.
pub async fn list(
    pool: &AnyPool,
    sealer: &Sealer,
    f: &Filter,
    after: Option<&Cursor>,
    limit: Option<u32>,
    now: i64,
) -> Result<Listing, StoreError> {
    // No organisation to see, or a searched word with no term in any of
    // them (an `org` filter outside the scope): nothing matches.
    if f.scope.as_ref().is_some_and(Vec::is_empty) || f.terms.iter().any(Vec::is_empty) {
        return Ok(Listing {
            cases: Vec::new(),
            next: None,
            total: 0,
        });
    }
    let mut c = clause(f, now);
    let total_sql = format!("SELECT COUNT(*) AS n FROM cases WHERE {}", c.text());
    let total: i64 = query(total_sql, &c.args)
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    if let Some(cursor) = after {
        let t = c.arg(Arg::Int(cursor.received_at));
        let r = c.arg(Arg::Text(cursor.reference.clone()));
        c.conditions.push(format!(
            "(received_at > {t} OR (received_at = {t} AND reference > {r}))"
        ));
    }
    let mut sql = format!(
        "SELECT reference, org, kind, state, subject, received_at, acknowledge_by, feedback_by,
                feedback_paused_at, feedback_at, assignee,
                (SELECT MIN(k.due) FROM case_clocks k WHERE k.case_id = cases.id AND k.met_at IS NULL) AS clock_due
         FROM cases WHERE {} ORDER BY received_at, reference",
        c.text()
    );
    if let Some(n) = limit {
        // One more than asked: whether there is a next page.
        let m = c.arg(Arg::Int(i64::from(n) + 1));
        sql.push_str(&format!(" LIMIT {m}"));
    }
    let rows = query(sql, &c.args).fetch_all(pool).await?;
    let mut cases = Vec::with_capacity(rows.len());
    for r in &rows {
        let state = state_of(&r.try_get::<String, _>("state")?)?;
        let ack_by: i64 = r.try_get("acknowledge_by")?;
        let feedback_by: i64 = r.try_get("feedback_by")?;
        // A paused clock, or one stopped by feedback, cannot run late.
        let given: Option<i64> = r.try_get("feedback_at")?;
        let paused =
            r.try_get::<Option<i64>, _>("feedback_paused_at")?.is_some() || given.is_some();
        let reference: String = r.try_get("reference")?;
        let subject = sealer.open_text(
            case_field(&reference, "subject"),
            &r.try_get::<String, _>("subject")?,
        )?;
        let received_at: i64 = r.try_get("received_at")?;
        let clock_due: Option<i64> = r.try_get("clock_due")?;
        cases.push(CaseSummary {
            cursor: Cursor {
                received_at,
                reference: reference.clone(),
            }
            .encode(),
            reference,
            org: r.try_get("org")?,
            kind: kind_of(&r.try_get::<String, _>("kind")?)?,
            state,
            subject,
            received_at,
            acknowledge_by: ack_by,
            feedback_by,
            overdue: overdue(state, ack_by, feedback_by, paused, now),
            assignee: r.try_get("assignee")?,
            feedback_given_at: given,
            clock_due,
            clock_overdue: clock_due.is_some_and(|d| d < now),
        });
    }
    let next = match limit {
        Some(n) if cases.len() > n as usize => {
            cases.truncate(n as usize);
            cases.last().map(Cursor::of)
        }
        _ => None,
    };
    Ok(Listing { cases, next, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_hold_only_what_the_row_shows_and_parse_strictly() {
        let c = Cursor {
            received_at: 1_795_946_400,
            reference: "NC-2026-0001".into(),
        };
        assert_eq!(c.encode(), "1795946400.NC-2026-0001");
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "NC-2026-0001",
            "12.",
            ".NC-1",
            "-1.NC-1",
            "1.NC-1' OR 1=1",
            "99999999999999999999.NC-1",
            "1.NC 1",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
