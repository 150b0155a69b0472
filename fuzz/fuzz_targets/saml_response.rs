//! Hostile SAML responses into the ACS path: the pre-checks, then xmlsec
//! verification of whatever passes them. No panic, and nothing unsigned
//! ever verifies.
#![no_main]

use disclosure_mx::config::SamlConfig;
use disclosure_mx::web::auth::binding::SigningKey;
use disclosure_mx::web::auth::devidp::DevIdp;
use disclosure_mx::web::auth::saml::Sso;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn sso() -> &'static Sso {
    static SSO: OnceLock<Sso> = OnceLock::new();
    SSO.get_or_init(|| {
        let idp = DevIdp::generate("https://idp.test", "https://idp.test/sso").unwrap();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[1u8; 32]);
        let ours = std::sync::Arc::new(SigningKey::generate(1).unwrap());
        Sso::new(&SamlConfig::default(), "http://127.0.0.1:1", "fuzz.xml", &idp.metadata_xml(), key, ours)
            .unwrap()
    })
}

fuzz_target!(|raw: &[u8]| {
    let Ok(xml) = std::str::from_utf8(raw) else { return };
    let sso = sso();
    if let Ok(unverified) = sso.precheck_xml(xml.to_owned()) {
        let id = unverified.in_response_to.clone();
        // The fuzzer cannot sign with the IdP's key: nothing may verify.
        assert!(sso.verify(&unverified, &id, 0).is_err());
    }
});
