//! `[openpgp]` and `[smime]`: where an organisation's decryption keys are.
//! Only paths here; reading and checking the files (mode 0600, the key's
//! shape, a passphrase) is `keyring`'s, in the service, never in a parse
//! worker.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenPgpFile {
    /// The organisation's OpenPGP secret key (armored or binary),
    /// relative to the policy file's folder. It may be
    /// passphrase-protected.
    secret_key_file: PathBuf,
    /// Keys this one replaced, kept to open what reporters still encrypt
    /// to them (a rotation publishes the new key; mail to the old one
    /// keeps coming for a while). Never published, never used to encrypt.
    #[serde(default)]
    previous_key_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SmimeFile {
    /// The organisation's certificate (PEM), relative to the policy file.
    certificate_file: PathBuf,
    /// Its private key (PEM, unencrypted, mode 0600).
    key_file: PathBuf,
}

/// The organisation's key files, resolved against the policy's folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFiles {
    pub openpgp_secret_key: Option<PathBuf>,
    /// Retired OpenPGP keys, for decryption only.
    pub openpgp_previous: Vec<PathBuf>,
    pub smime_certificate: Option<PathBuf>,
    pub smime_key: Option<PathBuf>,
}

impl KeyFiles {
    pub(super) fn resolve(
        policy_file: &Path,
        openpgp: Option<OpenPgpFile>,
        smime: Option<SmimeFile>,
    ) -> Result<KeyFiles, (String, String)> {
        let dir = policy_file.parent().unwrap_or(Path::new("."));
        let at = |key: &str, p: PathBuf| {
            if p.as_os_str().is_empty() {
                Err((key.to_owned(), "must name a file".to_owned()))
            } else {
                Ok(dir.join(p))
            }
        };
        let mut files = KeyFiles::default();
        if let Some(o) = openpgp {
            files.openpgp_secret_key = Some(at("openpgp.secret_key_file", o.secret_key_file)?);
            for p in o.previous_key_files {
                files
                    .openpgp_previous
                    .push(at("openpgp.previous_key_files", p)?);
            }
        }
        if let Some(s) = smime {
            files.smime_certificate = Some(at("smime.certificate_file", s.certificate_file)?);
            files.smime_key = Some(at("smime.key_file", s.key_file)?);
        }
        Ok(files)
    }
}
