//! Refused sign-ins and logout messages from strangers, counted rather
//! than logged one by one.
//!
//! Anyone can post to `/saml/acs`. Writing one chained audit entry per
//! refusal let a stranger append thousands of entries a minute and push the
//! real ones off the audit page. Refusals that come before any identity is
//! established (malformed, unknown request, another browser, did not
//! verify) are therefore tallied in memory per source address and minute,
//! and written as one audit entry with the counts when the minute is over.
//! Nothing is written to the database on the refusing request itself.
//!
//! What it must never do: hold unbounded state (at most `MAX_SOURCES`
//! sources per minute; the rest are counted together), or lose a minute's
//! tally on an orderly stop (`flush(all)` runs at shutdown).

use crate::store::Store;
use crate::store::audit::{self, AuditAction, Who};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Distinct sources tallied per minute; beyond it, refusals from further
/// sources share one tally, so a spray of addresses costs bounded memory.
pub const MAX_SOURCES: usize = 10_000;
/// The source name of the shared tally.
const OTHER_SOURCES: &str = "(other sources)";

#[derive(Default)]
struct Tally {
    /// Count per audit action and kind of refusal.
    kinds: BTreeMap<(AuditAction, &'static str), u64>,
}

/// Refusals per (minute, source).
#[derive(Default)]
pub struct RefusalLog {
    minutes: Mutex<BTreeMap<i64, BTreeMap<String, Tally>>>,
}

impl RefusalLog {
    /// Counts one refused sign-in of `kind` from `source` at `now` (unix
    /// seconds).
    pub fn note(&self, source: &str, kind: &'static str, now: i64) {
        self.note_as(AuditAction::SignInRefused, source, kind, now);
    }

    /// Counts one refusal recorded as `action`.
    pub fn note_as(&self, action: AuditAction, source: &str, kind: &'static str, now: i64) {
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        let minute = minutes.entry(now.div_euclid(60)).or_default();
        let key = if minute.contains_key(source) || minute.len() < MAX_SOURCES {
            source
        } else {
            OTHER_SOURCES
        };
        *minute
            .entry(key.to_owned())
            .or_default()
            .kinds
            .entry((action, kind))
            .or_default() += 1;
    }

    /// Writes one audit entry per source for every minute that is over
    /// (every minute, with `all`). Returns how many entries were written.
    pub async fn flush(
        &self,
        store: &Store,
        now: i64,
        all: bool,
    ) -> Result<usize, crate::store::StoreError> {
        let done: Vec<(i64, BTreeMap<String, Tally>)> = {
            let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
            let current = now.div_euclid(60);
            let keys: Vec<i64> = minutes
                .keys()
                .copied()
                .filter(|m| all || *m < current)
                .collect();
            keys.into_iter()
                .filter_map(|k| minutes.remove(&k).map(|v| (k, v)))
                .collect()
        };
        let mut written = 0;
        if done.is_empty() {
            return Ok(0);
        }
        for (minute, sources) in done {
            let when = jiff::Timestamp::from_second(minute * 60)
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            for (source, tally) in sources {
                let actions: std::collections::BTreeSet<AuditAction> =
                    tally.kinds.keys().map(|(a, _)| *a).collect();
                for action in actions {
                    let of_action = tally.kinds.iter().filter(|((a, _), _)| *a == action);
                    let total: u64 = of_action.clone().map(|(_, n)| n).sum();
                    let kinds: Vec<String> =
                        of_action.map(|((_, k), n)| format!("{n} {k}")).collect();
                    let detail = format!(
                        "{total} refused in the minute from {when}: {}",
                        kinds.join(", ")
                    );
                    let who = Who {
                        actor: "unknown",
                        source: &source,
                    };
                    audit::record_now(store, &who.entry(action, "", &detail)).await?;
                    written += 1;
                }
            }
        }
        Ok(written)
    }

    /// Flushes finished minutes every few seconds until `stop` fires, then
    /// everything.
    pub async fn run(&self, store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = stop.changed() => break,
            }
            let now = jiff::Timestamp::now().as_second();
            if let Err(e) = self.flush(&store, now, false).await {
                tracing::warn!(error = %e, "writing refused sign-ins to the audit trail");
            }
        }
        let now = jiff::Timestamp::now().as_second();
        if let Err(e) = self.flush(&store, now, true).await {
            tracing::warn!(error = %e, "writing refused sign-ins to the audit trail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_are_bounded_per_minute() {
        let log = RefusalLog::default();
        for i in 0..(MAX_SOURCES + 50) {
            log.note(
                &format!("10.0.{}.{}", i / 256, i % 256),
                "malformed response",
                120,
            );
        }
        log.note("10.0.0.0", "did not verify", 130);
        let minutes = log.minutes.lock().unwrap();
        let minute = &minutes[&2];
        assert_eq!(minute.len(), MAX_SOURCES + 1);
        assert_eq!(
            minute[OTHER_SOURCES].kinds[&(AuditAction::SignInRefused, "malformed response")],
            50
        );
        assert_eq!(minute["10.0.0.0"].kinds.len(), 2);
    }
}
