//! Hostile mail into intake's bounded MIME parsing and field extraction:
//! no panic, no unbounded output.
#![no_main]

use disclosure_mx::intake::{mime, report};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let limits = mime::MimeLimits::default();
    if let Ok(mail) = mime::parse(raw, &limits) {
        let fields = report::extract(&mail.text, None);
        assert!(fields.assets.len() <= 100);
        assert!(fields.description.as_ref().is_none_or(|d| d.len() <= 64 * 1024));
    }
});
