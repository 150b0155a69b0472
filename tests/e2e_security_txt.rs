//! security.txt (RFC 9116) from the policy: served for the organisation
//! whose domain the request's Host names, checked by an independent
//! parser (Python's `sectxt`, installed by `deploy/system-deps.sh test`);
//! `policies check` warns 30 days before Expires and fails after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::web::Sso;
use common::{Server, sh};
use serde_json::Value;
use std::process::Command;

const PARSE: &str = r#"
import json, sys, sectxt
content = open(sys.argv[1], "rb").read()
p = sectxt.Parser(content, urls=sys.argv[2])
print(json.dumps({"valid": p.is_valid(), "errors": p.errors, "values": p._values}))
"#;

fn fetch(base: &str, host: &str) -> (u16, String, String) {
    let (ok, out) = sh(Command::new("curl")
        .args(["-sS", "-D", "-", "-H", &format!("Host: {host}")])
        .arg(format!("{base}/.well-known/security.txt")));
    assert!(ok, "{out}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn parse(body: &str, canonical: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("security.txt");
    std::fs::write(&file, body).unwrap();
    let python = format!("{}/target/test-venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    let (ok, out) = sh(Command::new(python)
        .arg("-c")
        .arg(PARSE)
        .arg(&file)
        .arg(canonical));
    assert!(ok, "{out}");
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn each_organisation_publishes_its_own_file_and_a_parser_agrees() {
    let sso = Sso::start("", "");
    for (host, org, canonical, languages) in [
        (
            "magenta.example",
            "magenta",
            "https://magenta.example/.well-known/security.txt",
            "da, en",
        ),
        (
            "www.netcompany.example:8443",
            "netcompany",
            "https://netcompany.example/.well-known/security.txt",
            "en, da",
        ),
    ] {
        let (status, head, body) = fetch(&sso.base, host);
        assert_eq!(status, 200, "{host}: {body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; charset=utf-8"),
            "{head}"
        );
        let parsed = parse(&body, canonical);
        assert_eq!(parsed["valid"], true, "{host}: {parsed}\n{body}");
        let v = &parsed["values"];
        assert_eq!(
            v["contact"][0],
            format!("mailto:security@{org}.example").as_str()
        );
        assert_eq!(v["expires"][0], "2027-11-01T00:00:00Z");
        assert_eq!(v["preferred-languages"][0], languages);
        assert_eq!(v["canonical"][0], canonical);
        assert_eq!(
            v["policy"][0],
            format!("https://{org}.example/responsible-disclosure").as_str()
        );
    }
    let (status, _, _) = fetch(&sso.base, "elsewhere.example");
    assert_eq!(status, 404);
}

/// A policy directory with the seeds, their `expires` replaced.
fn policies_expiring(expires: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["magenta.toml", "netcompany.toml"] {
        let text = std::fs::read_to_string(format!("policies/{name}")).unwrap();
        let text = text.replace(
            "expires = \"2027-11-01T00:00:00Z\"",
            &format!("expires = \"{expires}\""),
        );
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn policies_check_warns_before_expiry_and_fails_after() {
    let server = Server::start(common::Opts::default());
    let now = jiff::Timestamp::now().as_second();
    let at = |t: i64| jiff::Timestamp::from_second(t).unwrap().to_string();
    let check = |dir: &tempfile::TempDir| {
        let out = Command::new(env!("CARGO_BIN_EXE_disclosure-mx"))
            .args(["--config"])
            .arg(server.config_path())
            .args(["policies", "check"])
            .env("DISCLOSURE_MX_POLICIES_DIR", dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = check(&policies_expiring(&at(now + 200 * 86_400)));
    assert!(ok, "{err}");
    assert!(!out.contains("warning"), "{out}");
    assert!(out.contains("regime:          nis2"), "{out}");
    let soon = policies_expiring(&at(now + 10 * 86_400));
    let (ok, out, err) = check(&soon);
    assert!(ok, "{err}");
    assert!(
        out.contains("warning:         security.txt expires at"),
        "{out}"
    );
    // The service still starts, and says so in its log.
    let warned = Server::start(common::Opts {
        env: vec![(
            "DISCLOSURE_MX_POLICIES_DIR",
            soon.path().display().to_string(),
        )],
        ..common::Opts::default()
    });
    assert!(
        warned.log().contains("security.txt expires at"),
        "{}",
        warned.log()
    );
    let (ok, out, err) = check(&policies_expiring(&at(now - 60)));
    assert!(!ok, "{out}");
    assert!(err.contains("security.txt expired at"), "{err}");
}
