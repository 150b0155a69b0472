//! Hostile bytes into a TLS-established SMTP session, in chunks whose sizes
//! the input chooses. Invariants: no panic, and every delivered body is
//! clean CRLF text with no bare CR, bare LF or NUL, within the size limit.
#![no_main]

use disclosure_mx::smtp::limits::Limits;
use disclosure_mx::smtp::session::{AcceptFor, Action, Session, SessionConfig, TlsInfo};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk % 64) + 1;
    let limits = Limits { max_message_size: 4096, ..Limits::default() };
    let config = Arc::new(SessionConfig {
        hostname: "mx.fuzz".into(),
        accept_for: AcceptFor::new(["security@magenta.example"]),
        allow_plaintext: false,
        plaintext_fallback: AcceptFor::default(),
        limits,
    });
    let mut s = Session::new(config, "192.0.2.1:25".parse().unwrap());
    s.greeting();
    s.feed(b"EHLO f.test\r\nSTARTTLS\r\n");
    s.tls_established(TlsInfo { version: "TLSv1.3".into(), cipher: "x".into() });
    for piece in data.chunks(chunk) {
        let mut queue: Vec<Action> = s.feed(piece);
        while let Some(a) = queue.pop() {
            if let Action::Deliver(d) = a {
                let body = d.body();
                assert!(body.len() <= 4096);
                assert!(!body.contains(&0));
                for (i, &c) in body.iter().enumerate() {
                    if c == b'\n' {
                        assert!(i > 0 && body[i - 1] == b'\r');
                    }
                    if c == b'\r' {
                        assert_eq!(body.get(i + 1), Some(&b'\n'));
                    }
                }
                queue.extend(s.stored(Ok("Q".into())));
            }
        }
    }
});
