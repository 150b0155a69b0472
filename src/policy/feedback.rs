//! Status updates the policies promise: Magenta's feedback within two
//! weeks, saying whether the reporter will hear again or the case is
//! closed; Netcompany's response within 15 business days. A policy may
//! word each template itself (`[feedback]`, English and Danish); these are
//! the defaults. Placeholders: `{organisation}`, `{reference}`,
//! `{reason}` (why a case was closed).

use serde::{Deserialize, Serialize};

/// Which status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackKind {
    /// Received, and being investigated: you will hear from us again.
    Investigating,
    /// We need more from you.
    NeedsInformation,
    /// Fixed.
    Resolved,
    /// Closed, with the reason.
    Closed,
}

impl FeedbackKind {
    pub const ALL: [FeedbackKind; 4] = [
        FeedbackKind::Investigating,
        FeedbackKind::NeedsInformation,
        FeedbackKind::Resolved,
        FeedbackKind::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Investigating => "investigating",
            FeedbackKind::NeedsInformation => "needs-information",
            FeedbackKind::Resolved => "resolved",
            FeedbackKind::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<FeedbackKind> {
        FeedbackKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The names, for refusals and help texts.
    pub fn names() -> String {
        FeedbackKind::ALL.map(FeedbackKind::as_str).join(", ")
    }
}

/// A policy's own wording of the updates, each optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackTemplates {
    investigating_en: Option<String>,
    investigating_da: Option<String>,
    needs_information_en: Option<String>,
    needs_information_da: Option<String>,
    resolved_en: Option<String>,
    resolved_da: Option<String>,
    closed_en: Option<String>,
    closed_da: Option<String>,
}

impl FeedbackTemplates {
    /// The template of `kind` in English or Danish: the policy's, else the
    /// default.
    pub fn template(&self, kind: FeedbackKind, danish: bool) -> &str {
        use FeedbackKind::*;
        let own = match (kind, danish) {
            (Investigating, false) => &self.investigating_en,
            (Investigating, true) => &self.investigating_da,
            (NeedsInformation, false) => &self.needs_information_en,
            (NeedsInformation, true) => &self.needs_information_da,
            (Resolved, false) => &self.resolved_en,
            (Resolved, true) => &self.resolved_da,
            (Closed, false) => &self.closed_en,
            (Closed, true) => &self.closed_da,
        };
        own.as_deref().unwrap_or(match (kind, danish) {
            (Investigating, false) => {
                "Thank you for your report {reference}. We have confirmed it and are \
                 investigating. You will hear from us again when we know more."
            }
            (Investigating, true) => {
                "Tak for din henvendelse {reference}. Vi har bekræftet den og undersøger \
                 sagen. Du hører fra os igen, når vi ved mere."
            }
            (NeedsInformation, false) => {
                "Thank you for your report {reference}. To investigate it we need more \
                 information from you: please reply to this message with"
            }
            (NeedsInformation, true) => {
                "Tak for din henvendelse {reference}. For at undersøge den har vi brug for \
                 flere oplysninger fra dig: svar venligst på denne besked med"
            }
            (Resolved, false) => {
                "The vulnerability you reported in {reference} has been fixed. Thank you \
                 for reporting it responsibly to {organisation}. This closes the case."
            }
            (Resolved, true) => {
                "Sårbarheden, du rapporterede i {reference}, er rettet. Tak fordi du \
                 rapporterede den ansvarligt til {organisation}. Sagen er hermed lukket."
            }
            (Closed, false) => {
                "We have closed case {reference}: {reason}. Thank you for contacting \
                 {organisation}; you will not hear from us again about this case."
            }
            (Closed, true) => {
                "Vi har lukket sag {reference}: {reason}. Tak fordi du kontaktede \
                 {organisation}; du hører ikke mere fra os om denne sag."
            }
        })
    }
}
