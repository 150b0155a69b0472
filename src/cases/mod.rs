//! The case domain: one case per report, owned by exactly one
//! organisation, with its structured fields, assets, triage suggestions,
//! evidence, timeline and service-level clocks; the lifecycle rules; and
//! the `Cases` service that owns every rule, which the CLI, the JSON API
//! and the web pages call alike.
//!
//! What it must never do: let a transition skip the rules below, close a
//! case without a reason, lose the time a paused clock was paused, or let
//! two doors answer the same action differently.

pub mod alerts;
pub mod authenticate;
pub mod clocks;
mod decrypt;
pub mod delivery;
pub mod digest;
pub mod drafts;
pub mod feedback;
pub mod filing;
pub mod hints;
pub mod inbox;
pub mod input;
pub mod keys;
pub mod outbox;
pub mod principal;
pub mod reads;
pub mod retention;
pub mod search;
pub mod service;
pub mod sla;
pub mod thread;
pub mod triage;
pub mod unlock;

#[cfg(test)]
mod tests;

pub use input::{FieldText, NoteText, Reason, ReplyText, instant};
pub use principal::{Authorized, Case, Door, Principal, Scope};
pub use service::{Cases, EvidenceUse, MAX_PAGE, Page};

pub use crate::model::case::{CaseKind, CaseState, CloseReason, EventKind};
use crate::store::StoreError;

/// Why a case operation was not done. Every door shows the message as it
/// is, and maps the class (`CaseError::class`) to its own status once.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("no case {0}")]
    NotFound(String),
    #[error("case {0} has no such evidence")]
    NoEvidence(String),
    #[error("case {0} has no such message")]
    NoMessage(String),
    #[error("the cursor {0:?} is not one this list gave")]
    BadCursor(String),
    #[error("{0}")]
    Search(String),
    #[error("case {reference} has no {by} to select by")]
    NoSelector { reference: String, by: &'static str },
    #[error("{reference} is {state}: only an open case can be promoted")]
    NotOpen {
        reference: String,
        state: &'static str,
    },
    #[error("{reference} is a {kind} case: only an unflagged case can be promoted")]
    NotUnflagged {
        reference: String,
        kind: &'static str,
    },
    #[error("unknown status update {0:?}: one of {kinds}", kinds = crate::policy::feedback::FeedbackKind::names())]
    UnknownFeedback(String),
    #[error("unknown selector {0:?}: sender, domain, client or content")]
    UnknownSelector(String),
    #[error("unknown bulk action {0:?}: junk")]
    UnknownAction(String),
    #[error("no organisation {0:?} among yours")]
    UnknownOrg(String),
    #[error("unknown kind {0:?}: disclosure, unflagged or unparsed")]
    UnknownKind(String),
    #[error("{0:?} is neither a date (YYYY-MM-DD, UTC) nor a time (RFC 3339)")]
    BadTime(String),
    #[error("unknown field {0:?}: one of {fields}", fields = crate::model::thread::ReportField::names())]
    UnknownField(String),
    #[error("a {from} case cannot become {to}")]
    Transition {
        from: &'static str,
        to: &'static str,
    },
    #[error("unknown state {0:?}")]
    UnknownState(String),
    #[error("closing needs a reason: {0}")]
    Reason(String),
    #[error("duplicate of {0}, but no such case exists in the same organisation")]
    NoOriginal(String),
    #[error("the {0} is empty")]
    Empty(&'static str),
    #[error("the {what} is longer than {max} characters ({chars})")]
    TooLong {
        what: &'static str,
        max: usize,
        chars: usize,
    },
    #[error("the reporter left no address to reply to")]
    NoAddress,
    #[error("unknown clock state {0:?}: due, overdue, met or waiting")]
    UnknownClockState(String),
    #[error("unknown flag {0:?}: breach, exploited or incident")]
    UnknownFlag(String),
    #[error("unknown mark {0:?}: fix-available or high-risk")]
    UnknownMark(String),
    #[error("unknown language {0:?}: en or da")]
    UnknownLanguage(String),
    #[error(
        "only an operator (the CLI without --for-org) or an admin may do this across organisations"
    )]
    OperatorOnly,
    #[error("{0} has no receipt held for an unauthenticated sender")]
    NoHeldReceipt(String),
    #[error("no outbox message {0}")]
    NoOutboxEntry(i64),
    #[error("outbox message {id} is {state}: {why}")]
    OutboxState {
        id: i64,
        state: String,
        why: &'static str,
    },
    #[error("organisation {0:?} has no OpenPGP key configured")]
    NoKey(String),
    #[error("the passphrase does not unlock {0:?}'s OpenPGP key")]
    WrongPassphrase(String),
    #[error("the mails of {0} were erased with the reporter's personal data")]
    Erased(String),
    #[error("that is not a mail address")]
    NotAnAddress,
    #[error("{0} is in the future")]
    FutureTime(String),
    #[error("{org}'s policy names no regime with a clock for {flag}")]
    NoRegime { org: String, flag: &'static str },
    #[error("no clock of this case runs from the record that {0}: flag the case first")]
    NoClockFor(&'static str),
    #[error("this case has no clock {0:?}")]
    NoClock(String),
    #[error("{clock} has not started: it runs from {runs_from}")]
    ClockWaiting { clock: String, runs_from: String },
    #[error("{0} was already submitted")]
    ClockMet(String),
    #[error("the submission of {0} cannot be before its clock started")]
    BeforeStart(String),
    #[error("no policy for organisation {0:?}")]
    NoPolicy(String),
    #[error(
        "{who:?} cannot take cases of {org}: only someone who has signed in with a role for it can"
    )]
    NotAnAnalyst { who: String, org: String },
    #[error(transparent)]
    Unlock(#[from] unlock::UnlockError),
    #[error("the reply could not be queued: {0}")]
    Outbound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a door should present a `CaseError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Missing, or not the principal's (the same answer for both).
    NotFound,
    /// Not possible in the case's present state; may work later.
    Conflict,
    /// The input is wrong; repeating it will not help.
    Invalid,
    /// Refused by a rate limit; may work after the wait the message names.
    Limited,
    /// Our fault: logged, nothing changed.
    Internal,
}

impl CaseError {
    pub fn class(&self) -> ErrorClass {
        use unlock::UnlockError as U;
        match self {
            CaseError::NotFound(_)
            | CaseError::NoOutboxEntry(_)
            | CaseError::OperatorOnly
            | CaseError::NoEvidence(_)
            | CaseError::NoMessage(_)
            | CaseError::NoKey(_)
            | CaseError::UnknownOrg(_) => ErrorClass::NotFound,
            CaseError::Store(StoreError::NotFound(_)) => ErrorClass::NotFound,
            CaseError::Transition { .. }
            | CaseError::NotUnflagged { .. }
            | CaseError::NotOpen { .. }
            | CaseError::NoClockFor(_)
            | CaseError::ClockWaiting { .. }
            | CaseError::ClockMet(_)
            | CaseError::NoHeldReceipt(_)
            | CaseError::OutboxState { .. }
            | CaseError::Erased(_) => ErrorClass::Conflict,
            CaseError::Unlock(U::TooManyAttempts(_)) => ErrorClass::Limited,
            CaseError::Unlock(U::Busy | U::NothingLocked(_)) => ErrorClass::Conflict,
            CaseError::UnknownState(_)
            | CaseError::Reason(_)
            | CaseError::NoOriginal(_)
            | CaseError::Empty(_)
            | CaseError::TooLong { .. }
            | CaseError::NoAddress
            | CaseError::UnknownField(_)
            | CaseError::BadCursor(_)
            | CaseError::Search(_)
            | CaseError::BadTime(_)
            | CaseError::UnknownKind(_)
            | CaseError::NoSelector { .. }
            | CaseError::UnknownSelector(_)
            | CaseError::UnknownFeedback(_)
            | CaseError::UnknownAction(_)
            | CaseError::NotAnAnalyst { .. }
            | CaseError::FutureTime(_)
            | CaseError::NotAnAddress
            | CaseError::UnknownClockState(_)
            | CaseError::UnknownFlag(_)
            | CaseError::UnknownMark(_)
            | CaseError::UnknownLanguage(_)
            | CaseError::NoRegime { .. }
            | CaseError::NoClock(_)
            | CaseError::BeforeStart(_)
            | CaseError::WrongPassphrase(_)
            | CaseError::Unlock(U::WrongPassword | U::Worker(_)) => ErrorClass::Invalid,
            CaseError::NoPolicy(_) | CaseError::Outbound(_) | CaseError::Store(_) => {
                ErrorClass::Internal
            }
        }
    }
}

/// `CaseKind::parse`, refusing an unknown name with the error every door
/// shows.
pub fn kind_named(s: &str) -> Result<CaseKind, CaseError> {
    CaseKind::parse(s).ok_or_else(|| CaseError::UnknownKind(s.to_owned()))
}

/// `ReportField::parse`, refusing an unknown name with the error every
/// door shows.
pub fn field_named(s: &str) -> Result<crate::model::thread::ReportField, CaseError> {
    crate::model::thread::ReportField::parse(s).ok_or_else(|| CaseError::UnknownField(s.to_owned()))
}

/// `Selector::parse`, refusing an unknown name with the error every door
/// shows.
pub fn selector_named(s: &str) -> Result<search::Selector, CaseError> {
    search::Selector::parse(s).ok_or_else(|| CaseError::UnknownSelector(s.to_owned()))
}

/// `FeedbackKind::parse`, refusing an unknown name with the error every
/// door shows.
pub fn feedback_named(s: &str) -> Result<crate::policy::feedback::FeedbackKind, CaseError> {
    crate::policy::feedback::FeedbackKind::parse(s)
        .ok_or_else(|| CaseError::UnknownFeedback(s.to_owned()))
}

/// `BulkAction::parse`, refusing an unknown name with the error every
/// door shows.
pub fn action_named(s: &str) -> Result<triage::BulkAction, CaseError> {
    triage::BulkAction::parse(s).ok_or_else(|| CaseError::UnknownAction(s.to_owned()))
}

/// `CaseState::parse`, refusing an unknown name with the error every door
/// shows.
pub fn clock_state_named(s: &str) -> Result<crate::model::clock::ClockState, CaseError> {
    crate::model::clock::ClockState::parse(s)
        .ok_or_else(|| CaseError::UnknownClockState(s.chars().take(40).collect()))
}

/// `Flag::parse`, refusing an unknown name with the error every door shows.
pub fn flag_named(s: &str) -> Result<crate::model::clock::Flag, CaseError> {
    crate::model::clock::Flag::parse(s)
        .ok_or_else(|| CaseError::UnknownFlag(s.chars().take(40).collect()))
}

/// `Mark::parse`, likewise.
pub fn mark_named(s: &str) -> Result<crate::model::clock::Mark, CaseError> {
    crate::model::clock::Mark::parse(s)
        .ok_or_else(|| CaseError::UnknownMark(s.chars().take(40).collect()))
}

/// A draft's language: en or da.
pub fn language_named(s: &str) -> Result<crate::model::report::Language, CaseError> {
    crate::model::report::Language::parse(s)
        .ok_or_else(|| CaseError::UnknownLanguage(s.chars().take(40).collect()))
}

pub fn state_named(s: &str) -> Result<CaseState, CaseError> {
    CaseState::parse(s).ok_or_else(|| CaseError::UnknownState(s.to_owned()))
}
