//! Regulatory clocks: what an analyst may flag a case as, the regimes an
//! organisation is under, the steps each regime requires with the article
//! that requires them, and what each step's clock runs from.
//!
//! Plain vocabulary and one table (`STEPS`); the cases service computes
//! the due times from it (`cases::clocks`), nothing else does.

use serde::Serialize;

/// What an analyst has found a case to be. Each starts the clocks of the
/// regimes the organisation is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// A personal-data breach (GDPR art. 4(12)).
    Breach,
    /// An actively exploited vulnerability in a product with digital
    /// elements (CRA art. 3(42)).
    Exploited,
    /// A significant incident (NIS2 art. 23(3)), or a severe incident
    /// having an impact on the security of a product (CRA art. 14(3)).
    Incident,
}

impl Flag {
    pub const ALL: [Flag; 3] = [Flag::Breach, Flag::Exploited, Flag::Incident];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Breach => "breach",
            Flag::Exploited => "exploited",
            Flag::Incident => "incident",
        }
    }

    pub fn parse(s: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Flag::Breach => "a personal-data breach",
            Flag::Exploited => "an actively exploited vulnerability",
            Flag::Incident => "a significant incident",
        }
    }
}

/// A body of law that may apply to an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regime {
    GdprController,
    GdprProcessor,
    Nis2,
    CraManufacturer,
}

impl Regime {
    pub const ALL: [Regime; 4] = [
        Regime::GdprController,
        Regime::GdprProcessor,
        Regime::Nis2,
        Regime::CraManufacturer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Regime::GdprController => "gdpr-controller",
            Regime::GdprProcessor => "gdpr-processor",
            Regime::Nis2 => "nis2",
            Regime::CraManufacturer => "cra-manufacturer",
        }
    }

    pub fn parse(s: &str) -> Option<Regime> {
        Regime::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The regulation, as an analyst would name it.
    pub fn law(self) -> &'static str {
        match self {
            Regime::GdprController | Regime::GdprProcessor => "GDPR (EU) 2016/679",
            Regime::Nis2 => "NIS2 (EU) 2022/2555",
            Regime::CraManufacturer => "CRA (EU) 2024/2847",
        }
    }
}

/// Something an analyst records that starts a later clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    /// A fix or mitigation is available (CRA art. 14(2)(c) runs from it).
    FixAvailable,
    /// The breach is likely to result in a high risk to people (GDPR
    /// art. 34(1): they must be told).
    HighRisk,
}

impl Mark {
    pub const ALL: [Mark; 2] = [Mark::FixAvailable, Mark::HighRisk];

    pub fn as_str(self) -> &'static str {
        match self {
            Mark::FixAvailable => "fix-available",
            Mark::HighRisk => "high-risk",
        }
    }

    pub fn parse(s: &str) -> Option<Mark> {
        Mark::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Mark::FixAvailable => "a fix or mitigation is available",
            Mark::HighRisk => "the breach is likely to result in a high risk to people",
        }
    }
}

/// One required notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// GDPR art. 33(1): to the supervisory authority.
    AuthorityNotification,
    /// GDPR art. 34(1): to the people affected.
    DataSubjects,
    /// GDPR art. 33(2): the processor to its controller.
    ControllerNotification,
    /// NIS2 art. 23(4)(a), CRA art. 14(2)(a).
    EarlyWarning,
    /// CRA art. 14(2)(b).
    VulnerabilityNotification,
    /// NIS2 art. 23(4)(b).
    IncidentNotification,
    /// NIS2 art. 23(4)(d), CRA art. 14(2)(c).
    FinalReport,
    /// CRA art. 14(4)(a).
    IncidentEarlyWarning,
    /// CRA art. 14(4)(b).
    SevereIncidentNotification,
    /// CRA art. 14(4)(c).
    IncidentFinalReport,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::AuthorityNotification => "authority-notification",
            Step::DataSubjects => "data-subjects",
            Step::ControllerNotification => "controller-notification",
            Step::EarlyWarning => "early-warning",
            Step::VulnerabilityNotification => "vulnerability-notification",
            Step::IncidentNotification => "incident-notification",
            Step::FinalReport => "final-report",
            Step::IncidentEarlyWarning => "incident-early-warning",
            Step::SevereIncidentNotification => "severe-incident-notification",
            Step::IncidentFinalReport => "incident-final-report",
        }
    }
}

/// How long a step gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Hours(u32),
    Days(u32),
    /// One calendar month, in the organisation's time zone.
    Month,
    /// The organisation's own target for "without undue delay".
    PolicyTarget,
}

/// What a step's clock runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The awareness time of the flag.
    Awareness,
    /// When the analyst recorded a mark.
    Mark(Mark),
    /// When an earlier step was submitted.
    Submitted(Step),
}

/// A row of the table of required notifications.
#[derive(Debug, Clone, Copy)]
pub struct StepRule {
    pub regime: Regime,
    pub flag: Flag,
    pub step: Step,
    pub article: &'static str,
    /// What the step is, in a few words.
    pub what: &'static str,
    pub within: Span,
    pub from: From,
}

/// Every notification the regimes require, in the order they fall due.
pub const STEPS: &[StepRule] = &[
    StepRule {
        regime: Regime::GdprController,
        flag: Flag::Breach,
        step: Step::AuthorityNotification,
        article: "GDPR art. 33(1)",
        what: "notify the supervisory authority",
        within: Span::PolicyTarget,
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::GdprController,
        flag: Flag::Breach,
        step: Step::DataSubjects,
        article: "GDPR art. 34(1)",
        what: "tell the people affected",
        within: Span::PolicyTarget,
        from: From::Mark(Mark::HighRisk),
    },
    StepRule {
        regime: Regime::GdprProcessor,
        flag: Flag::Breach,
        step: Step::ControllerNotification,
        article: "GDPR art. 33(2)",
        what: "notify the controller",
        within: Span::PolicyTarget,
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::Nis2,
        flag: Flag::Incident,
        step: Step::EarlyWarning,
        article: "NIS2 art. 23(4)(a)",
        what: "early warning to the CSIRT or competent authority",
        within: Span::Hours(24),
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::Nis2,
        flag: Flag::Incident,
        step: Step::IncidentNotification,
        article: "NIS2 art. 23(4)(b)",
        what: "incident notification to the CSIRT or competent authority",
        within: Span::Hours(72),
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::Nis2,
        flag: Flag::Incident,
        step: Step::FinalReport,
        article: "NIS2 art. 23(4)(d)",
        what: "final report",
        within: Span::Month,
        from: From::Submitted(Step::IncidentNotification),
    },
    StepRule {
        regime: Regime::CraManufacturer,
        flag: Flag::Exploited,
        step: Step::EarlyWarning,
        article: "CRA art. 14(2)(a)",
        what: "early warning of the actively exploited vulnerability",
        within: Span::Hours(24),
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::CraManufacturer,
        flag: Flag::Exploited,
        step: Step::VulnerabilityNotification,
        article: "CRA art. 14(2)(b)",
        what: "vulnerability notification",
        within: Span::Hours(72),
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::CraManufacturer,
        flag: Flag::Exploited,
        step: Step::FinalReport,
        article: "CRA art. 14(2)(c)",
        what: "final report",
        within: Span::Days(14),
        from: From::Mark(Mark::FixAvailable),
    },
    StepRule {
        regime: Regime::CraManufacturer,
        flag: Flag::Incident,
        step: Step::IncidentEarlyWarning,
        article: "CRA art. 14(4)(a)",
        what: "early warning of the severe incident",
        within: Span::Hours(24),
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::CraManufacturer,
        flag: Flag::Incident,
        step: Step::SevereIncidentNotification,
        article: "CRA art. 14(4)(b)",
        what: "incident notification",
        within: Span::Hours(72),
        from: From::Awareness,
    },
    StepRule {
        regime: Regime::CraManufacturer,
        flag: Flag::Incident,
        step: Step::IncidentFinalReport,
        article: "CRA art. 14(4)(c)",
        what: "final report",
        within: Span::Month,
        from: From::Submitted(Step::SevereIncidentNotification),
    },
];

impl StepRule {
    /// The clock's name: `regime/step`, unique within a case.
    pub fn name(&self) -> String {
        format!("{}/{}", self.regime.as_str(), self.step.as_str())
    }

    pub fn named(name: &str) -> Option<&'static StepRule> {
        STEPS.iter().find(|s| s.name() == name)
    }

    /// What the clock runs from, in words.
    pub fn runs_from(&self) -> String {
        match self.from {
            From::Awareness => format!("awareness of {}", self.flag.describe()),
            From::Mark(m) => format!("the record that {}", m.describe()),
            From::Submitted(s) => format!("the submission of {}", s.as_str()),
        }
    }
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockState {
    /// What it runs from has not happened yet.
    Waiting,
    Due,
    /// Submitted; `late` says whether after the due time.
    Met,
    Overdue,
}

impl ClockState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Waiting => "waiting",
            ClockState::Due => "due",
            ClockState::Met => "met",
            ClockState::Overdue => "overdue",
        }
    }

    pub fn parse(s: &str) -> Option<ClockState> {
        [
            ClockState::Waiting,
            ClockState::Due,
            ClockState::Met,
            ClockState::Overdue,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One regulatory clock of a case, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clock {
    /// `regime/step`.
    pub clock: String,
    pub regime: Regime,
    pub step: Step,
    pub flag: Flag,
    pub article: &'static str,
    pub what: &'static str,
    /// Who receives it, from the policy.
    pub authority: String,
    pub runs_from: String,
    /// When what it runs from happened.
    pub started_at: Option<i64>,
    pub due: Option<i64>,
    pub state: ClockState,
    pub met_at: Option<i64>,
    /// The submission's reference at the authority.
    pub reference: Option<String>,
    /// Met after its due time.
    pub late: bool,
}

/// A flag on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagRecord {
    pub flag: Flag,
    pub aware_at: i64,
    pub flagged_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<String> = STEPS.iter().map(StepRule::name).collect();
        for n in &names {
            assert_eq!(
                StepRule::named(n).map(StepRule::name).as_deref(),
                Some(&**n)
            );
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STEPS.len());
        for f in Flag::ALL {
            assert_eq!(Flag::parse(f.as_str()), Some(f));
        }
        for r in Regime::ALL {
            assert_eq!(Regime::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("{:?}", r.as_str())
            );
        }
        for m in Mark::ALL {
            assert_eq!(Mark::parse(m.as_str()), Some(m));
        }
        for s in STEPS {
            assert_eq!(
                serde_json::to_string(&s.step).unwrap(),
                format!("{:?}", s.step.as_str())
            );
            // A step that runs from another's submission names one of the
            // same regime and flag.
            if let From::Submitted(prior) = s.from {
                assert!(
                    STEPS
                        .iter()
                        .any(|p| p.step == prior && p.regime == s.regime && p.flag == s.flag)
                );
            }
        }
    }
}
