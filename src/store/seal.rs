//! Evidence encrypted at rest: AES-256-GCM under one master key.
//!
//! Every stored piece of report content — raw messages, attachments,
//! extracted files, case text fields, notes, receipts — is sealed with a
//! fresh random 96-bit nonce and the object's identity as associated data
//! (`message:<queue id>`, `case:<reference>:description`, ...), so a value
//! cannot be moved to another row or column without failing to open. A dump
//! of the database alone reveals no report content.
//!
//! The master key comes from `DISCLOSURE_MX_MASTER_KEY` (64 hex digits) or
//! the key file (mode 0600; anything looser is refused). A key file is
//! generated only for a store that holds nothing yet. AES-GCM is ring's
//! (already linked for TLS) rather than a second implementation.

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Sealed binary values start with this; anything else is legacy plaintext
/// awaiting migration.
pub const MAGIC: &[u8] = b"DMX1";
/// Sealed text values start with this, followed by base64.
pub const TEXT_PREFIX: &str = "sealed:v1:";
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
    #[error("a sealed value failed to open: {0}")]
    Open(String),
    #[error("no randomness from the operating system")]
    Random,
}

/// The master key, ready to seal and open.
pub struct Sealer {
    key: LessSafeKey,
    /// Keys the audit chain's MACs; derived from the master key, so the
    /// chain cannot be rewritten without it.
    audit: ring::hmac::Key,
    /// Derives further purpose keys (`purpose_key`).
    derive: ring::hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

fn parse_hex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; 32]);
    hex::decode_to_slice(s, &mut out[..]).ok()?;
    Some(out)
}

impl Sealer {
    fn from_bytes(bytes: &[u8]) -> Result<Sealer, SealError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::KeyEnv)?;
        let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        let audit_key = ring::hmac::sign(&derive, b"disclosure-mx audit chain v1");
        Ok(Sealer {
            key: LessSafeKey::new(key),
            audit: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, audit_key.as_ref()),
            derive,
            rng: SystemRandom::new(),
        })
    }

    /// The key from the environment, else from `path`. With `may_create`,
    /// a missing file is generated (mode 0600).
    pub fn load(path: &Path, may_create: bool) -> Result<(Sealer, bool), SealError> {
        if let Ok(hex) = std::env::var(KEY_ENV) {
            let bytes = parse_hex(&hex).ok_or(SealError::KeyEnv)?;
            return Ok((Sealer::from_bytes(&bytes)?, false));
        }
        let file_err = |reason: String| SealError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SealError::Permissions {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
                let text = Zeroizing::new(
                    std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?,
                );
                let bytes =
                    parse_hex(&text).ok_or_else(|| file_err("expected 64 hex digits".into()))?;
                Ok((Sealer::from_bytes(&bytes)?, false))
            }
            Err(_) if may_create => {
                let mut bytes = Zeroizing::new(vec![0u8; 32]);
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| SealError::Random)?;
                let hex = Zeroizing::new(hex::encode(&bytes[..]) + "\n");
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
                }
                crate::private_file::write(path, hex.as_bytes())
                    .map_err(|e| file_err(e.to_string()))?;
                Ok((Sealer::from_bytes(&bytes)?, true))
            }
            Err(_) => Err(SealError::KeyMissing {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Seals `plain` for `object`: MAGIC, nonce, ciphertext and tag.
    pub fn seal(&self, object: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // SystemRandom only fails when the OS has no randomness at all; a
        // zero nonce would then repeat, so stop rather than seal.
        #[allow(clippy::expect_used)]
        self.rng
            .fill(&mut nonce)
            .expect("operating system randomness");
        let mut buf = plain.to_vec();
        // Sealing with a valid key and a fresh nonce cannot fail in ring
        // except for inputs over 64 GiB, which never reach here.
        #[allow(clippy::expect_used)]
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(object.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM seal");
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out
    }

    /// Opens what `seal` made for the same `object`. Legacy plaintext (no
    /// MAGIC) is returned as it is; `migrate_legacy` seals it at start-up.
    pub fn open(&self, object: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = sealed.strip_prefix(MAGIC) else {
            return Ok(sealed.to_vec());
        };
        if rest.len() < NONCE_LEN {
            return Err(SealError::Open(format!("{object}: truncated")));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open(object.into()))?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(object.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open(format!("{object}: authentication failed")))?;
        Ok(plain.to_vec())
    }

    /// An HMAC key for `purpose`, derived from the master key: the same on
    /// every receiver that shares the key, useless without it.
    pub fn purpose_key(&self, purpose: &str) -> ring::hmac::Key {
        let k = ring::hmac::sign(&self.derive, purpose.as_bytes());
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_ref())
    }

    /// HMAC-SHA-256 of `msg` under the audit key, hex.
    pub fn audit_mac(&self, msg: &[u8]) -> String {
        ring::hmac::sign(&self.audit, msg)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn seal_text(&self, object: &str, plain: &str) -> String {
        let sealed = self.seal(object, plain.as_bytes());
        format!(
            "{TEXT_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    pub fn open_text(&self, object: &str, stored: &str) -> Result<String, SealError> {
        let Some(b64) = stored.strip_prefix(TEXT_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SealError::Open(format!("{object}: not base64")))?;
        let plain = self.open(object, &sealed)?;
        String::from_utf8(plain).map_err(|_| SealError::Open(format!("{object}: not UTF-8")))
    }

    pub fn seal_opt(&self, object: &str, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal_text(object, p))
    }

    pub fn open_opt(
        &self,
        object: &str,
        stored: Option<String>,
    ) -> Result<Option<String>, SealError> {
        stored.map(|s| self.open_text(object, &s)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_binding() {
        let s = sealer();
        let a = s.seal("message:Q1", b"report");
        let b = s.seal("message:Q1", b"report");
        assert_ne!(a, b, "fresh nonce each time");
        assert!(a.starts_with(MAGIC));
        assert_eq!(s.open("message:Q1", &a).unwrap(), b"report");
        assert!(s.open("message:Q2", &a).is_err(), "bound to its object");
        let mut t = a.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(s.open("message:Q1", &t).is_err(), "tamper-evident");
        let text = s.seal_text("case:NC-1:description", "steps");
        assert!(text.starts_with(TEXT_PREFIX) && !text.contains("steps"));
        assert_eq!(
            s.open_text("case:NC-1:description", &text).unwrap(),
            "steps"
        );
        assert_eq!(s.open_text("x", "legacy plain").unwrap(), "legacy plain");
        let other = Sealer::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("message:Q1", &a).is_err(), "another key");
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
