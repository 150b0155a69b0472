//! One hostile command line into the parser: no panic, and any accepted
//! path respects the RFC 5321 length limits.
#![no_main]

use disclosure_mx::smtp::command::{self, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    match command::parse(line) {
        Ok(Command::Mail(m)) => assert!(m.address.len() <= 256),
        Ok(Command::Rcpt(r)) => assert!(!r.is_empty() && r.len() <= 256),
        _ => {}
    }
});
