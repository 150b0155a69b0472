//! A case's conversation and the provenance of its report fields: the
//! kinds of message a case holds, and where each field's value came from.

use super::report::ReportFields;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a stored message of a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// The text of the mail that opened the case.
    Report,
    /// The mail's own text once an archive turned out to hold the report.
    CoveringNote,
    /// The report text found inside an unlocked archive.
    ArchiveReport,
    /// A later mail of the conversation.
    FollowUp,
}

impl MessageKind {
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Report,
        MessageKind::CoveringNote,
        MessageKind::ArchiveReport,
        MessageKind::FollowUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Report => "report",
            MessageKind::CoveringNote => "covering-note",
            MessageKind::ArchiveReport => "archive-report",
            MessageKind::FollowUp => "follow-up",
        }
    }

    pub fn parse(s: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A report field an analyst may correct, and that intake or an unlock
/// may fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportField {
    Description,
    Steps,
    Impact,
    Mitigation,
    Contact,
    Channel,
}

impl ReportField {
    pub const ALL: [ReportField; 6] = [
        ReportField::Description,
        ReportField::Steps,
        ReportField::Impact,
        ReportField::Mitigation,
        ReportField::Contact,
        ReportField::Channel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportField::Description => "description",
            ReportField::Steps => "steps",
            ReportField::Impact => "impact",
            ReportField::Mitigation => "mitigation",
            ReportField::Contact => "contact",
            ReportField::Channel => "channel",
        }
    }

    pub fn parse(s: &str) -> Option<ReportField> {
        ReportField::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// This field's slot in `r`.
    pub fn slot(self, r: &mut ReportFields) -> &mut Option<String> {
        match self {
            ReportField::Description => &mut r.description,
            ReportField::Steps => &mut r.steps,
            ReportField::Impact => &mut r.impact,
            ReportField::Mitigation => &mut r.mitigation,
            ReportField::Contact => &mut r.contact,
            ReportField::Channel => &mut r.channel,
        }
    }

    /// This field's value in `r`.
    pub fn of(self, r: &ReportFields) -> Option<&str> {
        match self {
            ReportField::Description => r.description.as_deref(),
            ReportField::Steps => r.steps.as_deref(),
            ReportField::Impact => r.impact.as_deref(),
            ReportField::Mitigation => r.mitigation.as_deref(),
            ReportField::Contact => r.contact.as_deref(),
            ReportField::Channel => r.channel.as_deref(),
        }
    }

    /// The names, for refusals and help texts.
    pub fn names() -> String {
        ReportField::ALL.map(ReportField::as_str).join(", ")
    }
}

/// Where a field's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldSource {
    /// Extracted from the mail's own text at intake.
    Mail,
    /// Extracted from a report found inside an unlocked archive.
    Archive,
    /// Written or corrected by an analyst: nothing extracted later
    /// overwrites it.
    Analyst,
}

impl FieldSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldSource::Mail => "mail",
            FieldSource::Archive => "archive",
            FieldSource::Analyst => "analyst",
        }
    }

    pub fn parse(s: &str) -> Option<FieldSource> {
        [
            FieldSource::Mail,
            FieldSource::Archive,
            FieldSource::Analyst,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The source of each field that has a value (stored as a JSON object,
/// field name to source; unknown names in a stored value are dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldSources(BTreeMap<ReportField, FieldSource>);

impl FieldSources {
    pub fn get(&self, f: ReportField) -> Option<FieldSource> {
        self.0.get(&f).copied()
    }

    pub fn set(&mut self, f: ReportField, source: Option<FieldSource>) {
        match source {
            Some(s) => self.0.insert(f, s),
            None => self.0.remove(&f),
        };
    }

    /// `source` for every field `f` gives.
    pub fn all_from(f: &ReportFields, source: FieldSource) -> FieldSources {
        FieldSources(
            ReportField::ALL
                .into_iter()
                .filter(|k| k.of(f).is_some())
                .map(|k| (k, source))
                .collect(),
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(s: &str) -> FieldSources {
        let raw: BTreeMap<String, String> = serde_json::from_str(s).unwrap_or_default();
        FieldSources(
            raw.iter()
                .filter_map(|(k, v)| Some((ReportField::parse(k)?, FieldSource::parse(v)?)))
                .collect(),
        )
    }
}

/// What an entry of a case's conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// The report: the mail's own text, or the report found inside its
    /// archive.
    Report,
    /// The mail's text, when an archive held the report.
    CoveringNote,
    /// A later mail, from the reporter or not.
    FollowUp,
    /// Our automatic receipt.
    Receipt,
    /// A reply an analyst wrote to the reporter.
    Reply,
    /// A status update from the policy's templates.
    StatusUpdate,
    /// An analyst's note: internal, never sent.
    Note,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Report => "report",
            EntryKind::CoveringNote => "covering-note",
            EntryKind::FollowUp => "follow-up",
            EntryKind::Receipt => "receipt",
            EntryKind::Reply => "reply",
            EntryKind::StatusUpdate => "status-update",
            EntryKind::Note => "note",
        }
    }
}

/// A case another case may duplicate, and why (`cases::hints`).
#[derive(Debug, Clone, Serialize)]
pub struct Hint {
    pub reference: String,
    pub reason: String,
}

/// One entry of a case's whole conversation, in order.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadEntry {
    pub kind: EntryKind,
    pub at: i64,
    /// Only analysts see it: an internal note.
    pub internal: bool,
    /// The sender's address, `us`, or the analyst who wrote a note.
    pub from: String,
    /// Where we sent it, for our messages.
    pub to: Option<String>,
    pub subject: Option<String>,
    /// The full text as it arrived or was sent; shown escaped, never
    /// rendered.
    pub text: String,
    /// For a report found inside an archive: it came from there.
    pub from_archive: bool,
    /// For mail that reached us: the TLS version it came over, if any.
    pub tls_version: Option<String>,
    /// For a follow-up: it came from the case's reporter.
    pub from_reporter: Option<bool>,
    /// The stored mail it came from (`/cases/{ref}/messages/{id}/raw`).
    pub message: Option<i64>,
    /// For our messages: `pending`, `sent`, `failed` or `suppressed`,
    /// with the reason when not sent.
    pub delivery: Option<String>,
    pub delivery_reason: Option<String>,
    /// The evidence ids it carried.
    pub attachments: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_and_drop_what_they_do_not_know() {
        let mut s = FieldSources::default();
        s.set(ReportField::Impact, Some(FieldSource::Analyst));
        s.set(ReportField::Description, Some(FieldSource::Archive));
        let json = s.to_json();
        assert_eq!(json, r#"{"description":"archive","impact":"analyst"}"#);
        assert_eq!(FieldSources::from_json(&json), s);
        let odd = FieldSources::from_json(r#"{"impact":"oracle","nope":"mail","steps":"mail"}"#);
        assert_eq!(odd.get(ReportField::Impact), None);
        assert_eq!(odd.get(ReportField::Steps), Some(FieldSource::Mail));
        s.set(ReportField::Impact, None);
        assert_eq!(s.get(ReportField::Impact), None);
    }
}
