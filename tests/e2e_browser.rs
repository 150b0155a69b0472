//! The analyst's day in real headless Chromium (Debian's chromium and
//! chromedriver): sign in through the dev IdP, open the list, open a case,
//! unlock its archive with the password, change its state, download
//! evidence, sign out. Screenshots of the list and the case view are saved
//! under `target/test-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::webdriver::Driver;
use common::{INTAKE_ON, Opts, Server, deliver_from};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// panel.png from the screenshots fixture, decoded.
fn panel_png() -> Vec<u8> {
    use base64::Engine as _;
    let eml = String::from_utf8(common::fixture("screenshots-netcompany.eml")).unwrap();
    let at = eml.find("filename=\"panel.png\"").unwrap();
    let body = &eml[at..];
    let start = body.find("\r\n\r\n").or_else(|| body.find("\n\n")).unwrap();
    let b64: String = body[start..]
        .trim_start()
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

#[tokio::test]
async fn an_analyst_works_a_case_in_chromium() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        extra: "[web]\nlisten = \"127.0.0.1:0\"\n".into(),
        serve_args: vec!["--dev-idp"],
        ..Opts::default()
    });
    let archive = std::fs::read(format!(
        "{}/fixtures/archives/report-aes-he.7z",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let png = panel_png();
    let mail = common::mail_with_attachments(
        "Responsible disclosure (encrypted report)",
        "The report is in the attached archive; I will phone you the password.",
        &[("report.7z", &archive), ("admin-panel.png", &png)],
    );
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &mail,
    )
    .await;
    server.wait_filed(1);
    let reference = server.case_of("netcompany");
    // Enough other reports for a second page of the list.
    for n in 1..=55 {
        deliver_from(
            &server,
            "other@researcher.example",
            "security@netcompany.example",
            &common::report(
                &format!("Responsible disclosure: filler {n}"),
                "Reflected XSS in the search page.",
            ),
        )
        .await;
    }
    server.wait_filed(56);
    let base = format!("http://{}", common::web::web_addr(&server.data_dir()));

    let downloads = tempfile::tempdir().unwrap();
    let b = Driver::start(downloads.path()).await;

    // Sign in through the dev IdP, which every page labels as such.
    b.goto(&format!("{base}/cases")).await;
    assert!(
        b.url().await.contains("/dev-idp/sso?SAMLRequest="),
        "{}",
        b.url().await
    );
    assert!(
        b.source()
            .await
            .contains("DEVELOPMENT IDENTITY PROVIDER ACTIVE")
    );
    b.submit("button[value=\"analyst@netcompany\"]").await;
    b.submit("#continue").await;
    assert_eq!(b.url().await, format!("{base}/cases"));
    let list = b.source().await;
    assert!(list.contains("Signed in as <strong>analyst@netcompany</strong>"));
    assert!(list.contains("DEVELOPMENT IDENTITY PROVIDER ACTIVE"));
    assert!(list.contains(&reference));
    assert!(list.contains("awaiting-password"));
    assert!(
        b.text(".count")
            .await
            .starts_with("56 case(s); 50 on this page")
    );
    assert!(
        list.contains("receipt: ") && list.contains(" left"),
        "service-level clock"
    );
    b.screenshot(&artifacts().join("case-list.png")).await;

    // Open the case: the screenshot is shown inline, the archive is locked.
    b.submit(&format!("a[href=\"/cases/{reference}\"]")).await;
    assert_eq!(b.text("#case-state").await, "awaiting-password");
    let shot = b.find("img.shot").await;
    let src = shot.attr("src").await.unwrap().unwrap_or_default();
    assert!(
        src.ends_with("/preview"),
        "shown from the preview route: {src}"
    );
    assert!(
        b.source()
            .await
            .contains("encrypted archive, awaiting password")
    );

    // A wrong password changes nothing and says so.
    b.type_into("#password", "hunter2").await;
    b.submit("#unlock").await;
    assert!(b.text("#error").await.contains("wrong password"));
    assert_eq!(b.text("#case-state").await, "awaiting-password");

    // The right one opens it.
    b.type_into("#password", PASSWORD).await;
    b.submit("#unlock").await;
    assert!(b.text("#notice").await.contains("Archive unlocked"));
    assert_eq!(b.text("#case-state").await, "new");
    let page = b.source().await;
    assert!(!page.contains(PASSWORD));
    b.resize(1280, 3000).await;
    b.screenshot(&artifacts().join("case-view.png")).await;
    b.resize(1280, 1000).await;

    // The reporter answers our receipt; the conversation reads in order,
    // the report from inside the archive first, and each mail's headers
    // are one click away.
    let (_, outbox, _) = server.cli(&["outbox", "list", "--json"], None);
    let outbox: Vec<Value> = serde_json::from_str(&outbox).unwrap();
    let token = outbox[0]["message_id"].as_str().unwrap().to_owned();
    let follow_up = common::mail::Mail::new(
        "Reporter <r@researcher.example>",
        "security@netcompany.example",
        &format!("Re: [{reference}] Responsible disclosure"),
    )
    .message_id("browser-follow-up@researcher.example")
    .header("In-Reply-To", &token)
    .text("The password is on its way by phone; the export also leaks <b>archived</b> invoices.")
    .bytes();
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &follow_up,
    )
    .await;
    server.wait_filed(2);
    b.goto(&format!("{base}/cases/{reference}")).await;
    let thread = b.text("#thread").await;
    let at = |needle: &str| {
        thread
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {thread}"))
    };
    assert!(at("Report (found inside the archive)") < at("Covering note (the mail's own text)"));
    assert!(at("Covering note (the mail's own text)") < at("Our receipt"));
    assert!(at("Our receipt") < at("Follow-up from the reporter"));
    assert!(
        thread.contains("leaks <b>archived</b> invoices"),
        "text, not markup"
    );
    b.resize(1280, 3000).await;
    b.screenshot(&artifacts().join("conversation.png")).await;
    b.resize(1280, 1000).await;
    let case: Value =
        serde_json::from_str(&server.cli(&["cases", "show", &reference, "--json"], None).1)
            .unwrap();
    let mail = case["thread"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "follow-up")
        .unwrap()["message"]
        .as_i64()
        .unwrap();
    b.click(&format!(
        "a[href=\"/cases/{reference}/messages/{mail}/headers\"]"
    ))
    .await;
    let headers = b.text("#headers").await;
    assert!(headers.starts_with("Received: from "), "{headers}");
    assert!(
        headers.contains(&format!("In-Reply-To: {token}")),
        "{headers}"
    );
    b.screenshot(&artifacts().join("headers.png")).await;
    b.goto(&format!("{base}/cases/{reference}")).await;

    // Search for a word only the report inside the archive has, then
    // page through the whole list.
    b.goto(&format!("{base}/cases")).await;
    b.type_into("#f-q", "invoices").await;
    b.submit("#filter").await;
    assert!(
        b.text(".count").await.starts_with("1 case(s)"),
        "{}",
        b.source().await
    );
    assert!(b.source().await.contains(&format!(">{reference}<")));
    b.screenshot(&artifacts().join("search.png")).await;
    b.goto(&format!("{base}/cases")).await;
    b.submit("#next-page").await;
    assert_eq!(b.source().await.matches("class=\"case-link\"").count(), 6);
    assert!(b.url().await.contains("after="));
    b.submit("#first-page").await;
    assert_eq!(b.source().await.matches("class=\"case-link\"").count(), 50);
    b.goto(&format!("{base}/cases/{reference}")).await;

    // Change its state, with a reason.
    b.select("#next-state", "triaged").await;
    b.type_into("#reason", "reproduced on staging").await;
    b.submit("#transition").await;
    assert!(b.text("#notice").await.contains("State changed"));
    assert_eq!(b.text("#case-state").await, "triaged");
    assert!(b.text("#timeline").await.contains("reproduced on staging"));

    // Take the case: it is then among "My cases", and nowhere else's.
    assert_eq!(b.text("#case-assignee").await, "nobody");
    b.select("#assignee", "analyst@netcompany").await;
    b.submit("#assign").await;
    assert!(b.text("#notice").await.contains("Assignment changed"));
    assert!(
        b.text("#case-assignee")
            .await
            .contains("(analyst@netcompany)")
    );
    assert!(
        b.text("#timeline")
            .await
            .contains("assigned to analyst@netcompany")
    );
    b.submit("a[href=\"/cases?mine=1\"]").await;
    assert!(b.source().await.contains(&reference), "my cases list it");
    assert!(b.text(".count").await.starts_with("1 case"));

    // A status update from the policy's template, edited, then sent.
    b.goto(&format!("{base}/cases/{reference}")).await;
    b.select("#draft", "investigating").await;
    b.submit("#prepare-draft").await;
    let drafted = b
        .find("#feedback-text")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        drafted.contains("we will keep you informed of our progress"),
        "{drafted}"
    );
    b.type_into("#feedback-text", " Expect a fix within two weeks.")
        .await;
    b.submit("#send-feedback").await;
    assert!(b.text("#notice").await.contains("Status update queued"));
    assert!(
        b.text("#timeline")
            .await
            .contains("Expect a fix within two weeks.")
    );

    // A personal-data breach the organisation knew of 80 hours ago: the
    // authority's 72 hours have passed, and the case says so.
    let aware = jiff::Timestamp::now()
        .checked_sub(jiff::Span::new().hours(80))
        .unwrap()
        .to_string();
    b.select("#flag-kind", "breach").await;
    b.type_into("#flag-aware", &aware).await;
    b.type_into("#flag-reason", "customer records in a public bucket")
        .await;
    b.submit("#flag-submit").await;
    assert!(b.text("#notice").await.contains("Flagged"));
    let clocks = b.text("#clocks").await;
    assert!(
        clocks.contains("gdpr-controller/authority-notification")
            && clocks.contains("GDPR art. 33(1)"),
        "{clocks}"
    );
    assert!(clocks.contains("OVERDUE"), "{clocks}");
    // In the colour of lateness (--bad, #a4000f).
    let colour = b
        .find("#clocks tr.clock-overdue td.overdue")
        .await
        .css_value("color")
        .await
        .unwrap();
    assert!(colour.contains("164, 0, 15"), "{colour}");
    b.screenshot(&artifacts().join("clocks.png")).await;

    // The service levels: the receipts wait for a relay (none here), so
    // nothing is late yet; 56 reports this week.
    b.submit("a[href=\"/dashboard\"]").await;
    assert!(b.text("#regulatory").await.contains("OVERDUE"));
    let dashboard = b.text("#sla-netcompany").await;
    assert!(dashboard.contains("Open cases"), "{dashboard}");
    assert!(
        b.find("#sla-netcompany svg.chart rect")
            .await
            .attr("height")
            .await
            .unwrap()
            .is_some()
    );
    b.resize(1280, 1400).await;
    b.screenshot(&artifacts().join("dashboard.png")).await;
    b.resize(1280, 1000).await;
    b.goto(&format!("{base}/cases/{reference}")).await;

    // Download a file extracted from the archive.
    let case: Value =
        serde_json::from_str(&server.cli(&["cases", "show", &reference, "--json"], None).1)
            .unwrap();
    let extracted = case["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["parent_id"].is_number() && e["name"].as_str().is_some_and(|n| n.ends_with(".txt"))
        })
        .unwrap()
        .clone();
    let name = extracted["name"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let object = extracted["object_id"].as_str().unwrap();
    b.click(&format!("a[href=\"/cases/{reference}/evidence/{object}\"]"))
        .await;
    let start = Instant::now();
    let saved = loop {
        let done: Vec<PathBuf> = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.to_string_lossy().ends_with(".crdownload"))
            .collect();
        // Chromium writes under a temporary name first: wait for ours.
        let stem = name.trim_end_matches(".txt");
        if let Some(p) = done
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().contains(stem))
        {
            break p.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no download named {stem}: {done:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        saved
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(name.trim_end_matches(".txt"))
    );
    assert_eq!(
        std::fs::metadata(&saved).unwrap().len(),
        extracted["size"].as_u64().unwrap()
    );

    // Sign out: the session is gone, not just the page.
    b.submit("#sign-out").await;
    assert!(b.source().await.contains("You are signed out"));
    b.goto(&format!("{base}/cases")).await;
    assert!(
        b.url().await.contains("/dev-idp/sso"),
        "still signed in: {}",
        b.url().await
    );

    // Each step is in the audit trail, from the browser's address.
    let (_, out, _) = server.cli(&["audit", "list", "--json"], None);
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    for action in [
        "sign-in",
        "view",
        "unlock-failed",
        "unlocked",
        "transition",
        "assign",
        "feedback",
        "evidence-download",
        "headers-view",
        "sign-out",
    ] {
        assert!(
            entries.iter().any(|e| e["action"] == action
                && e["actor"] == "analyst@netcompany"
                && e["source"] == "127.0.0.1"),
            "no {action} from the browser: {out}"
        );
    }
    assert!(!out.contains(PASSWORD) && !server.log().contains(PASSWORD));
}

/// An admin unlocks an organisation's passphrase-protected OpenPGP key on
/// the keys page; an analyst reads a report that came encrypted and
/// signed, decrypted, with its signature line. Keys and mail made by
/// `gpg`.
#[tokio::test]
async fn an_encrypted_signed_report_reads_decrypted_in_chromium() {
    use common::gpg::{self, Gpg};
    let gpg = Gpg::new();
    let magenta = gpg.generate("Magenta Security <security@magenta.example>", "");
    let netcompany = gpg.generate(
        "Netcompany Security <security@netcompany.example>",
        PASSWORD,
    );
    let reporter = gpg.generate("Rita Reporter <r@researcher.example>", "");
    let policies = gpg::keyed_policies(
        &gpg,
        &[
            ("magenta", &magenta, ""),
            ("netcompany", &netcompany, PASSWORD),
        ],
    );
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        extra: "[web]\nlisten = \"127.0.0.1:0\"\n".into(),
        serve_args: vec!["--dev-idp"],
        env: vec![(
            "DISCLOSURE_MX_POLICIES_DIR",
            policies.path().to_string_lossy().into_owned(),
        )],
        ..Opts::default()
    });
    let inner = gpg::inner_report(
        None,
        "Description: the <b>billing</b> API returns every customer's card\nImpact: card data",
        Some(&gpg.export_public(&reporter)),
    );
    let armored = gpg.encrypt(&magenta, Some(&reporter), &inner);
    let mail = gpg::pgp_mime(
        "Rita Reporter <r@researcher.example>",
        "security@magenta.example",
        "Encrypted report",
        "browser-pgp@researcher.example",
        &armored,
    );
    deliver_from(
        &server,
        "r@researcher.example",
        "security@magenta.example",
        &mail,
    )
    .await;
    let armored = gpg.encrypt(&netcompany, None, b"Description: waits for the key\n");
    let locked = gpg::pgp_mime(
        "Rita Reporter <r@researcher.example>",
        "security@netcompany.example",
        "Responsible disclosure: locked",
        "browser-locked@researcher.example",
        &armored,
    );
    deliver_from(
        &server,
        "r@researcher.example",
        "security@netcompany.example",
        &locked,
    )
    .await;
    server.wait_filed(2);
    let reference = server.case_of("magenta");
    let waiting = server.case_of("netcompany");
    let base = format!("http://{}", common::web::web_addr(&server.data_dir()));

    let downloads = tempfile::tempdir().unwrap();
    let b = Driver::start(downloads.path()).await;
    b.goto(&format!("{base}/admin/keys")).await;
    b.submit("button[value=\"admin\"]").await;
    b.submit("#continue").await;
    b.goto(&format!("{base}/admin/keys")).await;
    assert_eq!(b.text("#state-magenta").await, "ready");
    assert_eq!(b.text("#state-netcompany").await, "locked");
    b.type_into("#passphrase-netcompany", "not it").await;
    b.submit("#unlock-netcompany").await;
    assert!(b.text("#error").await.contains("does not unlock"));
    b.type_into("#passphrase-netcompany", PASSWORD).await;
    b.submit("#unlock-netcompany").await;
    assert!(b.text("#notice").await.contains("1 report(s) queued"));
    assert_eq!(b.text("#state-netcompany").await, "ready");
    assert!(!b.source().await.contains(PASSWORD));

    b.goto(&format!("{base}/cases/{reference}")).await;
    let line = b.text(".encryption").await;
    assert!(
        line.contains(&format!(
            "OpenPGP (PGP/MIME), decrypted with our key; signed by {reporter}, valid"
        )),
        "{line}"
    );
    let thread = b.text("#thread").await;
    assert!(
        thread.contains("the <b>billing</b> API"),
        "decrypted, shown as text: {thread}"
    );
    b.resize(1280, 2000).await;
    b.screenshot(&artifacts().join("encrypted-case.png")).await;

    let start = Instant::now();
    while server.case_json(&waiting)["state"] != "new" {
        assert!(start.elapsed() < Duration::from_secs(30), "still waiting");
        std::thread::sleep(Duration::from_millis(200));
    }
}
