//! HTML to plain text in one forward pass, bounded by construction.
//!
//! Reports sometimes arrive as HTML only. We need their text, never their
//! rendering: tags are dropped, block elements become line breaks, entities
//! are decoded, `script`, `style`, `template` and `title` content is
//! skipped, and a link's target is kept beside its text (affected URLs are
//! often only in the `href`). There is no tree, no nesting, no table layout
//! and no wrapping, so no input can make the work grow faster than its
//! length: every input byte is looked at a bounded number of times, and the
//! output is never longer than `max_output` bytes.
//!
//! A tree-building converter was tried first and failed in both directions
//! a hostile sender can push: a wide table made every row cost the width of
//! its widest cell, and mis-nested tags made the real tree N deep while a
//! tag-count estimate stayed at 1.

/// What an element means for the text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Element {
    /// A paragraph-like block: an empty line around it.
    Paragraph,
    /// A line of its own.
    Line,
    /// A list item: a line starting with "- ".
    Item,
    /// A table cell: a space.
    Cell,
    Link,
    /// Content that is never text.
    Skipped,
    Other,
}

fn classify(name: &str) -> Element {
    let mut lower = [0u8; 10];
    if name.len() > lower.len() {
        return Element::Other;
    }
    for (l, b) in lower.iter_mut().zip(name.bytes()) {
        *l = b.to_ascii_lowercase();
    }
    match &lower[..name.len()] {
        b"p" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"blockquote" | b"pre"
        | b"table" | b"ul" | b"ol" | b"dl" | b"hr" => Element::Paragraph,
        b"br" | b"div" | b"tr" | b"dt" | b"dd" | b"address" | b"article" | b"aside" | b"center"
        | b"fieldset" | b"figcaption" | b"figure" | b"footer" | b"form" | b"header" | b"main"
        | b"nav" | b"section" | b"caption" => Element::Line,
        b"li" => Element::Item,
        b"td" | b"th" => Element::Cell,
        b"a" => Element::Link,
        b"script" | b"style" | b"template" | b"title" | b"noscript" => Element::Skipped,
        _ => Element::Other,
    }
}

/// Longest entity name looked up (`&thetasym;` is the longest common one).
const MAX_ENTITY: usize = 32;

/// Converts `html` to text; at most `max_output` bytes come out.
pub fn to_text(html: &str, max_output: usize) -> String {
    let mut out = Text {
        buf: String::with_capacity(html.len().min(max_output).min(1 << 20)),
        max: max_output,
        pending_space: false,
    };
    let bytes = html.as_bytes();
    let mut i = 0;
    // Once a '<' has no '>' after it, no later one has: the rest is text.
    let mut no_more_tags = false;
    let mut link: Option<Link> = None;
    while i < bytes.len() && !out.full() {
        match bytes[i] {
            b'<' if !no_more_tags && starts_markup(bytes, i) => {
                if bytes[i..].starts_with(b"<!--") {
                    i = find(bytes, i + 4, b"-->").map_or(bytes.len(), |e| e + 3);
                    continue;
                }
                let Some(end) = memchr(b'>', bytes, i + 1) else {
                    no_more_tags = true;
                    continue;
                };
                let tag = &html[i + 1..end];
                i = end + 1;
                let (closing, name) = tag_name(tag);
                match classify(name) {
                    Element::Skipped if !closing => i = skip_element(bytes, i, name),
                    Element::Paragraph => out.line_break(true),
                    Element::Line => out.line_break(false),
                    Element::Item => {
                        out.line_break(false);
                        if !closing {
                            out.push_str("- ");
                        }
                    }
                    Element::Cell => out.space(),
                    Element::Link if closing => {
                        if let Some(l) = link.take() {
                            out.close_link(&l);
                        }
                    }
                    Element::Link => {
                        link = href(tag).map(|target| Link {
                            target: target.to_owned(),
                            text_from: out.buf.len(),
                        });
                    }
                    Element::Skipped | Element::Other => {}
                }
            }
            b'&' => {
                let (decoded, used) = entity(html, i);
                match decoded {
                    Some(c) => out.push_char(c),
                    None => out.push_char('&'),
                }
                i += used;
            }
            b if b.is_ascii_whitespace() => {
                out.pending_space = true;
                i += 1;
            }
            _ => {
                // The next run of plain text, up to markup, an entity or a
                // space, copied at once. A '<' that opens nothing ("a < b")
                // is text.
                let start = i;
                if bytes[i] == b'<' {
                    i += 1;
                }
                while i < bytes.len()
                    && !matches!(bytes[i], b'<' | b'&')
                    && !bytes[i].is_ascii_whitespace()
                {
                    i += 1;
                }
                out.push_str(&html[start..i]);
            }
        }
    }
    if let Some(l) = link.take() {
        out.close_link(&l);
    }
    out.finish()
}

struct Link {
    target: String,
    /// Where the link's text starts in the output.
    text_from: usize,
}

struct Text {
    buf: String,
    max: usize,
    /// Whitespace seen since the last word: one space before the next.
    pending_space: bool,
}

impl Text {
    fn full(&self) -> bool {
        self.buf.len() >= self.max
    }

    fn push_str(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.pending_space && !self.buf.is_empty() && !self.buf.ends_with(['\n', ' ']) {
            self.buf.push(' ');
        }
        self.pending_space = false;
        let room = self.max.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.buf.push_str(&s[..cut]);
        }
    }

    fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        if c == '\u{a0}' {
            self.pending_space = true;
            return;
        }
        self.push_str(c.encode_utf8(&mut tmp));
    }

    fn space(&mut self) {
        self.pending_space = true;
    }

    /// Ends the line; `blank` also leaves an empty line (paragraphs).
    fn line_break(&mut self, blank: bool) {
        self.pending_space = false;
        while self.buf.ends_with(' ') {
            self.buf.pop();
        }
        if self.buf.is_empty() || self.full() {
            return;
        }
        if !self.buf.ends_with('\n') {
            self.buf.push('\n');
        }
        if blank && !self.buf.ends_with("\n\n") {
            self.buf.push('\n');
        }
    }

    /// Keeps the link's target after its text, unless the text shows it.
    fn close_link(&mut self, l: &Link) {
        let shown = self.buf.get(l.text_from..).unwrap_or("");
        let bare = l.target.trim_start_matches("mailto:").trim_end_matches('/');
        if !shown.contains(bare) {
            self.pending_space = true;
            self.push_str(&format!("<{}>", l.target));
        }
    }

    fn finish(mut self) -> String {
        while self.buf.ends_with(['\n', ' ']) {
            self.buf.pop();
        }
        self.buf
    }
}

/// Whether the '<' at `i` opens a tag, a closing tag, a comment or a
/// declaration (rather than being a less-than sign in text).
fn starts_markup(bytes: &[u8], i: usize) -> bool {
    matches!(bytes.get(i + 1), Some(c) if c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'))
}

fn memchr(needle: u8, bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|p| p + from)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `(closing, name)` of the text between '<' and '>'.
fn tag_name(tag: &str) -> (bool, &str) {
    let (closing, rest) = match tag.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, tag),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    (closing, &rest[..end])
}

/// Skips to just after `</name>` (any case), or to the end: a browser
/// also treats an unclosed `<script>` as running to the end.
fn skip_element(bytes: &[u8], from: usize, name: &str) -> usize {
    let mut at = from;
    while let Some(lt) = memchr(b'<', bytes, at) {
        let rest = &bytes[lt + 1..];
        if rest.first() == Some(&b'/')
            && rest.len() > name.len()
            && rest[1..=name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return memchr(b'>', bytes, lt).map_or(bytes.len(), |e| e + 1);
        }
        at = lt + 1;
    }
    bytes.len()
}

/// The `href` of an `a` tag, when it is a web or mail link.
fn href(tag: &str) -> Option<&str> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find("href")?;
    let rest = tag[at + 4..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let value = match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].split(q).next()?,
        _ => rest.split(|c: char| c.is_whitespace()).next()?,
    };
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    let web = ["http://", "https://", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s));
    (web && value.len() <= 2048 && !value.contains(['<', '>'])).then_some(value)
}

/// The character an entity at `i` stands for, and the bytes it used. An
/// `&` that starts no known entity is itself.
fn entity(html: &str, i: usize) -> (Option<char>, usize) {
    let bytes = html.as_bytes();
    let end = bytes[i + 1..]
        .iter()
        .take(MAX_ENTITY + 1)
        .position(|&b| b == b';')
        .map(|p| p + i + 1);
    let Some(end) = end else {
        return (None, 1);
    };
    let token = &html[i..=end];
    if !token[1..token.len() - 1]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'#')
    {
        return (None, 1);
    }
    let mut decoded = String::new();
    mail_parser::decoders::html::add_html_token(&mut decoded, token.as_bytes(), false);
    if decoded == token {
        return (None, 1);
    }
    (decoded.chars().next(), token.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const MIB: usize = 1 << 20;

    #[test]
    fn structure_entities_links_and_skipped_content() {
        let t = to_text(
            "<html><head><title>T</title><style>p{}</style></head><body>\
             <h2>Description</h2><p>A &amp; B &lt;ok&gt; &#x41;&#66; caf&eacute;&nbsp;x</p>\
             <script>alert(1)</script><!-- hidden --><ul><li>one</li><li>two</li></ul>\
             <p>See <a href=\"https://login.example/?next=1\">the page</a> and \
             <a href='https://same.example/'>https://same.example/</a>.</p>\
             <table><tr><td>a</td><td>b</td></tr></table>1 < 2 &bogus; &</body></html>",
            MIB,
        );
        assert!(t.starts_with("Description\n"), "{t:?}");
        assert!(t.contains("A & B <ok> AB café x"), "{t:?}");
        assert!(!t.contains("alert") && !t.contains("hidden") && !t.contains("p{}"));
        assert!(!t.contains('T'), "title skipped: {t:?}");
        assert!(t.contains("- one\n- two"), "{t:?}");
        assert!(
            t.contains("the page <https://login.example/?next=1>"),
            "{t:?}"
        );
        assert_eq!(t.matches("same.example").count(), 1, "{t:?}");
        assert!(t.contains("a b"), "{t:?}");
        assert!(t.ends_with("1 < 2 &bogus; &"), "{t:?}");
    }

    #[test]
    fn output_is_capped() {
        let t = to_text(&"<p>word ".repeat(100_000), 1000);
        assert!(t.len() <= 1000, "{}", t.len());
        let t = to_text(&"é".repeat(1000), 1001);
        assert!(t.len() <= 1001 && t.chars().all(|c| c == 'é'));
    }

    /// The inputs that made the old converter quadratic or huge, at the
    /// largest message size: each is converted in about its own length in
    /// time and memory.
    #[test]
    fn hostile_shapes_cost_their_length() {
        let size = 25 * MIB;
        let long_word = "x".repeat(100_000);
        let wide_table = format!(
            "<table><tr><td>{long_word}</td></tr>{}</table>",
            "<tr><td>y</td></tr>".repeat((size - 100_000) / 19)
        );
        let misnested = "<div></i>".repeat(size / 9);
        let deep = format!(
            "{}x{}",
            "<div>".repeat(size / 11),
            "</div>".repeat(size / 11)
        );
        let unclosed = "<a \"".repeat(size / 4);
        let unclosed_comment = format!("<!--{}", "-".repeat(size));
        let lone_lt = "< ".repeat(size / 2);
        let entities = "&amp".repeat(size / 4);
        for (name, html) in [
            ("wide table", wide_table),
            ("mis-nested", misnested),
            ("deep", deep),
            ("unclosed tags", unclosed),
            ("unclosed comment", unclosed_comment),
            ("lone <", lone_lt),
            ("unterminated entities", entities),
        ] {
            let start = Instant::now();
            let t = to_text(&html, 2 * size);
            assert!(t.len() <= html.len() + 64, "{name}: grew to {}", t.len());
            // Generous for an unoptimised build on a loaded machine; the
            // old converter took minutes or aborted on these.
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name}: {:?}",
                start.elapsed()
            );
        }
    }
}
