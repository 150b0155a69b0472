//! Hostile mail into everything a parse worker does with it: bounded MIME
//! parsing, the one-pass HTML converter, field extraction against a real
//! policy, attachment inspection, and the plaintext rule (which renders no
//! HTML). No panic, no unbounded output. Run with inputs up to 1 MiB and
//! the parse budget as limits (`make fuzz FUZZ_TARGET=mime`), seeded with
//! the shapes that once blew up (`fuzz/seeds/mime/`).
#![no_main]

use disclosure_mx::intake::{analysis, mime, plaintext};
use disclosure_mx::policy::PolicySet;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn policies() -> &'static PolicySet {
    static SET: OnceLock<PolicySet> = OnceLock::new();
    SET.get_or_init(|| {
        PolicySet::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies").as_ref())
            .expect("the shipped policies")
    })
}

fuzz_target!(|raw: &[u8]| {
    let limits = mime::MimeLimits::default();
    let policy = policies().get("netcompany");
    if let Ok(a) = analysis::analyse(raw, policy, &limits) {
        assert!(a.fields.assets.len() <= 100);
        assert!(a.fields.description.as_ref().is_none_or(|d| d.len() <= 64 * 1024));
        assert_eq!(a.facts.len(), a.mail.attachments.len());
        // Text never grows past what came in (plus the cut notes).
        assert!(a.mail.text.len() <= raw.len() * 2 + 1024);
    }
    let _ = plaintext::check(raw, &limits);
});
