//! Zip and 7z attachments: found by content (magic bytes), never by name or
//! declared type, and inspected without a password — format, how they are
//! encrypted, whether 7z headers are encrypted, and the entry names where
//! they can be read.
//!
//! Everything here reads attacker-made bytes: every count is capped, every
//! offset is checked against the buffer, and nothing is decompressed or
//! decrypted. Zip central directories are read by the zip crate (its raw
//! entries and the WinZip AES strength, without decrypting anything); 7z
//! headers are read by sevenz-rust2 under a memory limit.

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

pub use crate::model::archive::{ArchiveInfo, Format};

/// The archive format of `data`, by its first bytes; for OpenPGP, by its
/// first packets: a message encrypted with a password and to no key.
pub fn detect(data: &[u8]) -> Option<Format> {
    if data.starts_with(ZIP_LOCAL) || data.starts_with(ZIP_EMPTY) {
        Some(Format::Zip)
    } else if data.starts_with(SEVENZ) {
        Some(Format::SevenZ)
    } else if password_only(data) {
        Some(Format::OpenPgp)
    } else {
        None
    }
}

const PGP_ARMOR: &[u8] = b"-----BEGIN PGP MESSAGE-----";

/// `data` as an OpenPGP message (armored or binary), its header packets
/// read; the encrypted content is not touched.
pub fn openpgp_message(data: &[u8]) -> Option<pgp::composed::Message<'_>> {
    let start = data.iter().position(|b| !b.is_ascii_whitespace())?;
    let data = &data[start..];
    if data.starts_with(PGP_ARMOR) {
        pgp::composed::Message::from_armor(data)
            .ok()
            .map(|(m, _)| m)
    } else if data.first().is_some_and(|b| b & 0x80 != 0) {
        pgp::composed::Message::from_bytes(data).ok()
    } else {
        None
    }
}

/// An OpenPGP message whose session key is encrypted with passwords only.
fn password_only(data: &[u8]) -> bool {
    use pgp::composed::{Esk, Message};
    match openpgp_message(data) {
        Some(Message::Encrypted { esk, .. }) => {
            !esk.is_empty()
                && esk
                    .iter()
                    .all(|e| matches!(e, Esk::SymKeyEncryptedSessionKey(_)))
        }
        _ => false,
    }
}

/// Inspects an archive, if `data` is one.
pub fn inspect(data: &[u8]) -> Option<ArchiveInfo> {
    match detect(data)? {
        Format::Zip => Some(inspect_zip(data)),
        Format::SevenZ => Some(inspect_7z(data)),
        Format::OpenPgp => Some(ArchiveInfo {
            encryption: "openpgp-password".into(),
            entry_count: 1,
            ..ArchiveInfo::empty(Format::OpenPgp)
        }),
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

fn combine(kinds: &[String]) -> String {
    match kinds.first() {
        None => "none".into(),
        Some(first) if kinds.iter().all(|k| k == first) => first.clone(),
        Some(_) => "mixed".into(),
    }
}

fn inspect_zip(data: &[u8]) -> ArchiveInfo {
    let mut info = ArchiveInfo::empty(Format::Zip);
    let mut zip = match zip::ZipArchive::new(std::io::Cursor::new(data)) {
        Ok(zip) => zip,
        Err(e) => {
            info.problem = Some(format!("unreadable zip: {e}"));
            return info;
        }
    };
    let mut kinds: Vec<String> = Vec::new();
    let mut content_less = 0;
    for i in 0..zip.len().min(MAX_ZIP_ENTRIES) {
        let (name, encrypted, symlink, directory) = match zip.by_index_raw(i) {
            Ok(f) => (
                display_name(f.name_raw()),
                f.encrypted(),
                f.is_symlink(),
                // A directory entry has no content to encrypt; tools store
                // it clear even in an encrypted archive.
                f.is_dir() && f.size() == 0,
            ),
            Err(e) => {
                info.problem = Some(format!("entry {i}: {e}"));
                break;
            }
        };
        info.entry_count += 1;
        if is_unsafe_name(&name) {
            info.unsafe_names += 1;
        }
        if symlink {
            info.symlinks += 1;
        }
        if encrypted {
            kinds.push(aes_strength(&mut zip, i));
        } else if directory {
            content_less += 1;
        }
        if info.entries.len() < MAX_LISTED {
            info.entries.push(name);
        }
    }
    info.encryption = if kinds.is_empty() {
        "none".into()
    } else if kinds.len() + content_less < info.entry_count {
        "mixed".into()
    } else {
        combine(&kinds)
    };
    info
}

/// How entry `i` is encrypted: WinZip AES with its key strength (the
/// crate reads its extra field), else the legacy ZipCrypto.
fn aes_strength<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    i: usize,
) -> String {
    use zip::AesMode;
    match zip.get_aes_verification_key_and_salt(i) {
        Ok(None) => "zipcrypto".into(),
        Ok(Some(aes)) => match aes.aes_mode {
            AesMode::Aes128 => "winzip-aes-128".into(),
            AesMode::Aes192 => "winzip-aes-192".into(),
            AesMode::Aes256 => "winzip-aes-256".into(),
        },
        // The extra field says AES but its content cannot be found.
        Err(_) => "winzip-aes".into(),
    }
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

/// 7zAES coder id.
const AES_CODER: &[u8] = &[0x06, 0xF1, 0x07, 0x01];
/// Folders and coders walked in a 7z header; real archives have a few.
const MAX_7Z_CODERS: u64 = 64;
/// Encoded (encrypted or compressed) 7z header size read for its coders.
/// It only describes the packed header stream: tens of bytes.
const MAX_7Z_ENCODED_HEADER: u64 = 64 * 1024;

/// The largest 7zAES key-derivation power (2^N SHA-256 rounds) any coder
/// of a 7z archive asks for, headers included, read without a password
/// and without deriving anything. `None` if it has no AES coder or cannot
/// be read (the decoder then refuses it by itself).
pub fn sevenz_kdf_power(data: &[u8]) -> Option<u8> {
    if detect(data) != Some(Format::SevenZ) {
        return None;
    }
    let mut cursor = std::io::Cursor::new(data);
    let read = std::panic::catch_unwind(move || {
        sevenz_rust2::Archive::read_with_memory_limit(
            &mut cursor,
            &sevenz_rust2::Password::empty(),
            SEVENZ_HEADER_MEMORY_KB,
        )
    });
    let powers: Vec<u8> = match read {
        Ok(Ok(archive)) => archive
            .blocks
            .iter()
            .flat_map(|b| &b.coders)
            .filter(|c| c.encoder_method_id() == AES_CODER)
            .filter_map(|c| aes_power(c.properties()))
            .collect(),
        // Encrypted headers: the coders of the header stream are in the
        // clear part that says how to unpack it.
        _ => encoded_header_coders(data)?
            .into_iter()
            .filter(|(id, _)| id == AES_CODER)
            .filter_map(|(_, props)| aes_power(&props))
            .collect(),
    };
    powers.into_iter().max()
}

/// The power in 7zAES properties; 63 means a raw key (no derivation).
fn aes_power(props: &[u8]) -> Option<u8> {
    let power = props.first()? & 0x3F;
    (power != 0x3F).then_some(power)
}

/// A 7z NUMBER (1 to 9 bytes, length in the first byte's high bits).
fn seven_number(d: &[u8], at: &mut usize) -> Option<u64> {
    let first = *d.get(*at)?;
    *at += 1;
    let mut mask = 0x80u8;
    let mut value = 0u64;
    for i in 0..8 {
        if first & mask == 0 {
            let high = u64::from(first & mask.wrapping_sub(1));
            return Some(value | (high << (8 * i)));
        }
        value |= u64::from(*d.get(*at)?) << (8 * i);
        *at += 1;
        mask >>= 1;
    }
    Some(value)
}

/// `(method id, properties)` of every coder describing an encoded header.
fn encoded_header_coders(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let offset = u64::from_le_bytes(data.get(12..20)?.try_into().ok()?);
    let size = u64::from_le_bytes(data.get(20..28)?.try_into().ok()?);
    if size > MAX_7Z_ENCODED_HEADER {
        return None;
    }
    let start = usize::try_from(32u64.checked_add(offset)?).ok()?;
    let header = data.get(start..start.checked_add(size as usize)?)?;
    let mut at = 0;
    // kEncodedHeader, then StreamsInfo: PackInfo, then UnpackInfo.
    if *header.first()? != 0x17 {
        return None;
    }
    at += 1;
    if *header.get(at)? == 0x06 {
        at += 1;
        seven_number(header, &mut at)?; // pack position
        let streams = seven_number(header, &mut at)?.min(MAX_7Z_CODERS);
        loop {
            match *header.get(at)? {
                0x00 => {
                    at += 1;
                    break;
                }
                0x09 => {
                    at += 1;
                    for _ in 0..streams {
                        seven_number(header, &mut at)?;
                    }
                }
                // CRCs or anything else: the coders are not reachable
                // without understanding it; give up rather than guess.
                _ => return None,
            }
        }
    }
    if *header.get(at)? != 0x07 || *header.get(at + 1)? != 0x0B {
        return None;
    }
    at += 2;
    let folders = seven_number(header, &mut at)?;
    if folders > MAX_7Z_CODERS || *header.get(at)? != 0 {
        return None;
    }
    at += 1;
    let mut coders = Vec::new();
    for _ in 0..folders {
        let count = seven_number(header, &mut at)?;
        if count > MAX_7Z_CODERS {
            return None;
        }
        // Stream counts come from the sender: each is capped before it is
        // added, so no sum can overflow.
        let (mut ins, mut outs) = (0u64, 0u64);
        for _ in 0..count {
            let flags = *header.get(at)?;
            at += 1;
            let id_len = usize::from(flags & 0x0F);
            let id = header.get(at..at.checked_add(id_len)?)?.to_vec();
            at += id_len;
            let (i, o) = if flags & 0x10 != 0 {
                (
                    seven_number(header, &mut at)?,
                    seven_number(header, &mut at)?,
                )
            } else {
                (1, 1)
            };
            if i > MAX_7Z_CODERS || o > MAX_7Z_CODERS {
                return None;
            }
            ins += i;
            outs += o;
            let mut props = Vec::new();
            if flags & 0x20 != 0 {
                let n = usize::try_from(seven_number(header, &mut at)?).ok()?;
                props = header.get(at..at.checked_add(n)?)?.to_vec();
                at += n;
            }
            coders.push((id, props));
        }
        if ins > MAX_7Z_CODERS || outs > MAX_7Z_CODERS {
            return None;
        }
        // Bind pairs, then packed-stream indices, to reach the next folder.
        let pairs = outs.saturating_sub(1);
        for _ in 0..pairs * 2 {
            seven_number(header, &mut at)?;
        }
        let packed = ins.saturating_sub(pairs);
        if packed > 1 {
            for _ in 0..packed {
                seven_number(header, &mut at)?;
            }
        }
    }
    Some(coders)
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
    fn every_entry_must_be_encrypted_to_count_as_encrypted() {
        let mixed = inspect(&fixture("mixed.zip")).unwrap();
        assert_eq!(mixed.encryption, "mixed");
        assert!(mixed.is_encrypted() && !mixed.fully_encrypted());
        let folder = inspect(&fixture("with-folder.zip")).unwrap();
        assert_eq!(folder.encryption, "zipcrypto", "{folder:?}");
        assert!(folder.fully_encrypted());
        assert!(!inspect(&fixture("plain.zip")).unwrap().fully_encrypted());
        assert!(
            inspect(&fixture("report-aes-he.7z"))
                .unwrap()
                .fully_encrypted()
        );
    }

    #[test]
    fn key_derivation_rounds_are_read_without_a_password() {
        // 7-Zip writes 2^19, in the data coder and in an encrypted
        // header's coder alike.
        assert_eq!(sevenz_kdf_power(&fixture("report-aes.7z")), Some(19));
        assert_eq!(sevenz_kdf_power(&fixture("report-aes-he.7z")), Some(19));
        assert_eq!(sevenz_kdf_power(&fixture("hostile/kdf-22.7z")), Some(22));
        assert_eq!(sevenz_kdf_power(&fixture("hostile/kdf-22-he.7z")), Some(22));
        assert_eq!(
            sevenz_kdf_power(&fixture("hostile/kdf-rounds.7z")),
            Some(62)
        );
        assert_eq!(sevenz_kdf_power(&fixture("plain.zip")), None);
        let he = fixture("report-aes-he.7z");
        for cut in [12, 40, he.len() / 2, he.len() - 3] {
            let _ = sevenz_kdf_power(&he[..cut]);
        }
        // Found by `make fuzz FUZZ_TARGET=archive`: coder stream counts
        // near u64::MAX in an encoded header overflowed their sum.
        assert_eq!(
            sevenz_kdf_power(&fixture("hostile/fuzz-coder-counts.7z")),
            None
        );
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
