//! Hostile single logout messages into `/saml/slo`, on both bindings: the
//! Redirect query (bounded inflate, signature over the bytes as sent) and
//! the POST form value (xmlsec). No panic, and nothing unsigned is ever
//! accepted.
#![no_main]

use disclosure_mx::config::SamlConfig;
use disclosure_mx::web::auth::binding::{Kind, SigningKey};
use disclosure_mx::web::auth::devidp::DevIdp;
use disclosure_mx::web::auth::saml::Sso;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn sso() -> &'static Sso {
    static SSO: OnceLock<Sso> = OnceLock::new();
    SSO.get_or_init(|| {
        let mut idp = DevIdp::generate("https://idp.test", "https://idp.test/sso").unwrap();
        idp.slo_url = Some("https://idp.test/slo".into());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[1u8; 32]);
        let ours = std::sync::Arc::new(SigningKey::generate(1).unwrap());
        Sso::new(&SamlConfig::default(), "http://127.0.0.1:1", "fuzz.xml", &idp.metadata_xml(), key, ours)
            .unwrap()
    })
}

fuzz_target!(|raw: &[u8]| {
    let Ok(text) = std::str::from_utf8(raw) else { return };
    let sso = sso();
    let now = 1_800_000_000;
    assert!(sso.receive_redirect(text, now).is_err());
    assert!(sso.receive_post(text, Kind::Request, now).is_err());
    assert!(sso.receive_post(text, Kind::Response, now).is_err());
});
