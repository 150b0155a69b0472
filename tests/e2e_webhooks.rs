//! Webhooks end to end: a real HTTP receiver on loopback (Python's
//! http.server) gets a signed POST for each new case and each state change;
//! a receiver that fails is retried until it answers, and nothing is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::hooks::Receiver;
use common::{INTAKE_ON, Opts, Server, deliver_from, fixture};
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_events_for_new_cases_and_state_changes_retried_until_delivered() {
    let receiver = Receiver::start(2);
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!(
            "[[webhooks]]\nname = \"tracker\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret = \"s3cret\"\norgs = [\"netcompany\"]\n",
            receiver.port
        ),
        ..Opts::default()
    });
    deliver_from(
        &server,
        "a@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver_from(
        &server,
        "s@borger.example",
        "security@magenta.example",
        &fixture("da-magenta-idor.eml"),
    )
    .await;
    server.wait_filed(2);
    let (_, out, _) = server.cli(&["cases", "list", "--json", "--org", "netcompany"], None);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    let reference = list[0]["reference"].as_str().unwrap().to_owned();
    assert!(
        server
            .cli(&["cases", "transition", &reference, "acknowledged"], None)
            .0
    );

    let start = Instant::now();
    let delivered = loop {
        let ok: Vec<Value> = receiver
            .hits()
            .into_iter()
            .filter(|h| h["ok"] == true)
            .collect();
        if ok.len() >= 2 {
            break ok;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not delivered: {:?}\n{}",
            receiver.hits(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        receiver.hits().iter().filter(|h| h["ok"] == false).count() >= 2,
        "the first attempts failed and were retried"
    );
    let events: Vec<Value> = delivered
        .iter()
        .map(|h| serde_json::from_str(h["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "case.created");
    assert_eq!(events[0]["reference"], reference.as_str());
    assert_eq!(events[1]["event"], "case.state_changed");
    assert_eq!(events[1]["change"], "new -> acknowledged");
    assert!(
        events.iter().all(|e| e["org"] == "netcompany"),
        "the Magenta case is not this hook's"
    );
    for h in &delivered {
        let body = h["body"].as_str().unwrap();
        assert_eq!(
            h["sig"].as_str().unwrap(),
            disclosure_mx::outbound::webhooks::signature("s3cret", body.as_bytes())
        );
        assert!(
            !body.contains("comment field"),
            "no report content in events"
        );
    }
    // Delivered once each: one more change goes out after them, in order,
    // so a second delivery of either would have arrived before it.
    assert!(
        server
            .cli(&["cases", "transition", &reference, "triaged"], None)
            .0
    );
    let start = Instant::now();
    let all = loop {
        let ok: Vec<Value> = receiver
            .hits()
            .into_iter()
            .filter(|h| h["ok"] == true)
            .collect();
        let last: Option<Value> = ok
            .last()
            .map(|h| serde_json::from_str(h["body"].as_str().unwrap()).unwrap());
        if last.is_some_and(|e| e["change"] == "acknowledged -> triaged") {
            break ok;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the third change was not delivered: {:?}",
            receiver.hits()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(all.len(), 3, "each event once: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_coming_due_and_passing_reaches_the_webhook_once_each() {
    let receiver = Receiver::start(0);
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!(
            "[[webhooks]]\nname = \"pager\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret = \"s3cret\"\n",
            receiver.port
        ),
        ..Opts::default()
    });
    for (from, to, fixture_name) in [
        (
            "a@researcher.example",
            "security@netcompany.example",
            "en-netcompany-xss.eml",
        ),
        (
            "soeren@borger.example",
            "security@magenta.example",
            "da-magenta-idor.eml",
        ),
    ] {
        deliver_from(&server, from, to, &fixture(fixture_name)).await;
    }
    server.wait_filed(2);
    let reference = |org: &str| server.case_of(org);
    let (nc, mag) = (reference("netcompany"), reference("magenta"));
    // Netcompany's receipt deadline is an hour away; Magenta's feedback
    // deadline passed an hour ago (its receipt clock was acknowledged).
    assert!(
        server
            .cli(&["cases", "transition", &mag, "acknowledged"], None)
            .0
    );
    let mut db = server.db().await;
    for (sql, r) in [
        (
            "UPDATE cases SET acknowledge_by = $1 WHERE reference = $2",
            &nc,
        ),
        (
            "UPDATE cases SET feedback_by = $1 WHERE reference = $2",
            &mag,
        ),
    ] {
        let now = jiff::Timestamp::now().as_second();
        let at = if *r == nc { now + 3600 } else { now - 3600 };
        sqlx::query(sql)
            .bind(at)
            .bind(r)
            .execute(&mut db)
            .await
            .unwrap();
    }
    let start = Instant::now();
    let alerts = loop {
        let alerts: Vec<Value> = receiver
            .hits()
            .into_iter()
            .map(|h| serde_json::from_str::<Value>(h["body"].as_str().unwrap()).unwrap())
            .filter(|b| matches!(b["event"].as_str(), Some("case.due_soon" | "case.overdue")))
            .collect();
        if alerts.len() >= 2 {
            break alerts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no alerts: {:?}",
            receiver.hits()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let of = |event: &str| alerts.iter().find(|a| a["event"] == event).unwrap().clone();
    let soon = of("case.due_soon");
    assert_eq!(soon["reference"], nc.as_str());
    assert!(
        soon["change"].as_str().unwrap().starts_with("receipt due "),
        "{soon}"
    );
    let late = of("case.overdue");
    assert_eq!(late["reference"], mag.as_str());
    assert!(
        late["change"]
            .as_str()
            .unwrap()
            .starts_with("feedback overdue since "),
        "{late}"
    );
    // Once per deadline: another pass of the watcher raises nothing new.
    std::thread::sleep(Duration::from_secs(11));
    let count = receiver
        .hits()
        .iter()
        .filter(|h| {
            h["body"].as_str().unwrap().contains("case.due_soon")
                || h["body"].as_str().unwrap().contains("case.overdue")
        })
        .count();
    assert_eq!(count, 2);
    // On the case's timeline too, by the clock.
    let (_, out, _) = server.cli(&["cases", "show", &mag, "--json"], None);
    let case: Value = serde_json::from_str(&out).unwrap();
    assert!(
        case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "overdue" && e["actor"] == "clock")
    );
}
