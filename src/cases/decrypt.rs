//! Encrypted reports at intake: a worker found ciphertext
//! (`intake::encrypted`); the service opens it with the organisation's key
//! (`keyring`, never in a worker); a worker parses the plaintext; and the
//! case is filed from what was inside, with the outer message's envelope
//! (sender, Message-ID, threading) and a record of the decryption and of
//! the reporter's signature.
//!
//! Nothing is lost on the way: a message that cannot be decrypted (another
//! key, a locked key, a password, damage) is filed as it came, ciphertext
//! attached, with the reason recorded on the case.

use crate::intake::analysis::Analysis;
use crate::intake::mime::{Attachment, MimeLimits};
use crate::intake::worker::{Failure, WorkerPool};
use crate::keyring::{Keyring, Opened};
use crate::model::crypto::Decryption;
use std::sync::Arc;

/// What a public key block looks like, armored.
const PUBLIC_KEY_BLOCK: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";

/// Opens `outer` if it is encrypted; returns it unchanged otherwise.
pub(super) async fn open(
    keyring: &Arc<Keyring>,
    workers: &WorkerPool,
    org: &str,
    mut outer: Analysis,
    limits: &MimeLimits,
    max_plain: usize,
) -> Result<Analysis, Failure> {
    let Some(found) = outer.mail.encrypted else {
        return Ok(outer);
    };
    let Some(ciphertext) = outer
        .mail
        .attachments
        .get(found.attachment)
        .map(|a| a.data.clone())
    else {
        return Ok(outer);
    };
    let (ring, org_id) = (Arc::clone(keyring), org.to_owned());
    let opened = tokio::task::spawn_blocking(move || {
        ring.open(&org_id, found.envelope, &ciphertext, max_plain)
    })
    .await
    .map_err(|e| Failure::Protocol(format!("decryption task: {e}")))?;
    let (mime, pending, mut record) = match opened {
        Opened::Closed(record) => {
            outer.encryption = Some(record);
            return Ok(outer);
        }
        Opened::Plain {
            mime,
            pending,
            record,
        } => (mime, pending, record),
    };
    let inner = match workers.analyse(&mime, Some(org), limits).await? {
        (Ok(inner), _) => inner,
        (Err(why), _) => {
            record.decryption = Decryption::Failed;
            record.reason = Some(format!("the decrypted message could not be parsed: {why}"));
            outer.encryption = Some(record);
            return Ok(outer);
        }
    };
    let keys: Vec<&[u8]> = inner
        .mail
        .attachments
        .iter()
        .chain(outer.mail.attachments.iter())
        .filter(|a| is_public_key(a))
        .map(|a| a.data.as_slice())
        .collect();
    let (signature, reporter) = pending.check(&mime, &keys);
    drop(mime);
    // An S/MIME signature was checked when the envelope was opened.
    if signature.is_some() {
        record.signature = signature;
    }
    if let Some((key, fingerprint)) = reporter {
        record.reporter_key = Some(key);
        record.reporter_key_fingerprint = Some(fingerprint);
    }
    Ok(merge(outer, inner, record))
}

fn is_public_key(a: &Attachment) -> bool {
    a.declared_type == "application/pgp-keys"
        || a.data
            .windows(PUBLIC_KEY_BLOCK.len())
            .take(1024)
            .any(|w| w == PUBLIC_KEY_BLOCK)
}

/// The case's content from inside, its envelope from outside: sender,
/// Message-ID, threading and the flag come from the mail as delivered; a
/// protected subject (RFC 9788's "..." placeholder outside) from inside.
fn merge(
    outer: Analysis,
    mut inner: Analysis,
    record: crate::model::crypto::Encryption,
) -> Analysis {
    let o = outer.mail;
    let placeholder = o.subject.is_empty() || o.subject == "..." || o.subject == "…";
    if !placeholder || inner.mail.subject.is_empty() {
        inner.mail.subject = o.subject;
    }
    if !o.text.trim().is_empty() {
        // An inline block's covering note, before what it covered.
        inner.mail.text = format!("{}\n\n{}", o.text.trim(), inner.mail.text);
    }
    inner.mail.from_name = o.from_name;
    inner.mail.from_address = o.from_address;
    inner.mail.message_id = o.message_id;
    inner.mail.refers_to = o.refers_to;
    inner.mail.authentication_results = o.authentication_results;
    inner.mail.auto_submitted = o.auto_submitted;
    inner.mail.encrypted = o.encrypted;
    inner.flagged |= outer.flagged;
    for r in outer.references {
        if !inner.references.contains(&r) {
            inner.references.insert(0, r);
        }
    }
    inner.encryption = Some(record);
    inner
}
