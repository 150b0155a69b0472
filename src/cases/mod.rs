//! The case model: one case per report, owned by exactly one organisation,
//! with its structured fields, assets, triage suggestions, evidence,
//! timeline and service-level clocks; and the lifecycle rules.
//!
//! The same functions serve intake, the CLI and (later) the web interface.
//! What it must never do: let a transition skip the rules below, close a
//! case without a reason, or lose the time a paused clock was paused.

pub mod store;

use serde::Serialize;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseState {
    /// Holds encrypted archives; waits for the out-of-band password.
    AwaitingPassword,
    New,
    Acknowledged,
    Triaged,
    InProgress,
    /// Waiting for the reporter; the feedback clock is paused.
    NeedsInformation,
    Resolved,
    Closed,
}

impl CaseState {
    pub const ALL: [CaseState; 8] = [
        CaseState::AwaitingPassword,
        CaseState::New,
        CaseState::Acknowledged,
        CaseState::Triaged,
        CaseState::InProgress,
        CaseState::NeedsInformation,
        CaseState::Resolved,
        CaseState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::AwaitingPassword => "awaiting-password",
            CaseState::New => "new",
            CaseState::Acknowledged => "acknowledged",
            CaseState::Triaged => "triaged",
            CaseState::InProgress => "in-progress",
            CaseState::NeedsInformation => "needs-information",
            CaseState::Resolved => "resolved",
            CaseState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The lifecycle: new → acknowledged → triaged → in progress →
    /// resolved, "needs information" from any open state and back, closed
    /// from any open state, and re-opening a resolved or closed case into
    /// triage.
    pub fn may_become(self, next: CaseState) -> bool {
        use CaseState::*;
        match (self, next) {
            (a, b) if a == b => false,
            // Unlocking leads to "new"; an analyst may also acknowledge,
            // ask for information (e.g. the password) or close meanwhile.
            (AwaitingPassword, New | Acknowledged | NeedsInformation | Closed) => true,
            (New, Acknowledged | Triaged) => true,
            (Acknowledged, Triaged | InProgress) => true,
            (Triaged, InProgress | Resolved) => true,
            (InProgress, Resolved | Triaged) => true,
            (New | Acknowledged | Triaged | InProgress, NeedsInformation) => true,
            (NeedsInformation, Acknowledged | Triaged | InProgress) => true,
            (New | Acknowledged | Triaged | InProgress | NeedsInformation | Resolved, Closed) => {
                true
            }
            (Resolved | Closed, Triaged) => true,
            _ => false,
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, CaseState::Resolved | CaseState::Closed)
    }
}

/// Why a case was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseReason {
    OutOfScope,
    /// The original case's reference.
    Duplicate(String),
    NotReproducible,
    Informative,
    Spam,
}

impl CloseReason {
    /// `out-of-scope`, `duplicate:NC-2026-0001`, `not-reproducible`,
    /// `informative`, `spam`.
    pub fn parse(s: &str) -> Result<CloseReason, String> {
        match s.split_once(':') {
            Some(("duplicate", original)) if !original.trim().is_empty() => {
                Ok(CloseReason::Duplicate(original.trim().to_owned()))
            }
            None => match s {
                "out-of-scope" => Ok(CloseReason::OutOfScope),
                "not-reproducible" => Ok(CloseReason::NotReproducible),
                "informative" => Ok(CloseReason::Informative),
                "spam" => Ok(CloseReason::Spam),
                "duplicate" => Err("a duplicate names its original: duplicate:REFERENCE".into()),
                _ => Err(format!(
                    "{s:?}: expected out-of-scope, duplicate:REFERENCE, not-reproducible, informative or spam"
                )),
            },
            _ => Err(format!("{s:?}: expected duplicate:REFERENCE")),
        }
    }

    pub fn render(&self) -> String {
        match self {
            CloseReason::OutOfScope => "out-of-scope".into(),
            CloseReason::Duplicate(r) => format!("duplicate:{r}"),
            CloseReason::NotReproducible => "not-reproducible".into(),
            CloseReason::Informative => "informative".into(),
            CloseReason::Spam => "spam".into(),
        }
    }
}

/// How a case came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseKind {
    /// Carried the policy's subject flag (or the policy needs none).
    Disclosure,
    /// Sent to a policy address without the flag: kept for triage.
    Unflagged,
    /// Could not be parsed within intake's budget: the raw message, the
    /// reason and the clocks, for an analyst to read or retry.
    Unparsed,
}

impl CaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::Disclosure => "disclosure",
            CaseKind::Unflagged => "unflagged",
            CaseKind::Unparsed => "unparsed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_rules() {
        use CaseState::*;
        assert!(New.may_become(Acknowledged));
        assert!(Acknowledged.may_become(Triaged));
        assert!(Triaged.may_become(InProgress));
        assert!(InProgress.may_become(Resolved));
        assert!(InProgress.may_become(NeedsInformation));
        assert!(NeedsInformation.may_become(InProgress));
        assert!(New.may_become(Closed));
        assert!(Closed.may_become(Triaged), "re-open");
        assert!(!New.may_become(Resolved), "no skipping triage");
        assert!(!Closed.may_become(Resolved));
        assert!(!New.may_become(New));
        for s in CaseState::ALL {
            assert_eq!(CaseState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn close_reasons() {
        assert_eq!(
            CloseReason::parse("duplicate:NC-2026-0001"),
            Ok(CloseReason::Duplicate("NC-2026-0001".into()))
        );
        assert!(CloseReason::parse("duplicate").is_err());
        assert!(CloseReason::parse("bored").is_err());
        assert_eq!(
            CloseReason::parse("spam").map(|r| r.render()),
            Ok("spam".into())
        );
    }
}
