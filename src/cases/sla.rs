//! Whether an organisation keeps the promises its policy makes: the
//! service-level figures of the dashboard, the API and `report sla`,
//! computed once, here, from each case's clocks (`store::sla`).
//!
//! Definitions:
//! - **Receipt on time**: the relay *accepted* the case's first receipt
//!   before the receipt deadline. Queued is not sent: without a relay,
//!   receipts wait and count as late once the deadline passes. A case
//!   whose receipt was suppressed (no address, automatic mail, a limit)
//!   owed none and is not counted.
//! - **Feedback on time**: the relay accepted the first reply or feedback
//!   update before the feedback deadline (which moves on while the case
//!   waits for the reporter). A case not yet answered counts once its
//!   deadline has passed, unless it is waiting for the reporter.
//! - Only disclosure cases count; unflagged and unparsed mail made no
//!   promise, and junk none either.
//! - Times to acknowledge and to first feedback are business days of the
//!   policy's calendar (`Policy::business_days_between`).

use crate::model::case::{CaseKind, CaseState};
use crate::policy::{Policy, Within};
use crate::store::sla::CaseClock;
use serde::Serialize;
use std::collections::BTreeMap;

/// The window of the shares and medians: 90 days, a quarter.
pub const WINDOW_DAYS: i64 = 90;
/// Weeks in the chart.
pub const WEEKS: usize = 12;

/// One week of the chart.
#[derive(Debug, Clone, Serialize)]
pub struct Week {
    /// Its Monday (the policy's time zone).
    pub start: String,
    pub received: u64,
    pub receipt_on_time_share: Option<f64>,
}

/// The figures of one organisation.
#[derive(Debug, Clone, Serialize)]
pub struct OrgSla {
    pub org: String,
    pub open: u64,
    pub open_by_state: BTreeMap<&'static str, u64>,
    pub overdue: u64,
    /// Open, not overdue, and due within one business day.
    pub due_within_one_business_day: u64,
    pub window_days: i64,
    pub receipts_due: u64,
    pub receipts_on_time: u64,
    /// Between 0 and 1; null when no receipt was due in the window.
    pub receipt_on_time_share: Option<f64>,
    pub feedback_due: u64,
    pub feedback_on_time: u64,
    pub feedback_on_time_share: Option<f64>,
    pub median_business_days_to_acknowledge: Option<f64>,
    pub median_business_days_to_first_feedback: Option<f64>,
    pub weeks: Vec<Week>,
}

/// Whether something due at `due`, done at `done` (if it was), is on time
/// (`Some(true)`), late (`Some(false)`), or not yet to be judged (`None`).
fn verdict(done: Option<i64>, due: i64, now: i64, waiting: bool) -> Option<bool> {
    match done {
        Some(t) => Some(t <= due),
        None if now > due && !waiting => Some(false),
        None => None,
    }
}

fn share(on_time: u64, due: u64) -> Option<f64> {
    (due > 0).then(|| on_time as f64 / due as f64)
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn ts(t: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// The figures of `policy`'s organisation from its cases' `clocks`, at
/// `now`.
pub fn figures(policy: &Policy, clocks: &[CaseClock], now: i64) -> OrgSla {
    let window_start = now - WINDOW_DAYS * 86_400;
    let soon = policy.due(ts(now), Within::BusinessDays(1)).as_second();
    let counted: Vec<&CaseClock> = clocks
        .iter()
        .filter(|c| c.kind == CaseKind::Disclosure && c.state != CaseState::Junk)
        .collect();
    let mut open_by_state = BTreeMap::new();
    let (mut open, mut overdue, mut due_soon) = (0, 0, 0);
    for c in counted.iter().filter(|c| c.state.is_open()) {
        open += 1;
        *open_by_state.entry(c.state.as_str()).or_insert(0) += 1;
        let next = if !c.state.acknowledged() {
            Some(c.acknowledge_by)
        } else if !c.paused && !c.feedback_given {
            Some(c.feedback_by)
        } else {
            None
        };
        match next {
            Some(due) if due < now => overdue += 1,
            Some(due) if due <= soon => due_soon += 1,
            _ => {}
        }
    }
    let recent: Vec<&&CaseClock> = counted
        .iter()
        .filter(|c| c.received_at >= window_start)
        .collect();
    let receipt = |c: &CaseClock| {
        c.receipt_owed
            .then(|| verdict(c.receipt_sent, c.acknowledge_by, now, false))
            .flatten()
    };
    let feedback = |c: &CaseClock| verdict(c.feedback_sent, c.feedback_by, now, c.paused);
    let tally = |f: &dyn Fn(&CaseClock) -> Option<bool>, cases: &[&&CaseClock]| {
        let judged: Vec<bool> = cases.iter().filter_map(|c| f(c)).collect();
        (
            judged.len() as u64,
            judged.iter().filter(|ok| **ok).count() as u64,
        )
    };
    let (receipts_due, receipts_on_time) = tally(&receipt, &recent);
    let (feedback_due, feedback_on_time) = tally(&feedback, &recent);
    let elapsed = |done: Option<i64>, c: &CaseClock| {
        done.map(|t| policy.business_days_between(ts(c.received_at), ts(t)))
    };
    let weeks = weeks(policy, &counted, now, &receipt);
    OrgSla {
        org: policy.id.clone(),
        open,
        open_by_state,
        overdue,
        due_within_one_business_day: due_soon,
        window_days: WINDOW_DAYS,
        receipts_due,
        receipts_on_time,
        receipt_on_time_share: share(receipts_on_time, receipts_due),
        feedback_due,
        feedback_on_time,
        feedback_on_time_share: share(feedback_on_time, feedback_due),
        median_business_days_to_acknowledge: median(
            recent
                .iter()
                .filter_map(|c| elapsed(c.receipt_sent, c))
                .collect(),
        ),
        median_business_days_to_first_feedback: median(
            recent
                .iter()
                .filter_map(|c| elapsed(c.feedback_sent, c))
                .collect(),
        ),
        weeks,
    }
}

/// Reports received per week, and the share of their receipts on time,
/// for the last `WEEKS` weeks (Monday to Sunday, the policy's time zone).
fn weeks(
    policy: &Policy,
    cases: &[&CaseClock],
    now: i64,
    receipt: &dyn Fn(&CaseClock) -> Option<bool>,
) -> Vec<Week> {
    let today = ts(now).to_zoned(policy.timezone.clone()).date();
    let back = i64::from(today.weekday().to_monday_zero_offset());
    let Ok(this_monday) = today.checked_sub(jiff::Span::new().days(back)) else {
        return Vec::new();
    };
    (0..WEEKS)
        .rev()
        .filter_map(|i| {
            let monday = this_monday
                .checked_sub(jiff::Span::new().weeks(i as i64))
                .ok()?;
            let start = monday.to_zoned(policy.timezone.clone()).ok()?.timestamp();
            let end = monday
                .checked_add(jiff::Span::new().weeks(1))
                .ok()?
                .to_zoned(policy.timezone.clone())
                .ok()?
                .timestamp();
            let week: Vec<&&CaseClock> = cases
                .iter()
                .filter(|c| (start.as_second()..end.as_second()).contains(&c.received_at))
                .collect();
            let judged: Vec<bool> = week.iter().filter_map(|c| receipt(c)).collect();
            Some(Week {
                start: monday.to_string(),
                received: week.len() as u64,
                receipt_on_time_share: share(
                    judged.iter().filter(|ok| **ok).count() as u64,
                    judged.len() as u64,
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_waits_for_its_deadline_and_a_paused_clock() {
        assert_eq!(verdict(Some(10), 20, 100, false), Some(true));
        assert_eq!(verdict(Some(30), 20, 100, false), Some(false));
        assert_eq!(verdict(None, 20, 10, false), None, "not due yet");
        assert_eq!(verdict(None, 20, 100, false), Some(false), "late");
        assert_eq!(
            verdict(None, 20, 100, true),
            None,
            "waiting for the reporter"
        );
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
        assert_eq!(share(0, 0), None);
    }
}
