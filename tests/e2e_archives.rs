//! Encrypted archives end to end: mail with a password-protected 7z or zip
//! opens a case "awaiting password"; `unlock` refuses a wrong password
//! (recorded, nothing changed), opens with the right one, fills the case
//! from the report inside, and the password is nowhere afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mail::{Mail, Part};
use common::{INTAKE_ON, Opts, Server, deliver_from};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

fn archive(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/archives/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A short covering note with the archive attached, as a reporter's mail
/// client would send it (declared type aside: detection is by content).
fn mail_with(name: &str) -> Vec<u8> {
    common::mail_with_attachments(
        "Responsible disclosure (encrypted report)",
        "The report is in the attached archive; I will phone you the password.",
        &[(name, &archive(name))],
    )
}

/// A mail carrying several archives at once.
fn mail_with_all(names: &[&str]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = names.iter().map(|n| archive(n)).collect();
    let parts: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&data)
        .map(|(n, d)| (*n, d.as_slice()))
        .collect();
    common::mail_with_attachments(
        "Responsible disclosure (several archives)",
        "Impact: see the archives; password by phone.",
        &parts,
    )
}

fn only_case(server: &Server) -> String {
    let (ok, out, err) = server.cli(&["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    list[0]["reference"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_7z_waits_for_the_password_then_fills_the_case() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    // Declared as something innocuous: detection is by content.
    deliver_from(
        &server,
        "reporter@researcher.example",
        "security@netcompany.example",
        &mail_with("report-aes-he.7z"),
    )
    .await;
    server.wait_filed(1);
    let reference = only_case(&server);
    let case = server.case_json(&reference);
    assert_eq!(case["state"], "awaiting-password");
    assert!(
        case["description"]
            .as_str()
            .unwrap()
            .contains("attached archive"),
        "the covering note"
    );
    let ev = &case["evidence"][0];
    assert_eq!(ev["archive"]["format"], "7z");
    assert_eq!(ev["archive"]["encryption"], "7zaes");
    assert_eq!(ev["archive"]["headers_encrypted"], true);
    assert!(ev["opened_at"].is_null());

    // A wrong password: a clear error, nothing changes, the attempt is on
    // the timeline with who made it.
    let (ok, _, err) = server.cli(
        &[
            "unlock",
            &reference,
            "--password-stdin",
            "--actor",
            "analyst1",
        ],
        Some("tr0ub4dor&3\n"),
    );
    assert!(
        !ok,
        "{}",
        server.cli(&["cases", "show", &reference], None).1
    );
    assert!(err.contains("wrong password: nothing was changed"), "{err}");
    let after = server.case_json(&reference);
    assert_eq!(after["state"], "awaiting-password");
    assert_eq!(after["evidence"].as_array().unwrap().len(), 1);
    let last = after["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["kind"].as_str(), last["actor"].as_str()),
        (Some("unlock-failed"), Some("analyst1"))
    );

    // The right one.
    let (ok, out, err) = server.cli(
        &[
            "unlock",
            &reference,
            "--password-stdin",
            "--actor",
            "analyst1",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("opened 1 archive(s), extracted 2 file(s)"),
        "{out}"
    );
    let open = server.case_json(&reference);
    assert_eq!(open["state"], "new");
    assert!(
        open["steps"].as_str().unwrap().contains("export?all=1"),
        "{open:#}"
    );
    assert!(
        open["impact"]
            .as_str()
            .unwrap()
            .contains("all customers' invoices")
    );
    assert_eq!(open["cwe_ids"], serde_json::json!(["CWE-639"]));
    assert!(
        open["assets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["value"] == "https://files.netcompany.example/export"
                && a["in_scope"] == true)
    );
    let ev = open["evidence"].as_array().unwrap();
    let parent = ev[0]["id"].clone();
    assert!(ev[0]["opened_at"].is_i64());
    assert!(ev.iter().any(|e| e["name"] == "screenshot.png"
        && e["kind"] == "screenshot"
        && e["parent_id"] == parent));
    assert!(ev.iter().any(|e| e["name"] == "report.txt"
        && e["kind"] == "attachment"
        && e["parent_id"] == parent));

    // The password was never stored or logged.
    assert!(!server.log().contains(PASSWORD));
    assert!(!server.log().contains("tr0ub4dor"));
    let mut db = server.db().await;
    let events: Vec<(String,)> = sqlx::query_as("SELECT detail FROM case_events")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|(d,)| !d.contains(PASSWORD) && !d.contains("tr0ub4dor"))
    );
    if !server.is_postgres() {
        let file = std::fs::read(server.data_dir().join("disclosure-mx.db")).unwrap();
        let needle = PASSWORD.as_bytes();
        assert!(
            !file.windows(needle.len()).any(|w| w == needle),
            "password in the database file"
        );
    }
    let (ok, _, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!ok && err.contains("holds no locked archive"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_limited_per_case_and_zipcrypto_is_flagged() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    deliver_from(
        &server,
        "reporter@researcher.example",
        "security@netcompany.example",
        &mail_with("report-zipcrypto.zip"),
    )
    .await;
    server.wait_filed(1);
    let reference = only_case(&server);
    let case = server.case_json(&reference);
    assert_eq!(case["state"], "awaiting-password");
    assert_eq!(case["evidence"][0]["archive"]["encryption"], "zipcrypto");
    let warning = case["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "zipcrypto")
        .cloned();
    assert!(warning.is_some_and(|w| w["kind"] == "warning"), "{case:#}");
    for i in 0..5 {
        let (ok, _, err) = server.cli(
            &["unlock", &reference, "--password-stdin"],
            Some(&format!("guess-{i}\n")),
        );
        assert!(!ok && err.contains("wrong password"), "{err}");
    }
    // Even the right password waits now.
    let (ok, _, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!ok && err.contains("too many failed attempts"), "{err}");
    assert_eq!(server.case_json(&reference)["state"], "awaiting-password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_zip_and_zip_inside_7z_open_and_a_plain_zip_needs_nothing() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &mail_with("report-aes256.zip"),
    )
    .await;
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &mail_with("zip-in-7z.7z"),
    )
    .await;
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &mail_with("plain.zip"),
    )
    .await;
    server.wait_filed(3);
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    let states: Vec<&str> = list.iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(
        states,
        vec!["awaiting-password", "awaiting-password", "new"]
    );
    for c in &list[..2] {
        let reference = c["reference"].as_str().unwrap();
        let (ok, _, err) = server.cli(
            &["unlock", reference, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(ok, "{err}");
        let case = server.case_json(reference);
        assert_eq!(case["state"], "new");
        assert!(
            case["steps"]
                .as_str()
                .unwrap()
                .contains("Sign in as any customer"),
            "{case:#}"
        );
    }
    let nested = server.case_json(list[1]["reference"].as_str().unwrap());
    let names: Vec<&str> = nested["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["zip-in-7z.7z", "inner.zip", "report.txt"]);
    let plain = server.case_json(list[2]["reference"].as_str().unwrap());
    assert_eq!(plain["evidence"][0]["archive"]["encryption"], "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_archives_are_refused_with_reasons_and_the_rest_of_the_report_opens() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let names = [
        "hostile/overlap-bomb.zip",
        "hostile/nested-bomb.zip",
        "hostile/huge-dictionary.7z",
        "hostile/kdf-rounds.7z",
        "hostile/zip-slip.zip",
        "hostile/symlink.zip",
        "hostile/truncated.7z",
        "report-aes.7z",
    ];
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &mail_with_all(&names),
    )
    .await;
    server.wait_filed(1);
    let reference = only_case(&server);
    let case = server.case_json(&reference);
    assert_eq!(case["state"], "awaiting-password");
    let ev = case["evidence"].as_array().unwrap().clone();
    let truncated = ev
        .iter()
        .find(|e| e["name"] == "hostile/truncated.7z")
        .unwrap();
    assert!(
        truncated["archive"]["problem"]
            .as_str()
            .unwrap()
            .starts_with("unreadable 7z"),
        "{truncated}"
    );

    // Unlock under a hard 1.5 GB address-space limit: a bomb that escaped
    // the caps would fail to allocate and the command would fail.
    let started = std::time::Instant::now();
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            "ulimit -v 1500000; exec \"$0\" \"$@\"",
            common::BIN,
            "unlock",
            &reference,
            "--password-stdin",
            "--config",
        ])
        .arg(server.config_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
    for (name, reason) in [
        ("hostile/overlap-bomb.zip", "limit max_"),
        ("hostile/nested-bomb.zip", "limit max_"),
        ("hostile/huge-dictionary.7z", "limit sevenz_memory_kb"),
        ("hostile/kdf-rounds.7z", "limit kdf_rounds"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("refused: {name}: {reason}"))),
            "{name}: {stdout}"
        );
    }
    let case = server.case_json(&reference);
    assert_eq!(
        case["state"], "new",
        "refused archives no longer hold the case"
    );
    assert!(
        case["steps"]
            .as_str()
            .unwrap()
            .contains("Sign in as any customer"),
        "the good archive's report"
    );
    // The report inside is the report: its impact replaces the covering
    // note's, which stays in the conversation as a message of its own.
    assert!(
        case["impact"]
            .as_str()
            .unwrap()
            .contains("all customers' invoices"),
        "{case:#}"
    );
    assert_eq!(case["field_sources"]["impact"], "archive");
    let note = case["thread"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "covering-note")
        .unwrap();
    assert!(
        note["text"].as_str().unwrap().contains("see the archives"),
        "the mail's own text kept"
    );
    let ev = case["evidence"].as_array().unwrap();
    let refused = ev
        .iter()
        .find(|e| e["name"] == "hostile/kdf-rounds.7z")
        .unwrap();
    assert!(
        refused["archive"]["refused"]
            .as_str()
            .unwrap()
            .contains("kdf_rounds")
    );
    let names: Vec<&str> = ev
        .iter()
        .filter(|e| !e["parent_id"].is_null())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for n in [
        "tmp_evil.txt",
        "etc_cron.d_evil",
        "Windows_System32_evil.dll",
        "passwd-link",
        "screenshot.png",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let link = ev.iter().find(|e| e["name"] == "passwd-link").unwrap();
    assert_eq!(
        (link["declared_type"].as_str(), link["size"].as_i64()),
        (Some("inode/symlink"), Some(0)),
        "recorded, never followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_inside_a_forwarded_message_is_found_too() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let outer = Mail::new(
        "Helpdesk <helpdesk@netcompany.example>",
        "security@netcompany.example",
        "Fwd: Responsible disclosure (encrypted report)",
    )
    .boundary("outer")
    .part(Part::Text("Forwarding what reached the helpdesk.".into()))
    .part(Part::Message(mail_with("report-aes.7z")))
    .bytes();
    deliver_from(
        &server,
        "helpdesk@netcompany.example",
        "security@netcompany.example",
        &outer,
    )
    .await;
    server.wait_filed(1);
    let reference = only_case(&server);
    let case = server.case_json(&reference);
    assert_eq!(case["state"], "awaiting-password");
    let ev = &case["evidence"][0];
    assert_eq!(
        (
            ev["archive"]["encryption"].as_str(),
            ev["forwarded"].as_bool()
        ),
        (Some("7zaes"), Some(true))
    );
    let (ok, _, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    assert_eq!(server.case_json(&reference)["state"], "new");
}
