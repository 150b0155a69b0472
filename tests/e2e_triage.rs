//! Junk, and reports that forgot the flag. A flood of 5,000 mails from 50
//! senders at three domains reaches Magenta (whose policy needs no subject
//! flag, so each is a disclosure case): at most the configured number of
//! receipts leaves, three bulk actions junk them all (one audit entry
//! each), and the service-level figures end as they began. An unflagged
//! report to Netcompany is promoted: its receipt goes out through the relay
//! and its clocks run from arrival; the doors refuse alike what cannot be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::mail::Mail;
use common::{INTAKE_ON, Opts, Server, deliver_from, sh};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const FLOOD: usize = 5_000;
const SENDERS: usize = 50;

fn outbox(server: &Server) -> Vec<Value> {
    let (ok, out, err) = server.cli(&["outbox", "list", "--json"], None);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn sla(server: &Server, org: &str) -> Value {
    let (ok, out, err) = server.cli(&["report", "sla", "--org", org, "--json"], None);
    assert!(ok, "{err}");
    serde_json::from_str::<Vec<Value>>(&out).unwrap()[0].clone()
}

fn total(server: &Server, args: &[&str]) -> usize {
    let mut all = vec!["cases", "list", "--limit", "1"];
    all.extend(args);
    let (ok, out, err) = server.cli(&all, None);
    assert!(ok, "{err}");
    let line = out.lines().last().unwrap();
    line.split(" of ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_leaves_few_receipts_and_three_actions_junk_it_without_moving_a_figure() {
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@borger.example\", \"@flood-0.example\", \"@flood-1.example\", \"@flood-2.example\"]",
        ..Opts::default()
    });
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: sink.as_relay(),
        ..Opts::default()
    });
    // One genuine report first, answered on time.
    let genuine = Mail::new(
        "Borger <s@borger.example>",
        "security@magenta.example",
        "Fejl i MitID-login",
    )
    .message_id("genuine@borger.example")
    .text("Beskrivelse: login-siden viser andres sessioner.")
    .bytes();
    deliver_from(
        &mx,
        "s@borger.example",
        "security@magenta.example",
        &genuine,
    )
    .await;
    mx.wait_filed(1);
    common::wait_until("the genuine receipt", Duration::from_secs(60), || {
        outbox(&mx).iter().any(|o| o["state"] == "sent")
    });
    let before = sla(&mx, "magenta");
    assert_eq!(before["receipts_due"], 1);
    assert_eq!(before["receipt_on_time_share"], 1.0);

    // The flood: five sessions, a thousand mails each.
    let mut sessions = Vec::new();
    for s in 0..5 {
        let addr = mx.addr;
        let tls = mx.tls();
        sessions.push(tokio::spawn(async move {
            let mut c = Client::connect_tls(addr, tls).await.unwrap();
            for i in (s..FLOOD).step_by(5) {
                let n = i % SENDERS;
                let from = format!("seller{n}@flood-{}.example", n % 3);
                let body = Mail::new(
                    &from,
                    "security@magenta.example",
                    "Grow your followers today",
                )
                .message_id(&format!("flood-{i}@flood.example"))
                .text("Buy 10,000 real followers for 9 euro. Reply now.")
                .bytes();
                let reply = c
                    .send(&from, "security@magenta.example", &body)
                    .await
                    .unwrap();
                assert!(reply.starts_with("250"), "{reply}");
            }
        }));
    }
    for s in sessions {
        s.await.unwrap();
    }
    mx.wait_filed_within(FLOOD + 1, Duration::from_secs(120));
    let caps = 20; // receipts_per_client_per_day: every mail came from 127.0.0.1
    let owed: Vec<Value> = outbox(&mx)
        .into_iter()
        .filter(|o| o["kind"] == "receipt" && o["state"] != "suppressed")
        .collect();
    assert!(
        owed.len() <= caps,
        "{} receipts left or wait to",
        owed.len()
    );
    assert!(owed.len() > 1, "the limit, not silence, stopped them");

    // Three actions, one per domain, from any one case of each.
    let (ok, out, err) = mx.cli(
        &[
            "cases", "list", "--org", "magenta", "--limit", "4", "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let first: Vec<Value> = serde_json::from_str(&out).unwrap();
    let flood_case = first[1]["reference"].as_str().unwrap().to_owned();
    let (ok, out, err) = mx.cli(
        &["cases", "bulk", &flood_case, "--by", "content", "--dry-run"],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("{FLOOD} case(s) with the same content")),
        "{out}"
    );
    assert_eq!(
        total(&mx, &["--state", "junk"]),
        0,
        "a dry run changes nothing"
    );
    for domain in 0..3 {
        let (ok, out, err) = mx.cli(
            &[
                "cases",
                "list",
                "--search",
                &format!("seller{domain}"),
                "--limit",
                "1",
                "--json",
            ],
            None,
        );
        assert!(ok, "{err}");
        let one: Vec<Value> = serde_json::from_str(&out).unwrap();
        let like = one[0]["reference"].as_str().unwrap();
        let (ok, out, err) = mx.cli(
            &["cases", "bulk", like, "--by", "domain", "--actor", "nina"],
            None,
        );
        assert!(ok, "{err}");
        assert!(out.contains("to junk"), "{out}");
    }
    assert_eq!(total(&mx, &["--state", "junk"]), FLOOD);
    assert_eq!(
        total(&mx, &["--state", "new", "--org", "magenta"]),
        1,
        "the genuine report stays"
    );
    let (_, audit, _) = mx.cli(&["audit", "list", "--json"], None);
    let audit: Vec<Value> = serde_json::from_str(&audit).unwrap();
    let bulk: Vec<&Value> = audit.iter().filter(|e| e["action"] == "bulk").collect();
    assert_eq!(bulk.len(), 3, "one entry per action");
    assert!(bulk.iter().all(|e| e["actor"] == "nina"));
    // Nothing junk still waits to be sent, and no figure moved.
    common::wait_until("the relay idle", Duration::from_secs(60), || {
        outbox(&mx).iter().all(|o| o["state"] != "pending")
    });
    assert!(sink.messages().len() <= caps + 1);
    let after = sla(&mx, "magenta");
    assert_eq!(after["receipts_due"], before["receipts_due"], "{after:#}");
    assert_eq!(
        after["receipt_on_time_share"],
        before["receipt_on_time_share"]
    );
    assert_eq!(after["open"], 1);
    // A junk case's timeline says why.
    let (_, out, _) = mx.cli(&["cases", "show", &flood_case, "--json"], None);
    let case: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(case["state"], "junk");
    let last = case["timeline"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .starts_with("new -> junk (bulk: same domain as MAG-"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unflagged_report_is_promoted_with_its_receipt_and_clocks_from_arrival() {
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\"]",
        ..Opts::default()
    });
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!("{}\n[web]\nlisten = \"127.0.0.1:0\"\n", sink.as_relay()),
        ..Opts::default()
    });
    let mail = Mail::new(
        "Alice <alice@researcher.example>",
        "security@netcompany.example",
        "XSS in your search",
    )
    .message_id("forgot-the-flag@researcher.example")
    .text("Description: the search page reflects its q parameter.")
    .bytes();
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &mail,
    )
    .await;
    mx.wait_filed(1);
    let reference = mx.case_of("netcompany");
    let (_, out, _) = mx.cli(&["cases", "show", &reference, "--json"], None);
    let case: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(case["kind"], "unflagged");
    assert!(outbox(&mx).is_empty(), "no receipt for unflagged mail");
    let (ok, out, err) = mx.cli(&["cases", "promote", &reference, "--actor", "nina"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("receipt queued to alice@researcher.example"),
        "{out}"
    );
    common::wait_until("the receipt at the relay", Duration::from_secs(60), || {
        sink.messages().len() == 1
    });
    let (_, out, _) = mx.cli(&["cases", "show", &reference, "--json"], None);
    let promoted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(promoted["kind"], "disclosure");
    assert_eq!(
        promoted["acknowledge_by"], case["acknowledge_by"],
        "clocks from arrival"
    );
    assert_eq!(promoted["feedback_by"], case["feedback_by"]);
    assert!(
        promoted["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "promote" && e["actor"] == "nina")
    );
    let nc = sla(&mx, "netcompany");
    assert_eq!(
        (nc["receipts_due"].as_u64(), nc["receipts_on_time"].as_u64()),
        (Some(1), Some(1))
    );
    // Once is enough: the doors refuse it alike.
    let (ok, _, err) = mx.cli(&["cases", "promote", &reference], None);
    let message =
        format!("{reference} is a disclosure case: only an unflagged case can be promoted");
    assert!(!ok && err.contains(&message), "{err}");
    let (ok, token, err) = mx.cli(&["tokens", "create", "bot", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let base = format!("http://{}", common::web::web_addr(&mx.data_dir()));
    let (ok, out) = sh(Command::new("curl")
        .args(["-sS", "-X", "POST", "-w", "\n%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .arg(format!("{base}/api/v1/cases/{reference}/promote")));
    assert!(ok, "{out}");
    let (body, status) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(status, "409");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["error"],
        message.as_str()
    );
    let (ok, _, err) = mx.cli(&["cases", "bulk", &reference, "--by", "colour"], None);
    assert!(
        !ok && err.contains("unknown selector \"colour\": sender, domain, client or content"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likely_duplicates_and_beg_bounties_are_suggested_with_their_reason_and_change_nothing() {
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let words = "quokka wombat numbat bilby dingo platypus echidna wallaby";
    let reports: [(&str, &str, String); 8] = [
        (
            "netcompany",
            "A",
            "The export leaks invoices, CVE-2026-7777.".into(),
        ),
        (
            "netcompany",
            "B",
            "Same bug as CVE-2026-7777, seen again today.".into(),
        ),
        (
            "netcompany",
            "C",
            "SQL injection (CWE-89) at https://shop.netcompany.example/cart".into(),
        ),
        (
            "netcompany",
            "D",
            "CWE-89 again, in https://shop.netcompany.example/login".into(),
        ),
        ("netcompany", "E", format!("The {words} pages leak data.")),
        ("netcompany", "F", format!("Found: {words} all leak.")),
        ("magenta", "G", "Magenta has CVE-2026-7777 too.".into()),
        (
            "netcompany",
            "H",
            "My Nessus scan found a missing header. I expect a bounty.".into(),
        ),
    ];
    for (org, name, text) in &reports {
        deliver_from(
            &mx,
            "r@researcher.example",
            &format!("security@{org}.example"),
            &common::report(&format!("Responsible disclosure: report {name}"), text),
        )
        .await;
    }
    mx.wait_filed(reports.len());
    let (_, out, _) = mx.cli(&["cases", "list", "--json"], None);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    let reference = |name: &str| -> String {
        list.iter()
            .find(|c| c["subject"] == format!("Responsible disclosure: report {name}"))
            .unwrap()["reference"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let hints = |name: &str| -> Vec<(String, String)> {
        let (_, out, _) = mx.cli(&["cases", "show", &reference(name), "--json"], None);
        let case: Value = serde_json::from_str(&out).unwrap();
        case["duplicates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["reference"].as_str().unwrap().to_owned(),
                    h["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        hints("B"),
        [(reference("A"), "the same CVE-2026-7777".to_owned())]
    );
    assert!(
        !hints("A").iter().any(|(r, _)| *r == reference("G")),
        "another organisation's case is never suggested"
    );
    assert_eq!(hints("G"), Vec::<(String, String)>::new());
    assert_eq!(
        hints("D"),
        [(
            reference("C"),
            "the same asset host shop.netcompany.example and CWE-89".to_owned()
        )]
    );
    let overlap = hints("F");
    assert_eq!(overlap.len(), 1, "{overlap:?}");
    assert_eq!(overlap[0].0, reference("E"));
    assert!(
        overlap[0].1.ends_with("distinctive words in common"),
        "{overlap:?}"
    );
    // The beg-bounty pattern, as a suggestion with its reason.
    let (_, out, text_err) = mx.cli(&["cases", "show", &reference("H"), "--json"], None);
    let h: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{text_err}"));
    let beg: Vec<&Value> = h["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "beg-bounty")
        .collect();
    assert_eq!(beg.len(), 1, "{h:#}");
    assert_eq!(beg[0]["name"], "payment-for-out-of-scope-finding");
    // Suggestions never change a case.
    assert_eq!(h["state"], "new");
    let (_, text, _) = mx.cli(&["cases", "show", &reference("B")], None);
    assert!(
        text.contains("possible duplicates (an analyst decides):"),
        "{text}"
    );
}
