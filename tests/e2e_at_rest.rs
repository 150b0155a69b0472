//! Evidence encrypted at rest: after reports are received, filed and
//! unlocked, a dump of the database holds none of their content; the master
//! key must be private and must match; plaintext left by an older version
//! is sealed at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, deliver_from, fixture, sh};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_the_database_reveals_no_report_content() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    for name in [
        "en-netcompany-xss.eml",
        "screenshots-netcompany.eml",
        "reply-netcompany.eml",
    ] {
        deliver_from(
            &server,
            "alice@researcher.example",
            "security@netcompany.example",
            &fixture(name),
        )
        .await;
    }
    server.wait_filed(3);
    let (ok, out, err) = server.cli(&["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    let first: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let reference = first[0]["reference"].as_str().unwrap().to_owned();
    assert!(
        server
            .cli(
                &["cases", "note", &reference],
                Some("Reproduced: the agent cookie leaks via onerror.")
            )
            .0
    );
    // The CLI, holding the key, reads everything back.
    let (_, shown, _) = server.cli(&["cases", "show", &reference], None);
    assert!(shown.contains("renders HTML without escaping"), "{shown}");
    // Make sure SQLite has written everything to its files.
    if !server.is_postgres() {
        let mut db = server.db().await;
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut db)
            .await
            .unwrap();
    }
    let dump = server.database_bytes();
    assert!(dump.len() > 10_000, "the dump holds the data");
    for phrase in [
        "renders HTML without escaping",
        "stored XSS in the support portal",
        "Alice Researcher",
        "onerror=alert(document.domain)",
        "exposed admin panel",
        "the agent cookie leaks",
        "support.netcompany.example",
        "panel.png",
    ] {
        assert!(
            !contains(&dump, phrase),
            "{phrase:?} found in the database dump"
        );
    }
    // Envelope metadata is not content and stays readable for ops.
    assert!(contains(&dump, "security@netcompany.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_must_be_private_and_must_match() {
    let mut server = Server::start(Opts::default());
    let key = server.data_dir().join("master.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    server.kill9();

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = sh(Command::new(common::BIN)
        .args(["serve", "--config"])
        .arg(server.config_path()));
    assert!(!ok);
    assert!(
        out.contains("is readable by others (mode 644); chmod 600 it"),
        "{out}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let original = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let (ok, out) = sh(Command::new(common::BIN)
        .args(["messages", "list", "--config"])
        .arg(server.config_path()));
    assert!(!ok);
    assert!(
        out.contains("the master key does not open this store's data"),
        "{out}"
    );

    std::fs::remove_file(&key).unwrap();
    let (ok, out) = sh(Command::new(common::BIN)
        .args(["messages", "list", "--config"])
        .arg(server.config_path()));
    assert!(!ok);
    assert!(out.contains("restore the key from backup"), "{out}");
    assert!(
        !key.exists(),
        "no new key over a store sealed with the old one"
    );

    std::fs::write(&key, original).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    server.restart();
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_left_by_an_older_version_is_sealed_at_start_up() {
    let mut server = Server::start(Opts::default());
    let mut db = server.db().await;
    let raw = fixture("en-netcompany-xss.eml");
    sqlx::query(
        "INSERT INTO messages (queue_id, received_at, session_id, peer, helo, mail_from, rcpt_to, size, raw)
         VALUES ('legacy1', 1795400000, 's', '127.0.0.1:1', 'old.example', 'a@b.example', '[\"security@netcompany.example\"]', $1, $2)",
    )
    .bind(raw.len() as i64)
    .bind(&raw)
    .execute(&mut db)
    .await
    .unwrap();
    // A case an older version wrote in clear, with an event and an asset,
    // and the report-derived values it kept in clear: ids, CVSS, channel,
    // a suggestion, archive inspection.
    let case_id: (i64,) = sqlx::query_as(
        "INSERT INTO cases (org, reference, kind, state, subject, anonymous, description, cve_ids, cwe_ids,
             cvss_vector, cvss_score, cvss_severity, channel, received_at, acknowledge_by, feedback_by, updated_at)
         VALUES ('netcompany', 'NC-2025-0042', 'disclosure', 'new', 'legacy subject phrase', 0,
             'legacy description phrase', '[\"CVE-2025-31337\"]', '[\"CWE-918\"]',
             'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N', 8.2, 'high', 'signal', 1, 2, 3, 1) RETURNING id",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO case_suggestions (case_id, kind, name, label, matched)
         VALUES ($1, 'warning', 'zipcrypto', 'Legacy ZipCrypto', 'legacy-attachment-name.zip')",
    )
    .bind(case_id.0)
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO case_evidence (case_id, kind, name, declared_type, size, forwarded, data, archive, object_id)
         VALUES ($1, 'attachment', NULL, 'application/x-legacy-type', 3, 0, $2, $3, 'legacyobject')",
    )
    .bind(case_id.0)
    .bind(b"DMX1not-really-sealed".to_vec())
    .bind(r#"{"format":"zip","encryption":"zipcrypto","headers_encrypted":false,"entries":["legacy-entry-name.txt"],"entry_count":1,"symlinks":0,"unsafe_names":0,"problem":null}"#)
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO case_events (case_id, at, kind, actor, detail) VALUES ($1, 1, 'note', 'old', 'legacy note phrase')")
        .bind(case_id.0)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO case_assets (case_id, value, in_scope) VALUES ($1, 'legacy-asset.netcompany.example', 1)")
        .bind(case_id.0)
        .execute(&mut db)
        .await
        .unwrap();
    drop(db);
    server.kill9();
    // Restart with intake on: the legacy rows are sealed, then filed.
    let config = std::fs::read_to_string(server.config_path())
        .unwrap()
        .replace("enabled = false", INTAKE_ON);
    std::fs::write(server.config_path(), config).unwrap();
    server.restart();
    let stored = server.raw_messages().await;
    assert_eq!(
        stored,
        vec![raw],
        "sealed at rest, and opens to the original"
    );
    server.wait_filed(1);
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let cases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(cases.len(), 2);
    let (_, shown, _) = server.cli(&["cases", "show", "NC-2025-0042"], None);
    for phrase in [
        "legacy subject phrase",
        "legacy description phrase",
        "legacy note phrase",
        "legacy-asset.netcompany.example",
        "CVE-2025-31337",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N",
        "legacy-attachment-name.zip",
        "application/x-legacy-type",
    ] {
        assert!(shown.contains(phrase), "{phrase} readable: {shown}");
    }
    let (_, json, _) = server.cli(&["cases", "show", "NC-2025-0042", "--json"], None);
    let legacy: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(legacy["cvss_score"], 8.2);
    assert_eq!(legacy["channel"], "signal");
    assert_eq!(legacy["cwe_ids"][0], "CWE-918");
    assert_eq!(
        legacy["evidence"][0]["archive"]["entries"][0],
        "legacy-entry-name.txt"
    );
    if !server.is_postgres() {
        let mut db = server.db().await;
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut db)
            .await
            .unwrap();
    }
    let dump = server.database_bytes();
    for phrase in [
        "legacy subject phrase",
        "legacy description phrase",
        "legacy note phrase",
        "legacy-asset",
        "CVE-2025-31337",
        "CWE-918",
        "AV:N/AC:L/PR:N",
        "legacy-attachment-name",
        "legacy-entry-name",
        "x-legacy-type",
    ] {
        assert!(!contains(&dump, phrase), "{phrase} sealed at rest");
    }
}

/// Every string `cases show --json` gives for a case, with where it is.
fn strings(v: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => out.push((path.to_owned(), s.clone())),
        serde_json::Value::Array(a) => {
            for x in a {
                strings(x, &format!("{path}[]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                strings(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// What may stay in clear: what filtering and clocks need, delivery facts,
/// envelope addresses (ops metadata), and names of our own.
const CLEAR: &[&str] = &[
    ".reference",
    ".org",
    ".kind",
    ".state",
    ".close_reason",
    ".tls_version",
    ".tls_cipher",
    ".reporter_address",
    ".evidence[].object_id",
    ".evidence[].kind",
    ".timeline[].kind",
    ".timeline[].actor",
    ".conversation[].sender",
    ".conversation[].tls_version",
    // The conversation: message kinds, TLS versions, who sent what (the
    // sender as the envelope names it, `us`, an analyst), where we sent
    // it (ops metadata, like the outbox's list) and how delivery went.
    ".thread[].kind",
    ".thread[].tls_version",
    ".thread[].from",
    ".thread[].to",
    ".thread[].delivery",
    ".thread[].delivery_reason",
    // Possible duplicates: other cases' references (in clear like every
    // reference); the reasons are our words around values checked above.
    ".duplicates[].reference",
    ".duplicates[].reason",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_a_report_gave_is_sealed() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    // What a dump holds before any report: the schema, and pg_dump's own
    // preamble ("SET client_min_messages = warning;"). A value found there
    // proves nothing.
    let empty = server.database_bytes();
    let zipcrypto = std::fs::read(format!(
        "{}/fixtures/archives/report-zipcrypto.zip",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let sevenz = std::fs::read(format!(
        "{}/fixtures/archives/report-aes.7z",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mails = [
        fixture("en-netcompany-xss.eml"),
        fixture("screenshots-netcompany.eml"),
        fixture("out-of-scope-netcompany.eml"),
        fixture("forwarded-netcompany.eml"),
        common::mail_with_attachments(
            "Responsible disclosure: archives",
            "CVE-2026-40404 and CWE-639 in https://files.netcompany.example/export",
            &[
                ("attacker-chosen-archive-name.zip", &zipcrypto),
                ("second-archive-name.7z", &sevenz),
            ],
        ),
    ];
    for m in &mails {
        deliver_from(
            &server,
            "alice@researcher.example",
            "security@netcompany.example",
            m,
        )
        .await;
    }
    server.wait_filed(mails.len());
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let last = list.last().unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, _, err) = server.cli(
        &["unlock", &last, "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert!(ok, "{err}");
    let mut values = Vec::new();
    for c in &list {
        let (_, json, _) = server.cli(
            &["cases", "show", c["reference"].as_str().unwrap(), "--json"],
            None,
        );
        let case: serde_json::Value = serde_json::from_str(&json).unwrap();
        strings(&case, "", &mut values);
    }
    let paths: Vec<&str> = values.iter().map(|(p, _)| p.as_str()).collect();
    for must in [
        ".cve_ids[]",
        ".cwe_ids[]",
        ".cvss_vector",
        ".evidence[].archive.entries[]",
        ".suggestions[].matched",
        ".evidence[].declared_type",
        ".channel",
    ] {
        assert!(paths.contains(&must), "the fixtures give {must}: {paths:?}");
    }
    if !server.is_postgres() {
        let mut db = server.db().await;
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut db)
            .await
            .unwrap();
    }
    let dump = server.database_bytes();
    // The envelope is ops metadata, in clear by design; a value that is
    // part of it (the recipient's domain as an asset) proves nothing.
    let envelope: Vec<String> = server
        .messages()
        .iter()
        .flat_map(|m| {
            let mut e = vec![m["mail_from"].to_string(), m["helo"].to_string()];
            e.extend(
                m["rcpt_to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.to_string()),
            );
            e
        })
        .collect();
    let mut checked = 0;
    for (path, value) in &values {
        if CLEAR.contains(&path.as_str())
            || value.chars().count() < 6
            || envelope.iter().any(|e| e.contains(value.as_str()))
            || contains(&empty, value)
        {
            continue;
        }
        checked += 1;
        assert!(
            !contains(&dump, value),
            "{path} = {value:?} is readable in the database dump"
        );
    }
    assert!(checked > 50, "{checked} values checked");
}
