//! Table tests of the sans-I/O SMTP core: bytes in, replies and actions out.
//! No sockets; every rule is driven through `Session`'s public methods, and
//! the smuggling inputs are fed split at every byte boundary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use disclosure_mx::smtp::limits::Limits;
use disclosure_mx::smtp::reply::Reply;
use disclosure_mx::smtp::session::{AcceptFor, Action, Session, SessionConfig, TlsInfo};
use std::sync::Arc;

const RCPT: &str = "security@magenta.example";

fn config(limits: Limits, allow_plaintext: bool) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        hostname: "mx.test".into(),
        accept_for: AcceptFor::new([RCPT, "@many.example"]),
        allow_plaintext,
        plaintext_fallback: AcceptFor::default(),
        limits,
    })
}

/// A session plus everything it has said, auto-answering deliveries.
struct Harness {
    s: Session,
    delivered: Vec<Vec<u8>>,
    replies: Vec<String>,
    closed: bool,
    starttls: bool,
}

impl Harness {
    fn plain(limits: Limits, allow_plaintext: bool) -> Harness {
        let mut h = Harness {
            s: Session::new(
                config(limits, allow_plaintext),
                "192.0.2.1:5000".parse().unwrap(),
            ),
            delivered: vec![],
            replies: vec![],
            closed: false,
            starttls: false,
        };
        let g = h.s.greeting();
        h.absorb(g);
        h
    }

    /// Greeted, EHLO'd, upgraded to TLS and EHLO'd again.
    fn tls(limits: Limits) -> Harness {
        let mut h = Harness::plain(limits, false);
        h.cmd("EHLO client.test", "250");
        h.cmd("STARTTLS", "220 2.0.0");
        assert!(h.starttls);
        h.s.tls_established(TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
        });
        h.cmd("EHLO client.test", "250");
        h.replies.clear();
        h
    }

    fn absorb(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Reply(r) => self.replies.push(r.render()),
                Action::Close => self.closed = true,
                Action::StartTls => self.starttls = true,
                Action::Deliver(d) => {
                    self.delivered.push(d.body().to_vec());
                    let id = format!("Q{}", self.delivered.len());
                    queue.extend(self.s.stored(Ok(id)));
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Vec<String> {
        let before = self.replies.len();
        let a = self.s.feed(bytes);
        self.absorb(a);
        self.replies[before..].to_vec()
    }

    /// Sends one command and checks its single reply starts with `want`.
    fn cmd(&mut self, line: &str, want: &str) -> String {
        let got = self.send(format!("{line}\r\n").as_bytes());
        assert_eq!(got.len(), 1, "{line:?} gave {got:?}");
        assert!(
            got[0].starts_with(want),
            "{line:?}: want {want:?}, got {:?}",
            got[0]
        );
        got[0].clone()
    }

    fn envelope(&mut self) {
        self.cmd("MAIL FROM:<reporter@example.org>", "250 2.1.0");
        self.cmd(&format!("RCPT TO:<{RCPT}>"), "250 2.1.5");
        self.cmd("DATA", "354");
    }
}

#[test]
fn ehlo_advertises_extensions_and_hides_starttls_inside_tls() {
    let mut h = Harness::plain(Limits::default(), false);
    let r = h.send(b"EHLO client.test\r\n").concat();
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "SMTPUTF8",
    ] {
        assert!(
            r.contains(&format!("250-{ext}\r\n")) || r.contains(&format!("250 {ext}\r\n")),
            "{ext} in {r}"
        );
    }
    let mut h = Harness::tls(Limits::default());
    let r = h.send(b"EHLO client.test\r\n").concat();
    assert!(!r.contains("STARTTLS"), "{r}");
    assert!(r.contains("SMTPUTF8"));
}

#[test]
fn plain_commands() {
    let mut h = Harness::plain(Limits::default(), false);
    h.cmd("MAIL FROM:<a@b.example>", "503 5.5.1");
    h.cmd("HELO client.test", "250 mx.test");
    h.cmd("NOOP", "250 2.0.0");
    h.cmd("RSET", "250 2.0.0");
    h.cmd("VRFY security", "252 2.5.2");
    h.cmd("HELP", "214");
    h.cmd("EXPN list", "502 5.5.1");
    h.cmd("BDAT 10 LAST", "502 5.5.1");
    h.cmd("FOO", "500 5.5.2");
    h.cmd("QUIT", "221 2.0.0");
    assert!(h.closed);
    assert!(h.send(b"NOOP\r\n").is_empty(), "nothing after QUIT");
}

#[test]
fn mail_before_starttls_is_refused_unless_plaintext_allowed() {
    let mut h = Harness::plain(Limits::default(), false);
    h.cmd("EHLO client.test", "250");
    h.cmd(
        "MAIL FROM:<a@b.example>",
        "530 5.7.0 Must issue a STARTTLS command first",
    );
    let mut h = Harness::plain(Limits::default(), true);
    h.cmd("EHLO client.test", "250");
    h.cmd("MAIL FROM:<a@b.example>", "250 2.1.0");
}

#[test]
fn starttls_discards_pipelined_bytes_and_requires_new_ehlo() {
    let mut h = Harness::plain(Limits::default(), false);
    h.cmd("EHLO client.test", "250");
    let r =
        h.send(b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<security@magenta.example>\r\n");
    assert_eq!(r, vec!["220 2.0.0 Ready to start TLS\r\n"]);
    assert!(h.starttls);
    // Bytes arriving before the handshake completes are ignored too.
    assert!(h.send(b"NOOP\r\n").is_empty());
    h.s.tls_established(TlsInfo {
        version: "TLSv1.2".into(),
        cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
    });
    h.cmd(
        "MAIL FROM:<a@b.example>",
        "503 5.5.1 Send EHLO or HELO first",
    );
    h.cmd("EHLO client.test", "250");
    h.cmd("STARTTLS", "503 5.5.1 TLS already active");
    h.cmd("MAIL FROM:<a@b.example>", "250");
}

#[test]
fn talking_before_the_greeting_is_refused() {
    let mut s = Session::new(
        config(Limits::default(), false),
        "192.0.2.1:1".parse().unwrap(),
    );
    let a = s.feed(b"EHLO eager.example\r\n");
    assert_eq!(a, vec![Action::Reply(Reply::TalkedFirst), Action::Close]);
    assert!(Reply::TalkedFirst.render().starts_with("554 5.5.0"));
}

#[test]
fn content_before_354_is_refused() {
    let mut h = Harness::tls(Limits::default());
    let r = h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<security@magenta.example>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[2].starts_with("554 5.5.0"), "{r:?}");
    assert!(h.closed);
    assert!(h.delivered.is_empty());
}

#[test]
fn pipelined_envelope_then_data_is_fine() {
    let mut h = Harness::tls(Limits::default());
    let r = h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<security@magenta.example>\r\nDATA\r\n");
    assert_eq!(r.len(), 3);
    assert!(r[2].starts_with("354"));
    let r = h.send(b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    assert_eq!(r[0], "250 2.0.0 Stored safely as Q1\r\n");
    assert!(r[1].starts_with("221"));
    assert_eq!(h.delivered, vec![b"Subject: hi\r\n\r\n.dot\r\n".to_vec()]);
}

/// Feeds `input` split once at every byte boundary, and once byte by byte;
/// every way must give the same replies and deliveries.
fn every_split(setup: impl Fn() -> Harness, input: &[u8]) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut reference: Option<(Vec<String>, Vec<Vec<u8>>)> = None;
    let mut check = |h: Harness, how: String| {
        let got = (h.replies, h.delivered);
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_eq!(r, &got, "{how}"),
        }
    };
    for k in 0..=input.len() {
        let mut h = setup();
        h.send(&input[..k]);
        h.send(&input[k..]);
        check(h, format!("split at {k}"));
    }
    let mut h = setup();
    for b in input {
        h.send(std::slice::from_ref(b));
    }
    check(h, "byte by byte".into());
    reference.unwrap()
}

#[test]
fn smuggling_variants_fail_the_whole_transaction() {
    let variants: &[(&[u8], &str)] = &[
        (b"\n.\n", "550 5.5.2"),
        (b"\n.\r\n", "550 5.5.2"),
        (b"\r.\r\n", "550 5.5.2"),
        (b"\r\n.\r", "550 5.5.2"),
        (b"\r\r\n.\r\r\n", "550 5.5.2"),
        (b"\r\n\x00.\r\n", "550 5.6.0"),
    ];
    for (fake_end, want) in variants {
        let mut input = b"Subject: report\r\n\r\nfinding".to_vec();
        input.extend_from_slice(fake_end);
        input.extend_from_slice(
            b"MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<security@magenta.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nspoof\r\n.\r\nNOOP\r\n",
        );
        let setup = || {
            let mut h = Harness::tls(Limits::default());
            h.envelope();
            h.replies.clear();
            h
        };
        let (replies, delivered) = every_split(setup, &input);
        assert!(
            delivered.is_empty(),
            "{fake_end:?}: something was delivered"
        );
        assert_eq!(replies.len(), 2, "{fake_end:?}: {replies:?}");
        assert!(replies[0].starts_with(want), "{fake_end:?}: {replies:?}");
        assert!(
            replies[1].starts_with("250 2.0.0 OK"),
            "{fake_end:?}: session kept its place: {replies:?}"
        );
    }
}

#[test]
fn clean_message_survives_every_split_with_dots_unstuffed() {
    let input = b"Subject: t\r\n\r\n..leading dot\r\n...\r\nend\r\n.\r\nNOOP\r\n";
    let setup = || {
        let mut h = Harness::tls(Limits::default());
        h.envelope();
        h.replies.clear();
        h
    };
    let (replies, delivered) = every_split(setup, input);
    assert_eq!(
        replies,
        vec!["250 2.0.0 Stored safely as Q1\r\n", "250 2.0.0 OK\r\n"]
    );
    assert_eq!(
        delivered,
        vec![b"Subject: t\r\n\r\n.leading dot\r\n..\r\nend\r\n".to_vec()]
    );
}

#[test]
fn empty_message_body_is_delivered() {
    let mut h = Harness::tls(Limits::default());
    h.envelope();
    assert_eq!(h.send(b".\r\n"), vec!["250 2.0.0 Stored safely as Q1\r\n"]);
    assert_eq!(h.delivered, vec![Vec::<u8>::new()]);
}

#[test]
fn bare_line_endings_in_commands_fail_the_transaction() {
    let mut h = Harness::tls(Limits::default());
    h.cmd("MAIL FROM:<a@b.example>", "250");
    assert!(h.send(b"RCPT TO:<security@magenta.example>\n")[0].starts_with("550 5.5.2"));
    // The transaction is gone: RCPT now is out of sequence.
    h.cmd("RCPT TO:<security@magenta.example>", "503 5.5.1");
    assert!(h.send(b"NOOP\rNOOP\r\n")[0].starts_with("550 5.5.2"));
}

#[test]
fn size_limits() {
    let limits = Limits {
        max_message_size: 100,
        ..Limits::default()
    };
    let mut h = Harness::tls(limits.clone());
    h.cmd("MAIL FROM:<a@b.example> SIZE=101", "552 5.3.4");
    h.cmd("MAIL FROM:<a@b.example> SIZE=100", "250");
    h.cmd("RSET", "250");
    h.envelope();
    // 150 bytes arrive anyway: drained to the end, then refused; the
    // session keeps its place and the next message goes through.
    let mut big = vec![b'x'; 150];
    big.extend_from_slice(b"\r\n.\r\n");
    let r = h.send(&big);
    assert_eq!(r.len(), 1);
    assert!(r[0].starts_with("552 5.3.4"), "{r:?}");
    h.envelope();
    assert!(h.send(b"small\r\n.\r\n")[0].starts_with("250 2.0.0"));
    assert_eq!(h.delivered, vec![b"small\r\n".to_vec()]);
}

#[test]
fn recipients_are_checked_and_capped() {
    let mut h = Harness::tls(Limits::default());
    h.cmd("MAIL FROM:<a@b.example>", "250");
    h.cmd("RCPT TO:<nobody@magenta.example>", "550 5.1.1");
    h.cmd("DATA", "503 5.5.1");
    h.cmd("RCPT TO:<SECURITY@Magenta.Example>", "250");
    for i in 1..100 {
        h.cmd(&format!("RCPT TO:<r{i}@many.example>"), "250 2.1.5");
    }
    h.cmd("RCPT TO:<r100@many.example>", "452 4.5.3");
}

#[test]
fn smtputf8_is_required_for_non_ascii_addresses() {
    let mut h = Harness::tls(Limits::default());
    h.cmd("MAIL FROM:<rapportør@example.dk>", "553 5.6.7");
    h.cmd("MAIL FROM:<rapportør@example.dk> SMTPUTF8", "250");
    h.cmd("RCPT TO:<security@magenta.example>", "250");
    h.cmd("RSET", "250");
    h.cmd("MAIL FROM:<a@b.example>", "250");
    h.cmd("RCPT TO:<sikkerhed@æøå.example>", "553 5.6.7");
}

#[test]
fn rfc5321_length_limits() {
    let mut h = Harness::tls(Limits::default());
    h.cmd(
        &format!("MAIL FROM:<{}@b.example>", "l".repeat(65)),
        "501 5.5.4",
    );
    let long = format!("NOOP {}", "x".repeat(600));
    h.cmd(&long, "500 5.5.6");
    h.cmd("NOOP", "250");
}

#[test]
fn too_many_errors_closes_with_421() {
    let limits = Limits {
        max_errors: 3,
        ..Limits::default()
    };
    let mut h = Harness::tls(limits);
    h.cmd("FOO", "500");
    h.cmd("BAR", "500");
    let r = h.send(b"BAZ\r\n");
    assert_eq!(r.len(), 2);
    assert!(r[1].starts_with("421 4.7.0"));
    assert!(h.closed);
}

#[test]
fn a_huge_line_without_lf_gets_a_reply_and_a_close() {
    let mut h = Harness::tls(Limits::default());
    let chunk = vec![b'A'; 64 * 1024];
    let mut fed = 0;
    while !h.closed && fed < 10_000_000 {
        h.send(&chunk);
        fed += chunk.len();
    }
    assert!(h.closed);
    assert_eq!(
        fed,
        chunk.len(),
        "closed on the first chunk, holding nothing more"
    );
    assert!(h.replies.last().unwrap().starts_with("500 5.5.6"));
    assert!(h.send(&chunk).is_empty());
}

#[test]
fn pipelined_input_behind_a_delivery_is_bounded() {
    let limits = Limits {
        max_pending_input: 1024,
        ..Limits::default()
    };
    let mut s = Session::new(config(limits, false), "192.0.2.1:1".parse().unwrap());
    s.greeting();
    s.feed(b"EHLO c.test\r\nSTARTTLS\r\n");
    s.tls_established(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "x".into(),
    });
    s.feed(
        b"EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<security@magenta.example>\r\nDATA\r\n",
    );
    let a = s.feed(b"x\r\n.\r\n");
    assert!(matches!(a.last(), Some(Action::Deliver(_))));
    // The store has not answered; the client keeps talking.
    let a = s.feed(&[b'N'; 2048]);
    assert_eq!(
        a,
        vec![Action::Reply(Reply::PipelineOverflow), Action::Close]
    );
}

#[test]
fn shutdown_finishes_the_message_in_flight_first() {
    let mut h = Harness::tls(Limits::default());
    h.envelope();
    h.send(b"Subject: x\r\n\r\npart one\r\n");
    let a = h.s.shutdown();
    assert!(a.is_empty(), "mid-DATA: wait for the end");
    let r = h.send(b"part two\r\n.\r\n");
    assert_eq!(r[0], "250 2.0.0 Stored safely as Q1\r\n");
    assert!(r[1].starts_with("421 4.3.2"));
    assert!(h.closed);

    let mut h = Harness::tls(Limits::default());
    let a = h.s.shutdown();
    assert_eq!(a, vec![Action::Reply(Reply::ShuttingDown), Action::Close]);
}

#[test]
fn store_failure_answers_451_and_keeps_the_session() {
    let mut h = Harness::tls(Limits::default());
    h.envelope();
    let a = h.s.feed(b"x\r\n.\r\n");
    assert!(matches!(a.as_slice(), [Action::Deliver(_)]));
    let a = h.s.stored(Err(Reply::StoreFailed));
    assert_eq!(a, vec![Action::Reply(Reply::StoreFailed)]);
    assert!(Reply::StoreFailed.render().starts_with("451 4.3.0"));
    h.cmd("NOOP", "250");
}

/// A bounded, deterministic random walk over hostile input: byte soup mixed
/// with real commands, CR, LF, dots and NULs, fed in random chunk sizes.
/// The session must never panic, every reply must be well-formed, and every
/// delivered body must be clean CRLF text with no bare CR, LF or NUL.
#[test]
fn random_hostile_input_never_breaks_the_invariants() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: &[&[u8]] = &[
        b"EHLO x.test\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<security@magenta.example>\r\n",
        b"DATA\r\n",
        b"\r\n.\r\n",
        b".",
        b"\r",
        b"\n",
        b"\0",
        b"RSET\r\n",
        b"STARTTLS\r\n",
        b"hello world",
        b"..",
        b"\xff\xfe",
    ];
    let limits = Limits {
        max_message_size: 4096,
        max_errors: 1000,
        ..Limits::default()
    };
    let (mut delivered, mut refused) = (0, 0);
    for _round in 0..300 {
        let mut h = Harness::tls(limits.clone());
        for _txn in 0..(1 + next() % 3) {
            // A proper envelope, pipelined up to DATA, then hostile content
            // and hostile commands, fed in random chunks.
            h.send(b"RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<security@magenta.example>\r\nDATA\r\n");
            let mut input = Vec::new();
            for _ in 0..(next() % 40) {
                let piece = pieces[(next() % pieces.len() as u64) as usize];
                // Mostly text, so that clean messages happen too.
                if next() % 3 == 0 || piece.len() > 2 {
                    input.extend_from_slice(piece);
                } else {
                    input.extend_from_slice(b"text\r\n");
                }
            }
            input.extend_from_slice(b"\r\n.\r\n");
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let n = 1 + (next() as usize % rest.len().min(17));
                h.send(&rest[..n]);
                rest = &rest[n..];
            }
            if h.closed {
                break;
            }
        }
        for r in &h.replies {
            let b = r.as_bytes();
            assert!(
                b.len() >= 5 && b[..3].iter().all(u8::is_ascii_digit),
                "{r:?}"
            );
            assert!(
                r.ends_with("\r\n") && !r[..r.len() - 2].contains(['\r', '\n'])
                    || r.starts_with("250-"),
                "{r:?}"
            );
        }
        for body in &h.delivered {
            assert!(!body.contains(&0));
            for (i, &c) in body.iter().enumerate() {
                if c == b'\n' {
                    assert!(i > 0 && body[i - 1] == b'\r', "bare LF delivered");
                }
                if c == b'\r' {
                    assert_eq!(body.get(i + 1), Some(&b'\n'), "bare CR delivered");
                }
            }
            assert!(body.len() <= 4096);
        }
        delivered += h.delivered.len();
        refused += h
            .replies
            .iter()
            .filter(|r| r.starts_with("550 5.5.2"))
            .count();
    }
    // The walk reaches both sides: clean deliveries and smuggling refusals.
    assert!(
        delivered > 10 && refused > 10,
        "delivered {delivered}, refused {refused}"
    );
}

#[test]
fn the_encrypted_archive_fallback_admits_plaintext_only_for_its_recipients() {
    let config = Arc::new(SessionConfig {
        hostname: "mx.test".into(),
        accept_for: AcceptFor::new([RCPT, "security@strict.example"]),
        allow_plaintext: false,
        plaintext_fallback: AcceptFor::new([RCPT]),
        limits: Limits::default(),
    });
    let mut s = Session::new(config, "192.0.2.1:1".parse().unwrap());
    s.greeting();
    let r = |a: Vec<Action>| match a.as_slice() {
        [Action::Reply(r), ..] => r.render(),
        other => panic!("{other:?}"),
    };
    s.feed(b"EHLO c.test\r\n");
    assert!(r(s.feed(b"MAIL FROM:<a@b.example>\r\n")).starts_with("250"));
    assert!(
        r(s.feed(b"RCPT TO:<security@strict.example>\r\n"))
            .starts_with("530 5.7.0 Must issue a STARTTLS")
    );
    assert!(r(s.feed(b"RCPT TO:<security@magenta.example>\r\n")).starts_with("250"));
    assert!(r(s.feed(b"DATA\r\n")).starts_with("354"));
    let a = s.feed(b"Subject: x\r\n\r\nnote\r\n.\r\n");
    let [Action::Deliver(d)] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(
        d.envelope().tls,
        None,
        "the driver applies the content rule to plaintext"
    );
    // The driver's verdict goes out as the reply.
    let a = s.stored(Err(Reply::PlaintextRefused));
    assert!(r(a).starts_with("550 5.7.10"));
}

#[test]
fn a_body_refused_for_memory_is_drained_then_refused_and_the_session_goes_on() {
    let mut h = Harness::tls(Limits::default());
    h.envelope();
    h.send(b"Subject: x\r\n\r\npart one\r\n");
    assert_eq!(h.s.body_len(), 24);
    h.s.refuse_body(Reply::BusyMemory);
    assert_eq!(h.s.body_len(), 0, "freed at once");
    let r = h.send(b"part two\r\n.\r\n");
    assert_eq!(r.len(), 1);
    assert!(r[0].starts_with("452 4.3.1"), "{r:?}");
    assert!(h.delivered.is_empty());
    h.cmd("NOOP", "250");
}
