//! Regulatory clocks through every door: a flag starts every clock of the
//! organisation's regimes (GDPR controller and processor, NIS2, CRA), each
//! from what it runs from, in calendar hours; marks and submissions start
//! and meet later steps; drafts cite their articles and name no reporter;
//! the list, the dashboard and webhooks see the deadlines; another
//! organisation's analyst sees none of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::call;
use common::hooks::Receiver;
use common::web::Sso;
use common::{INTAKE_ON, Server, deliver_from, fixture, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_second()
}

fn clocks_of(server: &Server, reference: &str) -> Vec<Value> {
    let (ok, out, err) = server.cli(&["cases", "show", reference, "--json"], None);
    assert!(ok, "{err}");
    let case: Value = serde_json::from_str(&out).unwrap();
    case["clocks"].as_array().unwrap().clone()
}

fn clock<'a>(clocks: &'a [Value], name: &str) -> &'a Value {
    clocks
        .iter()
        .find(|c| c["clock"] == name)
        .unwrap_or_else(|| panic!("no {name}: {clocks:?}"))
}

fn state_at(due: i64) -> &'static str {
    if due < jiff::Timestamp::now().as_second() {
        "overdue"
    } else {
        "due"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_starts_every_clock_of_the_organisations_regimes() {
    let receiver = Receiver::start(0);
    let hooks = format!(
        "[[webhooks]]\nname = \"pager\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret = \"s3cret\"\n",
        receiver.port
    );
    let sso = Sso::start_with("", INTAKE_ON, &hooks);
    let mx = &sso.server;
    deliver_from(
        mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver_from(
        mx,
        "soeren@borger.example",
        "security@magenta.example",
        &fixture("da-magenta-idor.eml"),
    )
    .await;
    mx.wait_filed(2);
    let nc = mx.case_of("netcompany");
    let mag = mx.case_of("magenta");

    // The CLI: a breach Netcompany knew of since Friday 27 November 10:00
    // in Copenhagen. The authority's 72 hours are calendar hours: Monday
    // 10:00, the weekend not skipped; as a processor it tells the
    // controller within its own target of 24 hours.
    let (ok, out, err) = mx.cli(
        &[
            "cases",
            "flag",
            &nc,
            "breach",
            "--aware-at",
            "2026-11-27T10:00:00+01:00",
            "--reason",
            "customer records in the exported logs",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("GDPR art. 33(1)"), "{out}");
    let clocks = clocks_of(mx, &nc);
    let authority = clock(&clocks, "gdpr-controller/authority-notification");
    assert_eq!(authority["regime"], "gdpr-controller");
    assert_eq!(authority["step"], "authority-notification");
    assert_eq!(authority["article"], "GDPR art. 33(1)");
    let monday = at("2026-11-30T10:00:00+01:00");
    assert_eq!(authority["due"].as_i64(), Some(monday));
    assert_eq!(authority["state"], state_at(monday));
    assert!(
        authority["authority"]
            .as_str()
            .unwrap()
            .starts_with("Datatilsynet"),
        "{authority}"
    );
    assert_eq!(
        authority["runs_from"],
        "awareness of a personal-data breach"
    );
    let controller = clock(&clocks, "gdpr-processor/controller-notification");
    assert_eq!(
        controller["due"].as_i64(),
        Some(at("2026-11-28T10:00:00+01:00"))
    );
    let subjects = clock(&clocks, "gdpr-controller/data-subjects");
    assert_eq!(subjects["state"], "waiting");
    assert!(subjects["due"].is_null());
    // No NIS2 or CRA clock: the case is not flagged as one of theirs.
    assert_eq!(clocks.len(), 3, "{clocks:?}");

    // Moving the awareness time needs a reason, and moves the clocks.
    let (ok, _, err) = mx.cli(
        &[
            "cases",
            "flag",
            &nc,
            "breach",
            "--aware-at",
            "2026-11-27T08:00:00+01:00",
        ],
        None,
    );
    assert!(!ok && err.contains("reason"), "{err}");
    let (ok, _, err) = mx.cli(
        &[
            "cases",
            "flag",
            &nc,
            "breach",
            "--aware-at",
            "2026-11-27T08:00:00+01:00",
            "--reason",
            "the first alert was at 08:00",
        ],
        None,
    );
    assert!(ok, "{err}");
    let clocks = clocks_of(mx, &nc);
    let monday = at("2026-11-30T08:00:00+01:00");
    assert_eq!(
        clock(&clocks, "gdpr-controller/authority-notification")["due"].as_i64(),
        Some(monday)
    );
    let (ok, _, err) = mx.cli(
        &[
            "cases",
            "flag",
            &nc,
            "breach",
            "--aware-at",
            "2099-01-01T00:00:00Z",
        ],
        None,
    );
    assert!(!ok && err.contains("in the future"), "{err}");

    // High risk to people starts the art. 34 notice; a submission meets
    // the authority's clock, with its reference.
    let (ok, _, err) = mx.cli(&["cases", "mark", &nc, "high-risk"], None);
    assert!(ok, "{err}");
    let (ok, out, err) = mx.cli(
        &[
            "cases",
            "submitted",
            &nc,
            "gdpr-controller/authority-notification",
            "--ref",
            "DT-2026-4711",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("met "), "{out}");
    let clocks = clocks_of(mx, &nc);
    let met = clock(&clocks, "gdpr-controller/authority-notification");
    assert_eq!(met["state"], "met");
    assert_eq!(met["reference"], "DT-2026-4711");
    assert_eq!(met["late"], jiff::Timestamp::now().as_second() > monday);
    let subjects = clock(&clocks, "gdpr-controller/data-subjects");
    assert_eq!(subjects["state"], "due");
    let (ok, _, err) = mx.cli(
        &[
            "cases",
            "submitted",
            &nc,
            "gdpr-controller/authority-notification",
            "--ref",
            "again",
        ],
        None,
    );
    assert!(!ok && err.contains("already submitted"), "{err}");

    // Drafts: every item the article asks for, cited; Danish on request;
    // no reporter identity.
    let (ok, draft, err) = mx.cli(
        &[
            "cases",
            "draft",
            &nc,
            "gdpr-controller/authority-notification",
        ],
        None,
    );
    assert!(ok, "{err}");
    for item in [
        "GDPR art. 33(3)(a)",
        "GDPR art. 33(3)(b)",
        "GDPR art. 33(3)(c)",
        "GDPR art. 33(3)(d)",
        "became aware on 2026-11-27 07:00 UTC",
        "security@netcompany.example",
    ] {
        assert!(draft.contains(item), "{item}: {draft}");
    }
    let (ok, da, err) = mx.cli(
        &[
            "cases",
            "draft",
            &nc,
            "gdpr-processor/controller-notification",
            "--lang",
            "da",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let da: Value = serde_json::from_str(&da).unwrap();
    assert_eq!(da["language"], "da");
    assert!(da.to_string().contains("Sandsynlige konsekvenser"), "{da}");
    for d in [&draft, &da.to_string()] {
        assert!(!d.contains("alice@researcher.example"), "{d}");
        assert!(!d.contains("Alice"), "{d}");
    }

    // The API: an incident Netcompany has known of for 70 hours. NIS2's
    // and the CRA's 24-hour early warnings are overdue; their 72-hour
    // notifications come due within 6 hours.
    let (ok, token, err) = mx.cli(&["tokens", "create", "nc-bot", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let token = token.trim();
    let aware = jiff::Timestamp::now().as_second() - 70 * 3600;
    let aware_text = jiff::Timestamp::from_second(aware).unwrap().to_string();
    let (status, clocks) = call(
        &sso.base,
        token,
        "POST",
        &format!("/api/v1/cases/{nc}/flags"),
        Some(&json!({ "flag": "incident", "aware_at": aware_text })),
    );
    assert_eq!(status, 200, "{clocks}");
    let clocks = clocks.as_array().unwrap().clone();
    assert_eq!(clock(&clocks, "nis2/early-warning")["state"], "overdue");
    assert_eq!(
        clock(&clocks, "nis2/incident-notification")["due"].as_i64(),
        Some(aware + 72 * 3600)
    );
    assert_eq!(
        clock(&clocks, "cra-manufacturer/incident-early-warning")["article"],
        "CRA art. 14(4)(a)"
    );
    assert_eq!(clock(&clocks, "nis2/final-report")["state"], "waiting");
    // The notification submitted: the final report is due one month on.
    let submitted_at = "2026-11-29T12:00:00Z";
    let (status, clocks) = call(
        &sso.base,
        token,
        "POST",
        &format!("/api/v1/cases/{nc}/clocks/nis2/incident-notification/submission"),
        Some(&json!({ "reference": "CFCS-2026-88", "at": submitted_at })),
    );
    assert_eq!(status, 200, "{clocks}");
    let clocks = clocks.as_array().unwrap().clone();
    assert_eq!(
        clock(&clocks, "nis2/final-report")["due"].as_i64(),
        Some(at("2026-12-29T12:00:00Z"))
    );
    // The exploited vulnerability: the CRA's final report runs 14 days
    // from the fix.
    let (status, _) = call(
        &sso.base,
        token,
        "POST",
        &format!("/api/v1/cases/{nc}/flags"),
        Some(&json!({ "flag": "exploited" })),
    );
    assert_eq!(status, 200);
    let (status, refused) = call(
        &sso.base,
        token,
        "POST",
        &format!("/api/v1/cases/{nc}/clocks/cra-manufacturer/final-report/submission"),
        Some(&json!({ "reference": "too-early" })),
    );
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("runs from the record that a fix or mitigation is available"),
        "{refused}"
    );
    let (status, clocks) = call(
        &sso.base,
        token,
        "POST",
        &format!("/api/v1/cases/{nc}/marks"),
        Some(&json!({ "mark": "fix-available", "at": "2026-11-28T09:00:00Z" })),
    );
    assert_eq!(status, 200, "{clocks}");
    assert_eq!(
        clock(clocks.as_array().unwrap(), "cra-manufacturer/final-report")["due"].as_i64(),
        Some(at("2026-12-12T09:00:00Z"))
    );
    let (status, d) = call(
        &sso.base,
        token,
        "GET",
        &format!("/api/v1/cases/{nc}/clocks/cra-manufacturer/vulnerability-notification/draft"),
        None,
    );
    assert_eq!(status, 200, "{d}");
    assert!(
        d["text"].as_str().unwrap().contains("CRA art. 14(2)(b)"),
        "{d}"
    );
    assert!(d["text"].as_str().unwrap().contains("CWE-79"), "{d}");

    // The list: filters by clock state, and the earliest deadline.
    let (ok, out, err) = mx.cli(&["cases", "list", "--clock", "overdue", "--json"], None);
    assert!(ok, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["reference"], nc.as_str());
    assert_eq!(rows[0]["clock_overdue"], true);
    let (status, page) = call(&sso.base, token, "GET", "/api/v1/cases?clock=met", None);
    assert_eq!(status, 200);
    assert_eq!(page.as_array().unwrap().len(), 1, "{page}");

    // Isolation: Magenta's token and a CLI narrowed to Magenta see no
    // clock of Netcompany's and start none.
    let (ok, mag_token, err) = mx.cli(&["tokens", "create", "mag-bot", "--org", "magenta"], None);
    assert!(ok, "{err}");
    for (method, path, body) in [
        ("GET", format!("/api/v1/cases/{nc}/clocks"), None),
        (
            "POST",
            format!("/api/v1/cases/{nc}/flags"),
            Some(json!({ "flag": "breach" })),
        ),
        (
            "GET",
            format!("/api/v1/cases/{nc}/clocks/nis2/early-warning/draft"),
            None,
        ),
    ] {
        let (status, _) = call(&sso.base, mag_token.trim(), method, &path, body.as_ref());
        assert_eq!(status, 404, "{method} {path}");
    }
    let (ok, _, err) = mx.cli(
        &["--for-org", "magenta", "cases", "flag", &nc, "incident"],
        None,
    );
    assert!(!ok && err.contains(&format!("no case {nc}")), "{err}");
    // Magenta is under GDPR only: no clock for an exploited vulnerability.
    let (ok, _, err) = mx.cli(&["cases", "flag", &mag, "exploited"], None);
    assert!(
        !ok && err.contains("names no regime with a clock for an actively exploited vulnerability"),
        "{err}"
    );

    // The web: Magenta's analyst flags a breach from the case page, sees
    // its clock; the dashboard lists every running clock of theirs only.
    let analyst = sso.signed_in("mette", &["mag-analysts"]);
    let csrf = analyst.csrf(&format!("/cases/{mag}"));
    let r = analyst.post(
        &format!("/cases/{mag}/flag"),
        &[
            ("csrf", &csrf),
            ("flag", "breach"),
            ("aware_at", ""),
            ("reason", ""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = analyst.get(&format!("/cases/{mag}")).text();
    assert!(
        page.contains("gdpr-controller/authority-notification"),
        "{page}"
    );
    assert!(page.contains("GDPR art. 33(1)"));
    let dashboard = analyst.get("/dashboard").text();
    assert!(dashboard.contains(&mag), "{dashboard}");
    assert!(!dashboard.contains(&nc), "another organisation's clocks");
    let nc_analyst = sso.signed_in("nils", &["nc-analysts"]);
    let dashboard = nc_analyst.get("/dashboard").text();
    assert!(dashboard.contains("OVERDUE"), "{dashboard}");
    let list = nc_analyst.get("/cases?clock=overdue").text();
    assert!(list.contains(&nc) && !list.contains(&mag), "{list}");

    // Webhooks: clocks started, one coming due within 6 hours (NIS2's
    // was submitted in time), one overdue.
    wait_until("regulatory alerts", Duration::from_secs(40), || {
        let events: Vec<String> = receiver
            .hits()
            .iter()
            .map(|h| h["body"].as_str().unwrap().to_owned())
            .collect();
        let has =
            |event: &str, what: &str| events.iter().any(|e| e.contains(event) && e.contains(what));
        has("case.clock_started", "GDPR art. 33(1)")
            && has(
                "case.due_soon",
                "cra-manufacturer/severe-incident-notification",
            )
            && has("case.overdue", "nis2/early-warning")
    });

    // Each change on the timeline and in the audit trail.
    let (ok, out, err) = mx.cli(&["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("breach"), 3, "flag, move, Magenta's: {entries:?}");
    assert_eq!(count("flag"), 2, "incident, exploited");
    assert_eq!(
        count("clock"),
        4,
        "high risk, two submissions, the fix: {entries:?}"
    );
}
