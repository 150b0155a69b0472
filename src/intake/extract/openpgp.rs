//! A message encrypted with a password only (`gpg -c`): held like a
//! password archive, and opened the same way when an analyst enters the
//! password the reporter sent by another channel. One "entry": the
//! message's content, bounded like any archive entry.

use super::{Budget, ExtractError, ExtractedFile, Limit, ReadFailure, sanitise};
use crate::intake::archive::openpgp_message;
use pgp::composed::{Esk, Message};
use pgp::types::{Password, StringToKey};

pub(super) fn extract(
    data: &[u8],
    password: &str,
    depth: usize,
    budget: &mut Budget,
    out: &mut Vec<ExtractedFile>,
) -> Result<(), ExtractError> {
    let message = openpgp_message(data)
        .ok_or_else(|| ExtractError::Damaged("not an OpenPGP message".into()))?;
    let Message::Encrypted { esk, .. } = &message else {
        return Err(ExtractError::Damaged(
            "the OpenPGP message is not encrypted".into(),
        ));
    };
    // Argon2 (RFC 9580) lets the sender choose the memory each guess
    // costs: refused above the cap before any derivation runs.
    for e in esk {
        if let Esk::SymKeyEncryptedSessionKey(s) = e
            && let Some(StringToKey::Argon2 { m_enc, .. }) = s.s2k()
        {
            let kib = 1u64 << u32::from(*m_enc).min(63);
            if kib > budget.limits.max_argon2_memory_kb {
                return Err(ExtractError::Limit {
                    limit: Limit::Argon2MemoryKb,
                    detail: format!("{kib} KiB"),
                });
            }
        }
    }
    let mut message = message
        .decrypt_with_password(&Password::from(password))
        .map_err(|_| ExtractError::WrongPassword)?;
    if message.is_compressed() {
        message = message
            .decompress()
            .map_err(|e| ExtractError::Damaged(format!("decompression failed: {e}")))?;
    }
    let named = message
        .literal_data_header()
        .map(|h| String::from_utf8_lossy(h.file_name()).into_owned())
        .filter(|n| !n.trim().is_empty());
    let content = match budget.read(&mut message, data.len() as u64, "message") {
        Ok(c) => c,
        Err(ReadFailure::Cap(e)) => return Err(e),
        // A wrong password shows as a failed integrity check.
        Err(ReadFailure::Io(_)) => return Err(ExtractError::WrongPassword),
    };
    let name = named.map(|n| sanitise(&n)).unwrap_or_else(|| {
        let head =
            String::from_utf8_lossy(&content[..content.len().min(2048)]).to_ascii_lowercase();
        if head.contains("content-type:") {
            "message.eml".into()
        } else {
            "message.txt".into()
        }
    });
    out.push(ExtractedFile {
        name,
        data: content,
        depth,
    });
    Ok(())
}
