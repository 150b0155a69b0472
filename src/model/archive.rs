//! What is known of an archive attachment before any password: its format,
//! how it is encrypted, its entries. Plain data; `intake::archive` reads it
//! from the bytes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Zip,
    #[serde(rename = "7z")]
    SevenZ,
    /// An OpenPGP message encrypted with a password only (`gpg -c`).
    OpenPgp,
}

/// What is known of one archive before any password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    pub format: Format,
    /// `none`, `zipcrypto`, `winzip-aes-128`/`-192`/`-256`, `7zaes`,
    /// `openpgp-password`, or `mixed` when entries differ.
    pub encryption: String,
    pub headers_encrypted: bool,
    /// Readable entry names (display only), at most `MAX_LISTED`.
    pub entries: Vec<String>,
    pub entry_count: usize,
    pub symlinks: usize,
    /// Names with `..`, an absolute path, a drive letter or NUL.
    pub unsafe_names: usize,
    /// Why it could not be fully read (truncated, malformed).
    pub problem: Option<String>,
}

impl ArchiveInfo {
    pub(crate) fn empty(format: Format) -> Self {
        ArchiveInfo {
            format,
            encryption: "none".into(),
            headers_encrypted: false,
            entries: Vec::new(),
            entry_count: 0,
            symlinks: 0,
            unsafe_names: 0,
            problem: None,
        }
    }

    /// Some entry (or the header) is encrypted: the case waits for a
    /// password.
    pub fn is_encrypted(&self) -> bool {
        self.encryption != "none"
    }

    /// Every entry with content is encrypted, and the archive could be read
    /// whole. What the plaintext rule demands: one clear `readme.txt`
    /// beside an encrypted entry is report content in clear.
    pub fn fully_encrypted(&self) -> bool {
        self.is_encrypted() && self.encryption != "mixed" && self.problem.is_none()
    }

    /// Some entry uses legacy ZipCrypto.
    pub fn uses_zipcrypto(&self) -> bool {
        self.encryption == "zipcrypto" || self.encryption == "mixed" && self.format == Format::Zip
    }
}
