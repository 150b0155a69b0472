//! The audit trail: every unlock attempt, state change, note, breach flag,
//! view and export is recorded (who, what, from where; never a password),
//! and `audit verify` detects an edited, removed or truncated entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, deliver_from, fixture};
use serde_json::Value;

async fn server_with_history() -> (Server, String) {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let archive = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/archives/report-aes.7z"
    ))
    .unwrap();
    let mail = common::mail_with_attachments(
        "Responsible disclosure",
        "Password by phone.",
        &[("r.7z", &archive)],
    );
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &mail,
    )
    .await;
    deliver_from(
        &server,
        "a@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    server.wait_filed(2);
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    let (locked, open) = (
        list[0]["reference"].as_str().unwrap().to_owned(),
        list[1]["reference"].as_str().unwrap().to_owned(),
    );
    let ok = |args: &[&str], stdin: Option<&str>| {
        let (ok, _, err) = server.cli(args, stdin);
        assert!(ok, "{args:?}: {err}");
    };
    ok(&["cases", "show", &open], None);
    ok(
        &[
            "cases",
            "transition",
            &open,
            "acknowledged",
            "--actor",
            "analyst1",
        ],
        None,
    );
    ok(
        &["cases", "note", &open, "--actor", "analyst1"],
        Some("secret-note-text"),
    );
    ok(&["cases", "breach", &open, "--actor", "analyst2"], None);
    ok(&["cases", "export", "--format", "csv"], None);
    assert!(
        !server
            .cli(
                &["unlock", &locked, "--password-stdin", "--actor", "analyst1"],
                Some("hunter2\n")
            )
            .0
    );
    ok(
        &["unlock", &locked, "--password-stdin", "--actor", "analyst1"],
        Some("correct horse battery staple\n"),
    );
    (server, open)
}

fn verify(server: &Server) -> (bool, String) {
    let (ok, out, err) = server.cli(&["audit", "verify"], None);
    (ok, out + &err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_recorded_and_the_chain_verifies() {
    let (server, open) = server_with_history().await;
    let (_, out, _) = server.cli(&["audit", "list", "--json"], None);
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let user = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    assert_eq!(
        actions,
        vec![
            ("view", user.as_str()),
            ("transition", "analyst1"),
            ("note", "analyst1"),
            ("breach", "analyst2"),
            ("export", user.as_str()),
            ("unlock-failed", "analyst1"),
            ("unlocked", "analyst1"),
            // Opening the last archive moves the case on, by the same
            // transition rule (and audit entry) as any other.
            ("transition", "analyst1"),
        ]
    );
    assert!(entries.iter().all(|e| e["source"] == "cli"));
    assert_eq!(entries[1]["target"], open.as_str());
    assert_eq!(entries[1]["detail"], "new -> acknowledged");
    assert!(
        !out.contains("hunter2")
            && !out.contains("correct horse")
            && !out.contains("secret-note-text"),
        "{out}"
    );
    let (ok, text) = verify(&server);
    assert!(
        ok && text.contains("audit trail intact: 8 entries"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_entry_is_detected() {
    let (server, _) = server_with_history().await;
    let mut db = server.db().await;
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE id = (SELECT MIN(id) FROM audit_log) + 1")
        .execute(&mut db)
        .await
        .unwrap();
    let (ok, text) = verify(&server);
    assert!(
        !ok && text.contains("audit trail broken at entry") && text.contains("entry edited"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_entry_and_a_truncated_tail_are_detected() {
    let (server, _) = server_with_history().await;
    let mut db = server.db().await;
    sqlx::query("DELETE FROM audit_log WHERE id = (SELECT MIN(id) FROM audit_log) + 2")
        .execute(&mut db)
        .await
        .unwrap();
    let (ok, text) = verify(&server);
    assert!(!ok && text.contains("audit trail broken"), "{text}");

    let (server, _) = server_with_history().await;
    let mut db = server.db().await;
    sqlx::query("DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)")
        .execute(&mut db)
        .await
        .unwrap();
    let (ok, text) = verify(&server);
    assert!(
        !ok && text.contains("newest entries were removed"),
        "{text}"
    );
}
