//! OpenPGP with rPGP (`pgp`): an organisation's secret key, decrypting a
//! report to it, checking a reporter's signature with a key that came
//! with the report, and encrypting our replies to that key.

use super::{Opened, closed};
use crate::model::crypto::{Decryption, Envelope, Signature, SignatureStatus};
use pgp::composed::{
    ArmorOptions, Deserializable, Esk, Message, MessageBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet;
use pgp::types::{KeyDetails, KeyId, Password, SecretParams};
use std::io::Read as _;
use std::sync::RwLock;
use zeroize::Zeroizing;

/// A public key found with a report is at most this large (armored): a
/// real key with many signatures is a few tens of KiB.
const MAX_PUBLIC_KEY: usize = 256 * 1024;
/// Public keys read from one report: a reporter sends one; a mail with
/// hundreds is a way to make the service verify hundreds.
const MAX_PUBLIC_KEYS: usize = 8;

pub(super) struct OrgKey {
    secret: SignedSecretKey,
    pub(super) public_armored: String,
    pub(super) fingerprint: String,
    /// Key ids of the primary key and every subkey: a recipient that
    /// names one of them is us.
    key_ids: Vec<KeyId>,
    protected: bool,
    /// Set by `unlock`; memory only.
    passphrase: RwLock<Option<Zeroizing<Vec<u8>>>>,
}

impl OrgKey {
    pub(super) fn from_bytes(bytes: &[u8]) -> Result<OrgKey, String> {
        let (secret, _) = SignedSecretKey::from_reader_single(bytes)
            .map_err(|e| format!("not an OpenPGP secret key: {e}"))?;
        secret
            .verify_bindings()
            .map_err(|e| format!("the key's self-signatures do not verify: {e}"))?;
        let public = secret.to_public_key();
        let public_armored = public
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| e.to_string())?;
        let mut key_ids = vec![secret.primary_key.legacy_key_id()];
        key_ids.extend(secret.secret_subkeys.iter().map(|s| s.key.legacy_key_id()));
        let protected = matches!(
            secret.primary_key.secret_params(),
            SecretParams::Encrypted(_)
        ) || secret
            .secret_subkeys
            .iter()
            .any(|s| matches!(s.key.secret_params(), SecretParams::Encrypted(_)));
        Ok(OrgKey {
            fingerprint: format!("{:X}", secret.primary_key.fingerprint()),
            secret,
            public_armored,
            key_ids,
            protected,
            passphrase: RwLock::new(None),
        })
    }

    pub(super) fn is_locked(&self) -> bool {
        self.protected && self.password().is_none()
    }

    /// The passphrase to use, if the key can be used now.
    fn password(&self) -> Option<Password> {
        if !self.protected {
            return Some(Password::empty());
        }
        let held = self.passphrase.read().ok()?;
        held.as_ref().map(|p| Password::from(p.as_slice()))
    }

    /// Keeps `passphrase` if it unlocks every secret part of the key.
    pub(super) fn unlock(&self, passphrase: Zeroizing<String>) -> bool {
        let pw = Password::from(passphrase.as_str());
        let primary = self.secret.primary_key.unlock(&pw, |_, _| Ok(()));
        let subkeys = self
            .secret
            .secret_subkeys
            .iter()
            .all(|s| matches!(s.key.unlock(&pw, |_, _| Ok(())), Ok(Ok(()))));
        if !(matches!(primary, Ok(Ok(()))) && subkeys) {
            return false;
        }
        match self.passphrase.write() {
            Ok(mut held) => {
                *held = Some(Zeroizing::new(passphrase.as_bytes().to_vec()));
                true
            }
            Err(_) => false,
        }
    }
}

/// Signatures read from a decrypted message, waiting for the keys that
/// came with it (found by a worker in the plaintext).
pub struct Pending {
    signatures: Vec<packet::Signature>,
    /// Where the signed data starts in the MIME handed to the worker (an
    /// inline message is wrapped in a header of ours).
    offset: usize,
}

impl Pending {
    pub fn none() -> Pending {
        Pending {
            signatures: Vec::new(),
            offset: 0,
        }
    }

    /// Checks the signatures against `keys` (public key blocks that came
    /// with the message), and picks the reporter's key: the signer's, or
    /// else the only key given. Returns the first signature's verdict,
    /// and the key with its fingerprint.
    pub fn check(
        &self,
        mime: &[u8],
        keys: &[&[u8]],
    ) -> (Option<Signature>, Option<(String, String)>) {
        let keys: Vec<SignedPublicKey> = keys
            .iter()
            .filter(|k| k.len() <= MAX_PUBLIC_KEY)
            .take(MAX_PUBLIC_KEYS)
            .filter_map(|k| SignedPublicKey::from_reader_single(*k).ok())
            .map(|(k, _)| k)
            .filter(|k| k.verify_bindings().is_ok())
            .collect();
        let data = mime.get(self.offset..).unwrap_or_default();
        let mut verdict = None;
        let mut signer_key = None;
        if let Some(sig) = self.signatures.first() {
            let by = keys.iter().find(|k| issued_by(sig, k));
            verdict = Some(match by {
                Some(k) => {
                    signer_key = Some(k);
                    let ok = std::iter::once(sig.verify(&k.primary_key, data).is_ok())
                        .chain(
                            k.public_subkeys
                                .iter()
                                .map(|s| sig.verify(&s.key, data).is_ok()),
                        )
                        .any(|ok| ok);
                    Signature {
                        signer: format!("{:X}", k.primary_key.fingerprint()),
                        status: if ok {
                            SignatureStatus::Valid
                        } else {
                            SignatureStatus::Invalid
                        },
                    }
                }
                None => Signature {
                    signer: sig
                        .issuer_fingerprint()
                        .first()
                        .map(|f| format!("{f:X}"))
                        .or_else(|| {
                            sig.issuer_key_id()
                                .first()
                                .map(|id| id.to_string().to_uppercase())
                        })
                        .unwrap_or_else(|| "an unnamed key".into()),
                    status: SignatureStatus::UnknownKey,
                },
            });
        }
        let reporter = signer_key.or(if keys.len() == 1 { keys.first() } else { None });
        let reporter = reporter.and_then(|k| {
            let armored = k.to_armored_string(ArmorOptions::default()).ok()?;
            Some((armored, format!("{:X}", k.primary_key.fingerprint())))
        });
        (verdict, reporter)
    }
}

fn issued_by(sig: &packet::Signature, key: &SignedPublicKey) -> bool {
    let fingerprints = std::iter::once(key.primary_key.fingerprint())
        .chain(key.public_subkeys.iter().map(|s| s.key.fingerprint()));
    let ids: Vec<KeyId> = std::iter::once(key.primary_key.legacy_key_id())
        .chain(key.public_subkeys.iter().map(|s| s.key.legacy_key_id()))
        .collect();
    let named_fp = sig.issuer_fingerprint();
    let named_id = sig.issuer_key_id();
    fingerprints
        .into_iter()
        .any(|f| named_fp.iter().any(|n| **n == f))
        || ids.iter().any(|id| named_id.contains(&id))
}

/// Opens an OpenPGP message with whichever of `keys` (the current key,
/// then retired ones) it was encrypted to.
pub(super) fn open(
    keys: &[OrgKey],
    envelope: Envelope,
    ciphertext: &[u8],
    max_plain: usize,
) -> Opened {
    let fail = |reason: String| Opened::Closed(closed(envelope, Decryption::Failed, Some(reason)));
    let armored = ciphertext
        .windows(10)
        .take(4096)
        .any(|w| w == b"-----BEGIN");
    let parsed = if armored {
        Message::from_armor(ciphertext).map(|(m, _)| m)
    } else {
        Message::from_bytes(ciphertext)
    };
    let message = match parsed {
        Ok(m) => m,
        Err(e) => return fail(format!("not an OpenPGP message: {e}")),
    };
    let Message::Encrypted { esk, .. } = &message else {
        return fail("the OpenPGP message is not encrypted".into());
    };
    let mut ids = Vec::new();
    let mut password = false;
    for e in esk {
        match e {
            Esk::PublicKeyEncryptedSessionKey(p) => {
                if let Ok(id) = p.id() {
                    ids.push(*id);
                }
            }
            Esk::SymKeyEncryptedSessionKey(_) => password = true,
        }
    }
    let mut record = closed(envelope, Decryption::OtherKey, None);
    record.key_ids = ids.iter().map(|id| id.to_string().to_uppercase()).collect();
    if keys.is_empty() {
        record.decryption = Decryption::NoKey;
        return Opened::Closed(record);
    }
    let wildcard = ids.iter().any(|id| id.is_wildcard());
    let key = keys
        .iter()
        .find(|k| ids.iter().any(|id| k.key_ids.contains(id)))
        .or(if wildcard { keys.first() } else { None });
    let Some(key) = key else {
        if ids.is_empty() && password {
            record.decryption = Decryption::Password;
        }
        return Opened::Closed(record);
    };
    let Some(pw) = key.password() else {
        record.decryption = Decryption::AwaitingKey;
        return Opened::Closed(record);
    };
    let mut message = match message.decrypt(&pw, &key.secret) {
        Ok(m) => m,
        Err(e) => return fail(format!("decryption failed: {e}")),
    };
    if message.is_compressed() {
        message = match message.decompress() {
            Ok(m) => m,
            Err(e) => return fail(format!("decompression failed: {e}")),
        };
    }
    let wrapper: &[u8] = match envelope {
        Envelope::PgpInline => b"Content-Type: text/plain; charset=utf-8\r\n\r\n",
        _ => b"",
    };
    let mut mime = Zeroizing::new(wrapper.to_vec());
    let read = (&mut message)
        .take(max_plain as u64 + 1)
        .read_to_end(&mut mime);
    if let Err(e) = read {
        return fail(format!("the plaintext could not be read: {e}"));
    }
    if mime.len() - wrapper.len() > max_plain {
        return fail(format!(
            "the plaintext is over the message size limit ({max_plain} bytes)"
        ));
    }
    let signatures = match &message {
        Message::Signed { reader, .. } => (0..reader.num_signatures())
            .filter_map(|i| reader.signature(i).cloned())
            .collect(),
        _ => Vec::new(),
    };
    record.decryption = Decryption::Decrypted;
    Opened::Plain {
        mime,
        pending: Pending {
            signatures,
            offset: wrapper.len(),
        },
        record,
    }
}

/// The fingerprint of a public key block, if it is one.
pub fn fingerprint_of(key: &[u8]) -> Option<String> {
    let (k, _) = SignedPublicKey::from_reader_single(key).ok()?;
    Some(format!("{:X}", k.primary_key.fingerprint()))
}

/// A reply encrypted to a reporter's key: the armored OpenPGP message
/// for the second part of a PGP/MIME mail (RFC 3156).
pub struct Reply {
    pub armored: String,
}

/// Encrypts `mime` (a MIME entity: headers and body) to `reporter_key`'s
/// encryption subkey (or its primary key, if that encrypts).
pub fn encrypt_reply(reporter_key: &str, mime: &[u8]) -> Result<Reply, String> {
    let (key, _) = SignedPublicKey::from_reader_single(reporter_key.as_bytes())
        .map_err(|e| format!("the reporter's key cannot be read: {e}"))?;
    key.verify_bindings()
        .map_err(|e| format!("the reporter's key does not verify: {e}"))?;
    let mut rng = rand::thread_rng();
    let mut builder = MessageBuilder::from_bytes("", mime.to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    match key
        .public_subkeys
        .iter()
        .find(|s| s.key.algorithm().can_encrypt())
    {
        Some(sub) => builder.encrypt_to_key(&mut rng, &sub.key),
        None if key.primary_key.algorithm().can_encrypt() => {
            builder.encrypt_to_key(&mut rng, &key.primary_key)
        }
        None => return Err("the reporter's key has no encryption key".into()),
    }
    .map_err(|e| e.to_string())?;
    let armored = builder
        .to_armored_string(&mut rng, ArmorOptions::default())
        .map_err(|e| e.to_string())?;
    Ok(Reply { armored })
}
