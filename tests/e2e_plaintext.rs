//! The plaintext fallback end to end, both sides of the rule: without TLS
//! only an encrypted zip or 7z with a short covering note is stored; any
//! other plaintext delivery gets 550 5.7.10 after DATA and nothing is
//! stored; a policy that says `reject` refuses MAIL before STARTTLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::mail::{Mail, Part};
use common::{INTAKE_ON, Opts, Server, fixture};

fn archive(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/archives/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn mail(note: &str, attachments: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let parts: Vec<(&str, &[u8])> = attachments
        .iter()
        .map(|(n, d)| (*n, d.as_slice()))
        .collect();
    common::mail_with_attachments("Responsible disclosure", note, &parts)
}

const NOTE: &str = "The report is in the attached archive; I will phone you the password.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_archive_with_a_covering_note_is_accepted_without_tls() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let reply = common::plaintext_send(
        &server,
        "security@netcompany.example",
        &mail(NOTE, &[("r.7z", archive("report-aes-he.7z"))]),
    )
    .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let list = server.wait_filed(1);
    assert!(list[0]["tls_version"].is_null());
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let cases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(cases[0]["state"], "awaiting-password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_without_tls_is_refused_after_data_and_nothing_is_stored() {
    let server = Server::start(Opts::default());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a report in clear", fixture("en-netcompany-xss.eml")),
        (
            "an unencrypted zip",
            mail(NOTE, &[("r.zip", archive("plain.zip"))]),
        ),
        (
            "an archive and a screenshot",
            mail(
                NOTE,
                &[
                    ("r.7z", archive("report-aes.7z")),
                    ("s.png", b"\x89PNG\r\n\x1a\nxxxx".to_vec()),
                ],
            ),
        ),
        (
            "a long text beside the archive",
            mail(
                &"Steps: ...\r\n".repeat(200),
                &[("r.7z", archive("report-aes.7z"))],
            ),
        ),
        ("a forwarded report", fixture("forwarded-netcompany.eml")),
    ];
    for (what, body) in cases {
        let reply = common::plaintext_send(&server, "security@netcompany.example", &body).await;
        assert!(reply.contains("550 5.7.10"), "{what}: {reply}");
        assert!(reply.contains("use STARTTLS with TLS 1.2 or newer, or encrypt the report to our key or in a password-protected archive"), "{reply}");
    }
    assert!(server.messages().is_empty(), "nothing refused is stored");
    // The same report over TLS is fine.
    let mut c = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let reply = c
        .send(
            "r@researcher.example",
            "security@netcompany.example",
            &fixture("en-netcompany-xss.eml"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reject_policy_refuses_mail_before_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/netcompany.toml"
    ))
    .unwrap();
    std::fs::write(
        dir.path().join("strict.toml"),
        shipped.replace(
            "plaintext = \"encrypted-archive-only\"",
            "plaintext = \"reject\"",
        ),
    )
    .unwrap();
    let mut server = Server::start(Opts::default());
    // Point the running config at the strict policy only and restart.
    let config = std::fs::read_to_string(server.config_path()).unwrap();
    let config = config.replacen(
        "data_dir",
        &format!("policies_dir = {:?}\ndata_dir", dir.path()),
        1,
    );
    std::fs::write(server.config_path(), config).unwrap();
    server.kill9();
    server.restart();
    let (mut c, _) = Client::connect(server.addr).await.unwrap();
    c.cmd("EHLO plain.example", "250").await.unwrap();
    let r = c
        .cmd("MAIL FROM:<r@researcher.example>", "530")
        .await
        .unwrap();
    assert!(
        r.starts_with("530 5.7.0 Must issue a STARTTLS command first"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_means_what_it_says() {
    let server = Server::start(Opts::default());
    let to = "security@netcompany.example";
    // Every entry must be encrypted: a clear readme beside the report is
    // report content in clear. A folder entry has no content to encrypt.
    let reply =
        common::plaintext_send(&server, to, &mail(NOTE, &[("m.zip", archive("mixed.zip"))])).await;
    assert!(reply.starts_with("550 5.7.10"), "mixed: {reply}");
    let reply = common::plaintext_send(
        &server,
        to,
        &mail(NOTE, &[("f.zip", archive("with-folder.zip"))]),
    )
    .await;
    assert!(reply.starts_with("250 2.0.0"), "folder: {reply}");

    // A 6 KB report in the Subject.
    let long_subject = format!("Responsible disclosure {}", "x".repeat(6000));
    let sz = archive_bytes();
    let parts: Vec<(&str, &[u8])> = vec![("r.7z", &sz)];
    let reply = common::plaintext_send(
        &server,
        to,
        &common::mail_with_attachments(&long_subject, NOTE, &parts),
    )
    .await;
    assert!(reply.starts_with("550 5.7.10"), "subject: {reply}");
    // A Subject just under its own limit, but with the note, over the total.
    let subject = format!("Responsible disclosure {}", "y".repeat(150));
    let note = "z".repeat(900);
    let reply = common::plaintext_send(
        &server,
        to,
        &common::mail_with_attachments(&subject, &note, &parts),
    )
    .await;
    assert!(reply.starts_with("550 5.7.10"), "subject and note: {reply}");
    // An HTML note counts as written, tags and all: it is never rendered.
    let html = Mail::new("r@researcher.example", to, "Responsible disclosure")
        .part(Part::Html("<div>".repeat(300)))
        .part(Part::Attachment("r.7z".into(), archive_bytes()))
        .bytes();
    let reply = common::plaintext_send(&server, to, &html).await;
    assert!(reply.starts_with("550 5.7.10"), "html: {reply}");
    assert_eq!(server.messages().len(), 1, "only the folder zip was stored");
}

fn archive_bytes() -> Vec<u8> {
    archive("report-aes-he.7z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_dies_refuses_the_message_and_the_server_carries_on() {
    // A budget a 12 MiB message cannot be checked in.
    let server = Server::start(Opts {
        intake: "enabled = false\nparse_memory_mib = 16\n",
        ..Opts::default()
    });
    let big = vec![1u8; 9 * 1024 * 1024];
    let reply = common::plaintext_send(
        &server,
        "security@netcompany.example",
        &mail(NOTE, &[("r.7z", big)]),
    )
    .await;
    assert!(reply.starts_with("550 5.7.10"), "{reply}");
    assert!(
        server
            .log()
            .contains("intake worker killed: memory limit (16 MiB)"),
        "the reason is logged"
    );
    // The next one is checked by a fresh worker.
    let reply = common::plaintext_send(
        &server,
        "security@netcompany.example",
        &mail(NOTE, &[("r.7z", archive("report-aes-he.7z"))]),
    )
    .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
}
