//! Turning a stored raw message into what intake needs, with every size
//! bounded: header count, MIME depth, number of parts, decoded bytes.
//!
//! MIME itself is parsed by mail-parser (RFC 2047 words, quoted-printable,
//! base64, charsets, multipart/alternative, HTML-to-text for HTML-only mail,
//! nested `message/rfc822` parts). This module walks the result, refuses
//! what exceeds `MimeLimits`, and copies out owned values, so nothing
//! borrowed from the raw bytes outlives it. It never touches the network,
//! the disk or the database.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Bounds on one parsed message. Exceeding one quarantines the message
/// with the limit's name as the reason; nothing is dropped.
#[derive(Debug, Clone)]
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
}

impl Default for MimeLimits {
    fn default() -> Self {
        MimeLimits {
            max_headers: 2000,
            max_parts: 500,
            max_depth: 3,
            max_decoded: 64 * 1024 * 1024,
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
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The name the sender gave, if any (untrusted; for display only).
    pub name: Option<String>,
    /// The declared MIME type (untrusted).
    pub declared_type: String,
    pub data: Vec<u8>,
    /// Found inside a forwarded message rather than the top level.
    pub forwarded: bool,
}

/// The parts of a message intake uses, owned.
#[derive(Debug, Clone, Default)]
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
    /// The text body; HTML-only mail converted to text by mail-parser
    /// (tags dropped, entities decoded; nothing is ever rendered).
    pub text: String,
    /// Text of forwarded messages, each with its own subject line.
    pub forwarded_text: Vec<String>,
    pub attachments: Vec<Attachment>,
}

/// Parses and bounds a raw message.
pub fn parse(raw: &[u8], limits: &MimeLimits) -> Result<Mail, MimeError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MimeError::Unparseable)?;
    let mut budget = Budget::default();
    check(&message, limits, 1, &mut budget)?;
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
        text: body_text(&message),
        ..Mail::default()
    };
    for ids in [message.in_reply_to(), message.references()] {
        if let Some(list) = ids.as_text_list() {
            mail.refers_to.extend(list.iter().map(|s| s.to_string()));
        } else if let Some(one) = ids.as_text() {
            mail.refers_to.push(one.to_owned());
        }
    }
    collect_attachments(&message, false, &mut mail);
    Ok(mail)
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
/// to plain text when there is no plain one.
fn body_text(message: &Message<'_>) -> String {
    let mut out = String::new();
    for id in &message.text_body {
        let text = match message.parts.get(*id as usize).map(|p| &p.body) {
            Some(PartType::Text(t)) => t.to_string(),
            Some(PartType::Html(h)) => html_to_text(h),
            _ => continue,
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text);
    }
    out
}

/// Deepest tag nesting handed to the HTML converter, which recurses over
/// the document: hostile HTML nested thousands deep must not exhaust the
/// stack. Real mail stays far below it.
const MAX_HTML_DEPTH: usize = 200;

/// HTML to plain text, never rendered: html2text for the structure
/// (headings and paragraphs on their own lines, entities decoded, script
/// and style dropped); too-deep documents fall back to mail-parser's flat
/// conversion.
pub fn html_to_text(html: &str) -> String {
    if html_depth(html) > MAX_HTML_DEPTH {
        return mail_parser::decoders::html::html_to_text(html);
    }
    html2text::config::plain_no_decorate()
        .link_footnotes(true)
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_else(|_| mail_parser::decoders::html::html_to_text(html))
}

/// An upper estimate of tag nesting: opening tags minus closing tags, at
/// the deepest point. Void elements over-count, which only errs safe.
fn html_depth(html: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let bytes = html.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'<' {
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() => {
                depth += 1;
                max = max.max(depth);
            }
            _ => {}
        }
    }
    max
}

fn collect_attachments(message: &Message<'_>, forwarded: bool, mail: &mut Mail) {
    for part in message.attachments() {
        match &part.body {
            PartType::Message(inner) => {
                let subject = inner.subject().unwrap_or_default();
                mail.forwarded_text
                    .push(format!("Subject: {subject}\n{}", body_text(inner)));
                collect_attachments(inner, true, mail);
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
        );
        assert!(t.contains("Description\n"), "{t:?}");
        assert!(t.contains("A & B"), "{t:?}");
        assert!(!t.contains("alert"), "{t:?}");
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert_eq!(html_to_text(&deep).trim(), "x");
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
