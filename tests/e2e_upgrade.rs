//! Upgrades are safe: a database written by a released binary (release
//! dfe18c0, before parse workers; `fixtures/upgrade/make.sh` made it with
//! that binary) opens with this one. Every case reads back as that release
//! printed it (fields may only be added), the audit chain still verifies,
//! intake goes on numbering where it left off, and a dump holds no report
//! content in clear, including what that release kept in clear (CVE and
//! CWE ids, the CVSS vector, archive entry names, attachment names in
//! suggestions). Each later schema change extends this test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, deliver_from, fixture, sh};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const RELEASE: &str = "release-dfe18c0";

fn upgrade_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade")
}

fn key() -> String {
    std::fs::read_to_string(upgrade_dir().join("master.key"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Whether `new` holds everything `old` held, equal; `new` may add
/// fields. `overdue` depends on today, so it is not compared.
fn holds(old: &Value, new: &Value, path: &str, differences: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in o {
                if k == "overdue" {
                    continue;
                }
                match n.get(k) {
                    Some(nv) => holds(v, nv, &format!("{path}.{k}"), differences),
                    None => differences.push(format!("{path}.{k} is gone")),
                }
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                holds(a, b, &format!("{path}[{i}]"), differences);
            }
        }
        (a, b) if a == b => {}
        (a, b) => differences.push(format!("{path}: {a} became {b}")),
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Report content the release stored, some of it in clear.
const CONTENT: &[&str] = &[
    "renders HTML without escaping",
    "returns every customer",
    "Reproduced on the staging portal",
    "CWE-639",
    "CVSS:3.1/AV:N/AC:L/PR:L/UI:R",
    "report-zipcrypto.zip",
    "support.netcompany.example",
];

async fn upgraded(server: &Server, expected: &Path, dump: impl Fn() -> Vec<u8>) {
    for entry in std::fs::read_dir(expected).unwrap() {
        let path = entry.unwrap().path();
        let reference = path.file_stem().unwrap().to_string_lossy().into_owned();
        let old: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (ok, out, err) = server.cli(&["cases", "show", &reference, "--json"], None);
        assert!(ok, "{reference}: {err}");
        let new: Value = serde_json::from_str(&out).unwrap();
        let mut differences = Vec::new();
        holds(&old, &new, &reference, &mut differences);
        assert!(differences.is_empty(), "{differences:#?}");
    }
    let (ok, out, err) = server.cli(&["audit", "verify"], None);
    assert!(ok, "{out}{err}");
    // The release's cases were indexed for search at start-up: a word of
    // one of them finds it.
    let (ok, out, err) = server.cli(
        &[
            "cases",
            "list",
            "--search",
            "support.netcompany.example",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let found: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(!found.is_empty(), "the release's cases are searchable");
    assert!(found.iter().all(|c| c["org"] == "netcompany"), "{found:?}");
    // Intake goes on where the release left off.
    deliver_from(
        server,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("html-only-netcompany.eml"),
    )
    .await;
    server.wait_filed(8);
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.last().unwrap()["reference"], "NC-2026-0006");
    // A new audit entry, under the key derived for the chain now: the
    // chain goes on from the release's entries and still verifies.
    let (ok, _, err) = server.cli(&["cases", "show", "NC-2026-0006", "--json"], None);
    assert!(ok, "{err}");
    let (ok, out, err) = server.cli(&["audit", "verify"], None);
    assert!(ok, "after new entries: {out}{err}");
    let dump = dump();
    assert!(dump.len() > 10_000);
    // The release's values stay in their format and open; new ones name
    // the versioned format (and, inside it, the key id).
    assert!(contains(&dump, "sealed:v1:"), "old values kept");
    assert!(contains(&dump, "sealed:v2:"), "new values versioned");
    for phrase in CONTENT {
        assert!(
            !contains(&dump, phrase),
            "{phrase:?} readable after the upgrade"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_of_the_last_release_opens_whole_and_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    std::fs::copy(upgrade_dir().join(format!("{RELEASE}-sqlite.db")), &db).unwrap();
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        store: Box::leak(format!("url = \"sqlite:{}\"", db.display()).into_boxed_str()),
        env: vec![("DISCLOSURE_MX_MASTER_KEY", key())],
        ..Opts::default()
    });
    let files = || {
        let mut all = Vec::new();
        sh(Command::new("sqlite3")
            .arg(&db)
            .arg("PRAGMA wal_checkpoint(TRUNCATE);"));
        for suffix in ["", "-wal"] {
            all.extend(std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default());
        }
        all
    };
    upgraded(
        &server,
        &upgrade_dir().join(format!("{RELEASE}-sqlite")),
        files,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_of_the_last_release_opens_whole_and_sealed() {
    let url = common::fresh_database(&common::postgres_admin());
    let (ok, out) = sh(Command::new("psql")
        .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(upgrade_dir().join(format!("{RELEASE}-postgres.sql"))));
    assert!(ok, "{out}");
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        store: Box::leak(format!("url = \"{url}\"").into_boxed_str()),
        env: vec![("DISCLOSURE_MX_MASTER_KEY", key())],
        ..Opts::default()
    });
    let dump = || {
        let out = Command::new("pg_dump").arg(&url).output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    upgraded(
        &server,
        &upgrade_dir().join(format!("{RELEASE}-postgres")),
        dump,
    )
    .await;
}

#[test]
fn an_older_binary_refuses_a_newer_schema() {
    let mut server = Server::start(Opts::default());
    server.kill9();
    // As if a newer release had migrated this store one step further.
    let db = server.data_dir().join("disclosure-mx.db");
    let url = server.store_url();
    let sql =
        "INSERT INTO schema_migrations (version) SELECT MAX(version) + 1 FROM schema_migrations";
    let (ok, out) = if server.is_postgres() {
        sh(Command::new("psql").args([url.as_str(), "-qc", sql]))
    } else {
        sh(Command::new("sqlite3").arg(&db).arg(sql))
    };
    assert!(ok, "{out}");
    let (ok, out) = sh(Command::new(common::BIN)
        .args(["messages", "list", "--config"])
        .arg(server.config_path()));
    assert!(!ok, "{out}");
    assert!(
        out.contains("the store's schema is version")
            && out.contains("newer than this binary knows"),
        "{out}"
    );
}
