//! Receipts end to end: a report comes in, a case opens, and the receipt
//! reaches the reporter's side through a real relay on loopback (a second
//! disclosure-mx acting as the sink), over STARTTLS, threaded, in the
//! report's language; and the cases where no receipt may be sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mail::{Mail, Part};
use common::{INTAKE_ON, Opts, Server, deliver_from, fixture, mail_with_attachments};
use mail_parser::MessageParser;
use serde_json::Value;
use std::time::{Duration, Instant};

fn sink() -> Server {
    Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\", \"@borger.example\", \"@finder.example\", \
                \"@target.example\", \"@evil.example\", \"@one.example\", \"@two.example\", \"@three.example\"]",
        ..Opts::default()
    })
}

fn outbound_to(sink: &Server, extra: &str) -> String {
    format!("{}{extra}", sink.as_relay())
}

fn outbox(server: &Server) -> Vec<Value> {
    let (ok, out, err) = server.cli(&["outbox", "list", "--json"], None);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_the_reporter_over_starttls_threaded_and_in_their_language() {
    let sink = sink();
    // A DKIM key as ops make one.
    let keys = tempfile::tempdir().unwrap();
    let dkim_key = keys.path().join("dkim.pem");
    let (ok, out) = common::sh(
        std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&dkim_key)
            .arg("2048"),
    );
    assert!(ok, "{out}");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dkim_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: outbound_to(
            &sink,
            &format!("dkim_key_file = {dkim_key:?}\ndkim_selector = \"dmx\"\n"),
        ),
        ..Opts::default()
    });
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver_from(
        &mx,
        "soeren@borger.example",
        "security@magenta.example",
        &fixture("da-magenta-idor.eml"),
    )
    .await;

    let received = wait_for("two receipts at the sink", || {
        let m = sink.messages();
        (m.len() == 2).then_some(m)
    });
    for m in &received {
        assert_eq!(
            m["mail_from"], "",
            "auto-replies go out with a null reverse path"
        );
        assert_eq!(m["tls_version"], "TLSv1.3", "STARTTLS to the relay");
        assert_eq!(m["helo"], "mx.test");
    }
    let raws = sink.raw_messages().await;
    // Signed for the organisation's domain; an independent verifier
    // (Python's dkimpy) checks it against the record `dns records` prints.
    let (ok, records, err) = mx.cli(&["dns", "records"], None);
    assert!(ok, "{err}");
    for raw in &raws {
        let text = String::from_utf8_lossy(raw);
        let domain = if text.contains("From: \"Netcompany") || text.contains("@netcompany.example>")
        {
            "netcompany.example"
        } else {
            "magenta.example"
        };
        assert!(text.contains(&format!("d={domain}")), "{text}");
        let record = records
            .lines()
            .find(|l| l.starts_with(&format!("dmx._domainkey.{domain}. TXT ")))
            .unwrap_or_else(|| panic!("{records}"));
        let value: String = record
            .split_once(" TXT ")
            .unwrap()
            .1
            .split('"')
            .skip(1)
            .step_by(2)
            .collect();
        let file = keys.path().join(format!("{domain}.eml"));
        std::fs::write(&file, raw).unwrap();
        let verdict = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/test-venv/bin/python"
        ))
        .arg("-c")
        .arg(
            "import dkim, sys\n\
             msg = open(sys.argv[1], 'rb').read()\n\
             print(dkim.verify(msg, dnsfunc=lambda name, timeout=5: sys.argv[2].encode()))",
        )
        .arg(&file)
        .arg(&value)
        .output()
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&verdict.stdout).trim(),
            "True",
            "{}",
            String::from_utf8_lossy(&verdict.stderr)
        );
    }
    let parsed: Vec<_> = raws
        .iter()
        .map(|r| MessageParser::default().parse(r).unwrap().into_owned())
        .collect();
    let en = parsed
        .iter()
        .find(|m| m.to().unwrap().first().unwrap().address() == Some("alice@researcher.example"))
        .unwrap();
    let subject = en.subject().unwrap();
    // Nothing the sender wrote: not even their subject.
    assert!(
        subject.starts_with("[NC-") && subject.ends_with("] Report received"),
        "{subject}"
    );
    let reference = &subject[1..subject.find(']').unwrap()];
    assert_eq!(
        en.in_reply_to().as_text(),
        Some("en-xss-1@researcher.example")
    );
    // The Message-ID is a reply token: 128 random bits.
    let id = en.message_id().unwrap();
    let token = id
        .strip_prefix(&format!("{reference}."))
        .and_then(|t| t.strip_suffix("@mx.test"))
        .unwrap_or_else(|| panic!("{id}"));
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        en.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        en.from().unwrap().first().unwrap().address(),
        Some("security@netcompany.example")
    );
    let body = en
        .body_text(0)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        body.contains(&format!("registered as case {reference}")),
        "{body}"
    );
    assert!(body.contains("within 15 business days"), "{body}");
    assert!(
        body.contains(", over TLSv1.3."),
        "the delivery facts: {body}"
    );
    assert!(!body.contains("onerror"), "no report content in a receipt");
    assert!(
        !body.contains("stored XSS"),
        "no report content in a receipt"
    );

    let da = parsed
        .iter()
        .find(|m| m.to().unwrap().first().unwrap().address() == Some("soeren@borger.example"))
        .unwrap();
    assert!(
        da.subject().unwrap().contains("Henvendelse modtaget"),
        "{:?}",
        da.subject()
    );
    let body = da
        .body_text(0)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(body.contains("registreret som sag MAG-"), "{body}");
    assert!(body.contains("inden for 2 uger"), "{body}");

    let entries = outbox(&mx);
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["state"] == "sent"), "{entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_receipt_to_anonymous_null_senders_or_unflagged_mail_and_a_rate_limit() {
    let sink = sink();
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: outbound_to(&sink, "receipts_per_address_per_day = 2\n"),
        ..Opts::default()
    });
    deliver_from(
        &mx,
        "x@anon.example",
        "security@magenta.example",
        &fixture("anonymous-magenta.eml"),
    )
    .await;
    deliver_from(
        &mx,
        "",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver_from(
        &mx,
        "eve@customer.example",
        "security@netcompany.example",
        &fixture("unflagged-netcompany.eml"),
    )
    .await;
    for _ in 0..3 {
        deliver_from(
            &mx,
            "bob@finder.example",
            "security@netcompany.example",
            &fixture("html-only-netcompany.eml"),
        )
        .await;
    }
    // From: bob, but the envelope names someone else: no receipt.
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("html-only-netcompany.eml"),
    )
    .await;
    mx.wait_filed(7);
    let entries = wait_for("receipts settled", || {
        let e = outbox(&mx);
        (e.len() == 6 && e.iter().all(|x| x["state"] != "pending")).then_some(e)
    });
    let reasons: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["state"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("suppressed", "no reporter address (anonymous)"),
            ("suppressed", "null sender"),
            ("sent", ""),
            ("sent", ""),
            ("suppressed", "rate limit: receipts_per_address_per_day"),
            (
                "suppressed",
                "envelope sender does not match From (RFC 3834 section 4)"
            ),
        ],
        "the unflagged mail has no entry at all"
    );
    let sent_to_sink = wait_for("two at the sink", || {
        let m = sink.messages();
        (m.len() == 2).then_some(m)
    });
    assert!(
        sent_to_sink
            .iter()
            .all(|m| m["rcpt_to"] == serde_json::json!(["bob@finder.example"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_is_retried_then_marked_failed_and_the_outbox_persists() {
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!(
            "[outbound]\nrelay = \"127.0.0.1:{closed_port}\"\nretry_base = 1\nmax_attempts = 2\n"
        ),
        ..Opts::default()
    });
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    let first = wait_for("a failed attempt", || {
        let e = outbox(&mx);
        (e.len() == 1 && e[0]["attempts"].as_i64().unwrap() >= 1).then_some(e)
    });
    assert!(
        first[0]["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("connect"),
        "{first:?}"
    );
    let failed = wait_for("failed after max_attempts", || {
        let e = outbox(&mx);
        (e[0]["state"] == "failed").then_some(e)
    });
    assert_eq!(failed[0]["attempts"], 2);
    mx.kill9();
    mx.restart();
    let after = outbox(&mx);
    assert_eq!(after[0]["state"], "failed");
    assert_eq!(after[0]["to_address"], "alice@researcher.example");

    // The relay is fixed: an operator sends it again. Another
    // organisation's operator cannot see it, and a sent message cannot be
    // retried or cancelled.
    let sink = sink();
    let config = std::fs::read_to_string(mx.config_path()).unwrap().replace(
        &format!("relay = \"127.0.0.1:{closed_port}\""),
        &sink
            .as_relay()
            .lines()
            .skip(1)
            .take(3)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    std::fs::write(mx.config_path(), config).unwrap();
    mx.kill9();
    mx.restart();
    let id = after[0]["id"].to_string();
    let (ok, _, err) = mx.cli(&["--for-org", "magenta", "outbox", "retry", &id], None);
    assert!(
        !ok && err.contains(&format!("no outbox message {id}")),
        "{err}"
    );
    let (ok, out, err) = mx.cli(&["outbox", "retry", &id, "--actor", "ops"], None);
    assert!(ok, "{err}");
    assert!(out.contains("queued to be sent now"), "{out}");
    wait_for("sent after the retry", || {
        let e = outbox(&mx);
        (e[0]["state"] == "sent").then_some(())
    });
    assert_eq!(outbox(&mx)[0]["attempts"], 1, "a fresh count");
    assert_eq!(sink.messages().len(), 1, "the receipt reached the relay");
    for verb in ["retry", "cancel"] {
        let (ok, _, err) = mx.cli(&["outbox", verb, &id], None);
        assert!(!ok && err.contains("is sent: it has gone"), "{err}");
    }
    let (_, out, _) = mx.cli(&["audit", "list", "--json"], None);
    let audit: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "outbox-retry" && e["actor"] == "ops"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancels_a_message_that_waits() {
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!(
            "[outbound]\nrelay = \"127.0.0.1:{closed_port}\"\nretry_base = 3600\nmax_attempts = 5\n"
        ),
        ..Opts::default()
    });
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    let entry = wait_for("a receipt waiting", || {
        let e = outbox(&mx);
        (e.len() == 1 && e[0]["attempts"].as_i64().unwrap() >= 1).then(|| e[0].clone())
    });
    assert_eq!(entry["state"], "pending");
    let id = entry["id"].to_string();
    let (ok, out, err) = mx.cli(&["outbox", "cancel", &id], None);
    assert!(ok && out.contains("cancelled"), "{err}");
    let after = &outbox(&mx)[0];
    assert_eq!(
        (after["state"].as_str(), after["reason"].as_str()),
        (Some("suppressed"), Some("cancelled by an operator"))
    );
    let (ok, _, err) = mx.cli(&["outbox", "cancel", &id], None);
    assert!(!ok && err.contains("will not be sent"), "{err}");
    let (ok, _, err) = mx.cli(&["outbox", "retry", &id], None);
    assert!(!ok && err.contains("is suppressed"), "{err}");
    let (ok, _, err) = mx.cli(&["outbox", "retry", "999"], None);
    assert!(!ok && err.contains("no outbox message 999"), "{err}");
    // The case's timeline says so.
    let reference = mx.case_of("netcompany");
    let case = mx.case_json(&reference);
    assert!(
        case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "outbox"),
        "{case}"
    );
}

/// An analyst's reply from the web interface goes out through the same
/// relay, threaded under the report, from the security address (a real
/// reverse path, no Auto-Submitted: a person wrote it), and is in the
/// timeline and the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysts_reply_goes_out_threaded_through_the_relay() {
    let sink = sink();
    let sso = common::web::Sso::start_with("", INTAKE_ON, &outbound_to(&sink, ""));
    deliver_from(
        &sso.server,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    wait_for("the receipt", || (sink.messages().len() == 1).then_some(()));
    let reference = sso.server.case_of("netcompany");
    let analyst = sso.signed_in("nina@nc.example", &["nc-analysts"]);
    let path = format!("/cases/{reference}");
    let csrf = analyst.csrf(&path);
    let text =
        "Thank you. We reproduced the issue and a fix is planned for 1 December.\n.\nRegards";
    let r = analyst.post(&format!("{path}/reply"), &[("csrf", &csrf), ("text", text)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        analyst
            .get(&path)
            .text()
            .contains("a fix is planned for 1 December")
    );

    wait_for("the reply at the sink", || {
        (sink.messages().len() == 2).then_some(())
    });
    let meta = sink.messages();
    let reply_meta = meta.iter().find(|m| m["mail_from"] != "").unwrap();
    assert_eq!(reply_meta["mail_from"], "security@netcompany.example");
    let raws = sink.raw_messages().await;
    let parsed: Vec<_> = raws
        .iter()
        .map(|r| MessageParser::default().parse(r).unwrap().into_owned())
        .collect();
    let reply = parsed
        .iter()
        .find(|m| m.subject().is_some_and(|s| s.starts_with("Re: [")))
        .unwrap();
    assert_eq!(
        reply.subject().unwrap(),
        format!("Re: [{reference}] Responsible disclosure: stored XSS in the support portal")
    );
    assert_eq!(
        reply.in_reply_to().as_text(),
        Some("en-xss-1@researcher.example")
    );
    assert_eq!(
        reply.references().as_text(),
        Some("en-xss-1@researcher.example")
    );
    assert!(reply.header_raw("Auto-Submitted").is_none());
    assert_eq!(
        reply.to().unwrap().first().unwrap().address(),
        Some("alice@researcher.example")
    );
    let body = reply.body_text(0).unwrap();
    assert!(body.contains("a fix is planned for 1 December"), "{body}");
    assert!(
        body.replace("\r\n", "\n").contains("\n.\nRegards"),
        "a lone dot line survives: {body:?}"
    );

    let (_, out, _) = sso
        .server
        .cli(&["cases", "show", &reference, "--json"], None);
    let case: Value = serde_json::from_str(&out).unwrap();
    assert!(
        case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "reply" && e["actor"] == "nina@nc.example")
    );
    let (_, out, _) = sso.server.cli(&["audit", "list", "--json"], None);
    assert!(out.contains("reply queued to the reporter"));
    assert!(
        !out.contains("1 December"),
        "no reply text in the audit trail"
    );
}

/// A flagged report to Netcompany from `from`, with optional headers.
fn report_from(from: &str, subject: &str, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut m = Mail::new(&format!("<{from}>"), "security@netcompany.example", subject).message_id(
        &format!(
            "{}.{}@sender.example",
            subject.len(),
            from.replace('@', ".")
        ),
    );
    for (name, value) in extra {
        m = m.header(name, value);
    }
    m.text(body).bytes()
}

fn states_and_reasons(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["state"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn settled(mx: &Server, n: usize) -> Vec<Value> {
    wait_for("receipts settled", || {
        let e = outbox(mx);
        (e.len() == n && e.iter().all(|x| x["state"] != "pending")).then_some(e)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_cannot_be_aimed_at_third_parties() {
    let sink = sink();
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: outbound_to(
            &sink,
            "receipts_per_address_per_day = 2\nreceipts_per_domain_per_day = 3\n",
        ),
        ..Opts::default()
    });
    let spam = "Responsible disclosure: BUY PILLS at spam.example";
    let sends: [(&str, &str); 6] = [
        // The envelope names the attacker, From: the victim.
        ("attacker@evil.example", "victim@target.example"),
        ("victim+1@target.example", "victim+1@target.example"),
        ("Victim+2@Target.Example", "victim+2@target.example"),
        ("victim+3@target.example", "victim+3@target.example"),
        ("other@target.example", "other@target.example"),
        ("third@target.example", "third@target.example"),
    ];
    for (envelope, from) in sends {
        deliver_from(
            &mx,
            envelope,
            "security@netcompany.example",
            &report_from(from, spam, &[], "CLICK http://spam.example/now"),
        )
        .await;
    }
    // A report in an encrypted archive: its receipt says how to give the
    // password, in the policy's words.
    let archive = std::fs::read(format!(
        "{}/fixtures/archives/report-aes-he.7z",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    deliver_from(
        &mx,
        "r@researcher.example",
        "security@netcompany.example",
        &mail_with_attachments(
            "Responsible disclosure: encrypted",
            "The report is attached.",
            &[("report.7z", &archive)],
        ),
    )
    .await;
    mx.wait_filed(7);
    let entries = settled(&mx, 7);
    let expect = |state: &str, reason: &str| (state.to_owned(), reason.to_owned());
    assert_eq!(
        states_and_reasons(&entries),
        vec![
            expect(
                "suppressed",
                "envelope sender does not match From (RFC 3834 section 4)"
            ),
            expect("sent", ""),
            expect("sent", ""),
            expect("suppressed", "rate limit: receipts_per_address_per_day"),
            expect("sent", ""),
            expect("suppressed", "rate limit: receipts_per_domain_per_day"),
            expect("sent", ""),
        ]
    );
    // Each went to its envelope sender, and said nothing the sender wrote.
    let received = wait_for("four at the sink", || {
        let m = sink.messages();
        (m.len() == 4).then_some(m)
    });
    let mut to: Vec<String> = received
        .iter()
        .map(|m| m["rcpt_to"][0].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "other@target.example",
            "r@researcher.example",
            "victim+1@target.example",
            "victim+2@target.example"
        ]
    );
    for raw in sink.raw_messages().await {
        let m = MessageParser::default().parse(&raw).unwrap();
        let text = format!("{} {}", m.subject().unwrap(), m.body_text(0).unwrap());
        for sender_text in ["PILLS", "spam.example", "CLICK"] {
            assert!(!text.contains(sender_text), "{sender_text}: {text}");
        }
        if m.to().unwrap().first().unwrap().address() == Some("r@researcher.example") {
            assert!(
                text.contains("virtual meeting room"),
                "how to give the password: {text}"
            );
        } else {
            assert!(!text.contains("encrypted archive"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_and_the_hour_have_ceilings_too() {
    let sink = sink();
    for (limits, reason) in [
        (
            "receipts_per_client_per_day = 2\n",
            "rate limit: receipts_per_client_per_day",
        ),
        ("receipts_per_hour = 2\n", "rate limit: receipts_per_hour"),
    ] {
        let mx = Server::start(Opts {
            intake: INTAKE_ON,
            extra: outbound_to(&sink, limits),
            ..Opts::default()
        });
        for who in ["a@one.example", "b@two.example", "c@three.example"] {
            deliver_from(
                &mx,
                who,
                "security@netcompany.example",
                &report_from(who, "Responsible disclosure: x", &[], "Description: x"),
            )
            .await;
        }
        mx.wait_filed(3);
        let entries = settled(&mx, 3);
        let got = states_and_reasons(&entries);
        assert_eq!(
            got[2],
            ("suppressed".to_owned(), reason.to_owned()),
            "{got:?}"
        );
        assert!(got[..2].iter().all(|(s, _)| s == "sent"), "{got:?}");
    }
}

fn show(mx: &Server, reference: &str) -> Value {
    let (ok, out, err) = mx.cli(&["cases", "show", reference, "--json"], None);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_reach_the_case_and_only_the_reporter_speaks_for_it() {
    let sink = sink();
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: outbound_to(&sink, ""),
        ..Opts::default()
    });
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    wait_for("the receipt", || sink.messages().into_iter().next());
    let raw = sink.raw_messages().await.remove(0);
    let token = MessageParser::default()
        .parse(&raw)
        .unwrap()
        .message_id()
        .unwrap()
        .to_owned();
    let reference = mx.case_of("netcompany");
    let (ok, _, err) = mx.cli(
        &["cases", "transition", &reference, "needs-information"],
        None,
    );
    assert!(ok, "{err}");

    let subject = format!("Re: [{reference}] Responsible disclosure");
    // A stranger who knows the (guessable) reference.
    deliver_from(
        &mx,
        "mallory@evil.example",
        "security@netcompany.example",
        &mail_with_attachments(
            &subject,
            "Close this case, it is a duplicate.",
            &[("fake.txt", b"fake")],
        ),
    )
    .await;
    // A stranger quoting our Message-ID (forwarded to them, say).
    deliver_from(
        &mx,
        "mallory@evil.example",
        "security@netcompany.example",
        &report_from(
            "mallory@evil.example",
            &subject,
            &[("In-Reply-To", &format!("<{token}>"))],
            "I am the reporter now.",
        ),
    )
    .await;
    // The reporter, answering our receipt, with an attachment.
    let reply = Mail::new(
        "Alice Researcher <alice@researcher.example>",
        "security@netcompany.example",
        &subject,
    )
    .message_id("en-xss-3@researcher.example")
    .header("In-Reply-To", &format!("<{token}>"))
    .header(
        "References",
        &format!("<en-xss-1@researcher.example> <{token}>"),
    )
    .part(Part::Text(
        "Here is the proof of concept you asked for.".into(),
    ))
    .part(Part::TextAttachment {
        name: "poc.txt".into(),
        content_type: "text/plain".into(),
        text: "<img src=x onerror=alert(2)>".into(),
    })
    .bytes();
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &reply,
    )
    .await;
    mx.wait_filed(4);

    let case = show(&mx, &reference);
    let conversation = case["conversation"].as_array().unwrap();
    assert_eq!(conversation.len(), 3, "{conversation:?}");
    let flags: Vec<(bool, bool)> = conversation
        .iter()
        .map(|m| {
            (
                m["token"].as_bool().unwrap(),
                m["from_reporter"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(flags, [(false, false), (true, false), (true, true)]);
    assert!(
        conversation[2]["text"]
            .as_str()
            .unwrap()
            .contains("proof of concept you asked for")
    );
    assert_eq!(conversation[2]["sender"], "alice@researcher.example");
    assert_eq!(conversation[2]["tls_version"], "TLSv1.3");
    // Attachments are evidence of the message they came with.
    let evidence = case["evidence"].as_array().unwrap();
    let of = |id: &Value| -> Vec<String> {
        evidence
            .iter()
            .filter(|e| &e["conversation_id"] == id)
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(of(&conversation[0]["id"]), ["fake.txt"]);
    assert_eq!(of(&conversation[2]["id"]), ["poc.txt"]);
    // Only the reporter's answer moved the case (the clock runs again).
    assert_eq!(case["state"], "triaged");
    let transitions: Vec<&str> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "transition")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        transitions,
        [
            "new -> needs-information",
            "needs-information -> triaged (the reporter replied)"
        ]
    );
    let (_, text, _) = mx.cli(&["cases", "show", &reference], None);
    // Marked in the conversation and on the timeline, for both strangers.
    assert_eq!(text.matches("NOT FROM THE REPORTER").count(), 4, "{text}");
    assert!(
        text.contains("Close this case, it is a duplicate."),
        "{text}"
    );
}
