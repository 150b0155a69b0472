//! The organisations' decryption keys, held by the service and nowhere
//! else: an OpenPGP secret key per policy (`[openpgp]`), and an S/MIME
//! certificate and key (`[smime]`).
//!
//! Key files are checked like the master key: readable by the service's
//! user only (no group or other bits), or the service does not start. A
//! passphrase-protected OpenPGP key loads locked: messages encrypted to
//! it wait (`Decryption::AwaitingKey`) until an admin unlocks it for the
//! running service (`unlock`). The passphrase then stays in this process's
//! memory only, zeroized when dropped, and is never written anywhere.
//!
//! Decryption happens here, in the service, never in a parse worker: the
//! worker points at the ciphertext (`intake::encrypted`), `open` turns it
//! into plaintext bounded by the message size limit, and a worker parses
//! that. A parser bug in a worker can therefore never reach a key.

mod openpgp;
mod smime;

pub use openpgp::{Pending, Reply, encrypt_reply, fingerprint_of};

use crate::model::crypto::{Decryption, Encryption, Envelope};
use crate::policy::PolicySet;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{path}: mode {mode:o} lets others read a secret key; run chmod 600 {path}",
        path = .path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path}: {reason}", path = .path.display())]
    File { path: PathBuf, reason: String },
    #[error("organisation {0:?} has no OpenPGP key")]
    NoKey(String),
    #[error("the passphrase does not unlock {0:?}'s OpenPGP key")]
    Passphrase(String),
}

/// What `open` made of an encrypted message.
pub enum Opened {
    /// The plaintext, as a MIME entity for a worker to parse, and the
    /// signatures it carried, to check against keys found inside
    /// (`Pending::check`).
    Plain {
        mime: Zeroizing<Vec<u8>>,
        pending: Pending,
        record: Encryption,
    },
    /// Not decrypted, and why.
    Closed(Encryption),
}

/// Every organisation's keys.
#[derive(Default)]
pub struct Keyring {
    /// Per organisation: the current key first, then the retired ones
    /// kept for decryption.
    openpgp: HashMap<String, Vec<openpgp::OrgKey>>,
    smime: HashMap<String, smime::OrgCert>,
}

impl Keyring {
    /// Loads the key files every policy names.
    pub fn load(policies: &PolicySet) -> Result<Keyring, KeyError> {
        let mut ring = Keyring::default();
        for p in policies.iter() {
            if let Some(path) = &p.keys.openpgp_secret_key {
                let mut keys = Vec::new();
                for path in std::iter::once(path).chain(&p.keys.openpgp_previous) {
                    let bytes = read_secret(path)?;
                    keys.push(openpgp::OrgKey::from_bytes(&bytes).map_err(|reason| {
                        KeyError::File {
                            path: path.clone(),
                            reason,
                        }
                    })?);
                }
                ring.openpgp.insert(p.id.clone(), keys);
            }
            if let (Some(cert), Some(key)) = (&p.keys.smime_certificate, &p.keys.smime_key) {
                let key_bytes = read_secret(key)?;
                let cert_bytes = std::fs::read(cert).map_err(|e| KeyError::File {
                    path: cert.clone(),
                    reason: e.to_string(),
                })?;
                let org = smime::OrgCert::from_pem(&cert_bytes, &key_bytes).map_err(|reason| {
                    KeyError::File {
                        path: key.clone(),
                        reason,
                    }
                })?;
                ring.smime.insert(p.id.clone(), org);
            }
        }
        Ok(ring)
    }

    /// The organisation's public OpenPGP key, armored, for publishing.
    pub fn public_key(&self, org: &str) -> Option<&str> {
        self.current(org).map(|k| k.public_armored.as_str())
    }

    /// The organisation's OpenPGP key: its fingerprint, and whether it
    /// waits for a passphrase.
    pub fn openpgp_status(&self, org: &str) -> Option<(String, bool)> {
        self.current(org)
            .map(|k| (k.fingerprint.clone(), k.is_locked()))
    }

    fn current(&self, org: &str) -> Option<&openpgp::OrgKey> {
        self.openpgp.get(org).and_then(|keys| keys.first())
    }

    /// Unlocks `org`'s OpenPGP keys (the current one, and retired ones
    /// that share its passphrase) for this process, after checking the
    /// passphrase against each.
    pub fn unlock(&self, org: &str, passphrase: Zeroizing<String>) -> Result<(), KeyError> {
        let keys = self
            .openpgp
            .get(org)
            .ok_or_else(|| KeyError::NoKey(org.to_owned()))?;
        let mut any = false;
        for key in keys.iter().filter(|k| k.is_locked()) {
            any |= key.unlock(passphrase.clone());
        }
        if any {
            Ok(())
        } else {
            Err(KeyError::Passphrase(org.to_owned()))
        }
    }

    /// Opens `ciphertext` for `org`: at most `max_plain` bytes of
    /// plaintext. CPU-bound (public-key operations): call it off the
    /// async runtime.
    pub fn open(
        &self,
        org: &str,
        envelope: Envelope,
        ciphertext: &[u8],
        max_plain: usize,
    ) -> Opened {
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match envelope {
            Envelope::PgpMime | Envelope::PgpInline => openpgp::open(
                self.openpgp.get(org).map_or(&[][..], Vec::as_slice),
                envelope,
                ciphertext,
                max_plain,
            ),
            Envelope::Smime => smime::open(self.smime.get(org), ciphertext, max_plain),
        }));
        opened.unwrap_or_else(|_| {
            Opened::Closed(closed(
                envelope,
                Decryption::Failed,
                Some("the decoder failed".into()),
            ))
        })
    }
}

/// What an S/MIME signed message's signature proves (no key involved):
/// the signed content and the verdict, or None when it is not one.
pub fn smime_signature(mime: &[u8]) -> Option<(Vec<u8>, crate::model::crypto::Signature)> {
    std::panic::catch_unwind(|| smime::signed(mime))
        .ok()
        .flatten()
        .map(|(content, s)| (content.to_vec(), s))
}

/// A record of a message that was not decrypted.
fn closed(envelope: Envelope, decryption: Decryption, reason: Option<String>) -> Encryption {
    Encryption {
        envelope,
        decryption,
        key_ids: Vec::new(),
        signature: None,
        reason,
        reporter_key: None,
        reporter_key_fingerprint: None,
    }
}

/// A secret file's bytes, refused when others may read it.
fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let file_err = |e: std::io::Error| KeyError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(file_err)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(Zeroizing::new(std::fs::read(path).map_err(file_err)?))
}
