//! S/MIME reports end to end, with certificates and messages made by the
//! real `openssl` at test time: a report encrypted to the organisation's
//! certificate is decrypted into a case, over STARTTLS and without TLS
//! under the plaintext rule; a signed one names its signer, valid or not;
//! one encrypted to another certificate is filed and named undecryptable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::{INTAKE_ON, Opts, Server, deliver_from, sh};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

const MAGENTA: &str = "security@magenta.example";

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A self-signed certificate and key for `email`, as `name`.crt/.key.
fn certificate(dir: &Path, name: &str, email: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}/emailAddress={email}"),
            "-addext",
            &format!("subjectAltName=email:{email}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

fn crlf(data: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(data)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// `inner` signed by `signer` (detached, multipart/signed), or as given.
fn signed(dir: &Path, inner: &str, signer: &str) -> Vec<u8> {
    std::fs::write(dir.join("inner.eml"), crlf(inner.as_bytes())).unwrap();
    openssl(
        dir,
        &[
            "smime",
            "-sign",
            "-in",
            "inner.eml",
            "-signer",
            &format!("{signer}.crt"),
            "-inkey",
            &format!("{signer}.key"),
        ],
    )
}

/// `content` encrypted to `recipient`'s certificate, as a whole mail.
fn encrypted(dir: &Path, content: &[u8], recipient: &str, subject: &str) -> Vec<u8> {
    std::fs::write(dir.join("content.eml"), crlf(content)).unwrap();
    let mail = openssl(
        dir,
        &[
            "smime",
            "-encrypt",
            "-aes256",
            "-in",
            "content.eml",
            "-from",
            "Rita Reporter <r@researcher.example>",
            "-to",
            MAGENTA,
            "-subject",
            subject,
            &format!("{recipient}.crt"),
        ],
    );
    crlf(&mail)
}

const REPORT: &str = "Content-Type: text/plain; charset=utf-8\n\n\
                      Description: SMIME-SAPODILLA: the intranet search leaks salaries\n\
                      Impact: every employee's salary\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smime_reports_are_decrypted_and_their_signers_named() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    certificate(dir, "magenta", MAGENTA);
    certificate(dir, "reporter", "r@researcher.example");
    certificate(dir, "other", "someone@elsewhere.example");

    let policies = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("policies/magenta.toml").unwrap();
    std::fs::write(
        policies.path().join("magenta.toml"),
        format!(
            "{text}\n[smime]\ncertificate_file = \"magenta.crt\"\nkey_file = \"magenta.key\"\n"
        ),
    )
    .unwrap();
    std::fs::copy(
        "policies/netcompany.toml",
        policies.path().join("netcompany.toml"),
    )
    .unwrap();
    for f in ["magenta.crt", "magenta.key"] {
        std::fs::copy(dir.join(f), policies.path().join(f)).unwrap();
    }
    let key = policies.path().join("magenta.key");

    // A key others may read stops the start, naming the file.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = policies.path().join("check.toml.cfg");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\npolicies_dir = {:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\n",
            dir.join("data"),
            policies.path()
        ),
    )
    .unwrap();
    let (ok, out) = sh(Command::new(common::BIN)
        .args(["serve", "--config"])
        .arg(&config));
    assert!(!ok && out.contains("chmod 600"), "{out}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        env: vec![(
            "DISCLOSURE_MX_POLICIES_DIR",
            policies.path().to_string_lossy().into_owned(),
        )],
        ..Opts::default()
    });

    let plain = encrypted(dir, REPORT.as_bytes(), "magenta", "SMIME encrypted");
    deliver_from(&mx, "r@researcher.example", MAGENTA, &plain).await;
    let signed_mail = encrypted(
        dir,
        &signed(dir, REPORT, "reporter"),
        "magenta",
        "SMIME signed",
    );
    let (mut c, _) = Client::connect(mx.addr).await.unwrap();
    c.cmd("EHLO plain.example", "250").await.unwrap();
    let reply = c
        .send("r@researcher.example", MAGENTA, &signed_mail)
        .await
        .unwrap();
    assert!(
        reply.starts_with("250 2.0.0"),
        "admitted without TLS: {reply}"
    );
    let elsewhere = encrypted(dir, REPORT.as_bytes(), "other", "SMIME elsewhere");
    deliver_from(&mx, "r@researcher.example", MAGENTA, &elsewhere).await;
    // Changed after it was signed.
    let tampered = String::from_utf8(signed(dir, REPORT, "reporter"))
        .unwrap()
        .replace("leaks salaries", "leaks pensions");
    let tampered = encrypted(dir, tampered.as_bytes(), "magenta", "SMIME tampered");
    deliver_from(&mx, "r@researcher.example", MAGENTA, &tampered).await;
    mx.wait_filed(4);

    let c = mx.case_by_subject("SMIME tampered");
    assert_eq!(c["encryption"][0]["signature"]["status"], "invalid", "{c}");
    assert!(
        c["encryption"][0]["summary"]
            .as_str()
            .unwrap()
            .ends_with(", INVALID"),
        "{c}"
    );

    let c = mx.case_by_subject("SMIME encrypted");
    let e = &c["encryption"][0];
    assert_eq!(e["envelope"], "smime", "{c}");
    assert_eq!(e["decryption"], "decrypted", "{c}");
    assert!(e["signature"].is_null(), "{c}");
    assert!(
        c["description"]
            .as_str()
            .unwrap()
            .contains("SMIME-SAPODILLA"),
        "{c}"
    );

    let c = mx.case_by_subject("SMIME signed");
    assert!(c["tls_version"].is_null());
    let e = &c["encryption"][0];
    assert_eq!(e["decryption"], "decrypted", "{c}");
    assert_eq!(e["signature"]["status"], "valid", "{c}");
    let signer = e["signature"]["signer"].as_str().unwrap();
    assert!(
        signer.starts_with("r@researcher.example (SHA-256 "),
        "{signer}"
    );
    assert!(
        c["description"]
            .as_str()
            .unwrap()
            .contains("SMIME-SAPODILLA"),
        "{c}"
    );

    let c = mx.case_by_subject("SMIME elsewhere");
    assert_eq!(c["encryption"][0]["decryption"], "other-key", "{c}");
    assert!(
        c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "smime.p7m"),
        "the ciphertext is kept: {c}"
    );

    let db = mx.database_bytes();
    assert!(!db.windows(15).any(|w| w == b"SMIME-SAPODILLA"));
}
