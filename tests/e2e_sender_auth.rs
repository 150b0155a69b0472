//! Sender authentication end to end, against a DNS server the test starts
//! on loopback (no real DNS): SPF pass and fail, a DKIM signature made by
//! the test (valid, and broken by a change after signing), a DMARC reject
//! policy, and a failing look-up. Every report is accepted and filed
//! whatever the results; the case shows our results only (a forged
//! `Authentication-Results` under our authserv-id is stripped from the
//! stored mail); a receipt goes out only to an authenticated sender, and
//! waits for an analyst otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::dns::Dns;
use common::{INTAKE_ON, Opts, Server, deliver_from, wait_until};
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::DkimSigner;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const MAGENTA: &str = "security@magenta.example";

/// An RSA key made by `openssl`: (PKCS#1 DER private key, the DKIM TXT
/// record of its public key).
fn dkim_key() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "genrsa",
        "-traditional",
        "-out",
        key.to_str().unwrap(),
        "2048",
    ]);
    let der = run(&[
        "rsa",
        "-in",
        key.to_str().unwrap(),
        "-outform",
        "DER",
        "-traditional",
    ]);
    let public = run(&[
        "rsa",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    use base64::Engine as _;
    let p = base64::engine::general_purpose::STANDARD.encode(public);
    (der, format!("v=DKIM1; k=rsa; p={p}"))
}

fn mail(from: &str, subject: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "{extra_headers}From: {from}\r\nTo: {MAGENTA}\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
}

fn signed(key: &[u8], message: &str) -> String {
    let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(
        key.to_vec(),
    )))
    .unwrap();
    let signature = DkimSigner::from_key(key)
        .domain("signer.example")
        .selector("sel")
        .headers(["From", "To", "Subject", "Message-ID"])
        .sign(message.as_bytes())
        .unwrap();
    format!("{}{message}", signature.to_header())
}

fn lines(case: &Value) -> String {
    case["sender_auth"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("not assessed: {case}"))
        .iter()
        .map(|c| c["line"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_are_assessed_after_filing_and_only_authenticated_ones_get_a_receipt() {
    let (key, dkim_record) = dkim_key();
    let dns = Dns::start(&[
        ("researcher.example", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
        ("signer.example", "TXT", "v=spf1 -all"),
        ("sel._domainkey.signer.example", "TXT", &dkim_record),
        ("forged.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.forged.example", "TXT", "v=DMARC1; p=reject"),
        ("flaky.example", "SERVFAIL", ""),
    ]);
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\", \"@signer.example\", \"@forged.example\", \"@flaky.example\"]",
        ..Opts::default()
    });
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!("{}\n{}", sink.as_relay(), dns.sender_auth("mx.test")),
        ..Opts::default()
    });

    // SPF passes; the sender also wrote results under our authserv-id.
    let forged_header =
        "Authentication-Results: mx.test;\r\n\tspf=pass dkim=pass (FORGED-BY-SENDER)\r\n";
    let spf = mail(
        "r@researcher.example",
        "SPF pass",
        forged_header,
        "Description: one",
    );
    deliver_from(&mx, "r@researcher.example", MAGENTA, spf.as_bytes()).await;
    // SPF fails for the envelope, a DKIM signature of the From: domain
    // verifies.
    let dkim = signed(
        &key,
        &mail("ceo@signer.example", "DKIM valid", "", "Description: two"),
    );
    deliver_from(&mx, "ceo@signer.example", MAGENTA, dkim.as_bytes()).await;
    // The same signature, the body changed after signing.
    let broken = signed(
        &key,
        &mail(
            "ceo@signer.example",
            "DKIM broken",
            "",
            "Description: three",
        ),
    )
    .replace("Description: three", "Description: altered");
    deliver_from(&mx, "ceo@signer.example", MAGENTA, broken.as_bytes()).await;
    // Forged: SPF fails and the domain's DMARC policy says reject. Still
    // accepted and filed: these are signals, never a refusal.
    let forged = mail(
        "boss@forged.example",
        "DMARC reject",
        "",
        "Description: four",
    );
    deliver_from(&mx, "boss@forged.example", MAGENTA, forged.as_bytes()).await;
    // The look-up fails: temperror, never a pass.
    let flaky = mail("r@flaky.example", "Lookup fails", "", "Description: five");
    deliver_from(&mx, "r@flaky.example", MAGENTA, flaky.as_bytes()).await;
    mx.wait_filed(5);

    wait_until("every sender assessed", Duration::from_secs(60), || {
        let (_, out, _) = mx.cli(&["cases", "list", "--json"], None);
        let list: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
        list.len() == 5
            && list
                .iter()
                .all(|c| !mx.case_json(c["reference"].as_str().unwrap())["sender_auth"].is_null())
    });

    let c = mx.case_by_subject("SPF pass");
    assert_eq!(c["sender_auth"]["authenticated"], true, "{c}");
    let l = lines(&c);
    assert!(
        l.contains("SPF: r@researcher.example from 127.0.0.1, authorised by its domain"),
        "{l}"
    );
    assert!(l.contains("DKIM: not signed"), "{l}");
    let ar = c["authentication_results"].as_str().unwrap();
    assert!(ar.starts_with("mx.test"), "{ar}");
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(!ar.contains("FORGED-BY-SENDER"), "{ar}");
    let (ok, raw, err) = mx.cli(&["cases", "raw", c["reference"].as_str().unwrap()], None);
    assert!(ok, "{err}");
    assert!(raw.starts_with("Authentication-Results: mx.test;"), "{raw}");
    assert!(!raw.contains("FORGED-BY-SENDER"), "stripped: {raw}");

    let c = mx.case_by_subject("DKIM valid");
    assert_eq!(c["sender_auth"]["authenticated"], true, "{c}");
    let l = lines(&c);
    assert!(l.contains("DKIM: signed by signer.example, valid"), "{l}");
    assert!(l.contains("NOT authorised by its domain"), "{l}");

    let c = mx.case_by_subject("DKIM broken");
    assert_eq!(c["sender_auth"]["authenticated"], false, "{c}");
    assert!(
        lines(&c).contains("DKIM: signed by signer.example, INVALID"),
        "{c}"
    );
    let broken_ref = c["reference"].as_str().unwrap().to_owned();

    let c = mx.case_by_subject("DMARC reject");
    assert_eq!(c["sender_auth"]["authenticated"], false, "{c}");
    let l = lines(&c);
    assert!(
        l.contains("DMARC: forged.example, NOT aligned (its policy: reject)"),
        "{l}"
    );
    assert_eq!(c["kind"], "disclosure");

    let c = mx.case_by_subject("Lookup fails");
    assert_eq!(c["sender_auth"]["authenticated"], false, "{c}");
    assert_eq!(c["sender_auth"]["checks"][0]["result"], "temperror", "{c}");

    // Receipts: two authenticated senders got theirs; three wait.
    wait_until("two receipts at the sink", Duration::from_secs(30), || {
        sink.messages().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let at_sink: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["rcpt_to"].to_string())
        .collect();
    assert_eq!(at_sink.len(), 2, "{at_sink:?}");
    assert!(at_sink.iter().any(|r| r.contains("r@researcher.example")));
    assert!(at_sink.iter().any(|r| r.contains("ceo@signer.example")));
    let (_, outbox, _) = mx.cli(&["outbox", "list", "--json"], None);
    let held = outbox.matches("unauthenticated-sender").count();
    assert_eq!(held, 3, "{outbox}");

    // An analyst judges one genuine and releases its receipt.
    let (ok, out, err) = mx.cli(&["cases", "release-receipt", &broken_ref], None);
    assert!(ok, "{err}");
    assert!(out.contains("receipt released"), "{out}");
    wait_until(
        "the released receipt at the sink",
        Duration::from_secs(30),
        || sink.messages().len() == 3,
    );
    let (ok, _, err) = mx.cli(&["cases", "release-receipt", &broken_ref], None);
    assert!(!ok && err.contains("no receipt held"), "{err}");
    let timeline = mx.case_json(&broken_ref)["timeline"].to_string();
    assert!(timeline.contains("receipt-released"), "{timeline}");

    // Every look-up went to the loopback server.
    let asked = dns.queries();
    assert!(asked.contains("researcher.example TXT"), "{asked}");
    assert!(
        asked.contains("sel._domainkey.signer.example TXT"),
        "{asked}"
    );
    assert!(asked.contains("_dmarc.forged.example TXT"), "{asked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_that_never_answers_does_not_hold_the_shutdown() {
    // A UDP socket on loopback that reads queries and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!(
            "[sender_auth]\nenabled = true\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout = 5\n"
        ),
        ..Opts::default()
    });
    let report = mail(
        "r@researcher.example",
        "Silent resolver",
        "",
        "Description: one",
    );
    deliver_from(&mx, "r@researcher.example", MAGENTA, report.as_bytes()).await;
    mx.wait_filed(1);
    // The assessment is now waiting on the silent resolver.
    let mut buf = [0u8; 512];
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        silent.recv_from(&mut buf).is_ok(),
        "a query reached the resolver"
    );
    let asked = std::time::Instant::now();
    mx.signal("TERM");
    assert!(
        mx.wait_exit(Duration::from_secs(5)),
        "still running 5 s after SIGTERM:\n{}",
        mx.log()
    );
    assert!(asked.elapsed() < Duration::from_secs(5));
}
