//! Reading what arrived: a case's whole conversation in order (the report,
//! our receipt, the reporter's follow-up, an internal note) through the
//! CLI, the API and the web page; each stored mail's headers and the
//! original as an audited download; and the report inside an encrypted
//! archive (made here by the real 7z) becoming the case's report, with
//! each field's source kept and an analyst's correction never overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mail::{Mail, Part};
use common::web::Sso;
use common::{INTAKE_ON, Opts, Server, deliver_from, fixture, sh};
use mail_parser::MessageParser;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn kinds(case: &Value) -> Vec<String> {
    case["thread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn api_get(base: &str, token: &str, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("h"), dir.path().join("b"));
    let (ok, status) = sh(Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{base}{path}")));
    assert!(ok, "{status}");
    let headers = std::fs::read_to_string(&head)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    (
        status.trim().parse().unwrap(),
        headers,
        std::fs::read(&body).unwrap(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_conversation_reads_in_order_with_each_mails_headers_and_original() {
    let sink = Server::start(Opts {
        smtp: "accept_for = [\"@researcher.example\"]",
        ..Opts::default()
    });
    let outbound = sink.as_relay();
    let sso = Sso::start_with("", INTAKE_ON, &outbound);
    let mx = &sso.server;
    deliver_from(
        mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &fixture("en-netcompany-xss.eml"),
    )
    .await;
    let start = Instant::now();
    while sink.raw_messages().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "no receipt");
        std::thread::sleep(Duration::from_millis(100));
    }
    let receipt = sink.raw_messages().await.remove(0);
    let token = MessageParser::default()
        .parse(&receipt)
        .unwrap()
        .message_id()
        .unwrap()
        .to_owned();
    let reference = mx.case_of("netcompany");
    let follow_up = Mail::new(
        "Alice Researcher <alice@researcher.example>",
        "security@netcompany.example",
        &format!("Re: [{reference}] Responsible disclosure"),
    )
    .message_id("conversation-2@researcher.example")
    .header("In-Reply-To", &format!("<{token}>"))
    .part(Part::Text(
        "The payload also works as <img src=x onerror=alert(2)> in the title.".into(),
    ))
    .part(Part::TextAttachment {
        name: "poc.html".into(),
        content_type: "text/html".into(),
        text: "<script>alert(1)</script>".into(),
    })
    .bytes();
    deliver_from(
        mx,
        "alice@researcher.example",
        "security@netcompany.example",
        &follow_up,
    )
    .await;
    mx.wait_filed(2);
    let (ok, _, err) = mx.cli(
        &["cases", "note", &reference, "--actor", "bob"],
        Some("Reproduced on staging; do not tell the reporter yet."),
    );
    assert!(ok, "{err}");

    // ------------------------------------------------------------ CLI JSON
    let case = mx.case_json(&reference);
    assert_eq!(
        kinds(&case),
        ["report", "receipt", "follow-up", "note"],
        "{:#}",
        case["thread"]
    );
    let thread = case["thread"].as_array().unwrap();
    let (report, ours, answer, note) = (&thread[0], &thread[1], &thread[2], &thread[3]);
    assert!(
        report["text"]
            .as_str()
            .unwrap()
            .contains("renders HTML without escaping"),
        "the report's whole text: {report:#}"
    );
    assert_eq!(report["from"], "alice@researcher.example");
    assert_eq!(report["tls_version"], "TLSv1.3");
    assert_eq!(report["internal"], false);
    assert_eq!(ours["from"], "us");
    assert_eq!(ours["to"], "alice@researcher.example");
    assert!(ours["text"].as_str().unwrap().contains(&reference));
    assert!(matches!(
        ours["delivery"].as_str(),
        Some("sent" | "pending")
    ));
    assert_eq!(answer["from_reporter"], true);
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("<img src=x onerror=alert(2)>")
    );
    let poc = answer["attachments"].as_array().unwrap();
    assert_eq!(poc.len(), 1);
    assert!(
        case["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == poc[0] && e["name"] == "poc.html")
    );
    assert_eq!(note["internal"], true);
    assert_eq!(note["from"], "bob");
    // The follow-ups list of earlier versions is unchanged.
    assert_eq!(case["conversation"].as_array().unwrap().len(), 1);

    // ------------------------------------------------------------ CLI text
    let (ok, text, err) = mx.cli(&["cases", "show", &reference], None);
    assert!(ok, "{err}");
    let conversation = text.split("\nconversation:\n").nth(1).unwrap();
    let at = |needle: &str| {
        conversation
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {conversation}"))
    };
    assert!(at("  report  from alice@researcher.example") < at("  receipt  from us"));
    assert!(at("  receipt  from us") < at("follow-up [from the reporter]"));
    assert!(at("follow-up [from the reporter]") < at("note [INTERNAL, never sent]  from bob"));

    // ------------------------------------------------ headers and original
    let report_mail = report["message"].as_i64().unwrap();
    let answer_mail = answer["message"].as_i64().unwrap();
    assert_ne!(report_mail, answer_mail);
    let (ok, headers, err) = mx.cli(
        &["cases", "headers", &reference, &answer_mail.to_string()],
        None,
    );
    assert!(ok, "{err}");
    assert!(headers.starts_with("Received: from "), "{headers}");
    assert!(headers.contains(&format!("In-Reply-To: <{token}>")));
    assert!(!headers.contains("also works"), "headers only: {headers}");
    let (ok, raw, err) = mx.cli(
        &[
            "cases",
            "raw",
            &reference,
            "--message",
            &answer_mail.to_string(),
        ],
        None,
    );
    assert!(ok, "{err}");
    let (_, sent) = String::from_utf8_lossy(&follow_up)
        .split_once("\r\n")
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    assert!(raw.starts_with("Received: from "));
    assert!(
        raw.replace("\r\n", "\n")
            .ends_with(&sent.replace("\r\n", "\n")),
        "the original, byte for byte after our Received: line"
    );
    let (ok, _, err) = mx.cli(&["cases", "headers", &reference, "999999"], None);
    assert!(
        !ok && err.contains(&format!("case {reference} has no such message")),
        "{err}"
    );

    // ------------------------------------------------------------ the API
    let (ok, token_line, err) =
        mx.cli(&["tokens", "create", "reader", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let api_token = token_line.trim();
    let (status, _, body) = api_get(&sso.base, api_token, &format!("/api/v1/cases/{reference}"));
    assert_eq!(status, 200);
    let via_api: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(kinds(&via_api), kinds(&case));
    let (status, _, body) = api_get(
        &sso.base,
        api_token,
        &format!("/api/v1/cases/{reference}/messages/{report_mail}/headers"),
    );
    assert_eq!(status, 200);
    let h: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        h["headers"]
            .as_str()
            .unwrap()
            .contains("Message-ID: <en-xss-1@researcher.example>")
    );
    assert_eq!(h["truncated"], false);
    let (status, headers, body) = api_get(
        &sso.base,
        api_token,
        &format!("/api/v1/cases/{reference}/messages/{report_mail}/raw"),
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-disposition"),
        Some(format!("attachment; filename=\"{reference}-message-{report_mail}.eml\"").as_str())
    );
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert!(String::from_utf8_lossy(&body).contains("renders HTML without escaping"));
    // A mail of another case is no mail of this one.
    deliver_from(
        mx,
        "eve@researcher.example",
        "security@netcompany.example",
        &common::report("Responsible disclosure: other", "Another report."),
    )
    .await;
    mx.wait_filed(3);
    let (ok, list, err) = mx.cli(&["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    let list: Vec<Value> = serde_json::from_str(&list).unwrap();
    let other_case = list
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .find(|r| *r != reference)
        .unwrap();
    let other = mx.case_json(other_case)["thread"][0]["message"]
        .as_i64()
        .unwrap();
    let (status, _, body) = api_get(
        &sso.base,
        api_token,
        &format!("/api/v1/cases/{reference}/messages/{other}/raw"),
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));

    // ------------------------------------------------------------ the web
    let web = sso.signed_in("alice@nc.example", &["nc-analysts"]);
    let page = web.get(&format!("/cases/{reference}")).text();
    let conversation = page.split("id=\"thread\"").nth(1).unwrap();
    let order: Vec<usize> = [
        "entry-report",
        "entry-receipt",
        "entry-follow-up",
        "entry-note internal",
    ]
    .iter()
    .map(|c| {
        conversation
            .find(c)
            .unwrap_or_else(|| panic!("{c} in {conversation}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(
        conversation.contains("&#60;img src=x onerror=alert(2)&#62;"),
        "escaped, never rendered: {conversation}"
    );
    assert!(!conversation.contains("<img src=x"));
    assert!(conversation.contains("TLS: TLSv1.3"));
    assert!(conversation.contains("Internal note (never sent)"));
    let headers_page = web.get(&format!(
        "/cases/{reference}/messages/{answer_mail}/headers"
    ));
    assert_eq!(headers_page.status, 200);
    assert!(
        headers_page
            .text()
            .contains(&format!("In-Reply-To: &#60;{token}&#62;"))
    );
    let original = web.get(&format!("/cases/{reference}/messages/{answer_mail}/raw"));
    assert_eq!(original.status, 200);
    assert_eq!(
        original.header("content-disposition"),
        Some(format!("attachment; filename=\"{reference}-message-{answer_mail}.eml\"").as_str())
    );
    assert_eq!(original.header("x-content-type-options"), Some("nosniff"));
    assert!(
        original
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );
    // Another organisation's analyst sees neither.
    let outsider = sso.signed_in("mads@magenta.example", &["mag-analysts"]);
    assert_eq!(
        outsider
            .get(&format!("/cases/{reference}/messages/{answer_mail}/raw"))
            .status,
        404
    );
    assert_eq!(
        outsider
            .get(&format!(
                "/cases/{reference}/messages/{answer_mail}/headers"
            ))
            .status,
        404
    );

    // Every read of an original or its headers is in the audit trail.
    let (ok, audit, err) = mx.cli(&["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    let audit: Vec<Value> = serde_json::from_str(&audit).unwrap();
    let count = |action: &str| {
        audit
            .iter()
            .filter(|e| e["action"] == action && e["target"] == reference.as_str())
            .count()
    };
    assert_eq!(count("raw-download"), 3, "CLI, API, web");
    assert_eq!(count("headers-view"), 3, "CLI, API, web");
    // The mail's text is sealed at rest like the rest of the case.
    if !mx.is_postgres() {
        let file = std::fs::read(mx.data_dir().join("disclosure-mx.db")).unwrap();
        let needle = b"also works as";
        assert!(!file.windows(needle.len()).any(|w| w == needle));
    }
}

const PASSWORD: &str = "correct horse battery staple";

/// A 7z archive made by the real 7z, holding `report.txt`.
fn seven_zip(report: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.txt"), report).unwrap();
    let (ok, out) = sh(Command::new("7z").current_dir(dir.path()).args([
        "a",
        "-t7z",
        "-mhe=on",
        &format!("-p{PASSWORD}"),
        "-bd",
        "report.7z",
        "report.txt",
    ]));
    assert!(ok, "{out}");
    std::fs::read(dir.path().join("report.7z")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_inside_an_archive_becomes_the_report_and_an_analysts_field_stays() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let archive = seven_zip(
        "Description: the archive endpoint of https://files.netcompany.example/vault \
         leaks quasiperiodic tokens.\n\nSteps to reproduce:\n1. GET /vault?all=1\n\n\
         Impact: every stored token (CWE-200).\n\nMitigation: check the owner on every request.\n",
    );
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &common::mail_with_attachments(
            "Responsible disclosure (report in the archive)",
            "Please find my report attached; I will phone you the password.",
            &[("report.7z", &archive)],
        ),
    )
    .await;
    server.wait_filed(1);
    let reference = server.case_of("netcompany");
    let before = server.case_json(&reference);
    assert_eq!(before["state"], "awaiting-password");
    assert_eq!(before["field_sources"]["description"], "mail");
    // The receipt waits for a relay (none here).
    assert_eq!(kinds(&before), ["report", "receipt"]);

    let search = |word: &str| -> usize {
        let (ok, out, err) = server.cli(&["cases", "list", "--search", word, "--json"], None);
        assert!(ok, "{err}");
        serde_json::from_str::<Vec<Value>>(&out).unwrap().len()
    };
    assert_eq!(search("quasiperiodic"), 0, "locked away");
    assert_eq!(search("phone"), 1, "the covering note");

    // An analyst writes the mitigation before the archive is opened.
    let (ok, out, err) = server.cli(
        &["cases", "edit", &reference, "mitigation", "--actor", "bob"],
        Some("Rotate every token first."),
    );
    assert!(ok, "{err}");
    assert!(out.contains("mitigation written"), "{out}");
    let (ok, _, err) = server.cli(&["cases", "edit", &reference, "severity"], Some("x"));
    assert!(!ok && err.contains("unknown field \"severity\""), "{err}");

    let (ok, out, err) = server.cli(
        &["unlock", &reference, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("the report inside is now the case's report"),
        "{out}"
    );
    let case = server.case_json(&reference);
    assert!(
        case["description"]
            .as_str()
            .unwrap()
            .contains("quasiperiodic tokens"),
        "re-extracted from the report inside: {case:#}"
    );
    assert!(case["steps"].as_str().unwrap().contains("/vault?all=1"));
    assert!(
        case["impact"]
            .as_str()
            .unwrap()
            .contains("every stored token")
    );
    assert_eq!(
        case["mitigation"], "Rotate every token first.",
        "the analyst's stays"
    );
    assert_eq!(
        search("quasiperiodic"),
        1,
        "a word only the archive's report has"
    );
    assert_eq!(case["field_sources"]["description"], "archive");
    assert_eq!(case["field_sources"]["impact"], "archive");
    assert_eq!(case["field_sources"]["mitigation"], "analyst");
    assert_eq!(case["cwe_ids"], serde_json::json!(["CWE-200"]));
    // The report first, shown whole; the covering note kept as a message
    // of its own.
    assert_eq!(kinds(&case), ["report", "covering-note", "receipt"]);
    let thread = case["thread"].as_array().unwrap();
    assert_eq!(thread[0]["from_archive"], true);
    assert!(
        thread[0]["text"]
            .as_str()
            .unwrap()
            .contains("Mitigation: check the owner")
    );
    assert!(
        thread[1]["text"]
            .as_str()
            .unwrap()
            .contains("phone you the password")
    );
    assert_eq!(
        thread[0]["message"], thread[1]["message"],
        "both came in the one mail"
    );
    let (_, text, _) = server.cli(&["cases", "show", &reference], None);
    assert!(
        text.contains("description: (from the report inside the archive)"),
        "{text}"
    );
    assert!(
        text.contains("mitigation: (written by an analyst)"),
        "{text}"
    );
    assert!(text.contains("report (found inside the archive)"), "{text}");
    // Clearing gives the field back to extraction; the timeline has both.
    let (ok, _, err) = server.cli(
        &["cases", "edit", &reference, "mitigation", "--clear"],
        None,
    );
    assert!(ok, "{err}");
    let after = server.case_json(&reference);
    assert!(after["mitigation"].is_null());
    assert!(after["field_sources"]["mitigation"].is_null());
    let edits: Vec<&str> = after["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "edit")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        edits,
        [
            "mitigation written by an analyst",
            "mitigation cleared by an analyst"
        ]
    );
    if !server.is_postgres() {
        let file = std::fs::read(server.data_dir().join("disclosure-mx.db")).unwrap();
        for needle in [&b"quasiperiodic"[..], b"Rotate every token"] {
            assert!(
                !file.windows(needle.len()).any(|w| w == needle),
                "sealed at rest"
            );
        }
    }
}
