//! SAML sign-in end to end over real HTTP: a test identity provider signs
//! responses with xmlsec, and the server must accept the correct ones and
//! refuse every forgery the crate's known traps allow: tampered, unsigned,
//! signed with another key, wrong audience, wrong destination, expired,
//! replayed, wrong InResponseTo, SHA-1, and signature wrapping. Also: a
//! metadata file without a signing certificate stops start-up; sessions end
//! at sign-out and when idle; cookies carry their flags; every form needs
//! its CSRF token; and every refusal is in the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::web::{Client, Sso};
use common::{BIN, INTAKE_ON};
use disclosure_mx::web::auth::devidp::{DevIdp, Signed};
use serde_json::Value;

const NC: &[&str] = &["nc-analysts"];

/// Posts `xml`; it must be refused with a page naming `reason`.
fn refused(c: &Client, xml: &str, why: &str, reason: &str) {
    let r = c.post_response(xml);
    assert_eq!(r.status, 403, "{why}: {}", r.text());
    assert!(r.text().contains("Sign-in refused"), "{why}");
    assert!(r.text().contains(reason), "{why}: {}", r.text());
    assert!(r.header("set-cookie").is_none(), "{why}: no session cookie");
    // And no session came of it.
    assert_eq!(c.get("/cases").status, 303, "{why}");
}

#[test]
fn correct_responses_sign_in_and_every_forgery_is_refused() {
    let sso = Sso::start("", "");

    // Our metadata, for the IdP's administrator.
    let m = Client::new(&sso.base).get("/saml/metadata");
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("application/samlmetadata+xml")
    );
    let xml = m.text();
    assert!(
        xml.contains(&format!("entityID=\"{}/saml/metadata\"", sso.base)),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("Location=\"{}/saml/acs\"", sso.base)),
        "{xml}"
    );
    assert!(xml.contains("WantAssertionsSigned=\"true\""), "{xml}");
    // Without --dev-idp there is no dev IdP and no banner.
    let c = Client::new(&sso.base);
    assert_eq!(c.get("/dev-idp/sso?SAMLRequest=x").status, 404);
    let page = c.post("/saml/acs", &[("SAMLResponse", "eA==")]).text();
    assert!(
        page.contains("Sign-in refused") && !page.contains("DEVELOPMENT"),
        "{page}"
    );

    // Signed assertion (the dev IdP's way) and signed response both work.
    for signed in [Signed::Assertion, Signed::Response] {
        let c = Client::new(&sso.base);
        let id = c.start_login();
        let mut spec = sso.spec(&id, "alice@nc.example", NC);
        spec.signed = signed;
        let r = c.post_response(&sso.idp.response(&spec).unwrap());
        assert_eq!(r.status, 303, "{signed:?}: {}", r.text());
        assert_eq!(r.header("location"), Some("/cases"));
        let cookie = r.header("set-cookie").unwrap();
        assert!(cookie.starts_with("dmx_session="), "{cookie}");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        // Plain HTTP on loopback is the dev exception to Secure.
        assert!(!cookie.contains("Secure"), "{cookie}");
        let page = c.get("/cases");
        assert_eq!(page.status, 200);
        assert!(
            page.text()
                .contains("Signed in as <strong>alice@nc.example</strong>")
        );
        // Neither the session secret nor the assertion reaches the log.
        let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        let log = sso.server.log();
        assert!(!log.contains(token), "session token logged");
        assert!(!log.contains("nc-analysts") && !log.contains("SAMLResponse"));
    }

    // Tampered: the signed group changed after signing.
    let c = Client::new(&sso.base);
    let id = c.start_login();
    let xml = sso.idp.response(&sso.spec(&id, "mallory", NC)).unwrap();
    assert!(xml.contains(">nc-analysts<"));
    refused(
        &c,
        &xml.replace(">nc-analysts<", ">dmx-admins<"),
        "tampered",
        "does not verify against the 1 signing certificate(s) in the IdP metadata",
    );

    // Unsigned.
    let id = c.start_login();
    let mut spec = sso.spec(&id, "mallory", NC);
    spec.signed = Signed::Unsigned;
    refused(
        &c,
        &sso.idp.response(&spec).unwrap(),
        "unsigned",
        "neither the Response nor its assertion is signed",
    );

    // Signed with another key (same entity id, so only the key differs).
    let other = DevIdp::generate(common::web::IDP_ENTITY, "https://idp.test/sso").unwrap();
    let id = c.start_login();
    refused(
        &c,
        &other.response(&sso.spec(&id, "mallory", NC)).unwrap(),
        "other key",
        "does not verify against the 1 signing certificate(s)",
    );

    // Wrong audience.
    let id = c.start_login();
    let mut spec = sso.spec(&id, "mallory", NC);
    spec.audience = "https://other-sp.example/metadata".into();
    refused(
        &c,
        &sso.idp.response(&spec).unwrap(),
        "wrong audience",
        &format!(
            "wrong audience (AudienceRequirement): expected {}/saml/metadata, the assertion names https://other-sp.example/metadata",
            sso.base
        ),
    );

    // Wrong destination and recipient (meant for another SP's ACS).
    let id = c.start_login();
    let mut spec = sso.spec(&id, "mallory", NC);
    spec.acs_url = "https://other-sp.example/saml/acs".into();
    refused(
        &c,
        &sso.idp.response(&spec).unwrap(),
        "wrong destination",
        "is not our ACS",
    );

    // Expired ten minutes ago, beyond the 60 s skew.
    let id = c.start_login();
    let mut spec = sso.spec(&id, "mallory", NC);
    spec.lifetime_seconds = -600;
    refused(
        &c,
        &sso.idp.response(&spec).unwrap(),
        "expired",
        "and 60 s of clock skew is allowed",
    );

    // Wrong InResponseTo: an id this server never issued.
    c.start_login();
    let spec = sso.spec("dmx-00000000000000000000000000000000", "mallory", NC);
    refused(
        &c,
        &sso.idp.response(&spec).unwrap(),
        "wrong InResponseTo",
        "no sign-in request of ours",
    );

    // InResponseTo rewritten in the unsigned envelope to another pending
    // request: the signed confirmation still names the first.
    let first = c.start_login();
    let second = c.start_login();
    let xml = sso.idp.response(&sso.spec(&first, "mallory", NC)).unwrap();
    let moved = xml.replace(
        &format!("InResponseTo=\"{first}\" Version"),
        &format!("InResponseTo=\"{second}\" Version"),
    );
    assert_ne!(moved, xml);
    refused(&c, &moved, "InResponseTo moved", "InResponseTo");

    // SHA-1 digest: refused by name, not as "unsigned".
    let id = c.start_login();
    let mut spec = sso.spec(&id, "mallory", NC);
    spec.sha1_digest = true;
    refused(
        &c,
        &sso.idp.response(&spec).unwrap(),
        "sha1",
        "signature algorithm SHA1 is refused: SHA-1 and weaker are broken",
    );

    // Replayed: the same correct response twice.
    let id = c.start_login();
    let good = sso
        .idp
        .response(&sso.spec(&id, "bob@nc.example", NC))
        .unwrap();
    assert_eq!(c.post_response(&good).status, 303);
    // (This browser is signed in by the first post; the second gets
    // nothing more.)
    let again = c.post_response(&good);
    assert_eq!(again.status, 403, "replayed: {}", again.text());
    assert!(again.text().contains("already answered"));
    assert!(again.header("set-cookie").is_none());

    // Login CSRF: a valid response for a request started in another
    // browser (the attacker's) is refused in this one.
    let attacker = Client::new(&sso.base);
    let id = attacker.start_login();
    let theirs = sso.idp.response(&sso.spec(&id, "mallory", NC)).unwrap();
    let victim = Client::new(&sso.base);
    victim.start_login();
    refused(
        &victim,
        &theirs,
        "posted into another browser",
        "did not start in this browser",
    );

    // Signature wrapping: an unsigned assertion for "admin" inserted
    // before the correctly signed one.
    let id = c.start_login();
    let signed = sso
        .idp
        .response(&sso.spec(&id, "bob@nc.example", NC))
        .unwrap();
    let start = signed.find("<saml2:Assertion").unwrap();
    let end = signed.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
    let original = &signed[start..end];
    let sig_start = original.find("<ds:Signature").unwrap();
    let sig_end = original.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let evil = format!("{}{}", &original[..sig_start], &original[sig_end..])
        .replace("ID=\"_", "ID=\"_evil")
        .replace(">bob@nc.example<", ">admin<")
        .replace(">nc-analysts<", ">dmx-admins<");
    let wrapped = format!("{}{evil}{}", &signed[..start], &signed[start..]);
    let c2 = Client::new(&sso.base);
    refused(&c2, &wrapped, "wrapping", "exactly one assertion");

    // A DOCTYPE is refused before parsing.
    let id = c.start_login();
    let xml = sso.idp.response(&sso.spec(&id, "mallory", NC)).unwrap();
    let with_dtd = xml.replacen("?>", "?><!DOCTYPE r [<!ENTITY x \"y\">]>", 1);
    refused(&c2, &with_dtd, "doctype", "DTDs are not allowed");

    // A correct response for someone with no mapped group: no session.
    let c3 = Client::new(&sso.base);
    let id = c3.start_login();
    let r = c3.post_response(
        &sso.idp
            .response(&sso.spec(&id, "eve", &["marketing"]))
            .unwrap(),
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("grants you no role"));
    assert_eq!(c3.get("/cases").status, 303);

    // Every refusal is in the audit trail, with what kind it was: those
    // of strangers counted per address and minute (written when the
    // minute ends, or at an orderly stop), those of a verified identity
    // one by one.
    let mut sso = sso;
    sso.server.signal("TERM");
    assert!(sso.server.wait_exit(std::time::Duration::from_secs(40)));
    let (ok, out, err) = sso.server.cli(&["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let refusals: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "sign-in-refused")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    let counted = |kind: &str| -> u64 {
        refusals
            .iter()
            .map(|d| {
                if *d == kind {
                    return 1;
                }
                d.split_once(": ").map_or(0, |(_, kinds)| {
                    kinds
                        .split(", ")
                        .filter_map(|k| k.split_once(' '))
                        .filter(|(_, k)| *k == kind)
                        .map(|(n, _)| n.parse::<u64>().unwrap())
                        .sum()
                })
            })
            .sum()
    };
    let kinds = [
        "malformed response",
        "unknown or answered request",
        "started in another browser",
        "replayed assertion",
        "response did not verify",
        "no role granted",
    ];
    let total: u64 = kinds.iter().map(|k| counted(k)).sum();
    assert_eq!(total, 15, "{refusals:?}");
    assert!(counted("replayed assertion") + counted("unknown or answered request") > 0);
    assert!(counted("malformed response") > 0);
    assert_eq!(counted("no role granted"), 1);
    assert!(counted("started in another browser") > 0);
    assert!(
        refusals.len() < 15,
        "strangers' refusals share entries: {refusals:?}"
    );
    let sign_ins: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-in")
        .collect();
    assert_eq!(sign_ins.len(), 3);
    assert!(sign_ins.iter().all(|e| e["source"] == "127.0.0.1"));
    let (ok, out, _) = sso.server.cli(&["audit", "verify"], None);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn sessions_end_at_sign_out_and_when_idle_and_forms_need_their_token() {
    let sso = Sso::start("session_idle_seconds = 3", INTAKE_ON);
    common::deliver_from(
        &sso.server,
        "a@researcher.example",
        "security@netcompany.example",
        &common::fixture("en-netcompany-xss.eml"),
    )
    .await;
    sso.server.wait_filed(1);
    let reference = sso.server.case_of("netcompany");
    let c = sso.signed_in("alice@nc.example", NC);
    let path = format!("/cases/{reference}");
    let page = c.get(&path);
    assert_eq!(page.status, 200, "{}", page.text());
    let csrf = c.csrf(&path);
    assert_eq!(csrf.len(), 64);

    // A form without its token, or with another, changes nothing.
    let notes = format!("{path}/notes");
    for bad in [
        "",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = c.post(&notes, &[("csrf", bad), ("text", "forged note")]);
        assert_eq!(r.status, 403, "{}", r.text());
    }
    let r = c.post(&notes, &[("text", "no token at all")]);
    assert!(r.status >= 400, "{}", r.status);
    let r = c.post(&notes, &[("csrf", &csrf), ("text", "real note")]);
    assert_eq!(r.status, 303);
    let page = c.get(&path).text();
    assert!(page.contains("real note") && !page.contains("forged note"));

    // Idle: three seconds without a request end the session.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let r = c.get("/cases");
    assert_eq!(r.status, 303, "idle session still open");
    assert_eq!(r.header("location"), Some("/login"));
    // A form posted after the session ended is refused, not replayed.
    let r = c.post(&notes, &[("csrf", &csrf), ("text", "late note")]);
    assert_eq!(r.status, 401);

    // Sign-out ends the session on the server, not only the cookie.
    let c = sso.signed_in("alice@nc.example", NC);
    let jar_cookie = {
        let r = c.get("/cases");
        assert_eq!(r.status, 200);
        c.csrf("/cases")
    };
    let r = c.post("/logout", &[("csrf", &jar_cookie)]);
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(c.get("/cases").status, 303);

    let (_, out, _) = sso.server.cli(&["audit", "list", "--json"], None);
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    for action in ["sign-in", "view", "note", "sign-out"] {
        assert!(
            entries.iter().any(|e| e["action"] == action
                && e["actor"] == "alice@nc.example"
                && e["source"] == "127.0.0.1"),
            "no {action} entry from the browser"
        );
    }
}

#[test]
fn sessions_end_at_their_absolute_limit_however_busy() {
    let sso = Sso::start(
        "session_idle_seconds = 60\nsession_absolute_seconds = 3",
        "",
    );
    let c = sso.signed_in("alice@nc.example", NC);
    let start = std::time::Instant::now();
    // In use every half second, yet over after three seconds. (Clocks
    // count whole seconds, so stay well inside the limit, then well past.)
    while start.elapsed() < std::time::Duration::from_millis(1500) {
        assert_eq!(c.get("/cases").status, 200);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(std::time::Duration::from_millis(3000));
    assert_eq!(c.get("/cases").status, 303);
}

#[test]
fn the_dev_idp_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\naccept_for = [\"security@x.example\"]\n\
             [web]\nlisten = \"0.0.0.0:0\"\n",
            dir.path().join("data"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--dev-idp", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serves on loopback only"), "{err}");

    // On loopback, but behind a public URL (a proxy in front): refused too,
    // before anything listens.
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\naccept_for = [\"security@x.example\"]\n\
             [web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://dmx.example.org\"\n",
            dir.path().join("data"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--dev-idp", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.public_url (https://dmx.example.org)"),
        "{err}"
    );
    assert!(!dir.path().join("data/api-listening").exists());
}

#[test]
fn metadata_without_a_signing_certificate_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("idp.xml");
    std::fs::write(
        &metadata,
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.test/metadata">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\naccept_for = [\"security@x.example\"]\n\
             [web]\nlisten = \"127.0.0.1:0\"\n[saml]\nidp_metadata = {:?}\n",
            dir.path().join("data"),
            metadata
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no signing certificate: refusing to start"),
        "{err}"
    );
}

#[test]
fn over_https_the_session_cookie_is_secure_and_host_bound() {
    let sso = Sso::start("tls = true", "");
    assert!(sso.base.starts_with("https://"));
    let c = Client::new(&sso.base);
    let id = c.start_login();
    let r = c.post_response(
        &sso.idp
            .response(&sso.spec(&id, "alice@nc.example", NC))
            .unwrap(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-dmx_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
    );
    assert_eq!(c.get("/cases").status, 200);
    // Plain HTTP on the same port gets no page.
    let plain = Client::new(&sso.base.replacen("https://", "http://", 1)).get("/cases");
    assert_ne!(plain.status, 200);
}

#[test]
fn strangers_cannot_flood_the_audit_trail_and_the_page_pages() {
    let mut sso = Sso::start("", "");
    let audit = |sso: &Sso| -> Vec<Value> {
        let (ok, out, err) = sso.server.cli(&["audit", "list", "--json"], None);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let before = audit(&sso).len();
    // Anyone can post to the ACS. 200 malformed responses write nothing
    // at once.
    let stranger = Client::new(&sso.base);
    let posts: Vec<_> = (0..4)
        .map(|_| {
            let base = sso.base.clone();
            std::thread::spawn(move || {
                let c = Client::new(&base);
                for i in 0..50 {
                    let r = c.post("/saml/acs", &[("SAMLResponse", &format!("junk-{i}"))]);
                    assert_eq!(r.status, 403);
                }
            })
        })
        .collect();
    for p in posts {
        p.join().unwrap();
    }
    assert_eq!(stranger.get("/cases").status, 303);
    assert_eq!(audit(&sso).len(), before, "no entry per refusal");

    // An admin pages and filters the trail.
    for _ in 0..105 {
        let (ok, _, err) = sso.server.cli(&["cases", "export"], None);
        assert!(ok, "{err}");
    }
    let admin = sso.signed_in("root@example", &["dmx-admins"]);
    let first = admin.get("/audit").text();
    assert_eq!(first.matches("<tr><td>").count(), 100, "a page of 100");
    assert!(first.contains("id=\"older\""), "a link to older entries");
    assert!(!first.contains("id=\"newer\""));
    let second = admin.get("/audit?page=1").text();
    assert!(second.contains("id=\"newer\""));
    assert!(second.matches("<tr><td>").count() >= 5);
    let signins = admin.get("/audit?action=sign-in").text();
    assert_eq!(signins.matches("<tr><td>").count(), 1, "{signins}");
    assert!(signins.contains("signed in via SAML"));
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let by_day = admin.get(&format!(
        "/audit?actor=root%40example&from={today}&to={today}"
    ));
    assert_eq!(by_day.status, 200);
    assert!(by_day.text().matches("<tr><td>").count() >= 1);
    let tomorrow = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string();
    let none = admin.get(&format!("/audit?from={tomorrow}")).text();
    assert_eq!(none.matches("<tr><td>").count(), 0);
    assert_eq!(admin.get("/audit?from=yesterday").status, 422);

    // At an orderly stop the minute's tally is written: one entry per
    // source and minute (two if a minute ended meanwhile), with the count.
    sso.server.signal("TERM");
    assert!(sso.server.wait_exit(std::time::Duration::from_secs(40)));
    let refusals: Vec<Value> = audit(&sso)
        .into_iter()
        .filter(|e| e["action"] == "sign-in-refused")
        .collect();
    assert!((1..=2).contains(&refusals.len()), "{refusals:?}");
    let total: u64 = refusals
        .iter()
        .map(|e| {
            e["detail"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 200, "{refusals:?}");
    assert!(refusals.iter().all(|e| e["source"] == "127.0.0.1"));
    assert!(
        refusals
            .iter()
            .all(|e| e["detail"].as_str().unwrap().contains("malformed response"))
    );
}
