//! The three doors to the cases service — the CLI, the JSON API and the
//! web interface — give the same answer to the same action: the same
//! refusal with the same message, or the same timeline entry and the same
//! audit entry. A table of actions, each performed through every door
//! against one running server (real SMTP intake, real HTTP with curl, the
//! real binary for the CLI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "parity/doors.rs"]
mod doors;

use common::web::Sso;
use common::{INTAKE_ON, deliver_from, fixture, report, sh};
use doors::{ANALYST, Action, DOORS, Door, Doors, OUTSIDER, Outcome, escaped};
use serde_json::Value;
use std::process::Command;

/// The organisation's policy as the test gives it: breach notification
/// within 2 business days, not the 72 hours the web interface once used
/// on its own.
fn policies() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["netcompany.toml", "magenta.toml"] {
        let text = std::fs::read_to_string(format!("policies/{name}")).unwrap();
        let text = text.replace(
            "breach_notification_within = \"72 hours\"",
            "breach_notification_within = \"2 business days\"",
        );
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().display().to_string();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_door_gives_the_same_answer() {
    let (_policies, policies_dir) = policies();
    let sso = Sso::start_env(
        "",
        INTAKE_ON,
        "",
        vec![("DISCLOSURE_MX_POLICIES_DIR", policies_dir.clone())],
    );
    for n in 1..=4 {
        deliver_from(
            &sso.server,
            "r@researcher.example",
            "security@netcompany.example",
            &report(
                &format!("Responsible disclosure: parity {n}"),
                "Stored XSS in the search page of www.netcompany.com.",
            ),
        )
        .await;
    }
    deliver_from(
        &sso.server,
        "s@borger.example",
        "security@magenta.example",
        &fixture("da-magenta-idor.eml"),
    )
    .await;
    sso.server.wait_filed(5);
    let (ok, list, err) = sso.server.cli(&["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    let list: Vec<Value> = serde_json::from_str(&list).unwrap();
    let of = |org: &str| -> Vec<String> {
        list.iter()
            .filter(|c| c["org"] == org)
            .map(|c| c["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    let nc = of("netcompany");
    let mag = of("magenta");
    assert_eq!((nc.len(), mag.len()), (4, 1), "{list:?}");

    let (ok, token, err) = sso
        .server
        .cli(&["tokens", "create", "nc-bot", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let web = sso.signed_in(ANALYST, &["nc-analysts"]);
    // Someone of the other organisation has signed in too.
    sso.signed_in(OUTSIDER, &["mag-analysts"]);
    let doors = Doors {
        sso,
        web,
        token: token.trim().to_owned(),
    };

    // ------------------------------------------------------------ refusals
    let over = "n".repeat(20_001);
    let refusals: Vec<(&str, &str, Action, u16, String)> = vec![
        (
            "an over-limit note",
            &nc[0],
            Action::Note(over.clone()),
            422,
            "the note is longer than 20000 characters (20001)".into(),
        ),
        (
            "an empty note",
            &nc[0],
            Action::Note("  \n ".into()),
            422,
            "the note is empty".into(),
        ),
        (
            "a note on another organisation's case",
            &mag[0],
            Action::Note("cross-org".into()),
            404,
            format!("no case {}", mag[0]),
        ),
        (
            "a transition of another organisation's case",
            &mag[0],
            Action::Transition("acknowledged", String::new()),
            404,
            format!("no case {}", mag[0]),
        ),
        (
            "a case that does not exist",
            "NC-1999-0001",
            Action::Note("hello".into()),
            404,
            "no case NC-1999-0001".into(),
        ),
        (
            "an illegal transition",
            &nc[0],
            Action::Transition("resolved", String::new()),
            409,
            "a new case cannot become resolved".into(),
        ),
        (
            "an unknown state",
            &nc[0],
            Action::Transition("bogus", String::new()),
            422,
            "unknown state \"bogus\"".into(),
        ),
        (
            "closing without a reason",
            &nc[0],
            Action::Transition("closed", String::new()),
            422,
            "closing needs a reason: \"\": expected out-of-scope, duplicate:REFERENCE, not-reproducible, informative or spam".into(),
        ),
        (
            "a duplicate of a case elsewhere",
            &nc[0],
            Action::Transition("closed", "duplicate:MAG-2026-0001".into()),
            422,
            "duplicate of MAG-2026-0001, but no such case exists in the same organisation".into(),
        ),
                (
            "an assignment to someone who never signed in",
            &nc[0],
            Action::Assign(Some("eve@nowhere.example")),
            422,
            "\"eve@nowhere.example\" cannot take cases of netcompany: only someone who has signed in with a role for it can".into(),
        ),
        (
            "an assignment to an analyst of another organisation",
            &nc[0],
            Action::Assign(Some(OUTSIDER)),
            422,
            format!("\"{OUTSIDER}\" cannot take cases of netcompany: only someone who has signed in with a role for it can"),
        ),
        (
            "an assignment of another organisation's case",
            &mag[0],
            Action::Assign(Some(ANALYST)),
            404,
            format!("no case {}", mag[0]),
        ),
        (
            "an unknown field",
            &nc[0],
            Action::Edit("severity", Some("high".into())),
            422,
            "unknown field \"severity\": one of description, steps, impact, mitigation, contact, channel".into(),
        ),
        (
            "a field value over its limit",
            &nc[0],
            Action::Edit("impact", Some(over.clone())),
            422,
            "the field value is longer than 20000 characters (20001)".into(),
        ),
        (
            "a field of another organisation's case",
            &mag[0],
            Action::Edit("impact", Some("mine now".into())),
            404,
            format!("no case {}", mag[0]),
        ),
        (
            "promoting a disclosure case",
            &nc[0],
            Action::Promote,
            409,
            format!("{} is a disclosure case: only an unflagged case can be promoted", nc[0]),
        ),
        (
            "a bulk action by an unknown selector",
            &nc[0],
            Action::Bulk("colour"),
            422,
            "unknown selector \"colour\": sender, domain, client or content".into(),
        ),
        (
            "a bulk action on another organisation's case",
            &mag[0],
            Action::Bulk("domain"),
            404,
            format!("no case {}", mag[0]),
        ),
        (
            "an unknown status update",
            &nc[0],
            Action::Feedback("bogus", "Hello"),
            422,
            "unknown status update \"bogus\": one of investigating, needs-information, resolved, closed".into(),
        ),
        (
            "an empty status update",
            &nc[0],
            Action::Feedback("investigating", "  "),
            422,
            "the reply is empty".into(),
        ),
        (
            "a transition reason over its limit",
            &nc[0],
            Action::Transition("acknowledged", "r".repeat(501)),
            422,
            "the reason is longer than 500 characters (501)".into(),
        ),
    ];
    for (what, reference, action, status, message) in &refusals {
        let before = doors.changes().len();
        let timeline = |r: &str| {
            if r.starts_with("NC-1999") {
                0
            } else {
                doors.show(r)["timeline"].as_array().unwrap().len()
            }
        };
        let events = timeline(reference);
        for door in DOORS {
            let got = doors.run(door, reference, action);
            match (door, &got) {
                (Door::Cli, Outcome::Refused(0, m)) => {
                    assert_eq!(m, message, "{what}: the CLI's message")
                }
                (Door::Api, Outcome::Refused(s, m)) => {
                    assert_eq!((s, m), (status, message), "{what}: the API's answer")
                }
                (Door::Web, Outcome::Refused(s, page)) => {
                    assert_eq!(s, status, "{what}: the web's status");
                    assert!(
                        page.contains(&escaped(message)),
                        "{what}: the web page says {message:?}:\n{page}"
                    );
                }
                _ => panic!("{what}: {door:?} answered {got:?}"),
            }
        }
        assert_eq!(
            doors.changes().len(),
            before,
            "{what}: nothing audited as done"
        );
        assert_eq!(
            timeline(reference),
            events,
            "{what}: the timeline is unchanged"
        );
    }

    // ------------------------------------------------------------ changes
    // Each door acts on a case of its own, so each starts from `new`.
    let actor = |door: Door| match door {
        Door::Api => "token:nc-bot",
        _ => ANALYST,
    };
    let source = |door: Door| match door {
        Door::Cli => "cli",
        _ => "127.0.0.1",
    };
    let rows: Vec<(&str, Action, &str, &str, &str)> = vec![
        (
            "a note",
            Action::Note("  Reproduced on staging.  ".into()),
            "note",
            "Reproduced on staging.",
            "internal note added",
        ),
        (
            "an acknowledgement",
            Action::Transition("acknowledged", String::new()),
            "transition",
            "new -> acknowledged",
            "new -> acknowledged",
        ),
        (
            "an assignment",
            Action::Assign(Some(ANALYST)),
            "assign",
            "assigned to alice@nc.example",
            "assigned to alice@nc.example",
        ),
        (
            "taking it back",
            Action::Assign(None),
            "assign",
            "unassigned",
            "unassigned",
        ),
        (
            "a field correction",
            Action::Edit("impact", Some("  Any customer's invoices.  ".into())),
            "edit",
            "impact written by an analyst",
            "impact written by an analyst",
        ),
        (
            "a field cleared",
            Action::Edit("impact", None),
            "edit",
            "impact cleared by an analyst",
            "impact cleared by an analyst",
        ),
        (
            "a closing with its reason",
            Action::Transition("closed", "informative".into()),
            "transition",
            "acknowledged -> closed (informative)",
            "acknowledged -> closed",
        ),
    ];
    for (what, action, kind, timeline, audit) in &rows {
        for (door, reference) in DOORS.into_iter().zip(&nc) {
            assert_eq!(
                doors.run(door, reference, action),
                Outcome::Done,
                "{what} via {door:?}"
            );
            let case = doors.show(reference);
            let last = case["timeline"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["kind"], *kind, "{what} via {door:?}: {last}");
            assert_eq!(last["detail"], *timeline, "{what} via {door:?}");
            assert_eq!(last["actor"], actor(door), "{what} via {door:?}");
            let entry = doors.changes().last().unwrap().clone();
            assert_eq!(entry["action"], *kind, "{what} via {door:?}: {entry}");
            assert_eq!(entry["target"], reference.as_str());
            assert_eq!(entry["detail"], *audit, "{what} via {door:?}");
            assert_eq!(entry["actor"], actor(door));
            assert_eq!(entry["source"], source(door));
        }
    }

    // The breach deadline comes from the case's policy, whichever door
    // flags it (the API has no breach route).
    let policy =
        disclosure_mx::policy::PolicySet::load_dir(std::path::Path::new(&policies_dir)).unwrap();
    let nc_policy = policy.get("netcompany").unwrap();
    let expected = nc_policy
        .due(jiff::Timestamp::now(), nc_policy.breach_notification_within)
        .as_second();
    for (door, reference) in [Door::Cli, Door::Web].into_iter().zip(&nc) {
        assert_eq!(doors.run(door, reference, &Action::Breach), Outcome::Done);
        let case = doors.show(reference);
        let authority = case["clocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["clock"] == "gdpr-controller/authority-notification")
            .unwrap()
            .clone();
        assert_eq!(
            authority["due"].as_i64(),
            Some(expected),
            "the policy's deadline via {door:?}"
        );
        // The earliest notification a breach needs: the controller's, 24
        // hours, as Netcompany is also a processor.
        assert!(case["breach_notify_by"].as_i64() <= Some(expected));
        let timeline = case["timeline"].as_array().unwrap();
        assert_eq!(timeline.iter().filter(|e| e["kind"] == "breach").count(), 1);
        assert!(timeline.iter().any(|e| e["kind"] == "clock-started"));
        let entry = doors.changes().last().unwrap().clone();
        assert_eq!(
            (entry["action"].as_str(), entry["detail"].as_str()),
            (Some("breach"), Some("flagged as a personal-data breach"))
        );
    }

    // "My cases": the same list through every door.
    assert_eq!(
        doors.run(Door::Cli, &nc[3], &Action::Assign(Some(ANALYST))),
        Outcome::Done
    );
    let (ok, out, err) = doors.sso.server.cli(
        &[
            "--for-org",
            "netcompany",
            "cases",
            "list",
            "--assignee",
            ANALYST,
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    let refs = |l: &[Value]| -> Vec<String> {
        l.iter()
            .map(|c| c["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(refs(&listed), [nc[3].clone()], "CLI");
    assert_eq!(listed[0]["assignee"], ANALYST);
    let (ok, out) = sh(Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {}", doors.token),
        ])
        .arg(format!(
            "{}/api/v1/cases?assignee={}",
            doors.sso.base,
            ANALYST.replace('@', "%40")
        )));
    assert!(ok, "{out}");
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(refs(&listed), [nc[3].clone()], "API");
    let page = doors.web.get("/cases?mine=1").text();
    assert!(
        page.contains(&nc[3]) && !page.contains(&nc[0]),
        "web: {page}"
    );
    assert!(page.contains("1 case(s)"), "{page}");
    let case = doors.web.get(&format!("/cases/{}", nc[3])).text();
    assert!(
        case.contains(&format!(
            "<dd id=\"case-assignee\">{ANALYST} ({ANALYST})</dd>"
        )),
        "{case}"
    );

    // Reads: one view entry per door, with the same detail.
    let before = doors.audit().len();
    let (ok, _, err) = doors
        .sso
        .server
        .cli(&["--for-org", "netcompany", "cases", "show", &nc[3]], None);
    assert!(ok, "{err}");
    let _ = doors.web.get(&format!("/cases/{}", nc[3]));
    let (ok, out) = sh(Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {}", doors.token),
        ])
        .arg(format!("{}/api/v1/cases/{}", doors.sso.base, nc[3])));
    assert!(ok, "{out}");
    let views: Vec<Value> = doors.audit()[before..].to_vec();
    assert_eq!(views.len(), 3, "{views:?}");
    for v in &views {
        assert_eq!(v["action"], "view");
        assert_eq!(v["detail"], "case viewed");
        assert_eq!(v["target"], nc[3].as_str());
    }
}
