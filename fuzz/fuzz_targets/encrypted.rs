//! Hostile ciphertext into every path that reads it: the worker's view
//! (which part is encrypted, and whether it really is OpenPGP or CMS
//! ciphertext), password-only OpenPGP messages as archives, the service's
//! opening of OpenPGP messages and CMS enveloped data without a key (the
//! packets and recipients are read before any key is needed), S/MIME
//! signature checking, and public key blocks as reporters attach them.
//! No panic, and nothing opens without a key. Run with
//! `make fuzz FUZZ_TARGET=encrypted`, seeded by real `gpg` and `openssl`
//! output (`fuzz/seeds/encrypted/`).
#![no_main]

use disclosure_mx::intake::{archive, encrypted, mime};
use disclosure_mx::keyring::{self, Keyring, Opened};
use disclosure_mx::model::crypto::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for e in Envelope::ALL {
        let _ = encrypted::is_ciphertext(e, data);
        match Keyring::default().open("magenta", e, data, 1 << 20) {
            Opened::Plain { .. } => panic!("opened without a key"),
            Opened::Closed(_) => {}
        }
    }
    let _ = archive::inspect(data);
    if let Ok(m) = mime::parse(data, &mime::MimeLimits::default())
        && let Some(found) = m.encrypted
    {
        assert!(found.attachment < m.attachments.len());
    }
    let _ = keyring::smime_signature(data);
    let _ = keyring::fingerprint_of(data);
});
