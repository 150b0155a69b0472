//! MTA-STS and what to publish: the policy file served for
//! `mta-sts.<domain>` of our domains only, and `dns records`, whose
//! `_mta-sts` id changes with the policy, whose TXT records an independent
//! parser (mail-auth's) reads, and whose TLSA record matches the
//! certificate as openssl computes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Opts, Server, sh};
use mail_auth::common::parse::TxtRecordParser;
use std::process::Command;

const MTA_STS: &str = "[mta_sts]\nmode = \"enforce\"\nmx = [\"mx.test\", \"*.mx.test\"]\nmax_age = 86400\n\
                       tls_rpt = [\"mailto:tls-reports@magenta.example\"]\n";

fn get(base: &str, host: &str) -> (String, String) {
    let (ok, out) = sh(Command::new("curl").args([
        "-sS",
        "-D",
        "-",
        "-H",
        &format!("Host: {host}"),
        &format!("{base}/.well-known/mta-sts.txt"),
    ]));
    assert!(ok, "{out}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[test]
fn the_policy_for_our_domains_and_the_records_to_publish() {
    let server = Server::start(Opts {
        extra: format!("[web]\nlisten = \"127.0.0.1:0\"\n{MTA_STS}"),
        ..Opts::default()
    });
    let base = format!("http://{}", common::web::web_addr(&server.data_dir()));
    let (head, body) = get(&base, "mta-sts.magenta.example:443");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase().contains("content-type: text/plain"),
        "{head}"
    );
    assert_eq!(
        body,
        "version: STSv1\r\nmode: enforce\r\nmx: mx.test\r\nmx: *.mx.test\r\nmax_age: 86400\r\n"
    );
    for host in ["mta-sts.other.example", "magenta.example"] {
        let (head, _) = get(&base, host);
        assert!(head.starts_with("HTTP/1.1 404"), "{host}: {head}");
    }

    let (ok, records, err) = server.cli(&["dns", "records"], None);
    assert!(ok, "{err}");
    let txt = |name: &str| -> String {
        let line = records
            .lines()
            .find(|l| l.starts_with(&format!("{name} TXT ")))
            .unwrap_or_else(|| panic!("no {name} in {records}"));
        line.split_once(" TXT ")
            .unwrap()
            .1
            .trim_matches('"')
            .to_owned()
    };
    let sts =
        mail_auth::mta_sts::MtaSts::parse(txt("_mta-sts.magenta.example.").as_bytes()).unwrap();
    assert_eq!(sts.id.len(), 20);
    let rpt =
        mail_auth::mta_sts::TlsRpt::parse(txt("_smtp._tls.magenta.example.").as_bytes()).unwrap();
    assert_eq!(rpt.rua.len(), 1, "{rpt:?}");
    assert!(
        records.contains("magenta.example. MX 10 mx.test."),
        "{records}"
    );
    assert!(
        records.contains("_mta-sts.netcompany.example. TXT"),
        "{records}"
    );
    // TLSA 3 1 1: SHA-256 of the certificate's public key, as openssl says.
    let cert = server.data_dir().join("tls/dev-cert.pem");
    let (ok, digest) = sh(Command::new("sh").arg("-c").arg(format!(
        "openssl x509 -in {} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r",
        cert.display()
    )));
    assert!(ok, "{digest}");
    let digest = digest.split_whitespace().next().unwrap();
    assert!(
        records.contains(&format!("_25._tcp.mx.test. TLSA 3 1 1 {digest}")),
        "{records}"
    );

    // Another mode, another id.
    let config = std::fs::read_to_string(server.config_path())
        .unwrap()
        .replace("mode = \"enforce\"", "mode = \"testing\"");
    let other = server.dir.path().join("testing.toml");
    std::fs::write(&other, config).unwrap();
    let out = Command::new(common::BIN)
        .args(["dns", "records", "--config"])
        .arg(&other)
        .output()
        .unwrap();
    let records_after = String::from_utf8_lossy(&out.stdout);
    let id_after = records_after
        .lines()
        .find(|l| l.starts_with("_mta-sts.magenta.example. TXT"))
        .unwrap();
    assert!(!id_after.contains(&sts.id), "{id_after} still {}", sts.id);
}
