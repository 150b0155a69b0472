//! Sign-in and single logout against a real identity provider: Debian's
//! SimpleSAMLphp 1.19 on loopback (`common::simplesamlphp`), set up the way
//! an administrator would: our metadata printed by `disclosure-mx saml
//! metadata` before anyone signs in, validated against the SAML metadata
//! schema and converted by SimpleSAMLphp's own parser; the IdP told to
//! sign and check logout messages. Driven as a browser would be (curl with
//! a cookie jar; forms the IdP would submit by script are submitted):
//! - sign-in, with a persistent NameID: the same person twice is the same
//!   actor in the audit trail; our AuthnRequests signed and checked by the
//!   IdP (the Chromium run: unsigned, the default);
//! - a user without a role is refused; a replayed response is refused;
//! - IdP-initiated single logout (HTTP-Redirect, both signatures checked
//!   by the other side), after which `/cases` needs sign-in again;
//! - SP-initiated logout, which ends the IdP session too;
//! - an IdP signing with RSA-SHA1 is refused with a message naming SHA-1.
//!
//! Then the same sign-in and both logouts in headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::simplesamlphp::{Idp, RSA_SHA1, free_port};
use common::web::{Client, ROLES, Reply, web_addr};
use common::{Opts, Server};
use serde_json::Value;

/// HTML attribute text back to what it says.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the input named `name` in `page`, if any.
fn input(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\""))?;
    let tag_start = page[..at].rfind('<')?;
    let tag_end = at + page[at..].find('>')?;
    let tag = &page[tag_start..tag_end];
    let v = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(unescape(v))
}

/// `location` made absolute against `from`.
fn absolute(from: &str, location: &str) -> String {
    if location.starts_with("http") {
        return location.to_owned();
    }
    let origin_end = from.find("://").map_or(0, |i| i + 3);
    let host_end = origin_end
        + from[origin_end..]
            .find('/')
            .unwrap_or(from.len() - origin_end);
    format!("{}{location}", &from[..host_end])
}

/// One step a browser took: the URL, and the SAML form fields it posted.
#[derive(Debug)]
struct Step {
    url: String,
    posted: Vec<(String, String)>,
}

/// Goes on from `reply` (at `url`) as a browser would: follows redirects,
/// and submits the SAML forms an IdP or SP submits by script. Returns the
/// last reply, its URL, and every step.
fn follow(c: &Client, mut url: String, mut reply: Reply) -> (String, Reply, Vec<Step>) {
    let mut steps = vec![Step {
        url: url.clone(),
        posted: Vec::new(),
    }];
    for _ in 0..20 {
        if (300..400).contains(&reply.status) {
            url = absolute(&url, reply.header("location").unwrap());
            reply = c.get_url(&url);
            steps.push(Step {
                url: url.clone(),
                posted: Vec::new(),
            });
            continue;
        }
        let page = reply.text();
        // A page that moves on by itself, as ours does after sign-out.
        if let Some(refresh) = page.split("http-equiv=\"refresh\" content=\"0;url=").nth(1) {
            url = absolute(&url, &unescape(refresh.split('"').next().unwrap()));
            reply = c.get_url(&url);
            steps.push(Step {
                url: url.clone(),
                posted: Vec::new(),
            });
            continue;
        }
        let saml: Vec<(String, String)> = ["SAMLRequest", "SAMLResponse", "RelayState"]
            .iter()
            .filter_map(|n| input(&page, n).map(|v| ((*n).to_owned(), v)))
            .collect();
        if reply.status == 200 && saml.iter().any(|(n, _)| n != "RelayState") {
            let action = unescape(
                page.split("action=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap(),
            );
            url = absolute(&url, &action);
            let fields: Vec<(&str, &str)> =
                saml.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            reply = c.post_url(&url, &fields);
            steps.push(Step {
                url: url.clone(),
                posted: saml,
            });
            continue;
        }
        return (url, reply, steps);
    }
    panic!("a redirect loop: {steps:?}");
}

/// Signs `user` in at the IdP from our `/login`: the reply of our ACS (or
/// of wherever the journey ended), and the SAMLResponse posted to it.
fn sign_in(c: &Client, user: &str, password: &str) -> (String, Reply, Option<String>) {
    let start = format!("{}/login", c.base);
    let (url, form, _) = follow(c, start.clone(), c.get_url(&start));
    assert!(url.contains("loginuserpass.php"), "{url}: {}", form.text());
    let auth_state = input(&form.text(), "AuthState").unwrap();
    let r = c.post_url(
        &url,
        &[
            ("username", user),
            ("password", password),
            ("AuthState", &auth_state),
        ],
    );
    let (url, reply, steps) = follow(c, url, r);
    let response = steps
        .iter()
        .find(|s| s.url.ends_with("/saml/acs"))
        .and_then(|s| s.posted.iter().find(|(n, _)| n == "SAMLResponse"))
        .map(|(_, v)| v.clone());
    (url, reply, response)
}

/// The IdP, and our server set up to trust it and trusted by it.
struct Setup {
    idp: Idp,
    server: Server,
    base: String,
    _dir: tempfile::TempDir,
}

/// With `sign_requests`, our metadata says AuthnRequestsSigned, and the
/// IdP checks every AuthnRequest's signature.
fn setup(sign_requests: bool) -> Setup {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&[&format!("127.0.0.1:{port}"), "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let idp_metadata = dir.path().join("idp.xml");
    std::fs::write(&idp_metadata, idp.metadata()).unwrap();
    let server = Server::start(Opts {
        extra: format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\n\
             [saml]\nidp_metadata = {idp_metadata:?}\ndisplay_name_attribute = \"displayName\"\n\
             sign_requests = {sign_requests}\n{ROLES}"
        ),
        ..Opts::default()
    });
    web_addr(&server.data_dir());

    // The admin hands our metadata over, printed by the CLI: the same
    // document the service serves. SimpleSAMLphp validates and converts
    // it; the admin adds that logout messages are signed and checked.
    let (ok, printed, err) = server.cli(&["saml", "metadata"], None);
    assert!(ok, "{err}");
    let served = Client::new(&base).get("/saml/metadata").text();
    assert_eq!(printed.trim(), served.trim());
    assert!(printed.contains(&format!("AuthnRequestsSigned=\"{sign_requests}\"")));
    idp.trust_sp(&printed, "'validate.logout' => true, 'sign.logout' => true");
    Setup {
        idp,
        server,
        base,
        _dir: dir,
    }
}

#[test]
fn a_real_identity_provider_signs_in_and_out_both_ways() {
    let Setup {
        idp,
        mut server,
        base,
        _dir,
    } = setup(true);

    // Sign-in: a persistent NameID, and the roles from `groups`.
    let alice = Client::new(&base);
    let (url, r, first_response) = sign_in(&alice, "alice", "alice-pass");
    assert!(
        url.ends_with("/cases"),
        "{url}: {}\n{}",
        r.text(),
        idp.log()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("alice (test)"),
        "display name: {}",
        r.text()
    );
    // Replayed: the same response posted again.
    let replay = alice.post("/saml/acs", &[("SAMLResponse", &first_response.unwrap())]);
    assert_eq!(replay.status, 403);
    assert!(
        replay.text().contains("already answered"),
        "{}",
        replay.text()
    );

    // No role: a correct sign-in that grants nothing.
    let eve = Client::new(&base);
    let (_, r, _) = sign_in(&eve, "eve", "eve-pass");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("grants you no role"), "{}", r.text());
    assert_eq!(eve.get("/cases").status, 303);

    // IdP-initiated single logout: the IdP sends a signed LogoutRequest
    // through the browser (HTTP-Redirect); we answer with a signed
    // LogoutResponse; then it sends the browser back to /cases, which now
    // needs sign-in again: and the IdP's session is over too.
    let slo = format!(
        "{}/saml2/idp/SingleLogoutService.php?ReturnTo={}",
        idp.base,
        url::form_urlencoded::byte_serialize(format!("{base}/cases").as_bytes())
            .collect::<String>()
    );
    let (end, page, steps) = follow(&alice, slo.clone(), alice.get_url(&slo));
    assert!(
        steps
            .iter()
            .any(|s| s.url.starts_with(&format!("{base}/saml/slo?SAMLRequest="))),
        "{steps:?}\n{}",
        idp.log()
    );
    assert!(
        steps.iter().any(|s| s.url.starts_with(&format!(
            "{}/saml2/idp/SingleLogoutService.php?SAMLResponse=",
            idp.base
        ))),
        "we answered: {steps:?}"
    );
    assert!(end.contains("loginuserpass.php"), "{end}: {}", page.text());
    let cases = alice.get("/cases");
    assert_eq!(cases.status, 303);
    assert_eq!(cases.header("location"), Some("/login"));

    // SP-initiated: our sign-out ends our session and then the IdP's, and
    // the IdP's signed answer comes back to us.
    let (url, r, _) = sign_in(&alice, "alice", "alice-pass");
    assert!(url.ends_with("/cases") && r.status == 200, "{url}");
    let csrf = alice.csrf("/cases");
    let out = alice.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 200, "{}", out.text());
    assert!(
        out.text().contains("http-equiv=\"refresh\""),
        "{}",
        out.text()
    );
    let (end, page, steps) = follow(&alice, format!("{base}/logout"), out);
    assert!(
        steps.iter().any(|s| s
            .url
            .contains("/saml2/idp/SingleLogoutService.php?SAMLRequest=")),
        "{steps:?}"
    );
    assert!(
        end.starts_with(&format!("{base}/saml/slo?SAMLResponse=")),
        "{end}"
    );
    assert!(
        page.text()
            .contains("You are signed out, here and at your identity provider."),
        "{}\n{}",
        page.text(),
        idp.log()
    );
    let (again, _, _) = follow(&alice, format!("{base}/login"), alice.get("/login"));
    assert!(
        again.contains("loginuserpass.php"),
        "the IdP session ended: {again}"
    );

    // An IdP that signs with RSA-SHA1 is refused, and told why.
    idp.sign_with(RSA_SHA1);
    let old = Client::new(&base);
    let (_, r, _) = sign_in(&old, "alice", "alice-pass");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("signature algorithm RSA-SHA1 is refused: SHA-1 and weaker are broken"),
        "{}",
        r.text()
    );

    // The audit trail: the same person is the same actor each time.
    server.signal("TERM");
    assert!(server.wait_exit(std::time::Duration::from_secs(40)));
    let (ok, out, err) = server.cli(&["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let sign_ins: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-in")
        .collect();
    assert_eq!(sign_ins.len(), 2, "{entries:?}");
    assert_eq!(sign_ins[0]["actor"], sign_ins[1]["actor"], "{sign_ins:?}");
    assert!(
        !sign_ins[0]["detail"]
            .as_str()
            .unwrap()
            .contains("transient"),
        "{sign_ins:?}"
    );
    let actor = sign_ins[0]["actor"].as_str().unwrap();
    let outs: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-out" && e["actor"] == actor)
        .collect();
    assert_eq!(outs.len(), 2, "IdP-initiated and ours: {entries:?}");
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-in-refused")
        .collect();
    assert!(refused.len() >= 2, "{refused:?}");
}

/// The IdP's own log (not the web server's).
fn idp_log(idp: &Idp) -> String {
    std::fs::read_to_string(idp.dir().join("log/idp.log")).unwrap_or_default()
}

/// The IdP's log written since `from` bytes.
fn log_since(idp: &Idp, from: usize) -> String {
    idp_log(idp).get(from..).unwrap_or_default().to_owned()
}

/// `saml key status --json`: (current fingerprint, next fingerprint).
fn key_status(server: &Server) -> (String, Option<String>) {
    let (ok, out, err) = server.cli(&["saml", "key", "status", "--json"], None);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["current"]["not_after"].as_str().is_some(),
        "validity shown: {v}"
    );
    (
        v["current"]["fingerprint"].as_str().unwrap().to_owned(),
        v["next"]["fingerprint"].as_str().map(str::to_owned),
    )
}

/// The metadata we serve: the same as the CLI prints, with its signing
/// certificates counted.
fn our_metadata(server: &Server, base: &str) -> (String, usize) {
    let (ok, printed, err) = server.cli(&["saml", "metadata"], None);
    assert!(ok, "{err}");
    let served = Client::new(base).get("/saml/metadata").text();
    assert_eq!(printed.trim(), served.trim(), "served = printed");
    let signing = served.matches("use=\"signing\"").count();
    (served, signing)
}

/// The SHA-256 fingerprint of each certificate in `metadata`, as openssl
/// prints it.
fn fingerprints(metadata: &str) -> Vec<String> {
    metadata
        .split("X509Certificate>")
        .skip(1)
        .step_by(2)
        .map(|b64| {
            let b64 = b64.trim_end_matches("</ds:").trim_end_matches('<');
            let b64 = b64.split('<').next().unwrap();
            let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
            let mut child = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-fingerprint", "-sha256"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), pem.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "openssl reads the certificate");
            let line = String::from_utf8(out.stdout).unwrap();
            format!("SHA256:{}", line.trim().rsplit('=').next().unwrap())
        })
        .collect()
}

#[test]
fn our_signing_key_rolls_over_with_the_idp_in_step() {
    // Our AuthnRequests are signed and the IdP checks each one, so a
    // request signed with a key it does not know is refused there.
    let Setup {
        idp, server, base, ..
    } = setup(true);
    let (first, next) = key_status(&server);
    assert_eq!(next, None);
    let (only_first, n) = our_metadata(&server, &base);
    assert_eq!(n, 1);
    assert_eq!(fingerprints(&only_first), vec![first.clone()]);
    let signs_in = |what: &str| {
        let c = Client::new(&base);
        let (url, r, _) = sign_in(&c, "alice", "alice-pass");
        assert!(
            url.ends_with("/cases") && r.status == 200,
            "{what}: {url}: {}\n{}",
            r.text(),
            idp.log()
        );
        c
    };
    signs_in("before the rollover");

    // 1. The next key is published beside the current one; we still sign
    //    with the current one, so the IdP, which knows only that, still
    //    lets us in.
    let (ok, out, err) = server.cli(&["saml", "key", "next"], None);
    assert!(ok, "{err}");
    let (current, second) = key_status(&server);
    let second = second.expect("a next key");
    assert_eq!(current, first);
    assert_ne!(second, first);
    assert!(out.contains(&second), "{out}");
    let (ok, _, err) = server.cli(&["saml", "key", "next"], None);
    assert!(
        !ok && err.contains("a next key is published already"),
        "{err}"
    );
    let (both, n) = our_metadata(&server, &base);
    assert_eq!(n, 2, "{both}");
    assert_eq!(fingerprints(&both), vec![first.clone(), second.clone()]);
    signs_in("next key published, IdP not yet told");

    // 2. The admin loads the new metadata into the IdP.
    idp.trust_sp(&both, "'validate.logout' => true, 'sign.logout' => true");
    let at = idp_log(&idp).len();
    signs_in("the IdP knows both");
    assert!(
        log_since(&idp, at).contains("Validation with key #0 succeeded"),
        "the current key (listed first) signed: {}",
        log_since(&idp, at)
    );

    // 3. The switch, with the service running: its next request is signed
    //    with the new key, which the IdP checks with the second certificate.
    let (ok, out, err) = server.cli(&["saml", "key", "switch"], None);
    assert!(ok, "{err}");
    assert!(out.contains(&second) && out.contains(&first), "{out}");
    assert_eq!(key_status(&server), (second.clone(), None));
    let at = idp_log(&idp).len();
    let alice = signs_in("switched");
    assert!(
        log_since(&idp, at).contains("Validation with key #1 succeeded"),
        "the new key signed: {}",
        log_since(&idp, at)
    );
    let (only_second, n) = our_metadata(&server, &base);
    assert_eq!(n, 1);
    assert_eq!(fingerprints(&only_second), vec![second.clone()]);

    // Single logout, signed with the new key, checked by the IdP.
    let csrf = alice.csrf("/cases");
    let out = alice.post("/logout", &[("csrf", &csrf)]);
    let (end, page, _) = follow(&alice, format!("{base}/logout"), out);
    assert!(
        page.text()
            .contains("You are signed out, here and at your identity provider."),
        "{end}: {}\n{}",
        page.text(),
        idp.log()
    );

    // An IdP still holding only the old certificate refuses us now: the
    // old key is no longer used.
    idp.trust_sp(
        &only_first,
        "'validate.logout' => true, 'sign.logout' => true",
    );
    let stale = Client::new(&base);
    let start = format!("{base}/login");
    let at = idp_log(&idp).len();
    let (url, _, _) = follow(&stale, start.clone(), stale.get_url(&start));
    assert!(!url.contains("loginuserpass.php"), "{url}");
    assert!(
        log_since(&idp, at).contains("Validation with key #0 failed"),
        "{}",
        log_since(&idp, at)
    );
    idp.trust_sp(
        &only_second,
        "'validate.logout' => true, 'sign.logout' => true",
    );
    signs_in("the IdP holds the new key alone");

    // A next key can be withdrawn unused; nothing to switch to then.
    let (ok, _, err) = server.cli(&["saml", "key", "next"], None);
    assert!(ok, "{err}");
    let (ok, out, err) = server.cli(&["saml", "key", "withdraw"], None);
    assert!(ok, "{err}");
    assert!(out.contains("withdrawn"), "{out}");
    let (ok, _, err) = server.cli(&["saml", "key", "switch"], None);
    assert!(!ok && err.contains("no next key is published"), "{err}");
    assert_eq!(key_status(&server), (second.clone(), None));
    signs_in("after the withdrawal");

    // Each step is in the audit trail, by fingerprint.
    let (ok, out, err) = server.cli(&["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("saml-key"))
        .map(|e| (e["action"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");
    assert_eq!(actions[0].0, "saml-key-next");
    assert!(
        actions[1].0 == "saml-key-switch" && actions[1].1.contains(&second),
        "{actions:?}"
    );
    assert_eq!(actions[2].0, "saml-key-next");
    assert_eq!(actions[3].0, "saml-key-withdraw");
}

/// Waits until the browser's URL satisfies `done`.
async fn until(b: &common::webdriver::Driver, what: &str, done: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        let url = b.url().await;
        if done(&url) {
            return url;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{what}: still at {url}: {}",
            b.source().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn and_in_headless_chromium() {
    let Setup {
        idp, server, base, ..
    } = setup(false);
    let downloads = tempfile::tempdir().unwrap();
    let b = common::webdriver::Driver::start(downloads.path()).await;
    let sign_in = || async {
        b.goto(&format!("{base}/cases")).await;
        until(&b, "the IdP's sign-in form", |u| {
            u.contains("loginuserpass.php")
        })
        .await;
        b.type_into("input[name=username]", "alice").await;
        b.type_into("input[name=password]", "alice-pass").await;
        b.click("button[type=submit]").await;
        // The IdP's page posts the response to our ACS by script.
        until(&b, "back at our cases", |u| u == format!("{base}/cases")).await;
        assert!(
            b.source()
                .await
                .contains("Signed in as <strong>alice (test)</strong>")
        );
    };
    sign_in().await;

    // IdP-initiated single logout, then /cases needs sign-in again.
    b.goto(&format!(
        "{}/saml2/idp/SingleLogoutService.php?ReturnTo={}",
        idp.base,
        url::form_urlencoded::byte_serialize(format!("{base}/cases").as_bytes())
            .collect::<String>()
    ))
    .await;
    until(&b, "signed out everywhere", |u| {
        u.contains("loginuserpass.php")
    })
    .await;
    b.goto(&format!("{base}/cases")).await;
    until(&b, "sign-in again", |u| u.contains("loginuserpass.php")).await;

    // Our sign-out button: signed out here and at the IdP.
    sign_in().await;
    b.click("#sign-out").await;
    until(&b, "the IdP's answer", |u| {
        u.starts_with(&format!("{base}/saml/slo?SAMLResponse="))
    })
    .await;
    assert!(
        b.source()
            .await
            .contains("You are signed out, here and at your identity provider."),
        "{}",
        idp.log()
    );
    b.goto(&format!("{base}/cases")).await;
    until(&b, "sign-in again", |u| u.contains("loginuserpass.php")).await;
    drop(server);
}
