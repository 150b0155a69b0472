//! The encrypted-archive fallback for mail that arrives without TLS.
//!
//! The policies demand TLS 1.2 or newer, or else a password-protected zip or
//! 7z whose password travels by another channel. A plaintext session may
//! therefore deliver only when:
//!
//! 1. the message parses within intake's MIME bounds;
//! 2. it carries something encrypted, and nothing else: a PGP/MIME
//!    `multipart/encrypted` message, a text body that is one inline
//!    `BEGIN PGP MESSAGE` block, S/MIME enveloped data (each checked to
//!    be ciphertext by its packets or DER header, `encrypted`), or zip and
//!    7z attachments (found by content) whose every entry is encrypted —
//!    signature parts (`application/pkcs7-signature`,
//!    `application/pgp-signature`) and the PGP/MIME control part aside.
//!    A clear mail with an encrypted OpenPGP file attached is refused: its
//!    body is not what the sender encrypted;
//! 3. it forwards no message (a forwarded `.eml` is report content);
//! 4. its Subject is at most `MAX_SUBJECT` characters; and
//! 5. everything a reader sees without a password — the text bodies, the
//!    Subject, display names, Comments, Keywords and attachment names — is
//!    a short covering note: at most `MAX_COVERING_NOTE` characters. An
//!    HTML body counts by its source length: the rule measures, it never
//!    renders HTML.
//!
//! Anything else is refused after DATA with 550 5.7.10 and nothing is
//! stored. The check runs in a parse worker (`worker`), like every parse of
//! a stranger's bytes; a worker that dies or runs out of budget on a
//! message refuses it the same way. Pure: no I/O.

use crate::intake::encrypted::{self, Envelope};
use crate::intake::{archive, mime};
use serde::{Deserialize, Serialize};

/// Most a reader may see of a plaintext delivery, in characters. Enough
/// for "the report is attached; I will phone you the password", far too
/// short for a report.
pub const MAX_COVERING_NOTE: usize = 1000;

/// Longest Subject of a plaintext delivery, in characters: a subject line
/// names a report, it does not hold one.
pub const MAX_SUBJECT: usize = 200;

/// Why a plaintext delivery is refused (for logs; the client gets one
/// reply that says what to do instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PlaintextRefusal {
    #[error("unparseable message")]
    Unparseable,
    #[error("nothing encrypted: no encrypted message and no encrypted archive")]
    NoArchive,
    #[error(
        "an attachment is neither the encrypted message nor a zip or 7z whose every entry is encrypted"
    )]
    NotEncrypted,
    #[error("a forwarded message")]
    Forwarded,
    #[error("the visible text is longer than a covering note ({0} characters)")]
    LongText(usize),
    #[error("the subject is longer than {MAX_SUBJECT} characters ({0})")]
    LongSubject(usize),
    #[error("the check could not finish: {0}")]
    NotChecked(String),
}

const SIGNATURES: &[&str] = &[
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
];

/// Checks a message that arrived without TLS.
pub fn check(raw: &[u8], limits: &mime::MimeLimits) -> Result<(), PlaintextRefusal> {
    let mail = mime::parse_with(raw, limits, mime::Html::Measure)
        .map_err(|_| PlaintextRefusal::Unparseable)?;
    if !mail.forwarded_text.is_empty() || mail.attachments.iter().any(|a| a.forwarded) {
        return Err(PlaintextRefusal::Forwarded);
    }
    let mut archives = 0;
    let ciphertext = match mail.encrypted {
        Some(e) => {
            let data = mail
                .attachments
                .get(e.attachment)
                .map(|a| a.data.as_slice());
            if !data.is_some_and(|d| encrypted::is_ciphertext(e.envelope, d)) {
                return Err(PlaintextRefusal::NotEncrypted);
            }
            archives += 1;
            Some(e)
        }
        None => None,
    };
    for (i, a) in mail.attachments.iter().enumerate() {
        if SIGNATURES.contains(&a.declared_type.as_str())
            || ciphertext.is_some_and(|e| {
                e.attachment == i
                    || (e.envelope == Envelope::PgpMime
                        && a.declared_type == encrypted::PGP_CONTROL)
            })
        {
            continue;
        }
        match archive::inspect(&a.data) {
            Some(info) if info.fully_encrypted() => archives += 1,
            _ => return Err(PlaintextRefusal::NotEncrypted),
        }
    }
    if archives == 0 {
        return Err(PlaintextRefusal::NoArchive);
    }
    let subject = mail.subject.chars().count();
    if subject > MAX_SUBJECT {
        return Err(PlaintextRefusal::LongSubject(subject));
    }
    if mail.visible_chars > MAX_COVERING_NOTE {
        return Err(PlaintextRefusal::LongText(mail.visible_chars));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(body: &str, attachments: &[(&str, &[u8])]) -> Vec<u8> {
        let mut m = String::from(
            "From: r@x.example\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
        );
        m.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        ));
        for (ctype, data) in attachments {
            let b64 = base64(data);
            m.push_str(&format!("--b\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename=\"a\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    }

    fn base64(data: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/fixtures/archives/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn check(raw: &[u8]) -> Result<(), PlaintextRefusal> {
        super::check(raw, &mime::MimeLimits::default())
    }

    #[test]
    fn both_sides_of_the_rule() {
        let sz = fixture("report-aes-he.7z");
        let zc = fixture("report-zipcrypto.zip");
        let plain = fixture("plain.zip");
        let note = "The report is attached; I will phone you the password.";
        assert_eq!(
            check(&with(note, &[("application/x-7z-compressed", &sz)])),
            Ok(())
        );
        assert_eq!(
            check(&with(
                note,
                &[("application/octet-stream", &sz), ("application/zip", &zc)]
            )),
            Ok(())
        );
        assert_eq!(
            check(&with(
                note,
                &[
                    ("application/pgp-signature", b"sig"),
                    ("application/zip", &zc)
                ]
            )),
            Ok(())
        );
        assert_eq!(check(&with(note, &[])), Err(PlaintextRefusal::NoArchive));
        assert_eq!(
            check(&with(note, &[("application/zip", &plain)])),
            Err(PlaintextRefusal::NotEncrypted)
        );
        assert_eq!(
            check(&with(
                note,
                &[
                    ("application/zip", &zc),
                    ("image/png", b"\x89PNG\r\n\x1a\n")
                ]
            )),
            Err(PlaintextRefusal::NotEncrypted)
        );
        let report = "Description: ".to_owned() + &"x".repeat(MAX_COVERING_NOTE);
        assert!(matches!(
            check(&with(&report, &[("application/zip", &zc)])),
            Err(PlaintextRefusal::LongText(_))
        ));
        assert_eq!(
            check(b"Subject: hi\r\n\r\nthe whole report in clear\r\n"),
            Err(PlaintextRefusal::NoArchive)
        );
    }
}
