//! Hostile mail cannot break intake: what a stranger can send, through the
//! public door (SMTP over loopback, with and without TLS) and read back
//! through the CLI's JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::mail::Mail;
use common::{INTAKE_ON, Opts, Server, deliver_from, mail_with_attachments};
use serde_json::Value;
use std::time::{Duration, Instant};

const NC: &str = "security@netcompany.example";

/// An HTML-only report to Netcompany.
fn html_mail(subject: &str, html: &str) -> Vec<u8> {
    Mail::new("Reporter <r@researcher.example>", NC, subject)
        .message_id(&format!("{}@researcher.example", html.len()))
        .html(html)
        .bytes()
}

/// The 467 KiB message that aborted the old server: a table whose first
/// cell holds one 100,000-character word, then thousands of rows.
pub fn table_bomb(size: usize) -> String {
    let mut html = format!(
        "<html><body><p>Description</p><table><tr><td>{}</td></tr>",
        "A".repeat(100_000)
    );
    while html.len() + 40 < size {
        html.push_str("<tr><td>x</td></tr>");
    }
    html.push_str("</table></body></html>");
    html
}

fn cli_json(server: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = server.cli(args, None);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn show(server: &Server, reference: &str) -> Value {
    cli_json(server, &["cases", "show", reference, "--json"])
}

async fn answers_smtp(server: &Server) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), Client::connect(server.addr)).await,
        Ok(Ok((_, greeting))) if greeting.starts_with("220")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_bombs_are_refused_without_tls_and_filed_over_tls() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let bombs = [
        ("Responsible disclosure: table", table_bomb(467 * 1024)),
        (
            "Responsible disclosure: nesting",
            "<div></i>".repeat(1024 * 1024 / 9),
        ),
    ];
    // Without TLS the plaintext rule decides (it renders no HTML): refused
    // with its reply, in bounded time, and the server goes on answering.
    for (subject, html) in &bombs {
        let (mut c, _) = Client::connect(server.addr).await.unwrap();
        c.cmd("EHLO client.test", "250").await.unwrap();
        let started = Instant::now();
        let reply = c
            .send("r@researcher.example", NC, &html_mail(subject, html))
            .await
            .unwrap();
        assert!(reply.starts_with("550 5.7.10"), "{subject}: {reply}");
        assert!(started.elapsed() < Duration::from_secs(20), "{subject}");
        assert!(answers_smtp(&server).await);
    }
    assert!(server.messages().is_empty(), "nothing refused is stored");
    // Over TLS they are accepted and filed as the reports they are.
    for (subject, html) in &bombs {
        deliver_from(
            &server,
            "r@researcher.example",
            NC,
            &html_mail(subject, html),
        )
        .await;
    }
    let list = server.wait_filed(2);
    assert!(list.iter().all(|m| m["state"] == "filed"), "{list:?}");
    let cases = cli_json(&server, &["cases", "list", "--json"]);
    assert_eq!(cases.as_array().unwrap().len(), 2, "{cases}");
    for c in cases.as_array().unwrap() {
        assert_eq!(c["kind"], "disclosure");
        assert_eq!(c["state"], "new");
    }
    let table = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == "Responsible disclosure: table")
        .unwrap();
    let detail = show(&server, table["reference"].as_str().unwrap());
    assert!(
        detail["description"].as_str().unwrap().contains("AAAAAAAA"),
        "the text is there, capped per field"
    );
    assert!(answers_smtp(&server).await);
}

/// Processes whose parent is `pid` and whose command line has `word`.
fn children_with(pid: u32, word: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        if ppid == Some(pid) && String::from_utf8_lossy(&cmdline).contains(word) {
            out.push(child);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parse_worker_holds_no_secrets_and_limits_itself() {
    let key = "5a".repeat(32);
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        env: vec![
            ("DISCLOSURE_MX_MASTER_KEY", key.clone()),
            ("DMX_TEST_CANARY", "canary-value".into()),
        ],
        ..Opts::default()
    });
    // The service itself has both: the test can see them where they are.
    let own = std::fs::read(format!("/proc/{}/environ", server.child.id())).unwrap();
    assert!(String::from_utf8_lossy(&own).contains("canary-value"));
    let workers = children_with(server.child.id(), "intake-worker");
    // Two for intake and two for the plaintext rule, by default.
    assert_eq!(workers.len(), 4, "{workers:?}");
    for pid in workers {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(environ.is_empty(), "worker {pid} has an environment");
        let fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_link(e.path())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                )
            })
            .collect();
        let mut names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["0", "1", "2"], "worker {pid}: {fds:?}");
        assert!(
            fds.iter().all(|(_, target)| target.starts_with("pipe:")),
            "only pipes: {fds:?}"
        );
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let limit = |name: &str| -> String {
            limits
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name}: {limits}"))[26..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(limit("Max open files"), "3");
        assert_eq!(limit("Max core file size"), "0");
        assert_eq!(limit("Max file size"), "0");
        assert_ne!(limit("Max address space"), "unlimited");
        assert_ne!(limit("Max cpu time"), "unlimited");
    }
}

/// `raw` without the `Received:` header we put on top.
fn as_sent(raw: &[u8]) -> &[u8] {
    assert!(raw.starts_with(b"Received: "));
    let mut at = 0;
    loop {
        let end = raw[at..].windows(2).position(|w| w == b"\r\n").unwrap() + at + 2;
        at = end;
        if !matches!(raw.get(at), Some(b' ' | b'\t')) {
            return &raw[at..];
        }
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_kills_its_worker_becomes_an_unparsed_case() {
    // A budget small enough that a 12 MiB report exceeds it; a normal one
    // parses in a fraction of it.
    let server = Server::start(Opts {
        intake: "enabled = true\npoll_interval = 1\nparse_memory_mib = 16\n",
        ..Opts::default()
    });
    let big = mail_with_attachments(
        "Responsible disclosure: logs attached",
        "Description: the attached logs show the problem.",
        &[("logs.bin", &vec![7u8; 9 * 1024 * 1024])],
    );
    deliver_from(&server, "r@researcher.example", NC, &big).await;
    deliver_from(
        &server,
        "r@researcher.example",
        NC,
        &html_mail("Responsible disclosure: small", "<p>Description: small</p>"),
    )
    .await;
    let list = server.wait_filed(2);
    assert_eq!(list[0]["state"], "quarantined", "{list:?}");
    let reason = list[0]["quarantine_reason"].as_str().unwrap();
    assert_eq!(reason, "intake worker killed: memory limit (16 MiB)");
    assert_eq!(list[1]["state"], "filed", "the queue moved on");
    assert!(
        server.log().matches("intake attempt failed").count() >= 2,
        "three attempts, then quarantine"
    );

    let cases = cli_json(&server, &["cases", "list", "--json"]);
    let unparsed = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "unparsed")
        .unwrap_or_else(|| panic!("{cases}"));
    let reference = unparsed["reference"].as_str().unwrap().to_owned();
    let detail = show(&server, &reference);
    assert_eq!(detail["unparsed_reason"], reason);
    assert_eq!(detail["received_at"], list[0]["received_at"]);
    assert!(detail["acknowledge_by"].as_i64().unwrap() > detail["received_at"].as_i64().unwrap());
    // The raw message is kept, sealed, and comes back whole.
    let (ok, raw, err) = server.cli(&["cases", "raw", &reference], None);
    assert!(ok, "{err}");
    assert_eq!(sha256(as_sent(raw.as_bytes())), sha256(&big));

    // A retry with a larger budget parses it and fills the same case.
    let (ok, out, err) = server.cli(&["cases", "retry", &reference], None);
    assert!(ok, "{err}");
    assert!(out.contains("4x the parse budget"), "{out}");
    let start = Instant::now();
    let detail = loop {
        let d = show(&server, &reference);
        if d["kind"] != "unparsed" {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{d}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(detail["kind"], "disclosure");
    assert_eq!(detail["subject"], "Responsible disclosure: logs attached");
    assert!(detail["unparsed_reason"].is_null());
    assert_eq!(detail["evidence"][0]["name"], "logs.bin");
    assert_eq!(detail["evidence"][0]["size"], 9 * 1024 * 1024);
}

fn archive_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/archives/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_wrong_unlocks_get_exactly_the_attempts_the_limit_allows() {
    let sso = common::web::Sso::start("", INTAKE_ON);
    let archive = archive_fixture("report-aes-he.7z");
    deliver_from(
        &sso.server,
        "r@researcher.example",
        NC,
        &mail_with_attachments(
            "Responsible disclosure: encrypted",
            "The report is attached.",
            &[("report.7z", &archive)],
        ),
    )
    .await;
    sso.server.wait_filed(1);
    let reference = sso.server.case_of("netcompany");
    let analyst = sso.signed_in("analyst@netcompany", &["nc-analysts"]);
    let csrf = analyst.csrf(&format!("/cases/{reference}"));
    let analyst = std::sync::Arc::new(analyst);
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let (analyst, csrf, reference) = (
                std::sync::Arc::clone(&analyst),
                csrf.clone(),
                reference.clone(),
            );
            std::thread::spawn(move || {
                analyst
                    .post(
                        &format!("/cases/{reference}/unlock"),
                        &[("csrf", &csrf), ("password", &format!("guess-{i}"))],
                    )
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    // Wrong (the case page with its error, 422), or refused by the limit
    // before any work (429).
    let wrong = statuses.iter().filter(|s| **s == 422).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((wrong, limited), (5, 35), "{statuses:?}");
    let entries = cli_json(&sso.server, &["audit", "list", "--json"]);
    let count = |action: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["target"] == reference.as_str())
            .count()
    };
    assert_eq!(count("unlock-failed"), 5, "evaluated: exactly the limit");
    assert_eq!(count("unlock-refused"), 35, "refused before any work");
    let case = show(&sso.server, &reference);
    let failed = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "unlock-failed")
        .count();
    assert_eq!(failed, 5);
    assert_eq!(case["state"], "awaiting-password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unlock_has_one_budget_however_many_archives() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    // 25 archives demanding 2^22 key-derivation rounds each (more than
    // 7-Zip writes): each wrong guess used to cost all of them.
    let slow = archive_fixture("hostile/kdf-22.7z");
    let names: Vec<String> = (0..25).map(|i| format!("part{i}.7z")).collect();
    let attachments: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), slow.as_slice()))
        .collect();
    deliver_from(
        &server,
        "r@researcher.example",
        NC,
        &mail_with_attachments(
            "Responsible disclosure: many parts",
            "Parts attached.",
            &attachments,
        ),
    )
    .await;
    server.wait_filed(1);
    let reference = server.case_of("netcompany");
    let started = Instant::now();
    let (ok, out, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some("a wrong guess\n"),
    );
    assert!(ok, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.matches("limit kdf_rounds reached").count(), 20, "{out}");
    assert!(out.contains("5 archive(s) left locked"), "{out}");
    // The next attempt takes the rest.
    let (ok, out, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some("a wrong guess\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("limit kdf_rounds reached").count(), 5, "{out}");
    let (ok, _, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some("a wrong guess\n"),
    );
    assert!(!ok && err.contains("holds no locked archive"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_text_cannot_drive_an_analysts_terminal() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let mail = Mail::new(
        "r@researcher.example",
        NC,
        "Responsible disclosure \x1b[2J\x1b]0;owned\x07",
    )
    .text("Description: \x1b[31mred\x1b[0m text")
    .bytes();
    deliver_from(&server, "r@researcher.example", NC, &mail).await;
    server.wait_filed(1);
    let reference = server.case_of("netcompany");
    for args in [vec!["cases", "list"], vec!["cases", "show", &reference]] {
        let (ok, out, err) = server.cli(&args, None);
        assert!(ok, "{err}");
        assert!(out.contains("Responsible disclosure"), "{out}");
        assert!(
            !out.contains('\x1b') && !out.contains('\x07'),
            "{args:?}: {out:?}"
        );
    }
    // The JSON keeps the text as it came (escaped by JSON itself).
    let json = show(&server, &reference);
    assert!(json["subject"].as_str().unwrap().contains('\x1b'));
}
