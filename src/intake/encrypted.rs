//! Encrypted reports as intake sees them: which part of a message holds
//! ciphertext (PGP/MIME, an inline OpenPGP block, S/MIME enveloped data),
//! and whether that part really is ciphertext.
//!
//! Runs in a parse worker like the rest of intake. It never decrypts:
//! the organisation's keys stay in the service (`keyring`), which opens
//! the part this module points at and hands the plaintext back to a
//! worker to parse.

use super::mime::{Attachment, Mail};
pub use crate::model::crypto::Envelope;
use mail_parser::{Message, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// Where a message's ciphertext is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encrypted {
    pub envelope: Envelope,
    /// The attachment (`Mail::attachments`) that holds it. An inline block
    /// is moved out of the text into an attachment of its own
    /// (`INLINE_NAME`), so the analyst can always download what came.
    pub attachment: usize,
}

/// The name given to an inline OpenPGP block taken out of the text.
pub const INLINE_NAME: &str = "encrypted-message.asc";

const BEGIN: &str = "-----BEGIN PGP MESSAGE-----";
const END: &str = "-----END PGP MESSAGE-----";

/// The control part of PGP/MIME ("Version: 1"): no content.
pub const PGP_CONTROL: &str = "application/pgp-encrypted";

/// Finds the ciphertext of `message` (already walked into `mail`). An
/// inline block is cut out of `mail.text` and counted out of
/// `mail.visible_chars`; what stays is the covering note.
pub fn find(message: &Message<'_>, mail: &mut Mail) -> Option<Encrypted> {
    let root = message.root_part();
    let ctype = root.content_type();
    let (main, sub) = ctype
        .map(|c| {
            (
                c.ctype().to_ascii_lowercase(),
                c.subtype().unwrap_or_default().to_ascii_lowercase(),
            )
        })
        .unwrap_or_default();
    if main == "multipart" && sub == "encrypted" {
        let protocol = ctype
            .and_then(|c| c.attribute("protocol"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if protocol == PGP_CONTROL {
            let attachment = mail
                .attachments
                .iter()
                .position(|a| !a.forwarded && a.declared_type != PGP_CONTROL)?;
            return Some(Encrypted {
                envelope: Envelope::PgpMime,
                attachment,
            });
        }
        return None;
    }
    if main == "application" && (sub == "pkcs7-mime" || sub == "x-pkcs7-mime") {
        let smime_type = ctype
            .and_then(|c| c.attribute("smime-type"))
            .unwrap_or("enveloped-data")
            .to_ascii_lowercase();
        if smime_type == "enveloped-data" || smime_type == "authenveloped-data" {
            let attachment = mail.attachments.iter().position(|a| !a.forwarded)?;
            return Some(Encrypted {
                envelope: Envelope::Smime,
                attachment,
            });
        }
        return None;
    }
    let block = inline_block(message)?;
    let block_chars = block.chars().count();
    mail.visible_chars = mail.visible_chars.saturating_sub(block_chars);
    if let Some(at) = mail.text.find(&block) {
        mail.text.replace_range(at..at + block.len(), "");
        mail.text = mail.text.trim().to_owned();
    }
    mail.attachments.push(Attachment {
        name: Some(INLINE_NAME.into()),
        declared_type: "application/pgp-encrypted".into(),
        data: block.into_bytes(),
        forwarded: false,
    });
    Some(Encrypted {
        envelope: Envelope::PgpInline,
        attachment: mail.attachments.len() - 1,
    })
}

/// The one armored OpenPGP message in the text bodies, whole (armor
/// lines included); none when there is no block or more than one.
fn inline_block(message: &Message<'_>) -> Option<String> {
    let mut found = None;
    for id in &message.text_body {
        let Some(PartType::Text(text)) = message.parts.get(*id as usize).map(|p| &p.body) else {
            continue;
        };
        let mut rest: &str = text;
        while let Some(start) = rest.find(BEGIN) {
            let after = &rest[start..];
            let end = after.find(END)? + END.len();
            if found.is_some() {
                return None;
            }
            found = Some(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

/// Whether `data` really is ciphertext of `envelope`: an OpenPGP message
/// whose first packets are session keys (to a public key or a password),
/// or CMS enveloped data. Armor around plain text, or a literal message,
/// is not.
pub fn is_ciphertext(envelope: Envelope, data: &[u8]) -> bool {
    match envelope {
        Envelope::PgpMime | Envelope::PgpInline => is_openpgp_encrypted(data),
        Envelope::Smime => is_cms_enveloped(data),
    }
}

fn is_openpgp_encrypted(data: &[u8]) -> bool {
    use pgp::composed::Message;
    let armored = data
        .windows(BEGIN.len())
        .take(4096)
        .any(|w| w == BEGIN.as_bytes());
    let parsed = if armored {
        Message::from_armor(data).map(|(m, _)| m)
    } else {
        Message::from_bytes(data)
    };
    parsed.is_ok_and(|m| m.is_encrypted())
}

/// CMS `ContentInfo` whose content type is enveloped data
/// (1.2.840.113549.1.7.3) or authenticated-enveloped data
/// (1.2.840.113549.1.9.16.1.23), read from the DER header alone.
fn is_cms_enveloped(data: &[u8]) -> bool {
    const ENVELOPED: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03,
    ];
    const AUTH_ENVELOPED: &[u8] = &[
        0x06, 0x0B, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
    ];
    let Some((&0x30, rest)) = data.split_first() else {
        return false;
    };
    let Some((&len, rest)) = rest.split_first() else {
        return false;
    };
    let skip = if len & 0x80 == 0 {
        0
    } else {
        usize::from(len & 0x7F)
    };
    let body = rest.get(skip..).unwrap_or_default();
    body.starts_with(ENVELOPED) || body.starts_with(AUTH_ENVELOPED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::mime::{self, MimeLimits};

    #[test]
    fn an_inline_block_becomes_an_attachment_and_the_note_stays() {
        let raw = format!(
            "Subject: report\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n{BEGIN}\r\n\r\nhQEMA1234\r\n=abcd\r\n{END}\r\nThanks\r\n"
        );
        let m = mime::parse(raw.as_bytes(), &MimeLimits::default()).unwrap();
        let e = m.encrypted.unwrap();
        assert_eq!(e.envelope, Envelope::PgpInline);
        assert_eq!(
            m.attachments[e.attachment].name.as_deref(),
            Some(INLINE_NAME)
        );
        assert!(m.text.contains("See below.") && m.text.contains("Thanks"));
        assert!(!m.text.contains("hQEMA"));
        // Armor around nothing encrypted is not ciphertext.
        assert!(!is_ciphertext(
            Envelope::PgpInline,
            &m.attachments[e.attachment].data
        ));
        let two =
            format!("Subject: r\r\n\r\n{BEGIN}\r\n\r\nA\r\n{END}\r\n{BEGIN}\r\n\r\nB\r\n{END}\r\n");
        let m = mime::parse(two.as_bytes(), &MimeLimits::default()).unwrap();
        assert!(m.encrypted.is_none());
    }

    #[test]
    fn cms_enveloped_data_is_read_from_its_header() {
        let mut der = vec![0x30, 0x82, 0x01, 0x00];
        der.extend_from_slice(&[
            0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03,
        ]);
        assert!(is_ciphertext(Envelope::Smime, &der));
        // Signed data (…07 02) is not encryption.
        der[14] = 0x02;
        assert!(!is_ciphertext(Envelope::Smime, &der));
        assert!(!is_ciphertext(Envelope::Smime, b""));
    }
}
