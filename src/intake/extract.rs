//! Bounded, in-memory extraction of zip and 7z archives with a password.
//!
//! Nothing is written to disk, and no name from the archive is used as a
//! path: names are sanitised and kept for display. Every resource is capped
//! by `ExtractLimits` (entries, bytes per entry and in total, compression
//! ratio, nesting, wall time, 7z decoder memory), and hitting a cap is a
//! named error, never a crash or a partial silent result.
//!
//! A wrong password is told apart from damage: WinZip AES entries carry an
//! authentication code, 7zAES blocks a CRC, and ZipCrypto — whose header
//! check lets about 1 in 256 wrong passwords through — is proven only by the
//! CRC of every entry, read in full.

use super::archive::{self, Format};
use serde::{Deserialize, Serialize};
use std::io::{Cursor, Read};
use std::time::{Duration, Instant};

/// Caps on one unlock: one budget shared by every archive the unlock
/// tries. Each says why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtractLimits {
    /// Archives tried in one unlock. A report comes with one or two; a
    /// mail with a hundred small archives is a way to multiply the work of
    /// one guess.
    pub max_archives: usize,
    /// Entries per archive. A report needs a handful; a million empty
    /// entries is a denial of service.
    pub max_entries: usize,
    /// Bytes one entry may produce: the message size limit, since nothing
    /// bigger could have been mailed uncompressed.
    pub max_entry_bytes: u64,
    /// Bytes all entries (nested archives included) may produce: enough for
    /// a report with screenshots and logs, far below harm.
    pub max_total_bytes: u64,
    /// Output bytes per compressed byte. Text compresses about 10:1;
    /// bombs reach millions.
    pub max_ratio: u64,
    /// Archives inside archives (a zip inside the 7z is depth 2).
    pub max_depth: usize,
    /// Wall time for the whole unlock, all archives together.
    pub max_time: Duration,
    /// Memory a 7z decoder may claim, in KiB; refuses the huge-dictionary
    /// trick before allocating.
    pub sevenz_memory_kb: usize,
    /// 7zAES key derivation runs 2^N SHA-256 rounds. 7-Zip writes N = 19
    /// (about 20 ms); more only serves to make each wrong guess cost
    /// seconds, so a larger N is refused before any round runs.
    pub max_kdf_power: u8,
    /// Memory an OpenPGP password message's Argon2 key derivation may
    /// claim, in KiB (256 MiB): RFC 9580's low-memory choice is 64 MiB; a
    /// sender may ask for 2 GiB per guess, which is refused first.
    pub max_argon2_memory_kb: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_archives: 20,
            max_entries: 1000,
            max_entry_bytes: 25 * 1024 * 1024,
            max_total_bytes: 100 * 1024 * 1024,
            max_ratio: 200,
            max_depth: 3,
            max_time: Duration::from_secs(30),
            sevenz_memory_kb: 256 * 1024,
            max_kdf_power: 19,
            max_argon2_memory_kb: 256 * 1024,
        }
    }
}

/// Which cap an extraction hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    MaxArchives,
    MaxEntries,
    MaxEntryBytes,
    MaxTotalBytes,
    MaxRatio,
    MaxDepth,
    MaxTime,
    SevenzMemoryKb,
    KdfRounds,
    Argon2MemoryKb,
}

impl Limit {
    /// The name as in `ExtractLimits` and the README.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxArchives => "max_archives",
            Limit::MaxEntries => "max_entries",
            Limit::MaxEntryBytes => "max_entry_bytes",
            Limit::MaxTotalBytes => "max_total_bytes",
            Limit::MaxRatio => "max_ratio",
            Limit::MaxDepth => "max_depth",
            Limit::MaxTime => "max_time",
            Limit::SevenzMemoryKb => "sevenz_memory_kb",
            Limit::KdfRounds => "kdf_rounds",
            Limit::Argon2MemoryKb => "max_argon2_memory_kb",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ExtractError {
    #[error("wrong password")]
    WrongPassword,
    #[error("limit {limit} reached: {detail}")]
    Limit { limit: Limit, detail: String },
    #[error("damaged archive: {0}")]
    Damaged(String),
}

/// One extracted file.
#[derive(Debug, Clone)]
pub struct ExtractedFile {
    /// Sanitised, for display only.
    pub name: String,
    pub data: Vec<u8>,
    /// 1 for entries of the archive itself, 2 for those of an archive in it.
    pub depth: usize,
}

/// The proof that extraction ran under the caps: only this module builds
/// one, and the case store takes extracted files only in this form.
#[derive(Debug)]
pub struct Extracted {
    files: Vec<ExtractedFile>,
    symlinks: Vec<String>,
}

impl Extracted {
    pub fn files(&self) -> &[ExtractedFile] {
        &self.files
    }

    /// Symlink entries: recorded by name, never followed.
    pub fn symlinks(&self) -> &[String] {
        &self.symlinks
    }

    pub fn into_parts(self) -> (Vec<ExtractedFile>, Vec<String>) {
        (self.files, self.symlinks)
    }
}

struct Budget<'a> {
    limits: &'a ExtractLimits,
    deadline: Instant,
    total: u64,
}

impl Budget<'_> {
    fn check_time(&self) -> Result<(), ExtractError> {
        if Instant::now() > self.deadline {
            return Err(ExtractError::Limit {
                limit: Limit::MaxTime,
                detail: format!("{:?}", self.limits.max_time),
            });
        }
        Ok(())
    }

    /// Reads one entry within the per-entry, total and ratio caps.
    fn read(
        &mut self,
        reader: &mut dyn Read,
        compressed: u64,
        name: &str,
    ) -> Result<Vec<u8>, ReadFailure> {
        let allowed = self
            .limits
            .max_entry_bytes
            .min(self.limits.max_total_bytes.saturating_sub(self.total));
        let mut out = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            self.check_time().map_err(ReadFailure::Cap)?;
            let n = reader.read(&mut chunk).map_err(ReadFailure::Io)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            let len = out.len() as u64;
            if len > allowed {
                let limit = if allowed < self.limits.max_entry_bytes {
                    Limit::MaxTotalBytes
                } else {
                    Limit::MaxEntryBytes
                };
                return Err(ReadFailure::Cap(ExtractError::Limit {
                    limit,
                    detail: format!("{name}: more than {allowed} bytes"),
                }));
            }
            if compressed > 0
                && len > compressed.saturating_mul(self.limits.max_ratio)
                && len > 1024 * 1024
            {
                return Err(ReadFailure::Cap(ExtractError::Limit {
                    limit: Limit::MaxRatio,
                    detail: format!("{name}: over {}:1", self.limits.max_ratio),
                }));
            }
        }
        self.total += out.len() as u64;
        Ok(out)
    }
}

enum ReadFailure {
    Cap(ExtractError),
    Io(std::io::Error),
}

/// A display name that can never act as a path: separators and dots that
/// could climb are replaced, control characters dropped.
pub fn sanitise(name: &str) -> String {
    let cleaned: String = name
        .replace('\\', "/")
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect::<Vec<_>>()
        .join("_");
    let mut cleaned: String = cleaned
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    // A drive letter ("C:") is dropped.
    if cleaned.get(1..2) == Some(":") && cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        cleaned.drain(..2);
    }
    let cleaned = cleaned.trim_start_matches(['.', '_', ':']);
    if cleaned.is_empty() {
        "unnamed".into()
    } else {
        cleaned.to_owned()
    }
}

/// Extracts `data` with `password`, nested archives included.
pub fn extract(
    data: &[u8],
    password: &str,
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    extract_all(&[data], password, limits)
        .pop()
        .unwrap_or(Err(ExtractError::Damaged("nothing to extract".into())))
}

/// Extracts each of `archives` with `password`, under one deadline and one
/// byte budget for all of them: trying many archives costs no more than
/// the caps allow for one unlock. Past `max_archives`, none is tried.
pub fn extract_all(
    archives: &[&[u8]],
    password: &str,
    limits: &ExtractLimits,
) -> Vec<Result<Extracted, ExtractError>> {
    if archives.len() > limits.max_archives {
        let refused = ExtractError::Limit {
            limit: Limit::MaxArchives,
            detail: format!(
                "{} archives in one unlock; at most {}",
                archives.len(),
                limits.max_archives
            ),
        };
        return archives.iter().map(|_| Err(refused.clone())).collect();
    }
    let mut budget = Budget {
        limits,
        deadline: Instant::now() + limits.max_time,
        total: 0,
    };
    archives
        .iter()
        .map(|data| {
            let mut out = Extracted {
                files: Vec::new(),
                symlinks: Vec::new(),
            };
            budget.check_time()?;
            extract_into(data, password, 1, &mut budget, &mut out)?;
            Ok(out)
        })
        .collect()
}

fn extract_into(
    data: &[u8],
    password: &str,
    depth: usize,
    budget: &mut Budget,
    out: &mut Extracted,
) -> Result<(), ExtractError> {
    if depth > budget.limits.max_depth {
        return Err(ExtractError::Limit {
            limit: Limit::MaxDepth,
            detail: format!("archive nested {depth} deep"),
        });
    }
    let start = out.files.len();
    match archive::detect(data) {
        Some(Format::Zip) => extract_zip(data, password, depth, budget, out)?,
        Some(Format::SevenZ) => extract_7z(data, password, depth, budget, out)?,
        Some(Format::OpenPgp) => openpgp::extract(data, password, depth, budget, &mut out.files)?,
        None => return Err(ExtractError::Damaged("not a zip or 7z archive".into())),
    }
    // Archives inside: opened with the same password when encrypted.
    let nested: Vec<Vec<u8>> = out.files[start..]
        .iter()
        .filter(|f| archive::detect(&f.data).is_some())
        .map(|f| f.data.clone())
        .collect();
    for inner in nested {
        extract_into(&inner, password, depth + 1, budget, out)?;
    }
    Ok(())
}

fn extract_zip(
    data: &[u8],
    password: &str,
    depth: usize,
    budget: &mut Budget,
    out: &mut Extracted,
) -> Result<(), ExtractError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| ExtractError::Damaged(e.to_string()))?;
    if zip.len() > budget.limits.max_entries {
        return Err(ExtractError::Limit {
            limit: Limit::MaxEntries,
            detail: format!("{} entries", zip.len()),
        });
    }
    for i in 0..zip.len() {
        budget.check_time()?;
        let encrypted = zip
            .by_index_raw(i)
            .map(|f| f.encrypted())
            .map_err(|e| ExtractError::Damaged(e.to_string()))?;
        let file = if encrypted {
            zip.by_index_decrypt(i, password.as_bytes())
        } else {
            zip.by_index(i)
        };
        let mut file = match file {
            Ok(f) => f,
            Err(zip::result::ZipError::InvalidPassword) => return Err(ExtractError::WrongPassword),
            Err(e) => return Err(ExtractError::Damaged(e.to_string())),
        };
        let name = file
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry-{i}"));
        if file.is_symlink() {
            out.symlinks.push(sanitise(&name));
            continue;
        }
        if file.is_dir() {
            continue;
        }
        let compressed = file.compressed_size();
        match budget.read(&mut file, compressed, &name) {
            Ok(data) => out.files.push(ExtractedFile {
                name: sanitise(&name),
                data,
                depth,
            }),
            Err(ReadFailure::Cap(e)) => return Err(e),
            // The CRC (or AES authentication) failed at the end of the
            // entry: for an encrypted entry that is the wrong password.
            Err(ReadFailure::Io(e)) if encrypted => {
                let _ = e;
                return Err(ExtractError::WrongPassword);
            }
            Err(ReadFailure::Io(e)) => return Err(ExtractError::Damaged(format!("{name}: {e}"))),
        }
    }
    Ok(())
}

fn extract_7z(
    data: &[u8],
    password: &str,
    depth: usize,
    budget: &mut Budget,
    out: &mut Extracted,
) -> Result<(), ExtractError> {
    use sevenz_rust2::{ArchiveReader, EntryDecision, Error, Password};
    // Checked before any key is derived: the rounds are the cost of a guess.
    if let Some(power) = archive::sevenz_kdf_power(data)
        && power > budget.limits.max_kdf_power
    {
        return Err(kdf_limit(power, budget.limits.max_kdf_power));
    }
    // 7-Zip derives the key from the UTF-16LE password. sevenz-rust2 keeps
    // that copy in a plain Vec; it lives only as long as this reader.
    let reader = ArchiveReader::new_with_memory_limit(
        Cursor::new(data),
        Password::new(password),
        budget.limits.sevenz_memory_kb,
    );
    let mut reader = match reader {
        Ok(r) => r,
        Err(Error::PasswordRequired | Error::MaybeBadPassword(_)) => {
            return Err(ExtractError::WrongPassword);
        }
        Err(Error::MaxMemLimited { .. }) => {
            return Err(ExtractError::Limit {
                limit: Limit::SevenzMemoryKb,
                detail: "7z header asks for more memory".into(),
            });
        }
        Err(e) => return Err(ExtractError::Damaged(e.to_string())),
    };
    let archive = reader.archive();
    if archive.files.len() > budget.limits.max_entries {
        return Err(ExtractError::Limit {
            limit: Limit::MaxEntries,
            detail: format!("{} entries", archive.files.len()),
        });
    }
    let encrypted = (0..archive.files.len()).any(|i| archive.is_file_encrypted(i));
    let mut stopped: Option<ExtractError> = None;
    let result = reader.for_each_entries_with_decision(|entry, rd| {
        if entry.is_directory() || !entry.has_stream() {
            return Ok(EntryDecision::Continue);
        }
        if let Err(e) = budget.check_time() {
            stopped = Some(e);
            return Ok(EntryDecision::Stop);
        }
        // 7z does not give a per-entry packed size in solid blocks; the
        // ratio is checked against the whole archive instead.
        match budget.read(rd, data.len() as u64, entry.name()) {
            Ok(bytes) => {
                out.files.push(ExtractedFile {
                    name: sanitise(entry.name()),
                    data: bytes,
                    depth,
                });
                Ok(EntryDecision::Continue)
            }
            Err(ReadFailure::Cap(e)) => {
                stopped = Some(e);
                Ok(EntryDecision::Stop)
            }
            Err(ReadFailure::Io(e)) => Err(Error::Io(e, std::borrow::Cow::Borrowed("entry"))),
        }
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    match result {
        Ok(()) => Ok(()),
        Err(Error::MaxMemLimited { .. }) => Err(ExtractError::Limit {
            limit: Limit::SevenzMemoryKb,
            detail: "7z decoder asks for more memory".into(),
        }),
        Err(
            Error::MaybeBadPassword(_)
            | Error::ChecksumVerificationFailed
            | Error::PasswordRequired,
        ) if encrypted => Err(ExtractError::WrongPassword),
        Err(e) if is_kdf_refusal(&e) => Err(kdf_limit(64, budget.limits.max_kdf_power)),
        // With a wrong key the AES layer yields noise, which the decoder
        // then rejects; 7-Zip reports the same as "Wrong password?".
        Err(_) if encrypted => Err(ExtractError::WrongPassword),
        Err(e) => Err(ExtractError::Damaged(e.to_string())),
    }
}

/// sevenz-rust2 refuses AES key derivation beyond its cap (2^N SHA-256
/// rounds, seconds to minutes of CPU each); it says so in its message.
fn is_kdf_refusal(e: &sevenz_rust2::Error) -> bool {
    e.to_string().contains("num_cycles_power")
}

fn kdf_limit(power: u8, max: u8) -> ExtractError {
    let detail = if power > 63 {
        "7zAES demands more key-derivation rounds than the decoder allows".to_owned()
    } else {
        format!("7zAES demands 2^{power} key-derivation rounds; at most 2^{max}")
    };
    ExtractError::Limit {
        limit: Limit::KdfRounds,
        detail,
    }
}

#[cfg(test)]
mod tests;

mod openpgp;
