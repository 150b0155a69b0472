//! Intake end to end: report fixtures go in over STARTTLS, are stored, and
//! come out as cases with the expected fields, read through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, deliver_from, fixture};
use serde_json::Value;
use std::time::Duration;

async fn deliver(server: &Server, to: &str, body: &[u8]) {
    deliver_from(server, "sender@example.org", to, body).await;
}

fn cases(server: &Server) -> Vec<Value> {
    let (ok, out, err) = server.cli(&["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn by_subject<'a>(list: &'a [Value], needle: &str) -> &'a Value {
    list.iter()
        .find(|c| c["subject"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no case with subject {needle:?} in {list:#?}"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_become_cases_with_their_fields() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let nc = "security@netcompany.example";
    let mag = "security@magenta.example";
    deliver(&server, nc, &fixture("en-netcompany-xss.eml")).await;
    server.wait_filed(1);
    let first = cases(&server);
    let xss_ref = first[0]["reference"].as_str().unwrap().to_owned();
    assert!(
        xss_ref.starts_with("NC-") && xss_ref.ends_with("-0001"),
        "{xss_ref}"
    );
    for (to, name) in [
        (mag, "da-magenta-idor.eml"),
        (nc, "html-only-netcompany.eml"),
        (nc, "screenshots-netcompany.eml"),
        (nc, "forwarded-netcompany.eml"),
        (mag, "anonymous-magenta.eml"),
        (nc, "unflagged-netcompany.eml"),
        (nc, "out-of-scope-netcompany.eml"),
        (nc, "malformed-netcompany.eml"),
    ] {
        deliver(&server, to, &fixture(name)).await;
    }
    // The reply names the first case, whatever year the test runs in.
    let reply = String::from_utf8(fixture("reply-netcompany.eml"))
        .unwrap()
        .replace("NC-2026-0001", &xss_ref);
    deliver(&server, nc, reply.as_bytes()).await;
    let messages = server.wait_filed(10);
    assert_eq!(messages.len(), 10);

    let list = cases(&server);
    // Ten messages: nine cases (the reply joins the first), or eight if the
    // malformed one was quarantined; never lost either way.
    let malformed = messages
        .iter()
        .find(|m| m["size"].as_u64().unwrap() > 0 && m["state"] == "quarantined");
    assert_eq!(
        list.len(),
        if malformed.is_some() { 8 } else { 9 },
        "{list:#?}"
    );

    // English, flagged, with every section.
    let en = server.case_json(&xss_ref);
    assert_eq!(en["org"], "netcompany");
    assert_eq!(en["kind"], "disclosure");
    assert_eq!(en["state"], "new");
    assert_eq!(en["reporter_name"], "Alice Researcher");
    assert_eq!(en["reporter_address"], "alice@researcher.example");
    assert_eq!(en["anonymous"], false);
    assert_eq!(en["channel"], "teams");
    assert_eq!(en["language"], "en");
    assert!(
        en["description"]
            .as_str()
            .unwrap()
            .starts_with("The comment field on https://support.netcompany.example/tickets")
    );
    assert!(en["steps"].as_str().unwrap().contains("2. Create a ticket"));
    assert!(
        en["impact"]
            .as_str()
            .unwrap()
            .starts_with("account takeover")
    );
    assert!(
        en["mitigation"]
            .as_str()
            .unwrap()
            .starts_with("escape comment output")
    );
    assert!(en["contact"].as_str().unwrap().contains("Microsoft Teams"));
    assert_eq!(strs(&en["cwe_ids"]), vec!["CWE-79"]);
    assert_eq!(
        en["cvss_vector"],
        "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:N"
    );
    assert_eq!(en["cvss_score"], 8.7);
    assert_eq!(en["cvss_severity"], "high");
    assert_eq!(en["tls_version"], "TLSv1.3");
    // The fixture carries the sender's own `Authentication-Results:
    // ... dkim=pass`. At a public MX the sender wrote it: it is never
    // shown (our own results are `e2e_sender_auth`'s; off here).
    assert!(en["authentication_results"].is_null(), "{en}");
    let assets = en["assets"].as_array().unwrap();
    assert!(
        assets
            .iter()
            .any(|a| a["value"] == "https://support.netcompany.example/login"
                && a["in_scope"] == true),
        "{assets:?}"
    );
    assert!(en["acknowledge_by"].as_i64().unwrap() > en["received_at"].as_i64().unwrap());
    assert!(en["feedback_by"].as_i64().unwrap() > en["acknowledge_by"].as_i64().unwrap());
    let timeline = en["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["kind"], "received");
    assert!(
        timeline.iter().any(|e| e["kind"] == "correspondence"),
        "the reply is on the first case's timeline: {timeline:?}"
    );
    // Its text is kept in the conversation. It names the reference and an
    // old-style receipt id, not one of our reply tokens, so it does not
    // speak for the case.
    let conversation = en["conversation"].as_array().unwrap();
    assert_eq!(conversation.len(), 1, "{conversation:?}");
    assert!(
        conversation[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Re: [")
    );
    assert!(
        conversation[0]["text"]
            .as_str()
            .unwrap()
            .contains("the mobile app")
    );
    assert_eq!(conversation[0]["from_reporter"], false);

    // Danish, quoted-printable, RFC 2047 names; Magenta needs no flag.
    let da = by_subject(&list, "Sikkerhedsbrist i borgerportalen");
    let da = server.case_json(da["reference"].as_str().unwrap());
    assert!(da["reference"].as_str().unwrap().starts_with("MAG-"));
    assert_eq!(da["kind"], "disclosure");
    assert_eq!(da["reporter_name"], "Søren Sørensen");
    assert_eq!(da["language"], "da");
    assert_eq!(da["channel"], "phone");
    assert!(
        da["description"]
            .as_str()
            .unwrap()
            .contains("andre borgeres oplysninger")
    );
    assert!(
        da["steps"]
            .as_str()
            .unwrap()
            .contains("skift id=1041 til id=1042")
    );
    assert!(da["impact"].as_str().unwrap().contains("tilgængelige"));
    assert!(da["mitigation"].as_str().unwrap().contains("Kontrollér"));
    let assets = da["assets"].as_array().unwrap();
    assert!(
        assets.iter().any(
            |a| a["value"] == "https://borger.magenta.example/sag?id=1041" && a["in_scope"] == true
        ),
        "{assets:?}"
    );

    // HTML only, flag in an encoded word inside brackets.
    let html = server.case_json(
        by_subject(&list, "open redirect")["reference"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(html["kind"], "disclosure");
    let d = html["description"].as_str().unwrap();
    assert!(d.contains("redirects to any URL"), "{d}");
    assert!(
        !d.contains("<p>") && !d.contains("&amp;"),
        "converted to text: {d}"
    );
    assert!(html["steps"].as_str().unwrap().contains("//evil.example"));
    assert_eq!(strs(&html["cwe_ids"]), vec!["CWE-601"]);

    // Screenshots are typed by content; SVG is never an image.
    let shots = server.case_json(
        by_subject(&list, "exposed admin panel")["reference"]
            .as_str()
            .unwrap(),
    );
    let ev = shots["evidence"].as_array().unwrap();
    assert_eq!(ev.len(), 3, "{ev:?}");
    let kind_of = |name: &str| ev.iter().find(|e| e["name"] == name).unwrap();
    assert_eq!(kind_of("panel.png")["kind"], "screenshot");
    assert_eq!(kind_of("panel.png")["sniffed_type"], "image/png");
    assert_eq!(
        kind_of("second-view.bin")["kind"],
        "screenshot",
        "detected by content, not name"
    );
    assert_eq!(kind_of("diagram.svg")["kind"], "attachment");
    assert!(kind_of("diagram.svg")["sniffed_type"].is_null());
    let assets = shots["assets"].as_array().unwrap();
    assert!(
        assets
            .iter()
            .any(|a| a["value"] == "192.0.2.44" && a["in_scope"] == false),
        "{assets:?}"
    );

    // A forwarded .eml: its text and its screenshot belong to the case.
    let fwd = server.case_json(
        by_subject(&list, "Fwd: Responsible disclosure: SQL injection")["reference"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(fwd["kind"], "disclosure");
    assert_eq!(strs(&fwd["cve_ids"]), vec!["CVE-2026-10001"]);
    let ev = fwd["evidence"].as_array().unwrap();
    assert!(
        ev.iter().any(|e| e["name"] == "sqli.png"
            && e["kind"] == "screenshot"
            && e["forwarded"] == true),
        "{ev:?}"
    );
    assert!(
        fwd["assets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["value"] == "https://shop.netcompany.example/search")
    );

    // Anonymous.
    let anon = server.case_json(
        by_subject(&list, "Data exposure")["reference"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(anon["anonymous"], true);
    assert_eq!(anon["org"], "magenta");

    // Unflagged mail is kept for triage, with a routing suggestion.
    let unflagged = server.case_json(
        by_subject(&list, "Question about my invoice")["reference"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(unflagged["kind"], "unflagged");
    let s = unflagged["suggestions"].as_array().unwrap();
    assert!(
        s.iter()
            .any(|x| x["kind"] == "routing" && x["name"] == "legal"),
        "{s:?}"
    );

    // Out-of-scope suggestions, which decide nothing.
    let oos = server.case_json(
        by_subject(&list, "missing DMARC")["reference"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(oos["state"], "new", "a suggestion never closes a case");
    let names: Vec<&str> = oos["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    for n in [
        "email-authentication",
        "http-response-headers",
        "automated-scan",
        "privacy",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_no_policy_owns_is_quarantined_and_shown_to_ops() {
    let server = Server::start(Opts {
        smtp: "accept_for = [\"@elsewhere.example\"]",
        intake: INTAKE_ON,
        ..Opts::default()
    });
    deliver(
        &server,
        "x@elsewhere.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    let list = server.wait_filed(1);
    assert_eq!(list[0]["state"], "quarantined");
    assert_eq!(list[0]["quarantine_reason"], "no policy owns any recipient");
    assert!(cases(&server).is_empty());
    // Ops can put it back once the cause is fixed; here it comes back again.
    let queue_id = list[0]["queue_id"].as_str().unwrap();
    let (ok, out, err) = server.cli(&["messages", "requeue", queue_id], None);
    assert!(ok && out.contains("pending again"), "{err}");
    let (ok, _, err) = server.cli(&["messages", "requeue", "no-such-id"], None);
    assert!(!ok && err.contains("no quarantined message"), "{err}");
    let list = server.wait_filed(1);
    assert_eq!(list[0]["state"], "quarantined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_resumes_after_a_crash_and_files_each_message_once() {
    let mut server = Server::start(Opts::default());
    for name in [
        "en-netcompany-xss.eml",
        "screenshots-netcompany.eml",
        "unflagged-netcompany.eml",
    ] {
        deliver(&server, "security@netcompany.example", &fixture(name)).await;
    }
    assert!(server.messages().iter().all(|m| m["state"] == "pending"));
    server.kill9();
    // Restart with intake on: everything pending is filed, once.
    let config = std::fs::read_to_string(server.config_path())
        .unwrap()
        .replace("enabled = false", INTAKE_ON);
    std::fs::write(server.config_path(), config).unwrap();
    server.restart();
    server.wait_filed(3);
    assert_eq!(cases(&server).len(), 3);
    server.kill9();
    server.restart();
    // A fourth message after the restart: once intake has filed it, it has
    // passed over the first three, so a second filing would show now.
    deliver(
        &server,
        "security@netcompany.example",
        &common::report(
            "Responsible disclosure: after the restart",
            "A fourth report.",
        ),
    )
    .await;
    server.wait_filed(4);
    let list = cases(&server);
    assert_eq!(list.len(), 4, "nothing filed twice after another restart");
    let refs: Vec<&str> = list
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .collect();
    assert!(refs.iter().all(|r| r.starts_with("NC-")));
    assert_eq!(
        refs.iter().collect::<std::collections::HashSet<_>>().len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_through_the_cli() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    deliver(
        &server,
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    deliver(
        &server,
        "security@netcompany.example",
        &fixture("html-only-netcompany.eml"),
    )
    .await;
    server.wait_filed(2);
    let list = cases(&server);
    let (a, b) = (
        list[0]["reference"].as_str().unwrap(),
        list[1]["reference"].as_str().unwrap(),
    );

    let step = |args: &[&str]| server.cli(args, None);
    let (ok, _, err) = step(&["cases", "transition", a, "resolved"]);
    assert!(
        !ok && err.contains("a new case cannot become resolved"),
        "{err}"
    );
    assert!(
        step(&[
            "cases",
            "transition",
            a,
            "acknowledged",
            "--actor",
            "analyst1"
        ])
        .0
    );
    let before = server.case_json(a)["feedback_by"].as_i64().unwrap();
    assert!(step(&["cases", "transition", a, "needs-information"]).0);
    assert_eq!(server.case_json(a)["feedback_paused"], true);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(step(&["cases", "transition", a, "in-progress"]).0);
    let after = server.case_json(a)["feedback_by"].as_i64().unwrap();
    assert!(
        after >= before + 2,
        "the paused time is added back: {before} -> {after}"
    );

    let (ok, _, err) = step(&["cases", "transition", b, "closed"]);
    assert!(!ok && err.contains("closing needs a reason"), "{err}");
    let (ok, _, err) = step(&[
        "cases",
        "transition",
        b,
        "closed",
        "--reason",
        "duplicate:NC-1999-0042",
    ]);
    assert!(!ok && err.contains("no such case"), "{err}");
    let reason = format!("duplicate:{a}");
    assert!(step(&["cases", "transition", b, "closed", "--reason", &reason]).0);
    let closed = server.case_json(b);
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["close_reason"], reason.as_str());

    let (ok, out, err) = server.cli(
        &["cases", "note", a, "--actor", "analyst1"],
        Some("Reproduced on staging.\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("note added"));
    let timeline = server.case_json(a)["timeline"].as_array().unwrap().clone();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["received", "transition", "transition", "transition", "note"]
    );
    assert_eq!(timeline[1]["actor"], "analyst1");
    assert_eq!(timeline[4]["detail"], "Reproduced on staging.");

    let (ok, out, _) = step(&["cases", "list", "--state", "closed", "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 1);
    let (ok, out, _) = step(&["cases", "export", "--format", "csv"]);
    assert!(ok);
    assert!(out.starts_with("reference,org,kind,state,"));
    assert_eq!(out.lines().count(), 3);
    assert!(
        out.contains("\"[Responsible Disclosure] open redirect\""),
        "{out}"
    );
    let (ok, out, _) = step(&["cases", "export"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 2);
    let (ok, out, _) = step(&["cases", "show", a]);
    assert!(ok);
    assert!(
        out.contains("acknowledge by:")
            && out.contains("feedback by:")
            && out.contains("timeline:"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_keeps_refusing_is_quarantined_not_retried_forever() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    // A real database refusal for one kind of case: unflagged ones.
    let mut db = server.db().await;
    let trigger: &[&str] = if server.is_postgres() {
        &[
            "CREATE FUNCTION refuse_unflagged() RETURNS trigger AS $$ BEGIN
               IF NEW.kind = 'unflagged' THEN RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_unflagged BEFORE INSERT ON cases FOR EACH ROW EXECUTE FUNCTION refuse_unflagged()",
        ]
    } else {
        &[
            "CREATE TRIGGER refuse_unflagged BEFORE INSERT ON cases WHEN NEW.kind = 'unflagged'
           BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
        ]
    };
    for sql in trigger {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut db)
            .await
            .unwrap();
    }
    deliver(
        &server,
        "security@netcompany.example",
        &fixture("unflagged-netcompany.eml"),
    )
    .await;
    deliver(
        &server,
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    let list = server.wait_filed(2);
    assert_eq!(list[0]["state"], "quarantined");
    let reason = list[0]["quarantine_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("filing failed") && reason.contains("refused by test"),
        "{reason}"
    );
    assert_eq!(list[1]["state"], "filed", "the queue moved on");
    // The quarantined report is not lost: an `unparsed` case holds it.
    let all = cases(&server);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|c| c["kind"] == "unparsed"), "{all:?}");
}
