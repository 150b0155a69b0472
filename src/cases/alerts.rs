//! Analysts hear about what matters: when a case's receipt or feedback
//! deadline comes within one business day (`due-soon`) and when it passes
//! (`overdue`), the case's timeline gets an entry, once per deadline, and
//! webhooks deliver it as `case.due_soon` / `case.overdue` like every
//! timeline event. Paused clocks, feedback already given, and closed, junk,
//! unflagged or unparsed cases raise nothing. A regulatory clock
//! (`cases::clocks`) not yet met alerts 6 hours before its deadline and
//! when it passes, whatever the case's state: the law's deadline does not
//! stop when the case is closed.

use super::CaseError;
use super::EventKind;
use super::service::Cases;
use crate::policy::Within;
use crate::store::cases as repo;
use crate::store::sla::{clock_candidates, note_alert};

/// How often the service looks for clocks to alert on.
pub const ALERT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A regulatory clock is "due soon" this many seconds before its deadline:
/// 6 hours, time to finish and submit a notification of 24 or 72 hours.
pub const REGULATORY_DUE_SOON: i64 = 6 * 3600;

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

impl Cases {
    /// Raises the alerts due now; returns how many.
    pub async fn raise_clock_alerts(&self) -> Result<usize, CaseError> {
        Ok(self.raise_service_alerts().await? + self.raise_regulatory_alerts().await?)
    }

    /// Regulatory clocks (`cases::clocks`): due within
    /// `REGULATORY_DUE_SOON`, or overdue; once per clock, kind and due.
    async fn raise_regulatory_alerts(&self) -> Result<usize, CaseError> {
        let now = self.now();
        let running =
            crate::store::clocks::open_clocks(self.store.pool(), now + REGULATORY_DUE_SOON, None)
                .await?;
        if running.is_empty() {
            return Ok(0);
        }
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let mut raised = 0;
        for c in &running {
            let article = crate::model::clock::StepRule::named(&c.clock).map_or("", |r| r.article);
            let (event, kind, detail) = if c.due < now {
                (
                    EventKind::Overdue,
                    "overdue",
                    format!("{} ({article}) OVERDUE since {}", c.clock, when(c.due)),
                )
            } else {
                (
                    EventKind::DueSoon,
                    "due-soon",
                    format!(
                        "{} ({article}) due {}, within 6 hours",
                        c.clock,
                        when(c.due)
                    ),
                )
            };
            if note_alert(&mut tx, c.case_id, &c.clock, kind, c.due).await? {
                repo::add_event(
                    &mut tx, sealer, c.case_id, now, event, "clock", &detail, None,
                )
                .await?;
                raised += 1;
            }
        }
        tx.commit().await?;
        Ok(raised)
    }

    async fn raise_service_alerts(&self) -> Result<usize, CaseError> {
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
