use super::*;

const PW: &str = "correct horse battery staple";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/archives/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn every_good_fixture_opens_with_the_right_password_only() {
    for name in [
        "report-aes-he.7z",
        "report-aes.7z",
        "report-aes256.zip",
        "report-zipcrypto.zip",
    ] {
        let data = fixture(name);
        let got =
            extract(&data, PW, &ExtractLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let names: Vec<&str> = got.files().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["report.txt", "screenshot.png"], "{name}");
        assert!(
            String::from_utf8_lossy(&got.files()[0].data)
                .contains("returns every customer's invoices")
        );
        assert_eq!(archive::detect(&got.files()[1].data), None);
        for wrong in ["wrong", "", "correct horse battery stapl"] {
            assert_eq!(
                extract(&data, wrong, &ExtractLimits::default()).unwrap_err(),
                ExtractError::WrongPassword,
                "{name}"
            );
        }
    }
}

#[test]
fn zipcrypto_header_collisions_are_caught_by_the_crc() {
    // About 1 in 256 wrong passwords pass ZipCrypto's one-byte header
    // check; try enough of them that some must, and require every one
    // to be refused.
    let data = fixture("report-zipcrypto.zip");
    for i in 0..1500 {
        let pw = format!("wrong-{i}");
        assert_eq!(
            extract(&data, &pw, &ExtractLimits::default()).unwrap_err(),
            ExtractError::WrongPassword,
            "{pw}"
        );
    }
}

#[test]
fn a_zip_inside_the_7z_is_opened_too() {
    let got = extract(&fixture("zip-in-7z.7z"), PW, &ExtractLimits::default()).unwrap();
    let names: Vec<(&str, usize)> = got
        .files()
        .iter()
        .map(|f| (f.name.as_str(), f.depth))
        .collect();
    assert_eq!(names, vec![("inner.zip", 1), ("report.txt", 2)]);
    let shallow = ExtractLimits {
        max_depth: 1,
        ..ExtractLimits::default()
    };
    assert!(matches!(
        extract(&fixture("zip-in-7z.7z"), PW, &shallow),
        Err(ExtractError::Limit {
            limit: Limit::MaxDepth,
            ..
        })
    ));
}

fn hostile(name: &str) -> Result<Extracted, ExtractError> {
    let data = std::fs::read(format!(
        "{}/fixtures/archives/hostile/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let start = Instant::now();
    let result = extract(&data, PW, &ExtractLimits::default());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{name} took {:?}",
        start.elapsed()
    );
    result
}

#[test]
fn hostile_archives_are_refused_by_name_in_bounded_time() {
    let limit = |name: &str| match hostile(name) {
        Err(ExtractError::Limit { limit, .. }) => limit.name(),
        other => panic!("{name}: {other:?}"),
    };
    assert!(["max_ratio", "max_total_bytes"].contains(&limit("overlap-bomb.zip")));
    assert!(["max_ratio", "max_total_bytes", "max_depth"].contains(&limit("nested-bomb.zip")));
    assert_eq!(limit("huge-dictionary.7z"), "sevenz_memory_kb");
    assert_eq!(limit("kdf-rounds.7z"), "kdf_rounds");
    assert!(
        matches!(hostile("truncated.7z"), Err(ExtractError::Damaged(_))),
        "{:?}",
        hostile("truncated.7z")
    );
}

#[test]
fn one_unlock_has_one_budget_and_refuses_slow_key_derivation_first() {
    // Above 7-Zip's 2^19 rounds: refused before any round runs, with
    // encrypted headers too.
    for name in ["kdf-22.7z", "kdf-22-he.7z"] {
        let start = Instant::now();
        match hostile(name) {
            Err(ExtractError::Limit {
                limit: Limit::KdfRounds,
                detail,
            }) => assert!(detail.contains("2^22"), "{detail}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{name}");
    }
    let good = fixture("report-aes.7z");
    let tight = ExtractLimits {
        max_archives: 3,
        ..ExtractLimits::default()
    };
    let four: Vec<&[u8]> = vec![&good; 4];
    assert!(extract_all(&four, PW, &tight).iter().all(|r| matches!(
        r,
        Err(ExtractError::Limit {
            limit: Limit::MaxArchives,
            ..
        })
    )));
    // The byte budget is shared: three copies of the report fit one
    // archive's worth of output, not three.
    let one = extract(&good, PW, &ExtractLimits::default()).unwrap();
    let size: u64 = one.files().iter().map(|f| f.data.len() as u64).sum();
    let shared = ExtractLimits {
        max_total_bytes: size * 2,
        ..ExtractLimits::default()
    };
    let three: Vec<&[u8]> = vec![&good; 3];
    let got = extract_all(&three, PW, &shared);
    assert!(got[0].is_ok() && got[1].is_ok(), "{got:?}");
    assert!(
        matches!(
            &got[2],
            Err(ExtractError::Limit {
                limit: Limit::MaxTotalBytes,
                ..
            })
        ),
        "{:?}",
        got[2]
    );
}

#[test]
fn zip_slip_names_are_defused_and_symlinks_only_recorded() {
    let got = hostile("zip-slip.zip").unwrap();
    let names: Vec<&str> = got.files().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "tmp_evil.txt",
            "etc_cron.d_evil",
            "Windows_System32_evil.dll",
            "report.txt"
        ]
    );
    let got = hostile("symlink.zip").unwrap();
    assert_eq!(got.symlinks(), ["passwd-link"]);
    let names: Vec<&str> = got.files().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["report.txt"],
        "the link's target is never read as content"
    );
}

#[test]
fn names_are_never_paths() {
    assert_eq!(sanitise("../../etc/passwd"), "etc_passwd");
    assert_eq!(sanitise("/abs/x.txt"), "abs_x.txt");
    assert_eq!(sanitise("C:\\Windows\\evil.dll"), "Windows_evil.dll");
    assert_eq!(sanitise("..\\..\\x"), "x");
    assert_eq!(sanitise("a\0b"), "ab");
    assert_eq!(sanitise(".."), "unnamed");
}
