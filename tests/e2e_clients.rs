//! End to end with real clients on loopback: lettre, Python's smtplib,
//! swaks and openssl s_client against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Opts, RCPT, Server, sh};
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn lettre_delivers_over_starttls_and_the_envelope_is_stored() {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let server = Server::start(Opts::default());
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(server.cert_pem.as_bytes()).unwrap())
        .build_rustls()
        .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .tls(Tls::Required(tls))
        .hello_name(ClientId::Domain("reporter.example".into()))
        .build();
    let email = Message::builder()
        .from("Reporter <reporter@example.org>".parse().unwrap())
        .to(RCPT.parse().unwrap())
        .subject("Responsible disclosure: IDOR in citizen portal")
        .body("Steps to reproduce: change id=1 to id=2.\n".to_owned())
        .unwrap();
    let response = mailer.send(email).await.unwrap();
    assert!(response.is_positive());
    let text = response.message().collect::<Vec<_>>().join(" ");
    assert!(text.starts_with("2.0.0 Stored safely as "), "{text}");
    let queue_id = text.rsplit(' ').next().unwrap().to_owned();

    let list = server.messages();
    assert_eq!(list.len(), 1, "{list:?}");
    let m = &list[0];
    assert_eq!(m["queue_id"], queue_id.as_str());
    assert_eq!(m["state"], "pending");
    assert_eq!(m["helo"], "reporter.example");
    assert_eq!(m["mail_from"], "reporter@example.org");
    assert_eq!(m["rcpt_to"], serde_json::json!([RCPT]));
    assert_eq!(m["tls_version"], "TLSv1.3");
    assert!(m["tls_cipher"].as_str().unwrap().starts_with("TLS13_"));
    assert!(m["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(m["received_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(m.get("raw").is_none(), "the listing carries no content");

    let raw = server.raw_messages().await;
    let raw = String::from_utf8(raw[0].clone()).unwrap();
    assert!(
        raw.starts_with("Received: from reporter.example ([127.0.0.1])\r\n\tby mx.test"),
        "{raw}"
    );
    assert!(raw.contains(&format!("with ESMTPS id {queue_id}")));
    assert!(raw.contains("(using TLSv1.3 with cipher TLS13_"));
    assert!(raw.contains("Subject: Responsible disclosure: IDOR in citizen portal\r\n"));
    assert_eq!(m["size"].as_u64().unwrap() as usize, raw.len());
}

#[test]
fn python_smtplib_plaintext_report_is_refused_then_delivers_over_tls_1_2() {
    let server = Server::start(Opts::default());
    let cafile = server.dir.path().join("ca.pem");
    std::fs::write(&cafile, &server.cert_pem).unwrap();
    let script = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("py.example")
try:
    s.sendmail("r@example.org", ["security@magenta.example"],
        "Subject: Responsible disclosure\r\n\r\nthe whole report in clear\r\n")
    print("plain-data accepted")
except smtplib.SMTPDataError as e:
    print("plain-data", e.smtp_code, e.smtp_error.decode())
s.rset()
ctx = ssl.create_default_context(cafile=cafile)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
s.starttls(context=ctx)
print("tls", s.sock.version(), s.sock.cipher()[0])
s.ehlo("py.example")
refused = s.sendmail("r@example.org", ["security@magenta.example"],
    "Subject: Responsible disclosure\r\n\r\nfrom smtplib\r\n")
print("refused", refused)
code, msg = s.rcpt("nobody@magenta.example")
print("unknown-rcpt", code, msg.decode())
s.quit()
"#;
    let (ok, out) = sh(Command::new("python3")
        .args(["-c", script, &server.addr.port().to_string()])
        .arg(&cafile));
    assert!(ok, "{out}");
    assert!(
        out.contains("plain-data 550 5.7.10 Without TLS only an encrypted report"),
        "{out}"
    );
    assert!(out.contains("tls TLSv1.2 ECDHE-"), "{out}");
    assert!(out.contains("refused {}"), "{out}");
    assert!(
        out.contains("unknown-rcpt 503"),
        "RCPT without MAIL after the transaction: {out}"
    );
    let list = server.messages();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["tls_version"], "TLSv1.2");
    assert!(
        list[0]["tls_cipher"]
            .as_str()
            .unwrap()
            .starts_with("TLS_ECDHE_")
    );
}

#[test]
fn swaks_delivers_with_starttls() {
    let server = Server::start(Opts::default());
    let (ok, out) = sh(Command::new("swaks").args([
        "--server",
        &server.addr.to_string(),
        "--tls",
        "--ehlo",
        "swaks.example",
        "--from",
        "reporter@example.org",
        "--to",
        RCPT,
        "--header",
        "Subject: Responsible disclosure: open redirect",
        "--body",
        "Steps: visit /login?next=//evil.example",
        "--timeout",
        "20",
    ]));
    assert!(ok, "{out}");
    assert!(out.contains("<~  250 2.0.0 Stored safely as"), "{out}");
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn swaks_without_tls_and_without_an_encrypted_archive_is_refused_and_nothing_is_stored() {
    let server = Server::start(Opts::default());
    let (ok, out) = sh(Command::new("swaks").args([
        "--server",
        &server.addr.to_string(),
        "--from",
        "reporter@example.org",
        "--to",
        RCPT,
        "--timeout",
        "20",
    ]));
    assert!(!ok);
    assert!(
        out.contains("<** 550 5.7.10 Without TLS only an encrypted report"),
        "{out}"
    );
    assert!(server.messages().is_empty());
}

fn s_client(server: &Server, args: &[&str]) -> (bool, String) {
    sh(Command::new("timeout")
        .args(["20", "openssl", "s_client", "-connect"])
        .arg(server.addr.to_string())
        .args(["-starttls", "smtp", "-servername", "localhost"])
        .args(args))
}

#[test]
fn openssl_tls_1_1_and_weak_ciphers_are_refused_1_2_and_1_3_accepted() {
    let server = Server::start(Opts::default());
    // SECLEVEL=0 so the client really sends a TLS 1.1 ClientHello.
    let (ok, out) = s_client(&server, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(!ok, "{out}");
    // rustls answers an old ClientHello with a fatal alert (handshake
    // failure: it lacks the TLS 1.2 signature_algorithms extension).
    let refused = |out: &str| out.contains("SSL alert number") && out.contains("Cipher is (NONE)");
    assert!(refused(&out), "refused with an alert: {out}");
    let (ok, out) = s_client(&server, &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(!ok, "{out}");
    assert!(refused(&out), "{out}");
    // TLS 1.2 without ECDHE/AEAD: RSA key exchange, CBC.
    let (ok, out) = s_client(&server, &["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256"]);
    assert!(!ok, "{out}");
    assert!(refused(&out), "{out}");
    let (ok, out) = s_client(&server, &["-tls1_2"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Protocol  : TLSv1.2") || out.contains("TLSv1.2, Cipher is ECDHE-"),
        "{out}"
    );
    let (ok, out) = s_client(&server, &["-tls1_3"]);
    assert!(ok, "{out}");
    assert!(out.contains("TLSv1.3"), "{out}");
}

#[test]
fn the_server_chooses_the_cipher_not_the_client() {
    let server = Server::start(Opts::default());
    // The client prefers ChaCha20; the server's order puts AES-256-GCM
    // first, and both offer it.
    let (ok, out) = s_client(
        &server,
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("ECDHE-ECDSA-AES256-GCM-SHA384"), "{out}");
    let (ok, out) = s_client(
        &server,
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("TLS_AES_256_GCM_SHA384"), "{out}");
    // The development certificate names its hosts in subjectAltName.
    let (ok, out) = sh(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(server.data_dir().join("tls/dev-cert.pem")));
    assert!(ok, "{out}");
    assert!(
        out.contains("DNS:mx.test")
            && out.contains("DNS:localhost")
            && out.contains("IP Address:127.0.0.1"),
        "{out}"
    );
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let make_cert = |cn: &str| {
        let (cert, key) = (
            dir.path().join(format!("{cn}.crt")),
            dir.path().join(format!("{cn}.key")),
        );
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let generated = params.self_signed(&key_pair).unwrap();
        std::fs::write(&cert, generated.pem()).unwrap();
        std::fs::write(&key, key_pair.serialize_pem()).unwrap();
        (cert, key)
    };
    let (cert_a, key_a) = make_cert("first.test");
    let (cert_b, key_b) = make_cert("second.test");
    let live_cert = dir.path().join("live.crt");
    let live_key = dir.path().join("live.key");
    std::fs::copy(&cert_a, &live_cert).unwrap();
    std::fs::copy(&key_a, &live_key).unwrap();
    let server = Server::start(Opts {
        tls: format!("cert_file = {live_cert:?}\nkey_file = {live_key:?}\n"),
        ..Opts::default()
    });
    let (_, out) = s_client(&server, &["-brief"]);
    assert!(
        out.contains("CN=first.test") || out.contains("CN = first.test"),
        "{out}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let pem_a = std::fs::read_to_string(&cert_a).unwrap();
    let mut old = rt
        .block_on(common::client::Client::connect_tls(
            server.addr,
            common::client::tls_config(&pem_a),
        ))
        .unwrap();

    std::fs::copy(&cert_b, &live_cert).unwrap();
    std::fs::copy(&key_b, &live_key).unwrap();
    server.signal("HUP");
    let mut seen = String::new();
    for _ in 0..50 {
        seen = s_client(&server, &["-brief"]).1;
        if seen.contains("second.test") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        seen.contains("second.test"),
        "new handshakes use the new cert: {seen}"
    );
    // The session opened before the reload still delivers.
    let reply = rt
        .block_on(old.send(
            "r@example.org",
            RCPT,
            &common::report("Responsible disclosure", "after reload"),
        ))
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(server.log().contains("certificate reloaded"));
}

/// Commands pipelined over TLS in one write, more than one read's worth:
/// between messages the session waits for input holding no buffer, so
/// what the TLS layer has already decrypted must still be read at once.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_commands_over_tls_are_all_answered() {
    let server = Server::start(Opts::default());
    let tls = common::client::tls_config(&server.cert_pem);
    let mut c = common::client::Client::connect_tls(server.addr, tls)
        .await
        .unwrap();
    let mut batch = String::from("MAIL FROM:<reporter@example.org>\r\n");
    for _ in 0..80 {
        batch.push_str(&format!("RCPT TO:<{RCPT}>\r\n"));
    }
    batch.push_str("DATA\r\n");
    assert!(batch.len() > 2048, "{}", batch.len());
    let answered = async {
        c.write(batch.as_bytes()).await.unwrap();
        let mut replies = Vec::new();
        for _ in 0..82 {
            replies.push(c.reply().await.unwrap());
        }
        c.write(b"Subject: Responsible disclosure: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            .await
            .unwrap();
        replies.push(c.reply().await.unwrap());
        replies.push(c.reply().await.unwrap());
        replies
    };
    let replies = tokio::time::timeout(std::time::Duration::from_secs(20), answered)
        .await
        .expect("every pipelined command answered");
    assert!(
        replies[..81].iter().all(|r| r.starts_with("250")),
        "{replies:?}"
    );
    assert!(replies[81].starts_with("354"), "{replies:?}");
    assert!(replies[82].starts_with("250"), "{replies:?}");
    assert!(replies[83].starts_with("221"), "{replies:?}");
    assert_eq!(server.messages().len(), 1);
}
