//! Backups through the CLI, on SQLite and (in `make test`'s PostgreSQL
//! pass) PostgreSQL: taken while reports keep arriving, restored into a
//! fresh data directory and database with the master key unwrapped from
//! its separately kept file; the audit chain verifies and the cases read
//! back as they were. The backup holds no key; wrong passphrases, wrong
//! keys and non-empty targets are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, RCPT, Server, deliver_from, fixture, report};
use serde_json::Value;
use std::path::Path;

const PASSPHRASE: &str = "correct horse battery staple";

/// Runs the CLI with `config`, feeding `stdin`: (ok, stdout, stderr).
fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    common::cli_with(config, &[], args, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_with_its_wrapped_key() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    deliver_from(
        &server,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver_from(
        &server,
        "s@borger.example",
        "security@magenta.example",
        &fixture("da-magenta-idor.eml"),
    )
    .await;
    server.wait_filed(2);
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("dmx.backup");
    let wrapped = work.path().join("master.key.wrapped");

    // Reports keep arriving while the backup is taken.
    let load = {
        let addr = server.addr;
        let tls = server.tls();
        tokio::spawn(async move {
            for i in 0..30 {
                let mut c = common::client::Client::connect_tls(addr, tls.clone())
                    .await
                    .unwrap();
                let body = report(&format!("Responsible disclosure: load {i}"), "under load");
                let reply = c.send("r@example.org", RCPT, &body).await.unwrap();
                assert!(reply.starts_with("250"), "{reply}");
            }
        })
    };
    let (ok, out, err) = server.cli(&["backup", "create", backup.to_str().unwrap()], None);
    assert!(ok, "{err}");
    assert!(out.contains("messages"), "{out}");
    load.await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The key is not in the backup.
    let key_hex = std::fs::read_to_string(server.data_dir().join("master.key")).unwrap();
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        !bytes.windows(64).any(|w| w == key_hex.trim().as_bytes()),
        "the master key is in the backup"
    );
    let (ok, out, err) = server.cli(
        &["backup", "inspect", "--json", backup.to_str().unwrap()],
        None,
    );
    assert!(ok, "{err}");
    let manifest: Value = serde_json::from_str(&out).unwrap();
    let cases = manifest["counts"]["cases"].as_i64().unwrap();
    assert!(cases >= 2, "{manifest}");

    // The key, wrapped; a short passphrase is refused.
    let (ok, _, err) = server.cli(
        &[
            "keys",
            "export",
            "--wrap",
            wrapped.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        Some("too short\n"),
    );
    assert!(!ok && err.contains("shorter than 12"), "{err}");
    let (ok, out, err) = server.cli(
        &[
            "keys",
            "export",
            "--wrap",
            wrapped.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        Some(&format!("{PASSPHRASE}\n")),
    );
    assert!(ok, "{err}");
    assert!(out.contains(manifest["key_id"].as_str().unwrap()), "{out}");
    let wrapped_text = std::fs::read_to_string(&wrapped).unwrap();
    assert!(!wrapped_text.contains(key_hex.trim()));

    // A fresh data directory (and, on PostgreSQL, an empty database).
    let fresh = work.path().join("restored");
    let store = match common::test_postgres() {
        Some(admin) => format!("[store]\nurl = \"{}\"\n", common::fresh_database(&admin)),
        None => String::new(),
    };
    let config = work.path().join("restored.toml");
    std::fs::write(
        &config,
        format!("data_dir = {fresh:?}\n{store}[sender_auth]\nenabled = false\n"),
    )
    .unwrap();
    let restore = |stdin: &str| {
        cli(
            &config,
            &[
                "backup",
                "restore",
                backup.to_str().unwrap(),
                "--key",
                wrapped.to_str().unwrap(),
                "--passphrase-stdin",
            ],
            Some(stdin),
        )
    };
    let (ok, _, err) = restore("not the passphrase at all\n");
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    let (ok, out, err) = restore(&format!("{PASSPHRASE}\n"));
    assert!(ok, "{err}");
    assert!(out.contains("restored"), "{out}");
    let (ok, _, err) = restore(&format!("{PASSPHRASE}\n"));
    assert!(
        !ok && err.contains("restore only into an empty store"),
        "{err}"
    );

    // Consistent: the chain verifies, every case opens, the counts match.
    let (ok, out, err) = cli(&config, &["audit", "verify"], None);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(&config, &["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    let restored: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(restored.len() as i64, cases);
    for c in &restored {
        let reference = c["reference"].as_str().unwrap();
        let (ok, out, err) = cli(&config, &["cases", "show", reference, "--json"], None);
        assert!(ok, "{reference}: {err}");
        let shown: Value = serde_json::from_str(&out).unwrap();
        let original = server.case_json(reference);
        for field in [
            "subject",
            "description",
            "state",
            "org",
            "reporter_address",
            "evidence",
        ] {
            assert_eq!(shown[field], original[field], "{reference} {field}");
        }
    }
    // Another key does not open it.
    let other = work.path().join("other.wrapped");
    let other_dir = tempfile::tempdir().unwrap();
    let other_config = work.path().join("other.toml");
    std::fs::write(
        &other_config,
        format!("data_dir = {:?}\n", other_dir.path()),
    )
    .unwrap();
    // (A store of its own makes a key of its own.)
    let (ok, _, err) = cli(&other_config, &["messages", "list"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        &other_config,
        &[
            "keys",
            "export",
            "--wrap",
            other.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        Some(&format!("{PASSPHRASE}\n")),
    );
    assert!(ok, "{err}");
    let again = work.path().join("again.toml");
    std::fs::write(
        &again,
        format!("data_dir = {:?}\n", work.path().join("again")),
    )
    .unwrap();
    let (ok, _, err) = cli(
        &again,
        &[
            "backup",
            "restore",
            backup.to_str().unwrap(),
            "--key",
            other.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        Some(&format!("{PASSPHRASE}\n")),
    );
    assert!(!ok && err.contains("is not the backup's"), "{err}");
}
