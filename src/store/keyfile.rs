//! The master key's files: reading and writing a key file (0600, never
//! overwritten), the retired keys a rotation keeps beside it, and the
//! wrapped form `keys export --wrap` writes for backups (a passphrase,
//! PBKDF2-HMAC-SHA256, AES-256-GCM).

use super::seal::{KEY_ENV, SealError, key_id_of};
use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

fn parse_hex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; 32]);
    hex::decode_to_slice(s, &mut out[..]).ok()?;
    Some(out)
}

/// The name of a key file kept while a rotation replaces it: the key file's
/// own name, `.old-` and the retired key's id.
pub fn retired_key_path(key_file: &Path, key_id: &str) -> PathBuf {
    let mut name = key_file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".old-{key_id}"));
    key_file.with_file_name(name)
}

/// The retired key files beside `key_file` (`retired_key_path`).
pub fn retired_key_files(key_file: &Path) -> Vec<PathBuf> {
    let Some(dir) = key_file.parent() else {
        return Vec::new();
    };
    let prefix = format!(
        "{}.old-",
        key_file.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut out: Vec<PathBuf> = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
    .into_iter()
    .flatten()
    .flatten()
    .map(|e| e.path())
    .filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
    })
    .collect();
    out.sort();
    out
}

/// The master key's bytes: from the environment, else from `path`
/// (which others may not read).
pub fn read_master_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if let Ok(hex) = std::env::var(KEY_ENV) {
        return parse_hex(&hex).ok_or(SealError::KeyEnv);
    }
    let file_err = |reason: String| SealError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|_| SealError::KeyMissing {
        path: path.to_path_buf(),
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SealError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?);
    parse_hex(&text).ok_or_else(|| file_err("expected 64 hex digits".into()))
}

/// Writes a master key file (mode 0600); never over an existing one.
pub fn write_master_key(path: &Path, bytes: &[u8]) -> Result<(), SealError> {
    let file_err = |reason: String| SealError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    if path.exists() {
        return Err(file_err("exists already; not overwritten".into()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
    }
    let hex = Zeroizing::new(hex::encode(bytes) + "\n");
    crate::private_file::write(path, hex.as_bytes()).map_err(|e| file_err(e.to_string()))
}

/// What `wrap` writes: the format, the key's id, and the key sealed under
/// a key derived from a passphrase.
const WRAP_FORMAT: &str = "disclosure-mx wrapped key 1";
/// PBKDF2-HMAC-SHA256 rounds: OWASP's 2023 figure for this function.
/// About half a second here, once per export or restore; every guess at
/// the passphrase costs the same.
const WRAP_ROUNDS: u32 = 600_000;
/// A wrapping passphrase shorter than this is refused: the wrapped key
/// sits beside backups, where anyone who takes them can guess offline.
pub const WRAP_MIN_PASSPHRASE: usize = 12;

#[derive(serde::Serialize, serde::Deserialize)]
struct Wrapped {
    format: String,
    key_id: String,
    kdf: String,
    rounds: u32,
    salt: String,
    nonce: String,
    sealed: String,
}

fn wrapping_key(passphrase: &str, salt: &[u8], rounds: u32) -> Result<LessSafeKey, SealError> {
    let mut key = Zeroizing::new([0u8; 32]);
    let rounds = std::num::NonZeroU32::new(rounds).ok_or(SealError::Wrapped("no rounds"))?;
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase.as_bytes(),
        &mut key[..],
    );
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key[..]).map_err(|_| SealError::Random)?,
    ))
}

/// The master key `bytes` sealed under `passphrase`, as JSON text that
/// names the key's id (and nothing else of it).
pub fn wrap(bytes: &[u8], passphrase: &str) -> Result<String, SealError> {
    if passphrase.chars().count() < WRAP_MIN_PASSPHRASE {
        return Err(SealError::Wrapped(
            "the passphrase is shorter than 12 characters",
        ));
    }
    let key_id = key_id_of(bytes)?;
    let rng = SystemRandom::new();
    let (mut salt, mut nonce) = ([0u8; 16], [0u8; NONCE_LEN]);
    rng.fill(&mut salt).map_err(|_| SealError::Random)?;
    rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
    let key = wrapping_key(passphrase, &salt, WRAP_ROUNDS)?;
    let mut buf = bytes.to_vec();
    let aad = format!("{WRAP_FORMAT} {key_id}");
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut buf,
    )
    .map_err(|_| SealError::Random)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let wrapped = Wrapped {
        format: WRAP_FORMAT.into(),
        key_id,
        kdf: "PBKDF2-HMAC-SHA256".into(),
        rounds: WRAP_ROUNDS,
        salt: b64(&salt),
        nonce: b64(&nonce),
        sealed: b64(&buf),
    };
    serde_json::to_string_pretty(&wrapped).map_err(|_| SealError::Wrapped("cannot encode"))
}

/// The key id a wrapped key names, without the passphrase.
pub fn wrapped_key_id(text: &str) -> Result<String, SealError> {
    let w: Wrapped =
        serde_json::from_str(text).map_err(|_| SealError::Wrapped("not a wrapped key"))?;
    Ok(w.key_id)
}

/// The master key `wrap` sealed, or why not (a wrong passphrase and a
/// tampered file look the same).
pub fn unwrap(text: &str, passphrase: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let w: Wrapped =
        serde_json::from_str(text).map_err(|_| SealError::Wrapped("not a wrapped key"))?;
    if w.format != WRAP_FORMAT || w.kdf != "PBKDF2-HMAC-SHA256" {
        return Err(SealError::Wrapped("an unknown wrapped-key format"));
    }
    // A file that asks for a million times the work is not ours.
    if !(100_000..=10_000_000).contains(&w.rounds) {
        return Err(SealError::Wrapped("an implausible number of rounds"));
    }
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| SealError::Wrapped("not base64"))
    };
    let (salt, nonce, sealed) = (b64(&w.salt)?, b64(&w.nonce)?, b64(&w.sealed)?);
    let key = wrapping_key(passphrase, &salt, w.rounds)?;
    let nonce =
        Nonce::try_assume_unique_for_key(&nonce).map_err(|_| SealError::Wrapped("a bad nonce"))?;
    let aad = format!("{WRAP_FORMAT} {}", w.key_id);
    let mut buf = Zeroizing::new(sealed);
    let plain = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
        .map_err(|_| SealError::Wrapped("wrong passphrase, or the file was changed"))?;
    let bytes = Zeroizing::new(plain.to_vec());
    if key_id_of(&bytes)? != w.key_id {
        return Err(SealError::Wrapped("the key does not match its id"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_with_its_passphrase_and_unchanged() {
        let key = [9u8; 32];
        let text = wrap(&key, "a passphrase of some length").unwrap();
        assert!(!text.contains(&hex::encode(key)));
        assert_eq!(wrapped_key_id(&text).unwrap(), key_id_of(&key).unwrap());
        assert_eq!(
            &unwrap(&text, "a passphrase of some length").unwrap()[..],
            &key[..]
        );
        assert!(unwrap(&text, "another passphrase here").is_err());
        // Naming another key id is tampering: the id is bound into the seal.
        let tampered = text.replace(&key_id_of(&key).unwrap(), &key_id_of(&[1u8; 32]).unwrap());
        assert!(unwrap(&tampered, "a passphrase of some length").is_err());
        assert!(wrap(&key, "short").is_err());
    }
}
