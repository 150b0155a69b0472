//! The daily digest an organisation's policy may ask for (`[digest] to`,
//! `hour`): once a day, from that local hour, a summary to the team
//! through the relay — open and overdue cases, what falls due within a
//! business day, the 90-day shares — by reference and clock only, never
//! report content. It is marked sent for the day only once the relay
//! accepted it, so a relay that is down delays it, and it is not lost.

use super::CaseError;
use super::service::Cases;
use super::sla;
use crate::policy::Within;
use crate::store::sla::{clock_candidates, clocks, digest_day, set_digest_day};

/// One organisation's digest for one day.
#[derive(Debug, Clone)]
pub struct Digest {
    pub org: String,
    /// The local date it is for.
    pub day: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(
        || "nothing due yet".into(),
        |s| format!("{:.0}%", s * 100.0),
    )
}

impl Cases {
    /// The digests due now and not yet sent today.
    pub async fn digests_due(&self) -> Result<Vec<Digest>, CaseError> {
        let now = self.now();
        let ts = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut out = Vec::new();
        for policy in self.policies.iter() {
            let Some(cfg) = &policy.digest else { continue };
            let local = ts.to_zoned(policy.timezone.clone());
            if local.hour() < cfg.hour as i8 {
                continue;
            }
            let day = local.date().to_string();
            if digest_day(self.store.pool(), &policy.id).await?.as_deref() == Some(day.as_str()) {
                continue;
            }
            let since = now - (sla::WINDOW_DAYS + 7) * 86_400;
            let f = sla::figures(
                policy,
                &clocks(self.store.pool(), &policy.id, since).await?,
                now,
            );
            let soon = policy.due(ts, Within::BusinessDays(1)).as_second();
            let mut overdue = Vec::new();
            let mut due_soon = Vec::new();
            for c in clock_candidates(self.store.pool(), soon).await? {
                if c.org != policy.id {
                    continue;
                }
                let (clock, due) = if !c.state.acknowledged() {
                    ("receipt", c.acknowledge_by)
                } else if !c.feedback_stopped {
                    ("feedback", c.feedback_by)
                } else {
                    continue;
                };
                let line = format!("  {} ({clock})", c.reference);
                if due < now {
                    overdue.push(line);
                } else if due <= soon {
                    due_soon.push(line);
                }
            }
            let list = |v: &Vec<String>| {
                if v.is_empty() {
                    "  none".to_owned()
                } else {
                    v.join("\n")
                }
            };
            let body = format!(
                "Service levels of {name} on {day}.\n\n\
                 Open cases: {open}\n\
                 Overdue now: {n_over}\n{over}\n\
                 Due within one business day: {n_soon}\n{soon_list}\n\n\
                 Last {window} days: receipts on time {receipts} ({r_ok} of {r_due}), \
                 feedback on time {feedback} ({f_ok} of {f_due}).\n\n\
                 This is an automatic digest; case content stays in the workspace.\n",
                name = policy.name,
                open = f.open,
                n_over = overdue.len(),
                over = list(&overdue),
                n_soon = due_soon.len(),
                soon_list = list(&due_soon),
                window = f.window_days,
                receipts = percent(f.receipt_on_time_share),
                r_ok = f.receipts_on_time,
                r_due = f.receipts_due,
                feedback = percent(f.feedback_on_time_share),
                f_ok = f.feedback_on_time,
                f_due = f.feedback_due,
            );
            out.push(Digest {
                org: policy.id.clone(),
                subject: format!(
                    "[{}] Daily digest {day}: {} overdue, {} due soon",
                    policy.name,
                    overdue.len(),
                    due_soon.len()
                ),
                day,
                to: cfg.to.clone(),
                body,
            });
        }
        Ok(out)
    }

    /// Records that `d` went out.
    pub async fn digest_sent(&self, d: &Digest) -> Result<(), CaseError> {
        let mut tx = self.store.write().await?;
        set_digest_day(&mut tx, &d.org, &d.day).await?;
        tx.commit().await?;
        Ok(())
    }
}
