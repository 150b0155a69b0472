//! What analysts type, validated once: each type holds its one limit, so
//! the CLI, the API and the web interface accept and refuse the same text
//! with the same message.

use super::CaseError;

/// Longest internal note or reply: 20,000 characters, a long e-mail, not
/// a document (attachments are the place for those). Counted in
/// characters, so a Danish or Greek note gets the same room as an English
/// one.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Longest reason given with a transition: 500 characters, a sentence or
/// two for the timeline.
pub const MAX_REASON_CHARS: usize = 500;

fn bounded(text: &str, max: usize, what: &'static str) -> Result<String, CaseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CaseError::Empty(what));
    }
    let chars = t.chars().count();
    if chars > max {
        return Err(CaseError::TooLong { what, max, chars });
    }
    Ok(t.to_owned())
}

/// An internal note: 1 to `MAX_TEXT_CHARS` characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteText(String);

impl NoteText {
    pub fn new(text: &str) -> Result<NoteText, CaseError> {
        bounded(text, MAX_TEXT_CHARS, "note").map(NoteText)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A report field's value written by an analyst: 1 to `MAX_TEXT_CHARS`
/// characters once trimmed (an empty value clears the field instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldText(String);

impl FieldText {
    pub fn new(text: &str) -> Result<FieldText, CaseError> {
        bounded(text, MAX_TEXT_CHARS, "field value").map(FieldText)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reply to the reporter: 1 to `MAX_TEXT_CHARS` characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyText(String);

impl ReplyText {
    pub fn new(text: &str) -> Result<ReplyText, CaseError> {
        bounded(text, MAX_TEXT_CHARS, "reply").map(ReplyText)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a case moves: empty means none given; at most `MAX_REASON_CHARS`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason(Option<String>);

impl Reason {
    pub fn new(text: Option<&str>) -> Result<Reason, CaseError> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(Reason(None)),
            Some(t) => bounded(t, MAX_REASON_CHARS, "reason").map(|r| Reason(Some(r))),
        }
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_limit_in_characters() {
        assert_eq!(NoteText::new("  hi \n").unwrap().as_str(), "hi");
        assert!(matches!(
            NoteText::new(" \n"),
            Err(CaseError::Empty("note"))
        ));
        let at_limit = "ø".repeat(MAX_TEXT_CHARS);
        assert!(NoteText::new(&at_limit).is_ok(), "counted in characters");
        let over = "a".repeat(MAX_TEXT_CHARS + 1);
        let e = NoteText::new(&over).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the note is longer than 20000 characters (20001)"
        );
        assert!(ReplyText::new(&over).is_err());
        assert_eq!(Reason::new(Some("  ")).unwrap(), Reason(None));
        assert!(Reason::new(Some(&"r".repeat(501))).is_err());
    }
}

/// A point in time a door was given: a date (`2026-11-30`, its first
/// second in UTC) or an RFC 3339 time; as Unix seconds.
pub fn instant(s: &str) -> Result<i64, CaseError> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_second())
        .ok_or_else(|| CaseError::BadTime(s.chars().filter(|c| !c.is_control()).take(40).collect()))
}

#[cfg(test)]
mod instant_tests {
    use super::instant;

    #[test]
    fn dates_and_times() {
        assert_eq!(instant("2026-11-30").unwrap(), 1_795_996_800);
        assert_eq!(instant("2026-11-30T01:00:00Z").unwrap(), 1_796_000_400);
        assert_eq!(instant("2026-11-30T02:00:00+01:00").unwrap(), 1_796_000_400);
        assert!(instant("30/11/2026").is_err());
        assert!(instant("").is_err());
    }
}
