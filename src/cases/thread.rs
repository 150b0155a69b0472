//! A case's whole conversation, in order: the report (or the report found
//! inside its archive, after the mail's covering note), every follow-up,
//! every receipt and reply we sent or held, and the analysts' internal
//! notes, marked internal.

use crate::model::case::EventKind;
use crate::model::thread::{EntryKind, MessageKind, ThreadEntry};
use crate::store::cases::{CaseDetail, EvidenceInfo};

/// The entries of `d`'s conversation, oldest first; at the same second the
/// report comes before its covering note, and both before anything else.
pub fn assemble(d: &CaseDetail) -> Vec<ThreadEntry> {
    let report_mail = d.mails.first().map(|m| m.0);
    let mut entries: Vec<ThreadEntry> = Vec::new();
    for m in &d.messages {
        let (kind, from_archive) = match m.kind {
            MessageKind::Report => (EntryKind::Report, false),
            MessageKind::ArchiveReport => (EntryKind::Report, true),
            MessageKind::CoveringNote => (EntryKind::CoveringNote, false),
            MessageKind::FollowUp => (EntryKind::FollowUp, false),
        };
        let attachments = match m.kind {
            MessageKind::Report | MessageKind::CoveringNote => ids(&d.evidence, |e| {
                e.conversation_id.is_none() && e.parent_id.is_none()
            }),
            MessageKind::ArchiveReport => ids(&d.evidence, |e| {
                e.conversation_id.is_none() && e.parent_id.is_some()
            }),
            MessageKind::FollowUp => ids(&d.evidence, |e| {
                e.conversation_id == Some(m.id) && e.parent_id.is_none()
            }),
        };
        entries.push(ThreadEntry {
            kind,
            at: m.at,
            internal: false,
            from: m.sender.clone(),
            to: None,
            subject: Some(m.subject.clone()),
            text: m.text.clone(),
            from_archive,
            tls_version: m.tls_version.clone(),
            from_reporter: (m.kind == MessageKind::FollowUp).then_some(m.from_reporter),
            message: m.message_row.or(report_mail),
            delivery: None,
            delivery_reason: None,
            attachments,
        });
    }
    if !d.messages.iter().any(|m| m.kind != MessageKind::FollowUp)
        && let Some((id, at, sender, tls)) = d.mails.first()
    {
        // Filed before the text was kept, or never parsed: the original
        // mail is still there to read.
        let text = match &d.unparsed_reason {
            Some(reason) => format!(
                "(not parsed: {reason}; the original message is kept: read its headers or download it)"
            ),
            None => "(the text of this mail was not kept apart from its fields; the original message is kept: download it)".to_owned(),
        };
        entries.push(ThreadEntry {
            kind: EntryKind::Report,
            at: *at,
            internal: false,
            from: d.reporter_address.clone().unwrap_or_else(|| sender.clone()),
            to: None,
            subject: Some(d.summary.subject.clone()),
            text,
            from_archive: false,
            tls_version: tls.clone(),
            from_reporter: None,
            message: Some(*id),
            delivery: None,
            delivery_reason: None,
            attachments: ids(&d.evidence, |e| {
                e.conversation_id.is_none() && e.parent_id.is_none()
            }),
        });
    }
    for o in &d.outbound {
        entries.push(ThreadEntry {
            kind: match o.kind.as_str() {
                "receipt" => EntryKind::Receipt,
                "feedback" => EntryKind::StatusUpdate,
                _ => EntryKind::Reply,
            },
            at: o.created_at,
            internal: false,
            from: "us".into(),
            to: Some(o.to.clone()),
            subject: (!o.subject.is_empty()).then(|| o.subject.clone()),
            text: o.text.clone(),
            from_archive: false,
            tls_version: None,
            from_reporter: None,
            message: None,
            delivery: Some(o.state.clone()),
            delivery_reason: o.reason.clone(),
            attachments: Vec::new(),
        });
    }
    for e in d.timeline.iter().filter(|e| e.kind == EventKind::Note) {
        entries.push(ThreadEntry {
            kind: EntryKind::Note,
            at: e.at,
            internal: true,
            from: e.actor.clone(),
            to: None,
            subject: None,
            text: e.detail.clone(),
            from_archive: false,
            tls_version: None,
            from_reporter: None,
            message: None,
            delivery: None,
            delivery_reason: None,
            attachments: Vec::new(),
        });
    }
    let rank = |e: &ThreadEntry| match e.kind {
        EntryKind::Report => 0,
        EntryKind::CoveringNote => 1,
        _ => 2,
    };
    entries.sort_by_key(|e| (e.at, rank(e)));
    entries
}

fn ids(evidence: &[EvidenceInfo], keep: impl Fn(&EvidenceInfo) -> bool) -> Vec<i64> {
    evidence.iter().filter(|e| keep(e)).map(|e| e.id).collect()
}

/// The most of a header section the headers view shows: more than any
/// honest mail's headers (Received: chains run to a few KiB), little enough
/// to render at once. The raw download has the rest.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// A stored mail's header section as it arrived, undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// The lines up to the first empty one, as text (bytes that are not
    /// UTF-8 shown as U+FFFD); shown escaped, never interpreted.
    pub text: String,
    /// Cut at `MAX_HEADER_BYTES`.
    pub truncated: bool,
}

/// The header section of `raw`: everything before the first empty line,
/// read within `MAX_HEADER_BYTES`.
pub fn headers_of(raw: &[u8]) -> Headers {
    let window = &raw[..raw.len().min(MAX_HEADER_BYTES)];
    let end = window
        .windows(2)
        .enumerate()
        .find(|(i, w)| *w == b"\n\n" || (*w == b"\n\r" && window.get(i + 2) == Some(&b'\n')))
        .map(|(i, _)| i + 1);
    let (head, truncated) = match end {
        Some(end) => (&window[..end], false),
        None => (window, raw.len() > MAX_HEADER_BYTES),
    };
    Headers {
        text: String::from_utf8_lossy(head).into_owned(),
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_section_ends_at_the_first_empty_line() {
        let h = headers_of(b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n\r\nmore");
        assert_eq!(h.text, "From: a@b\r\nSubject: x\r\n");
        assert!(!h.truncated);
        let h = headers_of(b"From: a@b\nSubject: x\n\nbody");
        assert_eq!(h.text, "From: a@b\nSubject: x\n");
        let long = [b"X-Pad: ".as_slice(), &vec![b'a'; MAX_HEADER_BYTES + 10]].concat();
        let h = headers_of(&long);
        assert!(h.truncated);
        assert_eq!(h.text.len(), MAX_HEADER_BYTES);
        let h = headers_of(b"From: \xff\r\n\r\n");
        assert_eq!(h.text, "From: \u{fffd}\r\n");
    }
}
