//! Regulatory clocks (GDPR, NIS2, CRA): an analyst flags a case as a
//! personal-data breach, an actively exploited vulnerability or a
//! significant incident, with the time the organisation became aware; every
//! step of every regime the organisation's policy names starts from it, or
//! from a later mark (a fix is available, a high risk to people) or an
//! earlier step's submission. The due times are computed here and only
//! here (`compute`), written to the store for the list, the dashboard and
//! the alerts, and shown with the step, the article and what it runs from.
//!
//! What it must never do: let a calendar-hour deadline skip a weekend or a
//! holiday, start a clock for a regime the organisation is not under, or
//! move an awareness time without a reason on the timeline.

use super::input::Reason;
use super::principal::{Authorized, Case};
use super::service::{Cases, Change, record};
use super::{CaseError, EventKind};
use crate::model::clock::{
    Clock, ClockState, Flag, From, Mark, Regime, STEPS, Span, Step, StepRule,
};
use crate::policy::Policy;
use crate::store::WriteTx;
use crate::store::audit::AuditAction;
use crate::store::cases as repo;
use crate::store::clocks::{self as store, ClockFacts};

/// A submission reference is at most this long.
pub const MAX_REFERENCE_CHARS: usize = 200;
/// A time given for an awareness, mark or submission may be this far in
/// the future (clock skew between the analyst's machine and ours).
const MAX_AHEAD_SECONDS: i64 = 300;

fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// When `span` from `start` ends for `rule`, by `policy`.
fn deadline(policy: &Policy, rule: &StepRule, start: i64) -> i64 {
    let from = jiff::Timestamp::from_second(start).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zoned = || from.to_zoned(policy.timezone.clone());
    let end = match rule.within {
        // Calendar hours: weekends and holidays count like any hour.
        Span::Hours(h) => return start + i64::from(h) * 3600,
        Span::Days(d) => zoned().checked_add(jiff::Span::new().days(i64::from(d))),
        Span::Month => zoned().checked_add(jiff::Span::new().months(1)),
        Span::PolicyTarget => {
            let within = match (rule.regime, rule.step) {
                (Regime::GdprController, Step::AuthorityNotification) => {
                    policy.breach_notification_within
                }
                _ => regime_of(policy, rule.regime)
                    .and_then(|r| r.target)
                    .unwrap_or(crate::policy::Within::Hours(72)),
            };
            return policy.due(from, within).as_second();
        }
    };
    end.map_or(start, |z| z.timestamp().as_second())
}

/// Every clock of a case: the steps of the organisation's regimes for the
/// case's flags, with due times and state at `now`.
pub fn compute(policy: &Policy, facts: &ClockFacts, now: i64) -> Vec<Clock> {
    let mut out = Vec::new();
    for rule in STEPS {
        let Some(regime) = regime_of(policy, rule.regime) else {
            continue;
        };
        let Some(flag) = facts.flags.iter().find(|f| f.flag == rule.flag) else {
            continue;
        };
        let name = rule.name();
        let stored = facts.clocks.iter().find(|c| c.clock == name);
        let started_at = match rule.from {
            From::Awareness => Some(flag.aware_at),
            From::Mark(m) => facts.marks.iter().find(|(k, _)| *k == m).map(|(_, t)| *t),
            From::Submitted(step) => {
                let prior = format!("{}/{}", rule.regime.as_str(), step.as_str());
                facts
                    .clocks
                    .iter()
                    .find(|c| c.clock == prior)
                    .and_then(|c| c.met_at)
            }
        };
        let due = started_at.map(|s| deadline(policy, rule, s));
        let met_at = stored.and_then(|c| c.met_at);
        let state = match (due, met_at) {
            (_, Some(_)) => ClockState::Met,
            (None, None) => ClockState::Waiting,
            (Some(d), None) if d < now => ClockState::Overdue,
            (Some(_), None) => ClockState::Due,
        };
        let authority = if rule.step == Step::DataSubjects {
            "the people affected".to_owned()
        } else if regime.recipient.is_empty() {
            regime.authority.clone()
        } else {
            format!("{} ({})", regime.authority, regime.recipient)
        };
        out.push(Clock {
            clock: name,
            regime: rule.regime,
            step: rule.step,
            flag: rule.flag,
            article: rule.article,
            what: rule.what,
            authority,
            runs_from: rule.runs_from(),
            started_at,
            due,
            state,
            met_at,
            reference: stored.and_then(|c| c.reference.clone()),
            late: matches!((due, met_at), (Some(d), Some(m)) if m > d),
        });
    }
    out
}

/// A clock not yet met, of some case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunningClock {
    pub reference: String,
    pub org: String,
    pub clock: String,
    pub article: &'static str,
    pub due: i64,
    pub overdue: bool,
}

/// The policy's configuration of `regime`, if it applies.
fn regime_of(policy: &Policy, regime: Regime) -> Option<&crate::policy::regimes::RegimeConfig> {
    let r = &policy.regimes;
    match regime {
        Regime::GdprController => r.gdpr_controller.as_ref(),
        Regime::GdprProcessor => r.gdpr_processor.as_ref(),
        Regime::Nis2 => r.nis2.as_ref(),
        Regime::CraManufacturer => r.cra_manufacturer.as_ref(),
    }
}

/// The earliest notification a breach requires (not the art. 34 notice,
/// which runs from a later mark).
fn breach_due(clocks: &[Clock]) -> Option<i64> {
    clocks
        .iter()
        .filter(|c| c.flag == Flag::Breach && c.step != Step::DataSubjects)
        .filter_map(|c| c.due)
        .min()
}

impl Cases {
    fn policy_of(&self, case: &Case) -> Result<&Policy, CaseError> {
        self.policies
            .get(&case.org)
            .ok_or_else(|| CaseError::NoPolicy(case.org.clone()))
    }

    /// A time an analyst gave, or now; never later than now (and a
    /// little skew).
    fn given_time(&self, at: Option<i64>) -> Result<i64, CaseError> {
        let now = self.now();
        match at {
            Some(t) if t > now + MAX_AHEAD_SECONDS => Err(CaseError::FutureTime(utc(t))),
            Some(t) => Ok(t),
            None => Ok(now),
        }
    }

    /// What a case of `org` can be flagged as: the flags some regime of
    /// its policy has a clock for.
    pub fn flags_for(&self, org: &str) -> Vec<Flag> {
        let Some(policy) = self.policies.get(org) else {
            return Vec::new();
        };
        Flag::ALL
            .into_iter()
            .filter(|f| {
                STEPS
                    .iter()
                    .any(|s| s.flag == *f && regime_of(policy, s.regime).is_some())
            })
            .collect()
    }

    /// Every regulatory clock not yet met of the cases the principal may
    /// see, soonest first: for the dashboard.
    pub async fn running_clocks(
        &self,
        principal: &super::Principal,
    ) -> Result<Vec<RunningClock>, CaseError> {
        let now = self.now();
        Ok(store::open_clocks(self.store.pool(), i64::MAX, None)
            .await?
            .into_iter()
            .filter(|c| principal.may_see(&c.org))
            .map(|c| RunningClock {
                article: StepRule::named(&c.clock).map_or("", |r| r.article),
                overdue: c.due < now,
                reference: c.reference,
                org: c.org,
                clock: c.clock,
                due: c.due,
            })
            .collect())
    }

    /// The case's clocks now.
    pub async fn clocks(&self, case: &Authorized<Case>) -> Result<Vec<Clock>, CaseError> {
        let policy = self.policy_of(case)?;
        let facts = store::facts_of(self.store.pool(), case.id).await?;
        Ok(compute(policy, &facts, self.now()))
    }

    /// Flags the case as `flag`, aware at `aware_at` (default now): starts
    /// every clock of the organisation's regimes for it. Flagging again
    /// with another awareness time moves the clocks and needs a reason;
    /// with the same time it changes nothing.
    pub async fn flag(
        &self,
        case: &Authorized<Case>,
        flag: Flag,
        aware_at: Option<i64>,
        reason: &Reason,
    ) -> Result<Vec<Clock>, CaseError> {
        let policy = self.policy_of(case)?;
        if !STEPS
            .iter()
            .any(|s| s.flag == flag && regime_of(policy, s.regime).is_some())
        {
            return Err(CaseError::NoRegime {
                org: case.org.clone(),
                flag: flag.describe(),
            });
        }
        let aware_at = self.given_time(aware_at)?;
        let now = self.now();
        let mut tx = self.store.write().await?;
        let facts = store::facts_in(&mut tx, case.id).await?;
        let before = facts.flags.iter().find(|f| f.flag == flag);
        let detail = match before {
            Some(f) if f.aware_at == aware_at => return Ok(compute(policy, &facts, now)),
            Some(f) => {
                let why = reason
                    .as_deref()
                    .ok_or(CaseError::Empty("reason for moving the awareness time"))?;
                format!(
                    "awareness of {} moved from {} to {}: {why}",
                    flag.describe(),
                    utc(f.aware_at),
                    utc(aware_at)
                )
            }
            None => {
                let mut d = format!(
                    "flagged as {}, aware since {}",
                    flag.describe(),
                    utc(aware_at)
                );
                if let Some(why) = reason.as_deref() {
                    d.push_str(": ");
                    d.push_str(why);
                }
                d
            }
        };
        store::set_flag(&mut tx, case.id, flag, aware_at, now).await?;
        // A breach keeps the names the breach button always wrote.
        let (event, action) = match flag {
            Flag::Breach => (EventKind::Breach, AuditAction::Breach),
            _ => (EventKind::Flag, AuditAction::Flag),
        };
        let audit = match before {
            None => format!("flagged as {}", flag.describe()),
            Some(_) => format!("awareness of {} moved", flag.describe()),
        };
        self.recompute(
            tx,
            case,
            policy,
            now,
            Change {
                event,
                timeline: &detail,
                action,
                audit: &audit,
            },
        )
        .await
    }

    /// `cases breach` and the case page's breach button: flags a
    /// personal-data breach aware now, or, if it is flagged already,
    /// keeps its clocks. Returns the earliest notification due.
    pub async fn flag_breach(&self, case: &Authorized<Case>) -> Result<i64, CaseError> {
        let policy = self.policy_of(case)?;
        let facts = store::facts_of(self.store.pool(), case.id).await?;
        let clocks = if facts.flags.iter().any(|f| f.flag == Flag::Breach) {
            compute(policy, &facts, self.now())
        } else {
            self.flag(case, Flag::Breach, None, &Reason::new(None)?)
                .await?
        };
        Ok(breach_due(&clocks).unwrap_or_else(|| self.now()))
    }

    /// Records a mark a later clock runs from: a fix or mitigation is
    /// available, or the breach is a high risk to people.
    pub async fn mark(
        &self,
        case: &Authorized<Case>,
        mark: Mark,
        at: Option<i64>,
    ) -> Result<Vec<Clock>, CaseError> {
        let policy = self.policy_of(case)?;
        let at = self.given_time(at)?;
        let now = self.now();
        let mut tx = self.store.write().await?;
        let facts = store::facts_in(&mut tx, case.id).await?;
        let starts = STEPS.iter().any(|s| {
            s.from == From::Mark(mark)
                && regime_of(policy, s.regime).is_some()
                && facts.flags.iter().any(|f| f.flag == s.flag)
        });
        if !starts {
            return Err(CaseError::NoClockFor(mark.describe()));
        }
        store::set_mark(&mut tx, case.id, mark, at).await?;
        let detail = format!("recorded that {} ({})", mark.describe(), utc(at));
        let audit = format!("mark {}", mark.as_str());
        self.recompute(
            tx,
            case,
            policy,
            now,
            Change {
                event: EventKind::Clock,
                timeline: &detail,
                action: AuditAction::Clock,
                audit: &audit,
            },
        )
        .await
    }

    /// Records that a clock's notification was submitted, with the
    /// authority's reference for it.
    pub async fn submitted(
        &self,
        case: &Authorized<Case>,
        clock: &str,
        at: Option<i64>,
        reference: &str,
    ) -> Result<Vec<Clock>, CaseError> {
        let policy = self.policy_of(case)?;
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(CaseError::Empty("submission reference"));
        }
        let chars = reference.chars().count();
        if chars > MAX_REFERENCE_CHARS || reference.contains(char::is_control) {
            return Err(CaseError::TooLong {
                what: "submission reference (one line)",
                max: MAX_REFERENCE_CHARS,
                chars,
            });
        }
        let at = self.given_time(at)?;
        let now = self.now();
        let mut tx = self.store.write().await?;
        let facts = store::facts_in(&mut tx, case.id).await?;
        let current = compute(policy, &facts, now);
        let Some(c) = current.iter().find(|c| c.clock == clock) else {
            return Err(CaseError::NoClock(clock.chars().take(80).collect()));
        };
        match c.state {
            ClockState::Waiting => {
                return Err(CaseError::ClockWaiting {
                    clock: c.clock.clone(),
                    runs_from: c.runs_from.clone(),
                });
            }
            ClockState::Met => return Err(CaseError::ClockMet(c.clock.clone())),
            ClockState::Due | ClockState::Overdue => {}
        }
        if c.started_at.is_some_and(|s| at < s) {
            return Err(CaseError::BeforeStart(c.clock.clone()));
        }
        store::meet(&mut tx, case.id, clock, at, reference).await?;
        let late = c.due.is_some_and(|d| at > d);
        let detail = format!(
            "{} ({}) submitted {} to {}, reference {reference}{}",
            c.what,
            c.article,
            utc(at),
            c.authority,
            if late { ", after its deadline" } else { "" }
        );
        let audit = format!("submitted {clock}");
        self.recompute(
            tx,
            case,
            policy,
            now,
            Change {
                event: EventKind::Clock,
                timeline: &detail,
                action: AuditAction::Clock,
                audit: &audit,
            },
        )
        .await
    }

    /// Writes the change, then every clock's due time as now computed, and
    /// commits; a clock that started with this change gets its own timeline
    /// entry (and so its webhook, `case.clock_started`).
    async fn recompute(
        &self,
        mut tx: WriteTx<'_>,
        case: &Authorized<Case>,
        policy: &Policy,
        now: i64,
        change: Change<'_>,
    ) -> Result<Vec<Clock>, CaseError> {
        let who = case.principal().who();
        let sealer = self.store.sealer();
        record(&mut tx, sealer, case, &who, now, change).await?;
        let facts = store::facts_in(&mut tx, case.id).await?;
        let clocks = compute(policy, &facts, now);
        for c in &clocks {
            let before = facts.clocks.iter().find(|s| s.clock == c.clock);
            if before.map(|s| s.due) == Some(c.due) {
                continue;
            }
            store::put_clock(&mut tx, case.id, &c.clock, c.due).await?;
            if let (Some(due), None | Some(None)) = (c.due, before.map(|s| s.due)) {
                let detail = format!(
                    "clock started: {} ({}) to {}, due {}; runs from {}",
                    c.what,
                    c.article,
                    c.authority,
                    utc(due),
                    c.runs_from
                );
                repo::add_event(
                    &mut tx,
                    sealer,
                    case.id,
                    now,
                    EventKind::ClockStarted,
                    who.actor,
                    &detail,
                    None,
                )
                .await?;
            }
        }
        // The breach clock the list's `--breach` filter and older readers
        // know: the earliest notification a breach requires.
        if let Some(due) = breach_due(&clocks) {
            repo::set_breach_notify_by(&mut tx, case.id, due).await?;
        }
        tx.commit().await?;
        Ok(clocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::clock::FlagRecord;
    use crate::store::clocks::ClockRow;

    fn policy(regimes: &str) -> Policy {
        let seed = std::fs::read_to_string("policies/netcompany.toml").unwrap();
        // The seed without its own regimes and security.txt.
        let text = &seed[..seed.find("\n[regimes.").unwrap_or(seed.len())];
        let set = crate::policy::PolicySet::from_sources(vec![(
            "netcompany.toml".into(),
            format!("{text}\n{regimes}"),
        )])
        .unwrap();
        set.iter().next().unwrap().clone()
    }

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn calendar_hours_do_not_skip_christmas_but_business_days_do() {
        let p = policy("");
        // Wednesday 23 December 2026, 10:00 in Copenhagen.
        let aware = at("2026-12-23T10:00:00+01:00");
        let facts = ClockFacts {
            flags: vec![FlagRecord {
                flag: Flag::Breach,
                aware_at: aware,
                flagged_at: aware,
            }],
            ..ClockFacts::default()
        };
        let clocks = compute(&p, &facts, aware);
        let gdpr = clocks
            .iter()
            .find(|c| c.clock == "gdpr-controller/authority-notification")
            .unwrap();
        // Saturday 26 December, 10:00: 72 calendar hours.
        assert_eq!(gdpr.due, Some(at("2026-12-26T10:00:00+01:00")));
        assert_eq!(gdpr.state, ClockState::Due);
        // The feedback promise of 15 business days, from the same moment,
        // skips 24-26 December, the weekends and 31 December - 1 January.
        let feedback = p.due(
            jiff::Timestamp::from_second(aware).unwrap(),
            p.feedback_within,
        );
        assert_eq!(
            feedback,
            "2027-01-20T00:00:00+01:00"
                .parse::<jiff::Timestamp>()
                .unwrap()
        );
        assert_eq!(
            compute(&p, &facts, at("2026-12-26T10:00:01+01:00"))[0].state,
            ClockState::Overdue
        );
    }

    #[test]
    fn later_steps_wait_for_what_they_run_from() {
        let p = policy(
            "[regimes.nis2]\nentity = \"important\"\nauthority = \"CFCS\"\nrecipient = \"ENISA single reporting platform\"\n\
             [regimes.cra-manufacturer]\nauthority = \"CFCS\"\nrecipient = \"ENISA single reporting platform\"\n",
        );
        let aware = at("2027-01-29T12:00:00+01:00");
        let mut facts = ClockFacts {
            flags: vec![
                FlagRecord {
                    flag: Flag::Exploited,
                    aware_at: aware,
                    flagged_at: aware,
                },
                FlagRecord {
                    flag: Flag::Incident,
                    aware_at: aware,
                    flagged_at: aware,
                },
            ],
            ..ClockFacts::default()
        };
        let get = |c: &[Clock], n: &str| c.iter().find(|c| c.clock == n).unwrap().clone();
        let c = compute(&p, &facts, aware);
        // No GDPR regime named: no breach clock even if flagged.
        assert!(c.iter().all(|c| c.regime != Regime::GdprController));
        assert_eq!(get(&c, "nis2/early-warning").due, Some(aware + 24 * 3600));
        assert_eq!(
            get(&c, "nis2/incident-notification").due,
            Some(aware + 72 * 3600)
        );
        assert_eq!(get(&c, "nis2/final-report").state, ClockState::Waiting);
        assert_eq!(
            get(&c, "cra-manufacturer/final-report").state,
            ClockState::Waiting
        );
        assert_eq!(
            get(&c, "cra-manufacturer/incident-early-warning").due,
            Some(aware + 24 * 3600)
        );
        // The notification submitted on 30 January: the final report is due
        // one calendar month later, 28 February (February has 28 days).
        facts.clocks.push(ClockRow {
            clock: "nis2/incident-notification".into(),
            due: Some(aware + 72 * 3600),
            met_at: Some(at("2027-01-31T12:00:00+01:00")),
            reference: Some("CFCS-1".into()),
        });
        // The fix on 1 February: the CRA final report 14 days later.
        facts
            .marks
            .push((Mark::FixAvailable, at("2027-02-01T09:00:00+01:00")));
        let c = compute(&p, &facts, aware);
        assert_eq!(get(&c, "nis2/incident-notification").state, ClockState::Met);
        assert_eq!(
            get(&c, "nis2/final-report").due,
            Some(at("2027-02-28T12:00:00+01:00"))
        );
        assert_eq!(
            get(&c, "cra-manufacturer/final-report").due,
            Some(at("2027-02-15T09:00:00+01:00"))
        );
    }
}
