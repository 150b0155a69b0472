//! Evidence encrypted at rest: after reports are received, filed and
//! unlocked, a dump of the database holds none of their content; the master
//! key must be private and must match; plaintext left by an older version
//! is sealed at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, deliver_from, fixture, sh};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Everything the database holds, as bytes: the SQLite files (WAL too), or
/// a pg_dump.
fn dump(server: &Server) -> Vec<u8> {
    if server.is_postgres() {
        let out = Command::new("pg_dump")
            .arg(server.store_url())
            .output()
            .unwrap();
        assert!(out.status.success());
        return out.stdout;
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("disclosure-mx.db")
        {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

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
    let dump = dump(&server);
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
    // A case an older version wrote in clear, with an event and an asset.
    let case_id: (i64,) = sqlx::query_as(
        "INSERT INTO cases (org, reference, kind, state, subject, anonymous, description, cve_ids, cwe_ids,
             received_at, acknowledge_by, feedback_by, updated_at)
         VALUES ('netcompany', 'NC-2025-0042', 'disclosure', 'new', 'legacy subject phrase', 0,
             'legacy description phrase', '[]', '[]', 1, 2, 3, 1) RETURNING id",
    )
    .fetch_one(&mut db)
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
    ] {
        assert!(shown.contains(phrase), "{phrase} readable: {shown}");
    }
    if !server.is_postgres() {
        let mut db = server.db().await;
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut db)
            .await
            .unwrap();
    }
    let dump = dump(&server);
    for phrase in [
        "legacy subject phrase",
        "legacy description phrase",
        "legacy note phrase",
        "legacy-asset",
    ] {
        assert!(!contains(&dump, phrase), "{phrase} sealed at rest");
    }
}
