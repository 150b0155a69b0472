//! OpenPGP reports end to end, with keys and messages made by the real
//! `gpg` at test time: PGP/MIME and inline messages to the organisation's
//! key are decrypted into cases (over STARTTLS, and without TLS under the
//! plaintext rule), the reporter's signature is checked with the key they
//! sent, our receipt goes back encrypted to that key and `gpg` decrypts
//! it; a message to another key is filed and named undecryptable; a
//! passphrase-protected key holds its reports in `awaiting-key` until the
//! operator unlocks it; and nothing decrypted, nor the passphrase, reaches
//! the database or the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::gpg::{self, Gpg};
use common::{INTAKE_ON, Opts, Server, deliver_from, wait_until};
use serde_json::Value;
use std::time::Duration;

const REPORTER: &str = "Rita Reporter <r@researcher.example>";
const MAGENTA: &str = "security@magenta.example";
const NETCOMPANY: &str = "security@netcompany.example";
const PASSPHRASE: &str = "correct horse battery staple";

/// The seed policies, Magenta with an unprotected OpenPGP key and
/// Netcompany with a passphrase-protected one, both made by `gpg`.
struct World {
    gpg: Gpg,
    policies: tempfile::TempDir,
    magenta: String,
    netcompany: String,
    reporter: String,
    other: String,
}

fn world() -> World {
    let gpg = Gpg::new();
    let magenta = gpg.generate("Magenta Security <security@magenta.example>", "");
    let netcompany = gpg.generate(
        "Netcompany Security <security@netcompany.example>",
        PASSPHRASE,
    );
    let reporter = gpg.generate(REPORTER, "");
    let other = gpg.generate("Someone Else <someone@elsewhere.example>", "");
    let policies = gpg::keyed_policies(
        &gpg,
        &[
            ("magenta", &magenta, ""),
            ("netcompany", &netcompany, PASSPHRASE),
        ],
    );
    World {
        gpg,
        policies,
        magenta,
        netcompany,
        reporter,
        other,
    }
}

fn sink() -> Server {
    Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\"]",
        ..Opts::default()
    })
}

fn server(w: &World, extra: String) -> Server {
    Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!("{extra}\n[web]\nlisten = \"127.0.0.1:0\"\n"),
        serve_args: vec!["--dev-idp"],
        env: vec![(
            "DISCLOSURE_MX_POLICIES_DIR",
            w.policies.path().to_string_lossy().into_owned(),
        )],
        ..Opts::default()
    })
}

/// The case whose subject is `subject`, whole.
fn report_text(case: &Value) -> String {
    case["thread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openpgp_reports_are_decrypted_their_signatures_checked_and_receipts_encrypted() {
    let w = world();
    let sink = sink();
    let mx = server(&w, sink.as_relay());
    let reporter_key = w.gpg.export_public(&w.reporter);

    // 1. PGP/MIME, signed, the reporter's key inside, over STARTTLS.
    let inner = gpg::inner_report(
        None,
        "Description: KUMQUAT-ORCHID lets any customer read another's invoices\n\
         Impact: every invoice of every customer\n\
         Steps to reproduce: change the id in /invoices/42 to 43",
        Some(&reporter_key),
    );
    let armored = w.gpg.encrypt(&w.magenta, Some(&w.reporter), &inner);
    let signed = gpg::pgp_mime(
        REPORTER,
        MAGENTA,
        "Signed report",
        "pgp1@researcher.example",
        &armored,
    );
    deliver_from(&mx, "r@researcher.example", MAGENTA, &signed).await;

    // 2. The same shape without TLS: admitted by the plaintext rule.
    let inner = gpg::inner_report(
        None,
        "Description: PLAINTEXT-PERSIMMON in the login form",
        None,
    );
    let armored = w.gpg.encrypt(&w.magenta, None, &inner);
    let plain = gpg::pgp_mime(
        REPORTER,
        MAGENTA,
        "Sent in clear",
        "pgp2@researcher.example",
        &armored,
    );
    let reply = common::plaintext_send(&mx, MAGENTA, &plain).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");

    // 3. Inline, signed by a key that did not come with it, a short note
    // before the block.
    let armored = w.gpg.encrypt(
        &w.magenta,
        Some(&w.reporter),
        b"Description: INLINE-QUINCE: the admin panel has no password\n",
    );
    let inline = gpg::inline(
        REPORTER,
        MAGENTA,
        "Inline report",
        "pgp3@researcher.example",
        "The report is below, encrypted to your key.",
        &armored,
    );
    let reply = common::plaintext_send(&mx, MAGENTA, &inline).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");

    // 4. Encrypted to a key we do not hold: filed, never lost.
    let armored = w
        .gpg
        .encrypt(&w.other, None, b"Description: for someone else\n");
    let elsewhere = gpg::pgp_mime(
        REPORTER,
        MAGENTA,
        "Wrong key",
        "pgp4@researcher.example",
        &armored,
    );
    deliver_from(&mx, "r@researcher.example", MAGENTA, &elsewhere).await;

    // Refused without TLS: a clear report with an encrypted file attached,
    // and an inline block whose clear text is over the covering-note limit.
    let attached = common::mail_with_attachments(
        "Responsible disclosure",
        "Description: the whole report in clear, with an encrypted file attached",
        &[("report.asc", armored.as_bytes())],
    );
    let reply = common::plaintext_send(&mx, NETCOMPANY, &attached).await;
    assert!(reply.starts_with("550 5.7.10"), "{reply}");
    let long_note = "This is the report in clear. ".repeat(40);
    let armored = w.gpg.encrypt(&w.magenta, None, b"Description: short\n");
    let long = gpg::inline(
        REPORTER,
        MAGENTA,
        "Long note",
        "pgp5@researcher.example",
        &long_note,
        &armored,
    );
    let reply = common::plaintext_send(&mx, MAGENTA, &long).await;
    assert!(reply.starts_with("550 5.7.10"), "{reply}");

    mx.wait_filed(4);

    let c = mx.case_by_subject("Signed report");
    assert_eq!(c["state"], "new");
    assert!(
        c["description"]
            .as_str()
            .unwrap()
            .contains("KUMQUAT-ORCHID"),
        "{c}"
    );
    let e = &c["encryption"][0];
    assert_eq!(e["envelope"], "pgp-mime", "{c}");
    assert_eq!(e["decryption"], "decrypted", "{c}");
    assert_eq!(e["signature"]["status"], "valid", "{c}");
    assert_eq!(e["signature"]["signer"], w.reporter.as_str(), "{c}");
    assert_eq!(e["reporter_key_fingerprint"], w.reporter.as_str(), "{c}");
    assert!(
        e["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("signed by {}, valid", w.reporter)),
        "{e}"
    );
    let (_, shown, _) = mx.cli(&["cases", "show", c["reference"].as_str().unwrap()], None);
    assert!(
        shown.contains("encryption:     OpenPGP (PGP/MIME), decrypted"),
        "{shown}"
    );

    let c = mx.case_by_subject("Sent in clear");
    assert!(c["tls_version"].is_null(), "{c}");
    assert_eq!(c["encryption"][0]["decryption"], "decrypted");
    assert!(
        c["description"]
            .as_str()
            .unwrap()
            .contains("PLAINTEXT-PERSIMMON")
    );
    assert!(c["encryption"][0]["signature"].is_null(), "unsigned: {c}");

    let c = mx.case_by_subject("Inline report");
    let e = &c["encryption"][0];
    assert_eq!(e["envelope"], "pgp-inline", "{c}");
    assert_eq!(e["decryption"], "decrypted", "{c}");
    assert_eq!(e["signature"]["status"], "unknown-key", "{c}");
    let text = report_text(&c);
    assert!(text.contains("INLINE-QUINCE"), "{text}");
    assert!(
        text.contains("encrypted to your key"),
        "the covering note is kept: {text}"
    );

    let c = mx.case_by_subject("Wrong key");
    let e = &c["encryption"][0];
    assert_eq!(e["decryption"], "other-key", "{c}");
    let other_id = w.gpg.encryption_key_id(&w.other);
    assert_eq!(e["key_ids"][0], other_id.as_str(), "{c}");
    assert!(e["summary"].as_str().unwrap().contains(&other_id), "{e}");
    assert!(
        c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "encrypted.asc"),
        "the ciphertext is kept: {c}"
    );

    // The receipt of the signed report went out encrypted to the key that
    // came with it, and the reporter's gpg opens it.
    let signed_ref = mx.case_by_subject("Signed report")["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut encrypted = None;
    wait_until("receipts at the sink", Duration::from_secs(30), || {
        sink.messages().len() >= 4
    });
    for raw in sink.raw_messages().await {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if text.contains("multipart/encrypted") {
            assert!(
                !text.contains("registered as case"),
                "the body is not in clear: {text}"
            );
            encrypted = Some(text);
        }
    }
    let encrypted = encrypted.expect("one receipt went out encrypted");
    let start = encrypted.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = encrypted.find("-----END PGP MESSAGE-----").unwrap();
    let opened = w.gpg.decrypt(&encrypted.as_bytes()[start..end + 25]);
    let opened = String::from_utf8_lossy(&opened);
    let body = opened.split("\r\n\r\n").nth(1).unwrap_or_default();
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD
        .decode(body.replace(['\r', '\n'], ""))
        .unwrap();
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains(&signed_ref), "{body}");
    let clear: Vec<String> = sink
        .raw_messages()
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .filter(|t| !t.contains("multipart/encrypted"))
        .collect();
    assert_eq!(clear.len(), 3, "the others had no key: in clear");

    // Nothing decrypted is in the database in clear.
    let db = mx.database_bytes();
    for secret in ["KUMQUAT-ORCHID", "PLAINTEXT-PERSIMMON", "INLINE-QUINCE"] {
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in the database in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_protected_key_holds_reports_until_the_operator_unlocks_it() {
    let w = world();
    let mx = server(&w, String::new());
    let inner = gpg::inner_report(
        None,
        "Description: LOCKED-LYCHEE: the backup bucket is public",
        None,
    );
    let armored = w.gpg.encrypt(&w.netcompany, None, &inner);
    let mail = gpg::pgp_mime(
        REPORTER,
        NETCOMPANY,
        "Responsible disclosure: backups",
        "locked@researcher.example",
        &armored,
    );
    deliver_from(&mx, "r@researcher.example", NETCOMPANY, &mail).await;
    mx.wait_filed(1);
    let c = mx.case_by_subject("Responsible disclosure: backups");
    assert_eq!(c["state"], "awaiting-key", "{c}");
    assert_eq!(c["encryption"][0]["decryption"], "awaiting-key", "{c}");
    assert!(!report_text(&c).contains("LOCKED-LYCHEE"));

    let (ok, out, err) = mx.cli(&["keys", "status", "--json"], None);
    assert!(ok, "{err}");
    let status: Vec<Value> = serde_json::from_str(&out).unwrap();
    let nc = status.iter().find(|k| k["org"] == "netcompany").unwrap();
    assert_eq!(nc["locked"], true);
    assert_eq!(nc["fingerprint"], w.netcompany.as_str());
    let mg = status.iter().find(|k| k["org"] == "magenta").unwrap();
    assert_eq!(mg["locked"], false);

    let (ok, _, err) = mx.cli(
        &["keys", "unlock", "netcompany", "--passphrase-stdin"],
        Some("not the passphrase\n"),
    );
    assert!(!ok);
    assert!(err.contains("does not unlock"), "{err}");
    let (ok, out, err) = mx.cli(
        &["keys", "unlock", "netcompany", "--passphrase-stdin"],
        Some(&format!("{PASSPHRASE}\n")),
    );
    assert!(ok, "{err}");
    assert!(out.contains("1 report(s) queued to decrypt"), "{out}");

    let reference = c["reference"].as_str().unwrap().to_owned();
    wait_until("the report decrypted", Duration::from_secs(30), || {
        mx.case_json(&reference)["state"] == "new"
    });
    let c = mx.case_json(&reference);
    assert!(
        c["description"].as_str().unwrap().contains("LOCKED-LYCHEE"),
        "{c}"
    );
    assert_eq!(c["encryption"][0]["decryption"], "decrypted", "{c}");
    let (_, status, _) = mx.cli(&["keys", "status"], None);
    assert!(status.contains("ready"), "{status}");

    // The public keys are published for each organisation's domain, as
    // `keys public` prints them, and gpg reads them.
    let web = common::web::web_addr(&mx.data_dir());
    for (host, fpr, org) in [
        ("magenta.example", &w.magenta, "magenta"),
        ("netcompany.example:8443", &w.netcompany, "netcompany"),
    ] {
        let (ok, served) = common::sh(
            std::process::Command::new("curl")
                .args(["-sS", "--fail", "-H", &format!("Host: {host}")])
                .arg(format!("http://{web}/pgp-key.asc")),
        );
        assert!(ok, "{served}");
        let (ok, printed, err) = mx.cli(&["keys", "public", org], None);
        assert!(ok, "{err}");
        assert_eq!(served.trim(), printed.trim());
        let reader = Gpg::new();
        reader.import(served.as_bytes());
        assert_eq!(&reader.fingerprint(org), fpr);
    }
    let (ok, _) = common::sh(
        std::process::Command::new("curl")
            .args(["-sS", "--fail", "-H", "Host: elsewhere.example"])
            .arg(format!("http://{web}/pgp-key.asc")),
    );
    assert!(!ok, "no key for a host of no organisation");

    // The passphrase is nowhere but in the service's memory.
    let (_, audit, _) = mx.cli(&["audit", "list", "--json"], None);
    assert!(audit.contains("key-unlocked") && audit.contains("key-unlock-failed"));
    for place in [
        mx.log().into_bytes(),
        mx.database_bytes(),
        audit.into_bytes(),
    ] {
        for secret in [PASSPHRASE, "not the passphrase", "LOCKED-LYCHEE"] {
            assert!(
                !place.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret:?} leaked"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_encrypted_message_waits_for_the_password_like_an_archive() {
    let w = world();
    let mx = server(&w, String::new());
    let armored = w.gpg.encrypt_symmetric(
        "the password I phoned you",
        b"Description: SYMMETRIC-SATSUMA: the VPN accepts any certificate\n",
    );
    let mail = gpg::inline(
        REPORTER,
        MAGENTA,
        "Password-encrypted report",
        "sym@researcher.example",
        "Encrypted with gpg -c; I will phone you the password.",
        &armored,
    );
    let reply = common::plaintext_send(&mx, MAGENTA, &mail).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    mx.wait_filed(1);
    let c = mx.case_by_subject("Password-encrypted report");
    let reference = c["reference"].as_str().unwrap().to_owned();
    assert_eq!(c["state"], "awaiting-password", "{c}");
    assert_eq!(c["encryption"][0]["decryption"], "password", "{c}");
    assert!(!report_text(&c).contains("SYMMETRIC-SATSUMA"));

    let (ok, _, err) = mx.cli(
        &["unlock", &reference, "--password-stdin"],
        Some("a wrong guess\n"),
    );
    assert!(!ok && err.contains("wrong password"), "{err}");
    let (ok, out, err) = mx.cli(
        &["unlock", &reference, "--password-stdin"],
        Some("the password I phoned you\n"),
    );
    assert!(ok, "{out}{err}");
    let c = mx.case_json(&reference);
    assert_eq!(c["state"], "new", "{c}");
    assert_eq!(c["encryption"][0]["decryption"], "decrypted", "{c}");
    assert!(
        c["description"]
            .as_str()
            .unwrap_or_default()
            .contains("SYMMETRIC-SATSUMA"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_still_opens_mail_encrypted_to_the_old_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let gpg = Gpg::new();
    let old = gpg.generate("Magenta Security 2025 <security@magenta.example>", "");
    let new = gpg.generate("Magenta Security <security@magenta.example>", "");
    let policies = gpg::keyed_policies(&gpg, &[("magenta", &new, "")]);
    // The retired key, kept for decryption.
    let retired = policies.path().join("magenta.old.asc");
    std::fs::write(&retired, gpg.export_secret(&old, "")).unwrap();
    std::fs::set_permissions(&retired, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy = policies.path().join("magenta.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        format!("{text}previous_key_files = [\"magenta.old.asc\"]\n"),
    )
    .unwrap();
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        env: vec![(
            "DISCLOSURE_MX_POLICIES_DIR",
            policies.path().to_string_lossy().into_owned(),
        )],
        ..Opts::default()
    });
    for (key, subject) in [(&old, "To the old key"), (&new, "To the new key")] {
        let inner = gpg::inner_report(None, &format!("Description: {subject} ZEPHYR"), None);
        let armored = gpg.encrypt(key, None, &inner);
        let mail = gpg::pgp_mime(
            REPORTER,
            MAGENTA,
            subject,
            &format!("{key}@r.example"),
            &armored,
        );
        deliver_from(&mx, "r@researcher.example", MAGENTA, &mail).await;
    }
    mx.wait_filed(2);
    for subject in ["To the old key", "To the new key"] {
        let c = mx.case_by_subject(subject);
        assert_eq!(c["encryption"][0]["decryption"], "decrypted", "{c}");
        assert!(
            report_text(&c).contains(&format!("{subject} ZEPHYR")),
            "{c}"
        );
    }
    // Only the new key is published.
    let (ok, public, err) = mx.cli(&["keys", "public", "magenta"], None);
    assert!(ok, "{err}");
    let reader = Gpg::new();
    reader.import(public.as_bytes());
    assert_eq!(reader.fingerprint("security@magenta.example"), new);
}
