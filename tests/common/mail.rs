//! One way to write the mail the tests send: headers, then a text or HTML
//! body or parts, with CRLF line ends, attachments in base64 as mail
//! clients write them. Header values go out as given, hostile ones too.
#![allow(dead_code)]

use super::b64;

/// A message under construction.
pub struct Mail {
    headers: Vec<(String, String)>,
    body: Body,
    /// The multipart boundary (another one when a forwarded message inside
    /// uses this one).
    boundary: String,
}

enum Body {
    Text(String),
    Html(String),
    /// HTML sent base64-encoded (a bomb that must be decoded to be seen).
    HtmlBase64(String),
    Parts(Vec<Part>),
}

/// One part of a `multipart/mixed` message.
pub enum Part {
    Text(String),
    Html(String),
    /// A file, base64-encoded, as `application/octet-stream`.
    Attachment(String, Vec<u8>),
    /// A file sent as text under its own content type, not encoded.
    TextAttachment {
        name: String,
        content_type: String,
        text: String,
    },
    /// A whole message inside (a forward).
    Message(Vec<u8>),
}

impl Mail {
    pub fn new(from: &str, to: &str, subject: &str) -> Mail {
        Mail {
            headers: vec![
                ("From".into(), from.into()),
                ("To".into(), to.into()),
                ("Subject".into(), subject.into()),
            ],
            body: Body::Text(String::new()),
            boundary: "b".into(),
        }
    }

    pub fn boundary(mut self, boundary: &str) -> Mail {
        self.boundary = boundary.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Mail {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Message-ID: <id>`.
    pub fn message_id(self, id: &str) -> Mail {
        self.header("Message-ID", &format!("<{id}>"))
    }

    pub fn text(mut self, text: &str) -> Mail {
        self.body = Body::Text(text.replace("\r\n", "\n").replace('\n', "\r\n"));
        self
    }

    pub fn html(mut self, html: &str) -> Mail {
        self.body = Body::Html(html.into());
        self
    }

    pub fn html_base64(mut self, html: &str) -> Mail {
        self.body = Body::HtmlBase64(html.into());
        self
    }

    pub fn part(mut self, part: Part) -> Mail {
        match &mut self.body {
            Body::Parts(parts) => parts.push(part),
            _ => self.body = Body::Parts(vec![part]),
        }
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut m = String::new();
        for (name, value) in &self.headers {
            m.push_str(&format!("{name}: {value}\r\n"));
        }
        match &self.body {
            Body::Text(text) => m.push_str(&format!("\r\n{text}\r\n")),
            Body::Html(html) => m.push_str(&format!(
                "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
            )),
            Body::HtmlBase64(html) => m.push_str(&format!(
                "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                b64(html.as_bytes())
            )),
            Body::Parts(parts) => {
                let b = &self.boundary;
                m.push_str(&format!(
                    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n"
                ));
                for part in parts {
                    m.push_str(&format!("--{b}\r\n"));
                    m.push_str(&part.render());
                }
                m.push_str(&format!("--{b}--\r\n"));
            }
        }
        m.into_bytes()
    }
}

impl Part {
    fn render(&self) -> String {
        match self {
            Part::Text(text) => format!("Content-Type: text/plain\r\n\r\n{text}\r\n"),
            Part::Html(html) => format!("Content-Type: text/html\r\n\r\n{html}\r\n"),
            Part::Attachment(name, data) => format!(
                "Content-Type: application/octet-stream; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                b64(data)
            ),
            Part::TextAttachment {
                name,
                content_type,
                text,
            } => format!(
                "Content-Type: {content_type}; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{text}\r\n"
            ),
            Part::Message(inner) => format!(
                "Content-Type: message/rfc822\r\n\r\n{}\r\n",
                String::from_utf8_lossy(inner)
            ),
        }
    }
}
