//! Single logout and a stable identity, end to end over real HTTP, with
//! the test IdP signing with xmlsec:
//! - our metadata asks for a persistent NameID, lists our logout endpoint
//!   over both bindings and our signing key, has no `validUntil` unless
//!   configured, and names the attributes the role rules read; the
//!   AuthnRequest carries the NameIDPolicy, and is signed when configured;
//! - an IdP's signed LogoutRequest ends that NameID's sessions (by
//!   SessionIndex when given) and gets a signed LogoutResponse; unsigned,
//!   foreign, SHA-1, stale and replayed ones are refused, named, and
//!   audited;
//! - our sign-out sends a signed LogoutRequest to the IdP and accepts only
//!   its signed answer to a request of ours;
//! - metadata with two signing certificates keeps working when the IdP
//!   switches from one key to the other;
//! - `saml.identity_attribute` makes one person one actor whatever the
//!   NameID; a transient NameID is said in the log and the audit trail; a
//!   missing attribute is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::web::{Client, IDP_ENTITY, Sso, SsoOpts};
use disclosure_mx::web::auth::binding::{self, Kind};
use disclosure_mx::web::auth::devidp::{DevIdp, LogoutSpec};
use serde_json::Value;

const NC: &[&str] = &["nc-analysts"];
const IDP_SLO: &str = "https://idp.test/slo";

/// The value of the hidden field `name` in a page.
fn field(page: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("{name} in {page}"));
    page[at + needle.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// Our signing certificate, from our metadata.
fn our_cert(metadata: &str) -> samael::crypto::CertificateDer {
    let at = metadata.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    let end = at + metadata[at..].find('<').unwrap();
    B64.decode(&metadata[at..end]).unwrap().into()
}

/// Posts a LogoutRequest to our SLO endpoint (HTTP-POST).
fn post_logout(c: &Client, xml: &str) -> common::web::Reply {
    c.post("/saml/slo", &[("SAMLRequest", &B64.encode(xml))])
}

fn logout_spec(sso: &Sso, id: &str, name: &str, index: Option<&str>) -> LogoutSpec {
    LogoutSpec {
        id: id.to_owned(),
        destination: format!("{}/saml/slo", sso.base),
        name_id: name.to_owned(),
        session_index: index.map(str::to_owned),
        issuer: None,
        age_seconds: 1,
        signed: true,
        sha1: false,
    }
}

/// Audit entries, read with the CLI after an orderly stop.
fn audit_after_stop(mut sso: Sso) -> Vec<Value> {
    sso.server.signal("TERM");
    assert!(sso.server.wait_exit(std::time::Duration::from_secs(40)));
    let (ok, out, err) = sso.server.cli(&["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    let (ok, verify, _) = sso.server.cli(&["audit", "verify"], None);
    assert!(ok, "{verify}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn our_metadata_asks_for_a_stable_identity_and_keeps() {
    let sso = Sso::start("", "");
    let c = Client::new(&sso.base);
    let xml = c.get("/saml/metadata").text();
    for want in [
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>",
        &format!(
            "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{}/saml/slo\"",
            sso.base
        ),
        &format!(
            "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{}/saml/slo\"",
            sso.base
        ),
        "<md:KeyDescriptor use=\"signing\">",
        "AuthnRequestsSigned=\"false\"",
        "<md:RequestedAttribute Name=\"groups\" isRequired=\"true\">",
    ] {
        assert!(xml.contains(want), "{want} in {xml}");
    }
    assert!(!xml.contains("validUntil"), "{xml}");
    // The same document twice: the key is made once and kept.
    assert_eq!(c.get("/saml/metadata").text(), xml);

    // The AuthnRequest asks for a persistent NameID.
    let r = c.get("/login");
    let location = r.header("location").unwrap();
    let encoded = location.split("SAMLRequest=").nth(1).unwrap();
    let encoded = url_decode(encoded.split('&').next().unwrap());
    let mut request = String::new();
    use std::io::Read as _;
    flate2::read::DeflateDecoder::new(B64.decode(encoded).unwrap().as_slice())
        .read_to_string(&mut request)
        .unwrap();
    assert!(
        request.contains("NameIDPolicy")
            && request.contains("Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\""),
        "{request}"
    );
    assert!(!location.contains("Signature="), "unsigned by default");

    // Configured: another format, a lifetime, signed requests, who we are.
    let sso = Sso::start_opts(SsoOpts {
        saml: "name_id_format = \"emailAddress\"\nmetadata_valid_days = 3650\nsign_requests = true\n\
               [saml.organization]\nname = \"Example A/S\"\nurl = \"https://example.org\"\n\
               [[saml.contacts]]\ntype = \"technical\"\nname = \"Security operations\"\nemail = \"secops@example.org\"",
        ..SsoOpts::default()
    });
    let c = Client::new(&sso.base);
    let xml = c.get("/saml/metadata").text();
    for want in [
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "AuthnRequestsSigned=\"true\"",
        "<md:OrganizationName xml:lang=\"en\">Example A/S</md:OrganizationName>",
        "contactType=\"technical\"",
        "mailto:secops@example.org",
    ] {
        assert!(xml.contains(want), "{want} in {xml}");
    }
    let until = xml
        .split("validUntil=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let until: jiff::Timestamp = until.parse().unwrap();
    let years = (until.as_second() - jiff::Timestamp::now().as_second()) / (365 * 86_400);
    assert!((9..=10).contains(&years), "{until}");
    // The signed request verifies against the key in our metadata.
    let location = c.get("/login").header("location").unwrap().to_owned();
    let query = location.split_once('?').unwrap().1;
    let m = binding::verify_redirect(query, Kind::Request, &[our_cert(&xml)]).unwrap();
    assert!(m.xml.contains("nameid-format:emailAddress"), "{}", m.xml);
}

fn url_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

#[test]
fn the_idps_logout_request_ends_that_persons_sessions_and_forgeries_are_refused() {
    let sso = Sso::start_opts(SsoOpts {
        idp_slo: Some(IDP_SLO),
        ..SsoOpts::default()
    });
    let metadata = Client::new(&sso.base).get("/saml/metadata").text();
    // Alice in two browsers (two IdP sessions), Bob in one.
    let alice1 = sso.signed_in("alice", NC);
    let (alice2, r) = sso.sign_in_with("alice", NC, |s| s.session_index = Some("_second".into()));
    assert_eq!(r.status, 303);
    let bob = sso.signed_in("bob", NC);
    let idp_browser = Client::new(&sso.base);
    let still_in = |c: &Client| c.get("/cases").status == 200;

    // Refused, each with its cause named, and nobody signed out.
    let mut unsigned = logout_spec(&sso, "_u1", "alice", None);
    unsigned.signed = false;
    let mut foreign = logout_spec(&sso, "_f1", "alice", None);
    foreign.issuer = Some("https://evil.example/idp".into());
    let mut sha1 = logout_spec(&sso, "_s1", "alice", None);
    sha1.sha1 = true;
    let mut stale = logout_spec(&sso, "_t1", "alice", None);
    stale.age_seconds = 3600;
    let mut elsewhere = logout_spec(&sso, "_d1", "alice", None);
    elsewhere.destination = "https://other-sp.example/slo".into();
    let other_key = DevIdp::generate(IDP_ENTITY, "https://idp.test/sso").unwrap();
    let cases = [
        (
            sso.idp.logout_request(&unsigned).unwrap(),
            "the message is not signed",
        ),
        (
            sso.idp.logout_request(&foreign).unwrap(),
            "issuer &#34;https://evil.example/idp&#34; is not the IdP in our metadata",
        ),
        (
            sso.idp.logout_request(&sha1).unwrap(),
            "signature algorithm RSA-SHA1 is refused",
        ),
        (sso.idp.logout_request(&stale).unwrap(), "check the clocks"),
        (
            sso.idp.logout_request(&elsewhere).unwrap(),
            "not to our logout endpoint",
        ),
        (
            other_key
                .logout_request(&logout_spec(&sso, "_k1", "alice", None))
                .unwrap(),
            "does not verify against the 1 signing certificate(s)",
        ),
    ];
    for (xml, why) in &cases {
        let r = post_logout(&idp_browser, xml);
        assert_eq!(r.status, 403, "{why}: {}", r.text());
        assert!(r.text().contains(why), "{why}: {}", r.text());
    }
    // The GET door refuses an unsigned redirect too.
    let r = idp_browser.get("/saml/slo?SAMLRequest=abc");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("not signed"), "{}", r.text());
    assert!(still_in(&alice1) && still_in(&alice2) && still_in(&bob));

    // A signed request for Alice's first IdP session ends that one.
    let good = sso
        .idp
        .logout_request(&logout_spec(&sso, "_lo1", "alice", Some("_session-alice")))
        .unwrap();
    let r = post_logout(&idp_browser, &good);
    assert_eq!(r.status, 200, "{}", r.text());
    // Answered with a signed LogoutResponse, posted back to the IdP.
    let page = r.text();
    assert!(page.contains(&format!("action=\"{IDP_SLO}\"")), "{page}");
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("form-action"),
        "{csp}"
    );
    // The browser that carried it had no session: no cookie is touched.
    assert!(r.header("set-cookie").is_none());
    let answer = String::from_utf8(B64.decode(field(&page, "SAMLResponse")).unwrap()).unwrap();
    let signed = binding::verify_post(&answer, &[our_cert(&metadata)], "LogoutResponse").unwrap();
    assert!(
        signed.contains("InResponseTo=\"_lo1\"") && signed.contains("status:Success"),
        "{signed}"
    );
    assert!(!still_in(&alice1), "the first session ended");
    assert_eq!(alice1.get("/cases").header("location"), Some("/login"));
    assert!(still_in(&alice2) && still_in(&bob));

    // The same request again is a replay.
    let r = post_logout(&idp_browser, &good);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("already used"), "{}", r.text());

    // Without a SessionIndex: every session of that NameID. Carried by
    // Bob's browser (a stranger pushing a request through it): Alice's
    // sessions end, Bob's cookie and session stay.
    let all = sso
        .idp
        .logout_request(&logout_spec(&sso, "_lo2", "alice", None))
        .unwrap();
    let r = post_logout(&bob, &all);
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_none(), "Bob's cookie stays");
    assert!(!still_in(&alice2));
    assert!(still_in(&bob), "only Alice's sessions end");

    // A session whose IdP gave no SessionIndex ends at any logout of its
    // NameID, whatever indexes it names: when unsure, a session ends.
    let (carol, r) = sso.sign_in_with("carol", NC, |s| s.session_index = None);
    assert_eq!(r.status, 303);
    let named = sso
        .idp
        .logout_request(&logout_spec(&sso, "_lo3", "carol", Some("_unknown")))
        .unwrap();
    let r = post_logout(&carol, &named);
    assert_eq!(r.status, 200);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the browser whose session ended is cleared"
    );
    assert!(!still_in(&carol));

    let entries = audit_after_stop(sso);
    let outs: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-out" && e["actor"] == "alice")
        .collect();
    assert_eq!(outs.len(), 2, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "sign-out" && e["actor"] == "carol"),
        "{entries:?}"
    );
    assert!(
        outs[0]["detail"]
            .as_str()
            .unwrap()
            .contains("single logout")
    );
    let refused: String = entries
        .iter()
        .filter(|e| e["action"] == "logout-refused")
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    for kind in [
        "2 unsigned logout message",
        "1 logout addressed elsewhere",
        "1 stale logout message",
        "1 logout from a foreign issuer",
        "1 logout signed with a weak algorithm",
        "1 logout signature did not verify",
        "1 replayed logout request",
    ] {
        assert!(refused.contains(kind), "{kind} in {refused}");
    }
}

#[test]
fn our_sign_out_ends_the_session_at_the_idp_too() {
    let sso = Sso::start_opts(SsoOpts {
        idp_slo: Some(IDP_SLO),
        ..SsoOpts::default()
    });
    let metadata = Client::new(&sso.base).get("/saml/metadata").text();
    let c = sso.signed_in("alice", NC);
    let csrf = c.csrf("/cases");
    // The sign-out form still needs its token; the SAML endpoint is apart.
    assert_eq!(c.post("/logout", &[("csrf", "wrong")]).status, 403);
    let r = c.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.get("/cases").status, 303, "signed out here at once");
    let page = r.text();
    let request = String::from_utf8(B64.decode(field(&page, "SAMLRequest")).unwrap()).unwrap();
    let signed = binding::verify_post(&request, &[our_cert(&metadata)], "LogoutRequest").unwrap();
    assert!(
        signed.contains(">alice</saml:NameID>")
            && signed.contains("<samlp:SessionIndex>_session-alice</samlp:SessionIndex>")
            && signed.contains(&format!("Destination=\"{IDP_SLO}\"")),
        "{signed}"
    );
    let id = signed
        .split("ID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let slo = format!("{}/saml/slo", sso.base);

    // A response to a request we never made is refused.
    let forged = sso
        .idp
        .logout_response("_r0", "dmx-0-0-00", &slo, true)
        .unwrap();
    let r = c.post("/saml/slo", &[("SAMLResponse", &B64.encode(&forged))]);
    assert_eq!(r.status, 403);
    assert!(
        r.text().contains("answers no logout request of ours"),
        "{}",
        r.text()
    );
    // The IdP's signed answer closes the round trip, once.
    let answer = sso.idp.logout_response("_r1", id, &slo, true).unwrap();
    let r = c.post("/saml/slo", &[("SAMLResponse", &B64.encode(&answer))]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("signed out, here and at your identity provider")
    );
    let again = c.post("/saml/slo", &[("SAMLResponse", &B64.encode(&answer))]);
    assert_eq!(again.status, 403);
    // An IdP that could not end its session says so, and we pass it on.
    let c = sso.signed_in("alice", NC);
    let page = c.post("/logout", &[("csrf", &c.csrf("/cases"))]).text();
    let request = String::from_utf8(B64.decode(field(&page, "SAMLRequest")).unwrap()).unwrap();
    let id = request
        .split("ID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let partial = sso.idp.logout_response("_r2", id, &slo, false).unwrap();
    let r = c.post("/saml/slo", &[("SAMLResponse", &B64.encode(&partial))]);
    assert!(r.text().contains("status Responder"), "{}", r.text());
}

#[test]
fn two_signing_certificates_survive_the_idps_key_switch() {
    let next = DevIdp::generate(IDP_ENTITY, "https://idp.test/sso").unwrap();
    let stranger = DevIdp::generate(IDP_ENTITY, "https://idp.test/sso").unwrap();
    let sso = Sso::start_opts(SsoOpts {
        also_trusted: vec![next],
        ..SsoOpts::default()
    });
    let signed_by = |idp: &DevIdp| {
        let c = Client::new(&sso.base);
        let id = c.start_login();
        c.post_response(&idp.response(&sso.spec(&id, "alice", NC)).unwrap())
            .status
    };
    // The IdP signs with its current key, then switches to the next one
    // its metadata already listed.
    assert_eq!(signed_by(&sso.idp), 303, "the current key");
    assert_eq!(signed_by(&sso.also[0]), 303, "the next key");
    assert_eq!(
        signed_by(&stranger),
        403,
        "a key the metadata does not list"
    );
}

#[test]
fn one_person_is_one_actor_and_a_transient_nameid_is_said() {
    let transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
    // With an identity attribute: two transient NameIDs, one actor.
    let sso = Sso::start_opts(SsoOpts {
        saml: "identity_attribute = \"mail\"",
        ..SsoOpts::default()
    });
    for name in ["_t0a8c", "_t77f1"] {
        let (_, r) = sso.sign_in_with(name, NC, |s| {
            s.name_id_format = Some(transient.into());
            s.attributes
                .push(("mail".into(), "alice@nc.example".into()));
        });
        assert_eq!(r.status, 303);
    }
    // Without it: refused, and the attribute named.
    let (_, r) = sso.sign_in_with("_t99", NC, |_| {});
    assert_eq!(r.status, 403);
    assert!(
        r.text()
            .contains("the IdP sent no mail attribute, which saml.identity_attribute names"),
        "{}",
        r.text()
    );
    let entries = audit_after_stop(sso);
    let sign_ins: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "sign-in")
        .collect();
    assert_eq!(sign_ins.len(), 2);
    assert!(
        sign_ins.iter().all(|e| e["actor"] == "alice@nc.example"),
        "{sign_ins:?}"
    );

    // Without one: a transient NameID is said in the log and the trail;
    // a missing role attribute is named.
    let sso = Sso::start("", "");
    let (_, r) = sso.sign_in_with("_t1234", NC, |s| s.name_id_format = Some(transient.into()));
    assert_eq!(r.status, 303);
    let (_, r) = sso.sign_in_with("carol", &[], |_| {});
    assert_eq!(r.status, 403);
    assert!(
        r.text()
            .contains("it sent no groups attribute, which the role rules read"),
        "{}",
        r.text()
    );
    assert!(sso.server.log().contains("the IdP sent a transient NameID"));
    let entries = audit_after_stop(sso);
    let detail = |action: &str| -> String {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["detail"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(detail("sign-in").contains("transient NameID: the audit trail cannot tie"));
    assert!(detail("sign-in-refused").contains("the IdP sent no groups attribute"));
}
