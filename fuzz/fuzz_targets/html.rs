//! The one-pass HTML converter on anything: no panic, output within its
//! bound, and time linear in the input (libFuzzer's -timeout catches a
//! quadratic case at 1 MiB).
#![no_main]

use disclosure_mx::intake::html;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let max = data.len() / 2 + 16;
    let out = html::to_text(&text, max);
    assert!(out.len() <= max, "{} > {max}", out.len());
});
