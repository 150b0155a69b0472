//! The case vocabulary: where a case stands and the lifecycle rules, how it
//! came in, why it was closed, what its timeline records.

use serde::Serialize;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseState {
    /// Holds encrypted archives; waits for the out-of-band password.
    AwaitingPassword,
    /// Encrypted to the organisation's OpenPGP key, which waits for its
    /// passphrase: an admin's unlock decrypts it and makes it `new`.
    AwaitingKey,
    New,
    Acknowledged,
    Triaged,
    InProgress,
    /// Waiting for the reporter; the feedback clock is paused.
    NeedsInformation,
    Resolved,
    Closed,
    /// Spam or other mail that is no report: no clock runs, no receipt
    /// goes out, no service-level figure counts it. An analyst can take
    /// it back to "new" if it was a report after all.
    Junk,
}

impl CaseState {
    pub const ALL: [CaseState; 10] = [
        CaseState::AwaitingPassword,
        CaseState::AwaitingKey,
        CaseState::New,
        CaseState::Acknowledged,
        CaseState::Triaged,
        CaseState::InProgress,
        CaseState::NeedsInformation,
        CaseState::Resolved,
        CaseState::Closed,
        CaseState::Junk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::AwaitingPassword => "awaiting-password",
            CaseState::AwaitingKey => "awaiting-key",
            CaseState::New => "new",
            CaseState::Acknowledged => "acknowledged",
            CaseState::Triaged => "triaged",
            CaseState::InProgress => "in-progress",
            CaseState::NeedsInformation => "needs-information",
            CaseState::Resolved => "resolved",
            CaseState::Closed => "closed",
            CaseState::Junk => "junk",
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
            (AwaitingPassword | AwaitingKey, New | Acknowledged | NeedsInformation | Closed) => {
                true
            }
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
            // Junk is for mail nobody has started on; it can come back.
            (AwaitingPassword | AwaitingKey | New | Acknowledged | NeedsInformation, Junk) => true,
            (Junk, New) => true,
            _ => false,
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(
            self,
            CaseState::Resolved | CaseState::Closed | CaseState::Junk
        )
    }

    /// Any move out of "new" (or "awaiting-password", "awaiting-key") is
    /// the acknowledgement the receipt clock waits for.
    pub fn acknowledged(self) -> bool {
        !matches!(
            self,
            CaseState::New | CaseState::AwaitingPassword | CaseState::AwaitingKey
        )
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
    pub const ALL: [CaseKind; 3] = [
        CaseKind::Disclosure,
        CaseKind::Unflagged,
        CaseKind::Unparsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::Disclosure => "disclosure",
            CaseKind::Unflagged => "unflagged",
            CaseKind::Unparsed => "unparsed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseKind> {
        CaseKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The report arrived (or, for `unparsed`, arrived unreadable).
    Received,
    /// An `unparsed` case's message was parsed on retry.
    Parsed,
    /// A retry of an `unparsed` case's message failed again.
    ParseFailed,
    /// A follow-up mail in the conversation.
    Correspondence,
    Transition,
    Note,
    Reply,
    Breach,
    Unlocked,
    UnlockFailed,
    /// The case was given to an analyst, or taken back.
    Assign,
    /// An analyst wrote or corrected a report field.
    Edit,
    /// An unflagged case was made a disclosure report.
    Promote,
    /// A status update to the reporter.
    Feedback,
    /// A deadline is less than one business day away.
    DueSoon,
    /// A deadline passed.
    Overdue,
    /// Flagged as a breach, an exploited vulnerability or an incident.
    Flag,
    /// A regulatory clock started.
    ClockStarted,
    /// A regulatory mark or submission.
    Clock,
    /// Retention or an erasure removed personal data.
    Erased,
    /// A receipt held for an unauthenticated sender was released.
    ReceiptReleased,
    /// An operator retried or cancelled one of the case's outgoing mails.
    Outbox,
}

impl EventKind {
    pub const ALL: [EventKind; 22] = [
        EventKind::Received,
        EventKind::Parsed,
        EventKind::ParseFailed,
        EventKind::Correspondence,
        EventKind::Transition,
        EventKind::Note,
        EventKind::Reply,
        EventKind::Breach,
        EventKind::Unlocked,
        EventKind::UnlockFailed,
        EventKind::Assign,
        EventKind::Edit,
        EventKind::Promote,
        EventKind::Feedback,
        EventKind::DueSoon,
        EventKind::Overdue,
        EventKind::Flag,
        EventKind::ClockStarted,
        EventKind::Clock,
        EventKind::Erased,
        EventKind::ReceiptReleased,
        EventKind::Outbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Parsed => "parsed",
            EventKind::ParseFailed => "parse-failed",
            EventKind::Correspondence => "correspondence",
            EventKind::Transition => "transition",
            EventKind::Note => "note",
            EventKind::Reply => "reply",
            EventKind::Breach => "breach",
            EventKind::Unlocked => "unlocked",
            EventKind::UnlockFailed => "unlock-failed",
            EventKind::Assign => "assign",
            EventKind::Edit => "edit",
            EventKind::Promote => "promote",
            EventKind::Feedback => "feedback",
            EventKind::DueSoon => "due-soon",
            EventKind::Overdue => "overdue",
            EventKind::Flag => "flag",
            EventKind::ClockStarted => "clock-started",
            EventKind::Clock => "clock",
            EventKind::Erased => "erased",
            EventKind::ReceiptReleased => "receipt-released",
            EventKind::Outbox => "outbox",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
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
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("{:?}", s.as_str()), "JSON names the same");
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("{:?}", k.as_str())
            );
        }
        for k in CaseKind::ALL {
            assert_eq!(CaseKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("{:?}", k.as_str())
            );
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
