//! Turning a stored raw message into what intake needs, with every size
//! bounded: header count, MIME depth, number of parts, decoded bytes.
//!
//! MIME itself is parsed by mail-parser (RFC 2047 words, quoted-printable,
//! base64, charsets, multipart/alternative, nested `message/rfc822` parts).
//! This module walks the result, refuses what exceeds `MimeLimits`, turns
//! HTML-only bodies into text with the one-pass converter in `html`, and
//! copies out owned values, so nothing borrowed from the raw bytes outlives
//! it. It never touches the network, the disk or the database, and it runs
//! inside a parse worker (`worker`), never in the service itself.

use super::html;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// Bounds on one parsed message. Exceeding one quarantines the message
/// with the limit's name as the reason; nothing is dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MimeLimits {
    /// Headers in the whole message, all parts. Real mail has a few dozen
    /// per part; 2,000 allows long Received chains on every part.
    pub max_headers: usize,
    /// MIME parts in the whole message, nested messages included. A report
    /// with a dozen screenshots has perhaps 30.
    pub max_parts: usize,
    /// Nesting of `message/rfc822` inside each other. A forwarded report
    /// inside a forward is 2; mail-parser itself stops decoding at 3.
    pub max_depth: usize,
    /// Decoded bytes over all parts. Base64 shrinks, but compressed text
    /// parts cannot grow past the raw size by much; 64 MiB bounds both.
    pub max_decoded: usize,
    /// HTML bytes of one body converted to text. A report written in HTML
    /// is a few hundred KiB at most; past 4 MiB it is a dump, whose rest
    /// stays readable in the raw message the case keeps.
    pub max_html_bytes: usize,
}

impl Default for MimeLimits {
    fn default() -> Self {
        MimeLimits {
            max_headers: 2000,
            max_parts: 500,
            max_depth: 3,
            max_decoded: 64 * 1024 * 1024,
            max_html_bytes: 4 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("not a parseable message")]
    Unparseable,
    #[error("limit max_headers exceeded ({0} headers)")]
    TooManyHeaders(usize),
    #[error("limit max_parts exceeded ({0} parts)")]
    TooManyParts(usize),
    #[error("limit max_depth exceeded (nesting {0})")]
    TooDeep(usize),
    #[error("limit max_decoded exceeded ({0} bytes)")]
    TooLarge(usize),
}

/// An attachment as intake sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    /// The name the sender gave, if any (untrusted; for display only).
    pub name: Option<String>,
    /// The declared MIME type (untrusted).
    pub declared_type: String,
    /// Carried as a separate blob between worker and service.
    #[serde(skip)]
    pub data: Vec<u8>,
    /// Found inside a forwarded message rather than the top level.
    pub forwarded: bool,
}

/// The parts of a message intake uses, owned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mail {
    pub subject: String,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub message_id: Option<String>,
    /// In-Reply-To and References ids, in order.
    pub refers_to: Vec<String>,
    pub authentication_results: Option<String>,
    /// RFC 3834 `Auto-Submitted`, if present: such mail gets no receipt.
    pub auto_submitted: Option<String>,
    /// The text body; HTML-only mail converted to text by `html::to_text`
    /// (tags dropped, entities decoded; nothing is ever rendered). Empty
    /// when parsed with `Html::Measure`.
    pub text: String,
    /// Characters a reader sees without opening an attachment: the text
    /// bodies, with an HTML body counted by its source length (measured,
    /// never rendered), plus the Subject, display names, Comments, Keywords
    /// and attachment names.
    pub visible_chars: usize,
    /// Text of forwarded messages, each with its own subject line.
    pub forwarded_text: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// Where its ciphertext is, if the message is encrypted
    /// (`encrypted::find`).
    #[serde(default)]
    pub encrypted: Option<super::encrypted::Encrypted>,
}

/// What to do with HTML bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Html {
    /// Convert to text (intake).
    Convert,
    /// Only measure (the plaintext rule decides on sizes, never on
    /// rendered HTML).
    Measure,
}

/// Parses and bounds a raw message, converting HTML bodies to text.
pub fn parse(raw: &[u8], limits: &MimeLimits) -> Result<Mail, MimeError> {
    parse_with(raw, limits, Html::Convert)
}

/// Parses and bounds a raw message.
pub fn parse_with(raw: &[u8], limits: &MimeLimits, html: Html) -> Result<Mail, MimeError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MimeError::Unparseable)?;
    let mut budget = Budget::default();
    check(&message, limits, 1, &mut budget)?;
    let (text, body_chars) = body_text(&message, limits, html);
    let mut mail = Mail {
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        from_name: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .map(str::to_owned),
        from_address: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned),
        message_id: message.message_id().map(str::to_owned),
        authentication_results: message
            .header_raw("Authentication-Results")
            .map(|v| v.trim().to_owned()),
        text,
        ..Mail::default()
    };
    mail.visible_chars = body_chars + header_chars(&message);
    for ids in [message.in_reply_to(), message.references()] {
        if let Some(list) = ids.as_text_list() {
            mail.refers_to.extend(list.iter().map(|s| s.to_string()));
        } else if let Some(one) = ids.as_text() {
            mail.refers_to.push(one.to_owned());
        }
    }
    collect_attachments(&message, false, &mut mail, limits, html);
    mail.visible_chars += mail
        .attachments
        .iter()
        .filter_map(|a| a.name.as_deref())
        .map(|n| n.chars().count())
        .sum::<usize>();
    mail.encrypted = super::encrypted::find(&message, &mut mail);
    Ok(mail)
}

/// Characters of the headers a mail reader shows: Subject, the display
/// names of From, To, Cc and Reply-To, Comments and Keywords.
fn header_chars(message: &Message<'_>) -> usize {
    let names = [
        message.from(),
        message.to(),
        message.cc(),
        message.reply_to(),
    ]
    .into_iter()
    .flatten()
    .flat_map(|a| a.iter())
    .filter_map(|a| a.name())
    .map(|n| n.chars().count())
    .sum::<usize>();
    let text = ["Subject", "Comments", "Keywords"]
        .iter()
        .filter_map(|h| message.header_raw(*h))
        .map(|v| v.trim().chars().count())
        .sum::<usize>();
    names + text
}

#[derive(Default)]
struct Budget {
    headers: usize,
    parts: usize,
    decoded: usize,
}

fn check(
    message: &Message<'_>,
    limits: &MimeLimits,
    depth: usize,
    budget: &mut Budget,
) -> Result<(), MimeError> {
    if depth > limits.max_depth {
        return Err(MimeError::TooDeep(depth));
    }
    for part in &message.parts {
        budget.parts += 1;
        budget.headers += part.headers.len();
        budget.decoded += part.len();
        if budget.parts > limits.max_parts {
            return Err(MimeError::TooManyParts(budget.parts));
        }
        if budget.headers > limits.max_headers {
            return Err(MimeError::TooManyHeaders(budget.headers));
        }
        if budget.decoded > limits.max_decoded {
            return Err(MimeError::TooLarge(budget.decoded));
        }
        if let PartType::Message(inner) = &part.body {
            check(inner, limits, depth + 1, budget)?;
        }
    }
    Ok(())
}

/// The readable text: the text/plain bodies, or the HTML bodies converted
/// to plain text when there is no plain one; and how many characters a
/// reader sees (an HTML body counted by its source length).
fn body_text(message: &Message<'_>, limits: &MimeLimits, mode: Html) -> (String, usize) {
    let mut out = String::new();
    let mut chars = 0;
    for id in &message.text_body {
        let text = match message.parts.get(*id as usize).map(|p| &p.body) {
            Some(PartType::Text(t)) => {
                chars += t.chars().count();
                if mode == Html::Measure {
                    continue;
                }
                t.to_string()
            }
            Some(PartType::Html(h)) => {
                chars += h.chars().count();
                if mode == Html::Measure {
                    continue;
                }
                html_to_text(h, limits.max_html_bytes)
            }
            _ => continue,
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text);
    }
    (out, chars)
}

/// HTML to plain text, never rendered (`html::to_text`): at most
/// `max_bytes` of the source are converted, and a cut is said in the text.
pub fn html_to_text(source: &str, max_bytes: usize) -> String {
    let mut cut = source.len().min(max_bytes);
    while !source.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut < source.len() {
        // Not in the middle of a tag.
        let head = &source[..cut];
        if let Some(lt) = head.rfind('<')
            && head[lt..].find('>').is_none()
        {
            cut = lt;
        }
    }
    let mut text = html::to_text(&source[..cut], max_bytes);
    if cut < source.len() {
        text.push_str(&format!(
            "\n\n[HTML body cut at {cut} of {} bytes (limit max_html_bytes); the raw message holds the rest]",
            source.len()
        ));
    }
    text
}

fn collect_attachments(
    message: &Message<'_>,
    forwarded: bool,
    mail: &mut Mail,
    limits: &MimeLimits,
    html: Html,
) {
    for part in message.attachments() {
        match &part.body {
            PartType::Message(inner) => {
                let subject = inner.subject().unwrap_or_default();
                let (text, _) = body_text(inner, limits, html);
                mail.forwarded_text
                    .push(format!("Subject: {subject}\n{text}"));
                collect_attachments(inner, true, mail, limits, html);
            }
            PartType::Text(_)
            | PartType::Html(_)
            | PartType::Binary(_)
            | PartType::InlineBinary(_) => {
                let declared_type = part
                    .content_type()
                    .map(|c| match c.subtype() {
                        Some(sub) => format!("{}/{}", c.ctype(), sub),
                        None => c.ctype().to_owned(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".into())
                    .to_ascii_lowercase();
                mail.attachments.push(Attachment {
                    name: part.attachment_name().map(str::to_owned),
                    declared_type,
                    data: part.contents().to_vec(),
                    forwarded,
                });
            }
            PartType::Multipart(_) => {}
        }
    }
}

/// The image type found by content (magic bytes), never by name or
/// declared type. SVG is deliberately not an image here: it is script.
pub fn sniff_image(data: &[u8]) -> Option<&'static str> {
    match data {
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        let mut raw = String::from("Subject: x\r\n");
        for i in 0..50 {
            raw.push_str(&format!("X-H{i}: v\r\n"));
        }
        raw.push_str("\r\nbody\r\n");
        let tight = MimeLimits {
            max_headers: 10,
            ..MimeLimits::default()
        };
        assert!(matches!(
            parse(raw.as_bytes(), &tight),
            Err(MimeError::TooManyHeaders(_))
        ));
        assert!(parse(raw.as_bytes(), &MimeLimits::default()).is_ok());
    }

    #[test]
    fn html_becomes_structured_text_and_deep_html_is_safe() {
        let t = html_to_text(
            "<h2>Description</h2><p>A &amp; B</p><script>alert(1)</script><h2>Impact</h2><p>bad</p>",
            1 << 20,
        );
        assert!(t.contains("Description\n"), "{t:?}");
        assert!(t.contains("A & B"), "{t:?}");
        assert!(!t.contains("alert"), "{t:?}");
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert_eq!(html_to_text(&deep, 4 << 20).trim(), "x");
        let cut = html_to_text(&"<p>word</p>".repeat(1000), 100);
        assert!(cut.contains("cut at 99 of 11000 bytes"), "{cut}");
        assert!(!cut.contains('<'), "no half tag: {cut}");
    }

    #[test]
    fn measuring_renders_nothing_and_counts_what_a_reader_sees() {
        let raw = b"From: Long Name <r@x.example>\r\nSubject: twelve chars\r\nComments: c\r\n\
                    Content-Type: text/html\r\n\r\n<p>hello</p>\r\n";
        let m = parse_with(raw, &MimeLimits::default(), Html::Measure).unwrap();
        assert!(m.text.is_empty());
        // "<p>hello</p>" is counted as written: 12 (+ CRLF) + subject 12
        // + name 9 + comments 1.
        assert!(m.visible_chars > 12 + 12 + 9, "{}", m.visible_chars);
        let m = parse(raw, &MimeLimits::default()).unwrap();
        assert_eq!(m.text, "hello");
    }

    #[test]
    fn images_are_sniffed_by_content() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(
            sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'>"),
            None
        );
        assert_eq!(sniff_image(b"MZ\x90\x00"), None);
    }
}
