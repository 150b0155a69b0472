use super::*;
use jiff::civil::date;

fn shipped() -> PolicySet {
    PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
}

#[test]
fn the_shipped_seed_policies_load() {
    let set = shipped();
    let mag = set.for_address("Security@Magenta.Example").unwrap();
    assert_eq!(mag.id, "magenta");
    assert_eq!(mag.receipt_at_least, Some(Within::BusinessDays(1)));
    assert_eq!(mag.receipt_within, Within::BusinessDays(2));
    assert_eq!(mag.feedback_within, Within::Days(14));
    let nc = set.for_address("security@netcompany.example").unwrap();
    assert_eq!(nc.subject_flags, vec!["Responsible disclosure"]);
    assert_eq!(nc.feedback_within, Within::BusinessDays(15));
    assert!(nc.feedback_preferred);
    assert_eq!(nc.plaintext, PlaintextRule::EncryptedArchiveOnly);
    let classes: Vec<&str> = nc.out_of_scope.iter().map(|o| o.class.as_str()).collect();
    for c in [
        "non-sensitive-cookies",
        "http-response-headers",
        "email-authentication",
        "jailbroken-device",
        "social-engineering",
        "automated-scan",
    ] {
        assert!(classes.contains(&c), "{c}");
    }
    let topics: Vec<&str> = nc.routing.iter().map(|r| r.topic.as_str()).collect();
    assert_eq!(topics, vec!["legal", "privacy", "whistleblower"]);
    assert!(mag.anonymous_reports && nc.anonymous_reports);
}

#[test]
fn deadlines_count_danish_business_days_in_copenhagen_time() {
    let set = shipped();
    let nc = set.for_address("security@netcompany.example").unwrap();
    // Wednesday 1 April 2026, 10:00 in Copenhagen (08:00 UTC, summer time).
    let received: Timestamp = "2026-04-01T08:00:00Z".parse().unwrap();
    let d = nc.deadlines(received);
    // 2 business days skip Maundy Thursday to Easter Monday: end of Wed 8 April.
    assert_eq!(d.acknowledge_by, "2026-04-08T22:00:00Z".parse().unwrap());
    // 15 business days, Easter skipped: end of Monday 27 April.
    let local = d.feedback_by.to_zoned(nc.timezone.clone());
    assert_eq!(
        (local.date(), local.hour(), local.minute()),
        (date(2026, 4, 28), 0, 0)
    );
    let mag = set.for_address("security@magenta.example").unwrap();
    // "within 2 weeks" is calendar time.
    let d = mag.deadlines(received);
    assert_eq!(d.feedback_by, "2026-04-15T08:00:00Z".parse().unwrap());
    assert_eq!(
        mag.due(received, mag.breach_notification_within),
        "2026-04-04T08:00:00Z".parse().unwrap()
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn errors_name_the_file_and_the_key() {
    let shipped_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/netcompany.toml"),
    )
    .unwrap();
    let cases = [
        (
            "receipt_within = \"2 business days\"",
            "receipt_within = \"2 fortnights\"",
            "service_levels.receipt_within",
        ),
        (
            "timezone = \"Europe/Copenhagen\"",
            "timezone = \"Mars/Olympus\"",
            "timezone",
        ),
        (
            "reference_prefix = \"NC\"",
            "reference_prefix = \"nc\"",
            "reference_prefix",
        ),
        (
            "subject_flags = [\"Responsible disclosure\"]",
            "subject_flags = [\" \"]",
            "subject_flags",
        ),
    ];
    for (from, to, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        assert!(shipped_text.contains(from), "{from}");
        write(dir.path(), "bad.toml", &shipped_text.replace(from, to));
        let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains(&format!("`{key}`")),
            "{err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "typo.toml",
        &shipped_text.replace("anonymous_reports", "anonymus_reports"),
    );
    let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("typo.toml") && err.contains("anonymus_reports"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", &shipped_text);
    write(
        dir.path(),
        "b.toml",
        &shipped_text
            .replace("id = \"netcompany\"", "id = \"other\"")
            .replace("\"NC\"", "\"OT\""),
    );
    let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("b.toml") && err.contains("`addresses`") && err.contains("a.toml"),
        "{err}"
    );
}

#[test]
fn business_time_skips_weekends_and_danish_holidays() {
    let set = shipped();
    let nc = set.for_address("security@netcompany.example").unwrap();
    let at = |d: jiff::civil::Date, h: i8| {
        d.at(h, 0, 0, 0)
            .to_zoned(nc.timezone.clone())
            .unwrap()
            .timestamp()
    };
    // Friday 16:00 to Monday 10:00: 8 h + 10 h.
    let friday = date(2026, 11, 27);
    let monday = date(2026, 11, 30);
    let d = nc.business_days_between(at(friday, 16), at(monday, 10));
    assert!((d - 18.0 / 24.0).abs() < 1e-9, "{d}");
    // Across Christmas: 23 Dec 12:00 to 28 Dec 12:00 (24-26 Dec closed,
    // 27 Dec a Sunday): half of the 23rd and half of the 28th.
    let d = nc.business_days_between(at(date(2026, 12, 23), 12), at(date(2026, 12, 28), 12));
    assert!((d - 1.0).abs() < 1e-9, "{d}");
    assert_eq!(
        nc.business_days_between(at(monday, 10), at(friday, 16)),
        0.0
    );
}

#[test]
fn a_digest_needs_an_hour_of_the_day_and_an_address() {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/netcompany.toml"),
    )
    .unwrap();
    let with = |digest: &str| {
        PolicySet::from_sources(vec![(
            "netcompany.toml".into(),
            format!("{base}\n{digest}"),
        )])
    };
    let ok = with("[digest]\nto = \"team@netcompany.example\"\n").unwrap();
    let d = ok.get("netcompany").unwrap().digest.clone().unwrap();
    assert_eq!((d.to.as_str(), d.hour), ("team@netcompany.example", 8));
    let late = with("[digest]\nto = \"team@netcompany.example\"\nhour = 24\n").unwrap_err();
    assert!(late.to_string().contains("digest.hour"), "{late}");
    let nobody = with("[digest]\nto = \"the team\"\n").unwrap_err();
    assert!(nobody.to_string().contains("digest.to"), "{nobody}");
}
