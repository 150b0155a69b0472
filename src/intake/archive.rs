//! Zip and 7z attachments: found by content (magic bytes), never by name or
//! declared type, and inspected without a password — format, how they are
//! encrypted, whether 7z headers are encrypted, and the entry names where
//! they can be read.
//!
//! Everything here reads attacker-made bytes: every count is capped, every
//! offset is checked against the buffer, and nothing is decompressed or
//! decrypted. Zip central directories are parsed by hand (the zip crate
//! does not expose the WinZip AES strength); 7z headers are read by
//! sevenz-rust2 under a memory limit.

use serde::{Deserialize, Serialize};

/// Entries listed per archive; the count is always exact.
const MAX_LISTED: usize = 1000;
/// Central-directory entries walked in a zip. A report archive holds a
/// handful; 65,535 is the classic zip limit.
const MAX_ZIP_ENTRIES: usize = 65_535;
/// Memory sevenz-rust2 may use to read a 7z header, in KiB. Headers are
/// tiny; 64 MiB refuses the "huge dictionary" trick at this stage.
const SEVENZ_HEADER_MEMORY_KB: usize = 64 * 1024;

const ZIP_LOCAL: &[u8] = b"PK\x03\x04";
const ZIP_EMPTY: &[u8] = b"PK\x05\x06";
const SEVENZ: &[u8] = b"7z\xBC\xAF\x27\x1C";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Zip,
    #[serde(rename = "7z")]
    SevenZ,
}

/// What is known of one archive before any password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    pub format: Format,
    /// `none`, `zipcrypto`, `winzip-aes-128`/`-192`/`-256`, `7zaes`, or
    /// `mixed` when entries differ.
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
    fn empty(format: Format) -> Self {
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

    pub fn is_encrypted(&self) -> bool {
        self.encryption != "none"
    }
}

/// The archive format of `data`, by its first bytes.
pub fn detect(data: &[u8]) -> Option<Format> {
    if data.starts_with(ZIP_LOCAL) || data.starts_with(ZIP_EMPTY) {
        Some(Format::Zip)
    } else if data.starts_with(SEVENZ) {
        Some(Format::SevenZ)
    } else {
        None
    }
}

/// Inspects an archive, if `data` is one.
pub fn inspect(data: &[u8]) -> Option<ArchiveInfo> {
    match detect(data)? {
        Format::Zip => Some(inspect_zip(data)),
        Format::SevenZ => Some(inspect_7z(data)),
    }
}

/// Whether a stored name would escape an extraction root on some system.
pub fn is_unsafe_name(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/')
        || n.contains('\0')
        || n.split('/').any(|c| c == "..")
        || n.as_bytes().get(1) == Some(&b':')
            && n.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
}

fn display_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(512)
        .collect()
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn combine(kinds: &[String]) -> String {
    match kinds.first() {
        None => "none".into(),
        Some(first) if kinds.iter().all(|k| k == first) => first.clone(),
        Some(_) => "mixed".into(),
    }
}

fn inspect_zip(data: &[u8]) -> ArchiveInfo {
    let mut info = ArchiveInfo::empty(Format::Zip);
    // End of central directory: 22 bytes plus a comment of up to 64 KiB.
    let lowest = data.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=data.len().saturating_sub(22))
        .rev()
        .find(|&i| data[i..].starts_with(ZIP_EMPTY));
    let Some(eocd) = eocd else {
        info.problem = Some("no end of central directory: truncated or not a zip".into());
        return info;
    };
    let (Some(count), Some(cd_offset)) = (u16_at(data, eocd + 10), u32_at(data, eocd + 16)) else {
        info.problem = Some("truncated end of central directory".into());
        return info;
    };
    if count == u16::MAX || cd_offset == u32::MAX {
        info.problem = Some("zip64 archive: entries not inspected".into());
        return info;
    }
    let mut at = cd_offset as usize;
    let mut kinds: Vec<String> = Vec::new();
    for _ in 0..usize::from(count).min(MAX_ZIP_ENTRIES) {
        if data.get(at..at + 4) != Some(b"PK\x01\x02".as_slice()) {
            info.problem = Some("central directory entry missing: truncated or malformed".into());
            break;
        }
        let (
            Some(made_by),
            Some(flags),
            Some(method),
            Some(name_len),
            Some(extra_len),
            Some(comment_len),
            Some(ext_attr),
        ) = (
            u16_at(data, at + 4),
            u16_at(data, at + 8),
            u16_at(data, at + 10),
            u16_at(data, at + 28),
            u16_at(data, at + 30),
            u16_at(data, at + 32),
            u32_at(data, at + 38),
        )
        else {
            info.problem = Some("truncated central directory entry".into());
            break;
        };
        let name_at = at + 46;
        let extra_at = name_at + usize::from(name_len);
        let next = extra_at + usize::from(extra_len) + usize::from(comment_len);
        let (Some(name), Some(extra)) = (
            data.get(name_at..extra_at),
            data.get(extra_at..extra_at + usize::from(extra_len)),
        ) else {
            info.problem = Some("truncated central directory entry".into());
            break;
        };
        info.entry_count += 1;
        let name = display_name(name);
        if is_unsafe_name(&name) {
            info.unsafe_names += 1;
        }
        // Unix "made by" with the symlink file type in the high attribute bits.
        if made_by >> 8 == 3 && (ext_attr >> 16) & 0o170_000 == 0o120_000 {
            info.symlinks += 1;
        }
        if flags & 1 == 1 {
            kinds.push(if method == 99 {
                aes_strength(extra)
            } else {
                "zipcrypto".into()
            });
        }
        if info.entries.len() < MAX_LISTED {
            info.entries.push(name);
        }
        at = next;
    }
    info.encryption = if kinds.is_empty() {
        "none".into()
    } else if kinds.len() < info.entry_count {
        "mixed".into()
    } else {
        combine(&kinds)
    };
    info
}

/// The WinZip AES extra field (0x9901): vendor version, "AE", strength.
fn aes_strength(extra: &[u8]) -> String {
    let mut at = 0;
    while let (Some(id), Some(size)) = (u16_at(extra, at), u16_at(extra, at + 2)) {
        if id == 0x9901 {
            return match extra.get(at + 8) {
                Some(1) => "winzip-aes-128".into(),
                Some(2) => "winzip-aes-192".into(),
                Some(3) => "winzip-aes-256".into(),
                _ => "winzip-aes".into(),
            };
        }
        at += 4 + usize::from(size);
    }
    "winzip-aes".into()
}

fn inspect_7z(data: &[u8]) -> ArchiveInfo {
    let mut info = ArchiveInfo::empty(Format::SevenZ);
    let mut cursor = std::io::Cursor::new(data);
    let read = std::panic::catch_unwind(move || {
        sevenz_rust2::Archive::read_with_memory_limit(
            &mut cursor,
            &sevenz_rust2::Password::empty(),
            SEVENZ_HEADER_MEMORY_KB,
        )
    });
    match read {
        Ok(Ok(archive)) => {
            let mut kinds = Vec::new();
            for (i, f) in archive.files.iter().enumerate() {
                info.entry_count += 1;
                if is_unsafe_name(&f.name) {
                    info.unsafe_names += 1;
                }
                if f.has_stream {
                    kinds.push(if archive.is_file_encrypted(i) {
                        "7zaes".to_owned()
                    } else {
                        "none".to_owned()
                    });
                }
                if info.entries.len() < MAX_LISTED {
                    info.entries.push(display_name(f.name.as_bytes()));
                }
            }
            info.encryption = combine(&kinds);
        }
        Ok(Err(sevenz_rust2::Error::PasswordRequired)) => {
            info.headers_encrypted = true;
            info.encryption = "7zaes".into();
        }
        Ok(Err(e)) => info.problem = Some(format!("unreadable 7z: {e}")),
        Err(_) => info.problem = Some("the 7z reader panicked".into()),
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/fixtures/archives/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn fixtures_made_by_the_real_tools() {
        let cases = [
            ("report-aes-he.7z", Format::SevenZ, "7zaes", true, 0),
            ("report-aes.7z", Format::SevenZ, "7zaes", false, 2),
            ("report-aes256.zip", Format::Zip, "winzip-aes-256", false, 2),
            ("report-zipcrypto.zip", Format::Zip, "zipcrypto", false, 2),
            ("zip-in-7z.7z", Format::SevenZ, "7zaes", false, 1),
            ("plain.zip", Format::Zip, "none", false, 1),
        ];
        for (name, format, encryption, headers, listed) in cases {
            let info = inspect(&fixture(name)).unwrap();
            assert_eq!(info.format, format, "{name}");
            assert_eq!(info.encryption, encryption, "{name}");
            assert_eq!(info.headers_encrypted, headers, "{name}");
            assert_eq!(info.entries.len(), listed, "{name}: {info:?}");
            assert!(info.problem.is_none(), "{name}: {info:?}");
        }
        let info = inspect(&fixture("report-aes.7z")).unwrap();
        assert_eq!(info.entries, vec!["report.txt", "screenshot.png"]);
    }

    #[test]
    fn by_content_not_by_name_and_truncation_is_a_reason() {
        assert_eq!(detect(b"%PDF-1.7"), None);
        assert_eq!(detect(b"PK\x03\x04rest"), Some(Format::Zip));
        let zip = fixture("report-zipcrypto.zip");
        let cut = inspect(&zip[..zip.len() / 2]).unwrap();
        assert!(cut.problem.is_some(), "{cut:?}");
        let sz = fixture("report-aes.7z");
        let cut = inspect(&sz[..sz.len() - 40]).unwrap();
        assert!(cut.problem.is_some(), "{cut:?}");
    }

    #[test]
    fn unsafe_names() {
        for n in [
            "../etc/passwd",
            "/abs",
            "C:\\win",
            "a/../../b",
            "x\0y",
            "..\\..\\evil",
        ] {
            assert!(is_unsafe_name(n), "{n}");
        }
        for n in ["report.txt", "dir/file..txt", "..hidden"] {
            assert!(!is_unsafe_name(n), "{n}");
        }
    }
}
