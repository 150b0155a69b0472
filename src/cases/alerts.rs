//! Analysts hear about what matters: when a case's receipt or feedback
//! deadline comes within one business day (`due-soon`) and when it passes
//! (`overdue`), the case's timeline gets an entry, once per deadline, and
//! webhooks deliver it as `case.due_soon` / `case.overdue` like every
//! timeline event. Paused clocks, feedback already given, and closed, junk,
//! unflagged or unparsed cases raise nothing.

use super::CaseError;
use super::EventKind;
use super::service::Cases;
use crate::policy::Within;
use crate::store::cases as repo;
use crate::store::sla::{clock_candidates, note_alert};

/// How often the service looks for clocks to alert on.
pub const ALERT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

impl Cases {
    /// Raises the alerts due now; returns how many.
    pub async fn raise_clock_alerts(&self) -> Result<usize, CaseError> {
        let now = self.now();
        let ts = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let soon: Vec<(String, i64)> = self
            .policies
            .iter()
            .map(|p| (p.id.clone(), p.due(ts, Within::BusinessDays(1)).as_second()))
            .collect();
        let Some(until) = soon.iter().map(|(_, t)| *t).max() else {
            return Ok(0);
        };
        let candidates = clock_candidates(self.store.pool(), until).await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let mut raised = 0;
        for c in &candidates {
            let Some(limit) = soon.iter().find(|(org, _)| *org == c.org).map(|(_, t)| *t) else {
                continue;
            };
            let (clock, due) = if !c.state.acknowledged() {
                ("receipt", c.acknowledge_by)
            } else if !c.feedback_stopped {
                ("feedback", c.feedback_by)
            } else {
                continue;
            };
            let (event, kind, detail) = if due < now {
                (
                    EventKind::Overdue,
                    "overdue",
                    format!("{clock} overdue since {}", when(due)),
                )
            } else if due <= limit {
                (
                    EventKind::DueSoon,
                    "due-soon",
                    format!("{clock} due {}, within one business day", when(due)),
                )
            } else {
                continue;
            };
            if note_alert(&mut tx, c.id, clock, kind, due).await? {
                repo::add_event(&mut tx, sealer, c.id, now, event, "clock", &detail, None).await?;
                raised += 1;
            }
        }
        tx.commit().await?;
        Ok(raised)
    }
}
