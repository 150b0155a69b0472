//! Keeping the promises visible: the service-level figures through
//! `report sla`, the API and the dashboard page. Receipts count when the
//! relay (a second disclosure-mx on loopback) accepted them; a late
//! deadline, a reply, junk and another organisation each move exactly the
//! figures they should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mail::Mail;
use common::web::Sso;
use common::{INTAKE_ON, Opts, Server, deliver_from};
use serde_json::Value;
use std::time::Duration;

fn sla(server: &Server, org: &str) -> Value {
    let (ok, out, err) = server.cli(&["report", "sla", "--org", org, "--json"], None);
    assert!(ok, "{err}");
    let all: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(all.len(), 1);
    all[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_levels_count_what_the_relay_accepted_and_only_ones_own() {
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\", \"@borger.example\"]",
        ..Opts::default()
    });
    let outbound = sink.as_relay();
    let sso = Sso::start_with("", INTAKE_ON, &outbound);
    let mx = &sso.server;
    for n in 1..=3 {
        let mail = Mail::new(
            &format!("Reporter {n} <r{n}@researcher.example>"),
            "security@netcompany.example",
            &format!("Responsible disclosure: finding {n}"),
        )
        .message_id(&format!("sla-{n}@researcher.example"))
        .text("Description: the search page reflects its q parameter.")
        .bytes();
        deliver_from(
            mx,
            &format!("r{n}@researcher.example"),
            "security@netcompany.example",
            &mail,
        )
        .await;
    }
    let mail = Mail::new(
        "Borger <s@borger.example>",
        "security@magenta.example",
        "Sårbarhed",
    )
    .message_id("sla-mag@borger.example")
    .text("Beskrivelse: en fejl.")
    .bytes();
    deliver_from(mx, "s@borger.example", "security@magenta.example", &mail).await;
    mx.wait_filed(4);
    let sent = || {
        let (_, out, _) = mx.cli(&["outbox", "list", "--json"], None);
        let outbox: Vec<Value> = serde_json::from_str(&out).unwrap();
        outbox.iter().filter(|o| o["state"] == "sent").count()
    };
    common::wait_until(
        "four receipts accepted by the relay",
        Duration::from_secs(30),
        || sent() == 4,
    );

    let nc = sla(mx, "netcompany");
    assert_eq!(nc["receipts_due"], 3, "{nc:#}");
    assert_eq!(nc["receipts_on_time"], 3);
    assert_eq!(nc["receipt_on_time_share"], 1.0);
    assert_eq!(nc["feedback_due"], 0, "no feedback deadline has passed");
    assert!(nc["feedback_on_time_share"].is_null());
    assert_eq!(nc["open"], 3);
    assert_eq!(nc["open_by_state"]["new"], 3);
    assert_eq!(nc["overdue"], 0);
    let ack = nc["median_business_days_to_acknowledge"].as_f64().unwrap();
    assert!(
        (0.0..0.01).contains(&ack),
        "seconds, in business days: {ack}"
    );
    let weeks = nc["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 12);
    assert_eq!(weeks[11]["received"], 3, "this week");

    // A reply through the relay is the first feedback, on time.
    let web = sso.signed_in("nina@nc.example", &["nc-analysts"]);
    let csrf = web.csrf("/cases/NC-2026-0001");
    let r = web.post(
        "/cases/NC-2026-0001/reply",
        &[
            ("csrf", &csrf),
            ("text", "We reproduced it and are working on a fix."),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    common::wait_until(
        "the reply accepted by the relay",
        Duration::from_secs(30),
        || sent() == 5,
    );
    let nc = sla(mx, "netcompany");
    assert_eq!(
        (nc["feedback_due"].as_u64(), nc["feedback_on_time"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(nc["feedback_on_time_share"], 1.0);
    assert!(
        nc["median_business_days_to_first_feedback"]
            .as_f64()
            .unwrap()
            < 0.01
    );

    // Two weeks pass for case 3 without an answer, and its receipt
    // deadline turns out to have come before the relay accepted it.
    let mut db = mx.db().await;
    sqlx::query(
        "UPDATE cases SET acknowledge_by = received_at - 1, feedback_by = received_at WHERE reference = 'NC-2026-0003'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let nc = sla(mx, "netcompany");
    assert_eq!(
        (nc["receipts_due"].as_u64(), nc["receipts_on_time"].as_u64()),
        (Some(3), Some(2))
    );
    assert!((nc["receipt_on_time_share"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        (nc["feedback_due"].as_u64(), nc["feedback_on_time"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(nc["feedback_on_time_share"], 0.5);
    assert_eq!(nc["overdue"], 1);
    let (ok, text, err) = mx.cli(&["report", "sla", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    assert!(
        text.contains("receipts on time 67% (2 of 3), feedback on time 50% (1 of 2)"),
        "{text}"
    );
    assert!(text.contains("overdue now         1"), "{text}");

    // Junk counts for nothing.
    let (ok, _, err) = mx.cli(&["cases", "transition", "NC-2026-0003", "junk"], None);
    assert!(ok, "{err}");
    let nc = sla(mx, "netcompany");
    assert_eq!(nc["receipt_on_time_share"], 1.0, "{nc:#}");
    assert_eq!(
        (nc["open"].as_u64(), nc["overdue"].as_u64()),
        (Some(2), Some(0))
    );

    // The API: a token sees its own organisations' figures only.
    let (ok, token, err) = mx.cli(&["tokens", "create", "mag-bot", "--org", "magenta"], None);
    assert!(ok, "{err}");
    let (status, all) = common::api::call(&sso.base, token.trim(), "GET", "/api/v1/sla", None);
    assert_eq!(status, 200);
    let orgs: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["org"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, ["magenta"]);
    assert_eq!(all[0]["receipts_due"], 1);
    assert_eq!(all[0]["open"], 1);
    let (status, refused) = common::api::call(
        &sso.base,
        token.trim(),
        "GET",
        "/api/v1/sla?org=netcompany",
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(
        refused["error"],
        "no organisation \"netcompany\" among yours"
    );

    // The dashboard: the analyst's organisation, its chart, no other's.
    let page = web.get("/dashboard");
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(page.contains("id=\"sla-netcompany\""), "{page}");
    assert!(!page.contains("sla-magenta"));
    assert!(page.contains("<svg class=\"chart\""));
    assert!(page.contains("100% (2 of 2)"), "{page}");
    assert!(!page.contains("<script"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_digest_reaches_the_team_through_the_relay_once_a_day() {
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\"]",
        ..Opts::default()
    });
    let policies = tempfile::tempdir().unwrap();
    for name in ["netcompany.toml", "magenta.toml"] {
        let mut text = std::fs::read_to_string(format!("policies/{name}")).unwrap();
        if name == "netcompany.toml" {
            // From midnight: due as soon as the service looks.
            text.push_str("\n[digest]\nto = \"team@researcher.example\"\nhour = 0\n");
        }
        std::fs::write(policies.path().join(name), text).unwrap();
    }
    let mx = Server::start(Opts {
        intake: INTAKE_ON,
        extra: sink.as_relay(),
        env: vec![(
            "DISCLOSURE_MX_POLICIES_DIR",
            policies.path().display().to_string(),
        )],
        ..Opts::default()
    });
    deliver_from(
        &mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &common::fixture("en-netcompany-xss.eml"),
    )
    .await;
    mx.wait_filed(1);
    let reference = mx.case_of("netcompany");
    common::wait_until(
        "the receipt and the digest",
        Duration::from_secs(30),
        || sink.messages().len() >= 2,
    );
    let digests: Vec<_> = sink
        .raw_messages()
        .await
        .into_iter()
        .map(|r| {
            mail_parser::MessageParser::default()
                .parse(&r)
                .unwrap()
                .into_owned()
        })
        .filter(|m| m.subject().is_some_and(|s| s.contains("Daily digest")))
        .collect();
    assert_eq!(digests.len(), 1);
    let d = &digests[0];
    assert_eq!(
        d.to().unwrap().first().unwrap().address(),
        Some("team@researcher.example")
    );
    assert!(d.header_raw("Auto-Submitted").is_some(), "automatic mail");
    let body = d.body_text(0).unwrap();
    assert!(body.contains("Open cases: 1"), "{body}");
    assert!(body.contains("Due within one business day: "), "{body}");
    assert!(
        !body.contains("support portal"),
        "no report content: {body}"
    );
    assert!(
        !body.contains(&reference) || body.contains(&format!("{reference} (")),
        "{body}"
    );
    // Once a day: the next passes send nothing more.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(sink.messages().len(), 2);
}
