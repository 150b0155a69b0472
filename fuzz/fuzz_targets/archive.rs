//! Hostile bytes as an archive: inspection without a password, then
//! extraction under tight caps. No panic, and the caps hold.
#![no_main]

use disclosure_mx::intake::{archive, extract};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let _ = archive::inspect(data);
    let _ = archive::sevenz_kdf_power(data);
    let limits = extract::ExtractLimits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_time: Duration::from_secs(2),
        sevenz_memory_kb: 16 * 1024,
        ..extract::ExtractLimits::default()
    };
    if let Ok(got) = extract::extract(data, "pw", &limits) {
        let total: usize = got.files().iter().map(|f| f.data.len()).sum();
        assert!(total <= 4 << 20);
    }
});
