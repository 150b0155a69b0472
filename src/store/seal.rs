//! Evidence encrypted at rest: AES-256-GCM under keys derived from one
//! master key.
//!
//! Every stored piece of report content — raw messages, attachments,
//! extracted files, case text fields, notes, receipts — is sealed with a
//! fresh random 96-bit nonce and bound to what it is (`Label`): its purpose
//! and the identity of its row and column, so a value cannot be moved to
//! another row, column or purpose without failing to open. A dump of the
//! database alone reveals no report content.
//!
//! The sealed format names itself: `DMX2`, the purpose, the id of the key
//! that sealed it, the nonce, the ciphertext (text columns hold it as
//! `sealed:v2:` and base64). Keys are derived with HKDF-SHA-256, one per
//! purpose — sealing, the audit chain, each `purpose_key` — so no key is
//! ever used for two jobs; the key id is derived the same way and names the
//! master key without revealing it, so a store sealed under several keys
//! (rotation) can tell them apart. Values written by older releases
//! (`DMX1`, `sealed:v1:`: the master key used directly) stay readable.
//! Anything else is refused: `open` never passes unsealed bytes through.
//!
//! The master key comes from `DISCLOSURE_MX_MASTER_KEY` (64 hex digits) or
//! the key file (mode 0600; anything looser is refused). A key file is
//! generated only for a store that holds nothing yet. AES-GCM and HKDF are
//! ring's (already linked for TLS) rather than a second implementation.

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub use super::keyfile::{
    WRAP_MIN_PASSPHRASE, read_master_key, retired_key_files, retired_key_path, unwrap, wrap,
    wrapped_key_id, write_master_key,
};

/// Sealed binary values of this release start with this.
pub const MAGIC: &[u8] = b"DMX2";
/// Sealed binary values of older releases (the master key used directly).
pub const MAGIC_V1: &[u8] = b"DMX1";
/// Sealed text values start with this, followed by base64.
pub const TEXT_PREFIX: &str = "sealed:v2:";
/// Sealed text values of older releases.
pub const TEXT_PREFIX_V1: &str = "sealed:v1:";
/// Bytes of a key id.
const KEY_ID_LEN: usize = 8;
/// The HKDF salt: fixed, public, ours.
const HKDF_SALT: &[u8] = b"disclosure-mx";
/// The environment variable that may carry the key instead of a file.
pub const KEY_ENV: &str = "DISCLOSURE_MX_MASTER_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("master key file {path} is readable by others (mode {mode:o}); chmod 600 it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("master key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("{KEY_ENV}: expected 64 hex digits")]
    KeyEnv,
    #[error(
        "master key missing ({path}) but the store already holds data sealed with a key; restore the key from backup"
    )]
    KeyMissing { path: PathBuf },
    #[error("the master key does not open this store's data (wrong key?)")]
    WrongKey,
    #[error("{0}: sealed under key {1}, not the master key in use ({2})")]
    OtherKey(String, String, String),
    #[error("{0}: not sealed (refused: the store holds report content only sealed)")]
    Unsealed(String),
    #[error("a sealed value failed to open: {0}")]
    Open(String),
    #[error("no randomness from the operating system")]
    Random,
    #[error("wrapped key: {0}")]
    Wrapped(&'static str),
}

/// What a sealed value is: its purpose, and the identity of the row and
/// column it belongs to. Both are bound into the seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label<'a> {
    /// A received message, raw: its queue id.
    Message(&'a str),
    /// A column of a case row: reference, column.
    CaseField(&'a str, &'a str),
    /// A child row of a case (events, assets, suggestions, conversation):
    /// case id, table.
    CaseChild(i64, &'a str),
    /// An evidence object's content: its object id.
    Evidence(&'a str),
    /// A property of an evidence object (name, types, archive record):
    /// object id, column.
    EvidenceField(&'a str, &'a str),
    /// An outbox message's subject or body: Message-ID, part.
    Outbox(&'a str, &'a str),
    /// The value that proves a key opens this store.
    KeyCheck,
    /// The SAML service provider's private signing key.
    SamlKey,
    /// A TLS report's failure details: the id of the message it came in.
    TlsReport(i64),
}

impl Label<'_> {
    /// The purpose byte of the sealed format. Never renumbered.
    fn purpose(self) -> u8 {
        match self {
            Label::Message(_) => 1,
            Label::CaseField(..) => 2,
            Label::CaseChild(..) => 3,
            Label::Evidence(_) => 4,
            Label::EvidenceField(..) => 5,
            Label::Outbox(..) => 6,
            Label::KeyCheck => 7,
            Label::SamlKey => 8,
            Label::TlsReport(_) => 9,
        }
    }

    /// The object's identity, as older releases bound it too.
    fn object(self) -> String {
        match self {
            Label::Message(q) => format!("message:{q}"),
            Label::CaseField(r, c) => format!("case:{r}:{c}"),
            Label::CaseChild(id, t) => format!("case-{id}:{t}"),
            Label::Evidence(o) => format!("evidence:{o}"),
            Label::EvidenceField(o, c) => format!("evidence:{o}:{c}"),
            Label::Outbox(m, p) => format!("outbox:{m}:{p}"),
            Label::KeyCheck => "store:key-check".into(),
            Label::SamlKey => "store:saml-sp-key".into(),
            Label::TlsReport(m) => format!("tls-report:{m}"),
        }
    }
}

/// One master key's derived keys.
struct Keys {
    /// Seals and opens `DMX2` values.
    seal: LessSafeKey,
    /// Names the master key in every value it seals.
    key_id: [u8; KEY_ID_LEN],
    /// Keys the audit chain's MACs, so the chain cannot be rewritten
    /// without the master key.
    audit: hmac::Key,
    /// Derives further purpose keys (`purpose_key`).
    prk: hkdf::Prk,
    /// What older releases sealed and MAC'd with: read, never written.
    legacy: Legacy,
}

/// The keys of releases before the versioned format.
struct Legacy {
    /// The master key itself, as the AES-GCM key.
    seal: LessSafeKey,
    /// HMAC(master, "disclosure-mx audit chain v1").
    audit: hmac::Key,
}

/// The key that seals, and during a rotation (`store::rotate`) the keys
/// it replaces, which only open: every value names its key by id.
struct Ring {
    current: Keys,
    older: Vec<Keys>,
}

impl Ring {
    fn all(&self) -> impl Iterator<Item = &Keys> {
        std::iter::once(&self.current).chain(self.older.iter())
    }

    fn by_id(&self, id: &[u8]) -> Option<&Keys> {
        self.all().find(|k| k.key_id[..] == *id)
    }
}

/// The master key's derived keys, ready to seal and open; shared by every
/// part of a running service, so a rotation's `reload` reaches them all.
pub struct Sealer {
    ring: std::sync::RwLock<std::sync::Arc<Ring>>,
    /// The key file, for `reload` (None: the key came from the
    /// environment, or from bytes).
    source: Option<PathBuf>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(key {})", self.key_id())
    }
}

/// An HKDF output length for `Okm::fill`.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand of `prk` for `info`, `N` bytes.
fn expand<const N: usize>(prk: &hkdf::Prk, info: &[u8]) -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    // Expand fails only for lengths over 255 hash blocks; N is at most 32.
    #[allow(clippy::expect_used)]
    prk.expand(&[info], Len(N))
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF expand of a short key");
    out
}

impl Keys {
    fn from_bytes(bytes: &[u8]) -> Result<Keys, SealError> {
        let legacy_key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::KeyEnv)?;
        let legacy_derive = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let legacy_audit = hmac::sign(&legacy_derive, b"disclosure-mx audit chain v1");
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(bytes);
        let seal_key = expand::<32>(&prk, b"disclosure-mx seal v2");
        let audit_key = expand::<32>(&prk, b"disclosure-mx audit chain v2");
        let key_id = *expand::<KEY_ID_LEN>(&prk, b"disclosure-mx key id v2");
        Ok(Keys {
            seal: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &seal_key[..]).map_err(|_| SealError::KeyEnv)?,
            ),
            key_id,
            audit: hmac::Key::new(hmac::HMAC_SHA256, &audit_key[..]),
            prk,
            legacy: Legacy {
                seal: LessSafeKey::new(legacy_key),
                audit: hmac::Key::new(hmac::HMAC_SHA256, legacy_audit.as_ref()),
            },
        })
    }

    /// The header of a `DMX2` value for `label`, which is also bound into
    /// its associated data.
    fn header(&self, label: Label<'_>) -> Vec<u8> {
        let mut h = Vec::with_capacity(MAGIC.len() + 1 + KEY_ID_LEN);
        h.extend_from_slice(MAGIC);
        h.push(label.purpose());
        h.extend_from_slice(&self.key_id);
        h
    }

    fn open(&self, object: String, header: &[u8], rest: &[u8]) -> Result<Vec<u8>, SealError> {
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open(object.clone()))?;
        let mut aad = header.to_vec();
        aad.extend_from_slice(object.as_bytes());
        let mut buf = body.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(&aad[..]), &mut buf)
            .map_err(|_| SealError::Open(format!("{object}: authentication failed")))?;
        Ok(plain.to_vec())
    }

    /// Opens a value of the older format (`DMX1` stripped): sealed with the
    /// master key used directly as the AES-GCM key, the one key that was
    /// also the HMAC key deriving the others. Kept only so stores written
    /// by older releases stay readable; nothing is sealed this way any
    /// more.
    fn dangerous_open_v1(&self, object: &str, rest: &[u8]) -> Result<Vec<u8>, SealError> {
        if rest.len() < NONCE_LEN {
            return Err(SealError::Open(format!("{object}: truncated")));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open(object.into()))?;
        let mut buf = body.to_vec();
        let plain = self
            .legacy
            .seal
            .open_in_place(nonce, Aad::from(object.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open(format!("{object}: authentication failed")))?;
        Ok(plain.to_vec())
    }
}

impl Sealer {
    fn from_bytes(bytes: &[u8]) -> Result<Sealer, SealError> {
        Ok(Sealer::from_ring(
            Ring {
                current: Keys::from_bytes(bytes)?,
                older: Vec::new(),
            },
            None,
        ))
    }

    fn from_ring(ring: Ring, source: Option<PathBuf>) -> Sealer {
        Sealer {
            ring: std::sync::RwLock::new(std::sync::Arc::new(ring)),
            source,
            rng: SystemRandom::new(),
        }
    }

    fn ring(&self) -> std::sync::Arc<Ring> {
        match self.ring.read() {
            Ok(r) => std::sync::Arc::clone(&r),
            Err(poisoned) => std::sync::Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The id of the master key in use (16 hex digits): it names the key in
    /// what it seals, and reveals nothing of it.
    pub fn key_id(&self) -> String {
        hex::encode(self.ring().current.key_id)
    }

    /// The ids of the retired keys still kept for opening (a rotation in
    /// progress).
    pub fn older_key_ids(&self) -> Vec<String> {
        self.ring()
            .older
            .iter()
            .map(|k| hex::encode(k.key_id))
            .collect()
    }

    /// The keys again from their files: the current one, and the retired
    /// ones a rotation keeps (`retired_key_files`). Every holder of this
    /// sealer sees the change. Returns the current key's id.
    pub fn reload(&self) -> Result<String, SealError> {
        let Some(path) = &self.source else {
            return Ok(self.key_id());
        };
        let ring = read_ring(path)?;
        let id = hex::encode(ring.current.key_id);
        match self.ring.write() {
            Ok(mut r) => *r = std::sync::Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = std::sync::Arc::new(ring),
        }
        Ok(id)
    }

    /// The key from the environment, else from `path` (with the retired
    /// keys beside it). With `may_create`, a missing file is generated
    /// (mode 0600).
    pub fn load(path: &Path, may_create: bool) -> Result<(Sealer, bool), SealError> {
        if std::env::var(KEY_ENV).is_ok() {
            let bytes = read_master_key(path)?;
            return Ok((Sealer::from_bytes(&bytes)?, false));
        }
        match read_ring(path) {
            Ok(ring) => Ok((Sealer::from_ring(ring, Some(path.to_path_buf())), false)),
            Err(SealError::KeyMissing { .. }) if may_create => {
                let mut bytes = Zeroizing::new(vec![0u8; 32]);
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| SealError::Random)?;
                write_master_key(path, &bytes)?;
                let ring = read_ring(path)?;
                Ok((Sealer::from_ring(ring, Some(path.to_path_buf())), true))
            }
            Err(e) => Err(e),
        }
    }

    /// Seals `plain` as `label` under the current key: header, nonce,
    /// ciphertext and tag.
    pub fn seal(&self, label: Label<'_>, plain: &[u8]) -> Vec<u8> {
        let ring = self.ring();
        let keys = &ring.current;
        let mut nonce = [0u8; NONCE_LEN];
        // SystemRandom only fails when the OS has no randomness at all; a
        // zero nonce would then repeat, so stop rather than seal.
        #[allow(clippy::expect_used)]
        self.rng
            .fill(&mut nonce)
            .expect("operating system randomness");
        let header = keys.header(label);
        let mut aad = header.clone();
        aad.extend_from_slice(label.object().as_bytes());
        let mut buf = plain.to_vec();
        // Sealing with a valid key and a fresh nonce cannot fail in ring
        // except for inputs over 64 GiB, which never reach here.
        #[allow(clippy::expect_used)]
        keys.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut buf,
            )
            .expect("AES-GCM seal");
        let mut out = header;
        out.reserve(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out
    }

    /// Opens what `seal` made for the same `label` under any key of the
    /// ring, or what an older release sealed for it. Refuses anything
    /// else: unsealed bytes, a value sealed for another purpose or under a
    /// key not in the ring.
    pub fn open(&self, label: Label<'_>, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let object = label.object();
        let ring = self.ring();
        if let Some(rest) = sealed.strip_prefix(MAGIC_V1) {
            let mut last = None;
            for keys in ring.all() {
                match keys.dangerous_open_v1(&object, rest) {
                    Ok(plain) => return Ok(plain),
                    Err(e) => last = Some(e),
                }
            }
            return Err(last.unwrap_or(SealError::Open(object)));
        }
        if !sealed.starts_with(MAGIC) {
            return Err(SealError::Unsealed(object));
        }
        let header_len = MAGIC.len() + 1 + KEY_ID_LEN;
        if sealed.len() < header_len + NONCE_LEN {
            return Err(SealError::Open(format!("{object}: truncated")));
        }
        let (header, rest) = sealed.split_at(header_len);
        if header[MAGIC.len()] != label.purpose() {
            return Err(SealError::Open(format!(
                "{object}: sealed for another purpose"
            )));
        }
        let key_id = &header[MAGIC.len() + 1..];
        match ring.by_id(key_id) {
            Some(keys) => keys.open(object, header, rest),
            None => Err(SealError::OtherKey(
                object,
                hex::encode(key_id),
                hex::encode(ring.current.key_id),
            )),
        }
    }

    /// An HMAC key for `purpose`, derived from the master key (HKDF): the
    /// same on every receiver that shares the key, useless without it.
    pub fn purpose_key(&self, purpose: &str) -> hmac::Key {
        let info = format!("disclosure-mx purpose v2: {purpose}");
        hmac::Key::new(
            hmac::HMAC_SHA256,
            &expand::<32>(&self.ring().current.prk, info.as_bytes())[..],
        )
    }

    /// HMAC-SHA-256 of `msg` under the current audit key: `v2:` and hex.
    pub fn audit_mac(&self, msg: &[u8]) -> String {
        format!(
            "v2:{}",
            hex::encode(hmac::sign(&self.ring().current.audit, msg))
        )
    }

    /// Whether `stored` is the `v2:` MAC of `msg` under any key of the
    /// ring (during a rotation the chain holds both).
    pub fn audit_mac_verifies(&self, msg: &[u8], stored: &str) -> bool {
        let Some(hex_mac) = stored.strip_prefix("v2:") else {
            return false;
        };
        let Ok(tag) = hex::decode(hex_mac) else {
            return false;
        };
        self.ring()
            .all()
            .any(|k| hmac::verify(&k.audit, msg, &tag).is_ok())
    }

    /// Whether `stored` is the MAC an older release wrote for `msg` (hex,
    /// no prefix), under any key of the ring.
    pub fn legacy_audit_verifies(&self, msg: &[u8], stored: &str) -> bool {
        let Ok(tag) = hex::decode(stored) else {
            return false;
        };
        self.ring()
            .all()
            .any(|k| hmac::verify(&k.legacy.audit, msg, &tag).is_ok())
    }

    /// The id of the key a sealed value (binary, or text with its prefix)
    /// names: None for a value of the older format or not sealed.
    pub fn sealed_key_id(stored: &[u8]) -> Option<String> {
        let bytes = match std::str::from_utf8(stored)
            .ok()
            .and_then(|t| t.strip_prefix(TEXT_PREFIX))
        {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.get(..24.min(b64.len()) / 4 * 4)?)
                .ok()?,
            None => stored.get(..MAGIC.len() + 1 + KEY_ID_LEN)?.to_vec(),
        };
        let rest = bytes.strip_prefix(MAGIC)?;
        rest.get(1..1 + KEY_ID_LEN).map(hex::encode)
    }

    pub fn seal_text(&self, label: Label<'_>, plain: &str) -> String {
        let sealed = self.seal(label, plain.as_bytes());
        format!(
            "{TEXT_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    pub fn open_text(&self, label: Label<'_>, stored: &str) -> Result<String, SealError> {
        let Some(b64) = stored
            .strip_prefix(TEXT_PREFIX)
            .or_else(|| stored.strip_prefix(TEXT_PREFIX_V1))
        else {
            return Err(SealError::Unsealed(label.object()));
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SealError::Open(format!("{}: not base64", label.object())))?;
        let plain = self.open(label, &sealed)?;
        String::from_utf8(plain)
            .map_err(|_| SealError::Open(format!("{}: not UTF-8", label.object())))
    }

    pub fn seal_opt(&self, label: Label<'_>, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal_text(label, p))
    }

    pub fn open_opt(
        &self,
        label: Label<'_>,
        stored: Option<String>,
    ) -> Result<Option<String>, SealError> {
        stored.map(|s| self.open_text(label, &s)).transpose()
    }
}

/// The current key from `path` and the retired keys beside it.
fn read_ring(path: &Path) -> Result<Ring, SealError> {
    let current = Keys::from_bytes(&read_master_key(path)?)?;
    let mut older = Vec::new();
    for retired in retired_key_files(path) {
        older.push(Keys::from_bytes(&read_master_key(&retired)?)?);
    }
    Ok(Ring { current, older })
}

/// The id (16 hex digits) of the master key `bytes`.
pub fn key_id_of(bytes: &[u8]) -> Result<String, SealError> {
    Ok(Sealer::from_bytes(bytes)?.key_id())
}

/// Whether `stored` (a text column) is sealed, in either format.
pub fn is_sealed_text(stored: &str) -> bool {
    stored.starts_with(TEXT_PREFIX) || stored.starts_with(TEXT_PREFIX_V1)
}

/// Whether `stored` (a binary column) is sealed, in either format.
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC) || stored.starts_with(MAGIC_V1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sealer() -> Sealer {
        Sealer::from_bytes(&[7u8; 32]).unwrap()
    }

    /// A value as the older release sealed it: `DMX1`, nonce, ciphertext,
    /// under the master key used directly.
    fn v1(master: &[u8; 32], object: &str, plain: &[u8]) -> Vec<u8> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, master).unwrap());
        let nonce = [3u8; NONCE_LEN];
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(object.as_bytes()),
            &mut buf,
        )
        .unwrap();
        [MAGIC_V1, &nonce[..], &buf[..]].concat()
    }

    #[test]
    fn round_trip_and_binding() {
        let s = sealer();
        let q1 = Label::Message("Q1");
        let a = s.seal(q1, b"report");
        let b = s.seal(q1, b"report");
        assert_ne!(a, b, "fresh nonce each time");
        assert!(a.starts_with(MAGIC));
        assert_eq!(hex::encode(&a[5..13]), s.key_id(), "names its key");
        assert_eq!(Sealer::sealed_key_id(&a), Some(s.key_id()));
        let text = s.seal_text(Label::KeyCheck, "x");
        assert_eq!(Sealer::sealed_key_id(text.as_bytes()), Some(s.key_id()));
        assert_eq!(s.open(q1, &a).unwrap(), b"report");
        assert!(
            s.open(Label::Message("Q2"), &a).is_err(),
            "bound to its object"
        );
        let mut t = a.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(s.open(q1, &t).is_err(), "tamper-evident");
        let field = Label::CaseField("NC-1", "description");
        let text = s.seal_text(field, "steps");
        assert!(text.starts_with(TEXT_PREFIX) && !text.contains("steps"));
        assert_eq!(s.open_text(field, &text).unwrap(), "steps");
        let other = Sealer::from_bytes(&[8u8; 32]).unwrap();
        assert!(
            matches!(other.open(q1, &a), Err(SealError::OtherKey(..))),
            "another key is named, not tried"
        );
    }

    #[test]
    fn purposes_and_unsealed_bytes_are_refused() {
        let s = sealer();
        // The same identity string under another purpose does not open.
        let sealed = s.seal(Label::Evidence("o1"), b"x");
        let mut forged = sealed.clone();
        forged[4] = Label::Message("o1").purpose();
        assert!(s.open(Label::Message("o1"), &forged).is_err());
        assert!(matches!(
            s.open(Label::Evidence("o1"), b"plain report text"),
            Err(SealError::Unsealed(_))
        ));
        assert!(matches!(
            s.open_text(Label::KeyCheck, "legacy plain"),
            Err(SealError::Unsealed(_))
        ));
    }

    #[test]
    fn what_older_releases_sealed_still_opens() {
        let master = [7u8; 32];
        let s = Sealer::from_bytes(&master).unwrap();
        let old = v1(&master, "message:Q1", b"old report");
        assert_eq!(s.open(Label::Message("Q1"), &old).unwrap(), b"old report");
        assert!(s.open(Label::Message("Q2"), &old).is_err());
        let text = format!(
            "{TEXT_PREFIX_V1}{}",
            base64::engine::general_purpose::STANDARD.encode(v1(
                &master,
                "case:NC-1:impact",
                b"high"
            ))
        );
        assert_eq!(
            s.open_text(Label::CaseField("NC-1", "impact"), &text)
                .unwrap(),
            "high"
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_from_the_master() {
        let s = sealer();
        let a = hmac::sign(&s.purpose_key("a"), b"m");
        let b = hmac::sign(&s.purpose_key("b"), b"m");
        assert_ne!(a.as_ref(), b.as_ref());
        let raw = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]), b"m");
        assert_ne!(s.audit_mac(b"m"), format!("v2:{}", hex::encode(raw)));
        let mac = s.audit_mac(b"m");
        assert!(s.audit_mac_verifies(b"m", &mac));
        assert!(
            !s.legacy_audit_verifies(b"m", &mac[3..]),
            "v1 and v2 keys differ"
        );
        assert_eq!(s.key_id().len(), 16);
        assert_eq!(s.key_id(), sealer().key_id(), "stable");
        assert_ne!(s.key_id(), Sealer::from_bytes(&[8u8; 32]).unwrap().key_id());
    }

    #[test]
    fn key_files_must_be_private_and_are_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/master.key");
        assert!(matches!(
            Sealer::load(&path, false),
            Err(SealError::KeyMissing { .. })
        ));
        let (_, created) = Sealer::load(&path, true).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (_, created) = Sealer::load(&path, true).unwrap();
        assert!(!created, "reused");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Sealer::load(&path, true),
            Err(SealError::Permissions { .. })
        ));
    }
}
