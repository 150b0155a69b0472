//! The feedback the policies promise: status updates drafted from each
//! policy's templates in the report's language (Danish for a Danish
//! report to Magenta), edited or not, sent through the relay threaded
//! under the report, stopping the feedback clock and counting as feedback
//! on time — through the CLI, the API and the case page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::web::Sso;
use common::{INTAKE_ON, Opts, Server, deliver_from, sh};
use mail_parser::MessageParser;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_updates_from_the_policys_templates_reach_the_reporter_and_stop_the_clock() {
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\", \"@borger.example\"]",
        ..Opts::default()
    });
    let outbound = sink.as_relay();
    let sso = Sso::start_with("", INTAKE_ON, &outbound);
    let mx = &sso.server;
    deliver_from(
        mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &common::fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver_from(
        mx,
        "soeren@borger.example",
        "security@magenta.example",
        &common::fixture("da-magenta-idor.eml"),
    )
    .await;
    mx.wait_filed(2);
    let nc = mx.case_of("netcompany");
    let mag = mx.case_of("magenta");
    common::wait_until("two receipts", Duration::from_secs(30), || {
        sink.messages().len() == 2
    });

    // The CLI: Magenta's own Danish wording for a Danish report.
    let (ok, draft, err) = mx.cli(
        &["cases", "feedback", &mag, "investigating", "--draft"],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        draft.contains(&format!("Tak for din henvendelse {mag}")),
        "{draft}"
    );
    assert!(
        draft.contains("du kan forvente at høre fra os igen"),
        "{draft}"
    );
    let (ok, out, err) = mx.cli(
        &[
            "cases",
            "feedback",
            &mag,
            "investigating",
            "--text-stdin",
            "--actor",
            "mads",
        ],
        Some("Tak for din henvendelse. Vi undersøger sagen og vender tilbage i næste uge."),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("status update (investigating) queued to soeren@borger.example"),
        "{out}"
    );
    common::wait_until("the update at the relay", Duration::from_secs(30), || {
        sink.messages().len() == 3
    });
    let raws = sink.raw_messages().await;
    let update = raws
        .iter()
        .map(|r| MessageParser::default().parse(r).unwrap().into_owned())
        .find(|m| {
            m.body_text(0)
                .is_some_and(|b| b.contains("vender tilbage i næste uge"))
        })
        .expect("the edited update");
    assert!(
        update
            .subject()
            .unwrap()
            .starts_with(&format!("Re: [{mag}]"))
    );
    assert!(
        update.in_reply_to().as_text().is_some(),
        "threaded under the report"
    );
    assert!(
        update.header_raw("Auto-Submitted").is_none(),
        "a person wrote it"
    );
    let case = mx.case_json(&mag);
    assert!(case["feedback_given_at"].is_i64(), "the clock stopped");
    assert!(
        case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "feedback" && e["actor"] == "mads")
    );
    let thread = case["thread"].as_array().unwrap();
    assert!(
        thread.iter().any(|e| e["kind"] == "status-update"
            && e["delivery"] == "sent"
            && e["text"].as_str().unwrap().contains("næste uge")),
        "in the conversation: {thread:?}"
    );
    // Stopped means never overdue, even past the deadline.
    let mut db = mx.db().await;
    sqlx::query("UPDATE cases SET feedback_by = received_at WHERE reference = $1")
        .bind(&mag)
        .execute(&mut db)
        .await
        .unwrap();
    let (ok, out, _) = mx.cli(&["cases", "list", "--overdue", "--json"], None);
    assert!(ok);
    assert!(!out.contains(&mag), "{out}");
    let (ok, out, err) = mx.cli(&["report", "sla", "--org", "magenta", "--json"], None);
    assert!(ok, "{err}");
    let figures: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        figures[0]["feedback_due"], 1,
        "the update counts as feedback"
    );
    assert_eq!(figures[0]["overdue"], 0);

    // The API: Netcompany's English template, sent as drafted.
    let (ok, token, err) = mx.cli(&["tokens", "create", "nc-bot", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let token = token.trim();
    let (ok, out) = sh(Command::new("curl")
        .args(["-sS", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!(
            "{}/api/v1/cases/{nc}/feedback/investigating",
            sso.base
        )));
    assert!(ok, "{out}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["language"], "en");
    assert!(
        d["text"]
            .as_str()
            .unwrap()
            .contains("we will keep you informed of our progress"),
        "{d}"
    );
    let (ok, out) = sh(Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"kind": "bogus"}"#,
        ])
        .arg(format!("{}/api/v1/cases/{nc}/feedback", sso.base)));
    assert!(ok, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["error"],
        "unknown status update \"bogus\": one of investigating, needs-information, resolved, closed"
    );

    // The page: draft, edit, send.
    let web = sso.signed_in("nina@nc.example", &["nc-analysts"]);
    let page = web.get(&format!("/cases/{nc}?draft=closed")).text();
    assert!(page.contains("id=\"feedback-text\""), "{page}");
    assert!(
        page.contains(&format!("We have closed case {nc}: (reason).")),
        "the built-in template"
    );
    let csrf = web.csrf(&format!("/cases/{nc}"));
    let r = web.post(
        &format!("/cases/{nc}/feedback"),
        &[
            ("csrf", &csrf),
            ("kind", "investigating"),
            ("text", "We reproduced it on staging; a fix is planned."),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    common::wait_until(
        "the web's update at the relay",
        Duration::from_secs(30),
        || sink.messages().len() == 4,
    );
    let after = web.get(&format!("/cases/{nc}")).text();
    assert!(
        after.contains("given "),
        "the feedback clock reads as given"
    );
    let (_, audit, _) = mx.cli(&["audit", "list", "--json"], None);
    let audit: Vec<Value> = serde_json::from_str(&audit).unwrap();
    assert_eq!(
        audit.iter().filter(|e| e["action"] == "feedback").count(),
        2
    );
}
