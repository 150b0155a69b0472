//! The analyst interface over real HTTP: isolation between organisations
//! through pages, actions and evidence URLs; evidence served as hostile
//! content; mail text escaped; the admin audit view.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mail::Mail;
use common::web::Sso;
use common::{INTAKE_ON, deliver_from, fixture};
use serde_json::Value;

fn show(sso: &Sso, reference: &str) -> Value {
    let (ok, out, err) = sso
        .server
        .cli(&["cases", "show", reference, "--json"], None);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn evidence(case: &Value) -> Vec<Value> {
    case["evidence"].as_array().unwrap().clone()
}

/// Every visible form control has a `<label for>`: screen readers name
/// each one.
fn assert_labelled(page: &str) {
    let mut controls = 0;
    for tag in ["<input", "<select", "<textarea"] {
        for part in page.split(tag).skip(1) {
            let attrs = &part[..part.find('>').unwrap()];
            if attrs.contains("type=\"hidden\"") {
                continue;
            }
            let id = attrs
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("{tag}{attrs}> has no id"));
            assert!(
                page.contains(&format!("<label for=\"{id}\"")),
                "{tag} #{id} has no label"
            );
            controls += 1;
        }
    }
    assert!(controls > 0);
}

#[tokio::test]
async fn analysts_reach_only_their_organisations_cases_and_evidence() {
    let sso = Sso::start("", INTAKE_ON);
    deliver_from(
        &sso.server,
        "a@researcher.example",
        "security@netcompany.example",
        &fixture("screenshots-netcompany.eml"),
    )
    .await;
    deliver_from(
        &sso.server,
        "s@borger.example",
        "security@magenta.example",
        &fixture("da-magenta-idor.eml"),
    )
    .await;
    // A subject and body written to break out of the page.
    let hostile = Mail::new(
        "x@researcher.example",
        "security@netcompany.example",
        "Responsible disclosure <script>alert(1)</script>",
    )
    .message_id("hostile@researcher.example")
    .text("Description: <img src=x onerror=alert(2)> breaks the page")
    .bytes();
    deliver_from(
        &sso.server,
        "x@researcher.example",
        "security@netcompany.example",
        &hostile,
    )
    .await;
    deliver_from(
        &sso.server,
        "eve@customer.example",
        "security@netcompany.example",
        &fixture("unflagged-netcompany.eml"),
    )
    .await;
    sso.server.wait_filed(4);
    let (_, out, _) = sso.server.cli(&["cases", "list", "--json"], None);
    let all: Vec<Value> = serde_json::from_str(&out).unwrap();
    let nc_refs: Vec<String> = all
        .iter()
        .filter(|c| c["org"] == "netcompany")
        .map(|c| c["reference"].as_str().unwrap().to_owned())
        .collect();
    let nc = nc_refs
        .iter()
        .find(|r| evidence(&show(&sso, r)).len() >= 3)
        .unwrap()
        .clone();
    let by_subject = |needle: &str| {
        all.iter()
            .find(|c| c["subject"].as_str().unwrap().contains(needle))
            .unwrap()["reference"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let hostile_ref = by_subject("<script>");
    let unflagged_ref = all.iter().find(|c| c["kind"] == "unflagged").unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mag = sso.server.case_of("magenta");
    let mag_case = show(&sso, &mag);
    let mag_events = mag_case["timeline"].as_array().unwrap().len();

    let alice = sso.signed_in("alice@nc.example", &["nc-analysts"]);

    // The list holds their organisation's cases only, whatever the filter.
    for path in ["/cases", "/cases?org=magenta", "/cases?state=new"] {
        let page = alice.get(path).text();
        assert!(!page.contains(&mag), "{path} shows {mag}");
    }
    assert!(alice.get("/cases").text().contains(&nc));

    // Another organisation's case answers exactly like a missing one.
    let missing = alice.get("/cases/NC-1999-0001");
    let other = alice.get(&format!("/cases/{mag}"));
    assert_eq!(missing.status, 404);
    assert_eq!(other.status, 404);
    // The same page, naming the reference asked for and nothing more.
    assert_eq!(
        missing.text().replace("NC-1999-0001", "REF"),
        other.text().replace(&mag, "REF")
    );
    assert!(other.text().contains(&format!("no case {mag}")));

    // Its evidence too, by its own URL or under one's own case.
    let mag_object = mag_case["evidence"][0]["object_id"]
        .as_str()
        .map(str::to_owned);
    let nc_case = show(&sso, &nc);
    let nc_evidence = evidence(&nc_case);
    let probe =
        mag_object.unwrap_or_else(|| nc_evidence[0]["object_id"].as_str().unwrap().to_owned());
    assert_eq!(
        alice.get(&format!("/cases/{mag}/evidence/{probe}")).status,
        404
    );
    if let Some(obj) = mag_case["evidence"][0]["object_id"].as_str() {
        assert_eq!(
            alice.get(&format!("/cases/{nc}/evidence/{obj}")).status,
            404
        );
    }
    // Evidence names are 128 random bits, so a guess finds nothing.
    for e in &nc_evidence {
        let id = e["object_id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_eq!(
        alice
            .get(&format!(
                "/cases/{nc}/evidence/00000000000000000000000000000000"
            ))
            .status,
        404
    );
    assert_eq!(alice.get(&format!("/cases/{nc}/evidence/1")).status, 404);
    // Nor another organisation's regulatory drafts.
    assert_eq!(
        alice
            .get(&format!(
                "/cases/{mag}/draft/gdpr-controller/authority-notification"
            ))
            .status,
        404
    );

    // No action reaches it, even with a valid token.
    let csrf = alice.csrf("/cases");
    for (action, fields) in [
        ("notes", vec![("text", "cross-org note")]),
        ("transition", vec![("state", "triaged"), ("reason", "x")]),
        ("reply", vec![("text", "cross-org reply")]),
        ("breach", vec![]),
        ("flag", vec![("flag", "incident")]),
        ("mark", vec![("mark", "high-risk")]),
        (
            "submitted",
            vec![
                ("clock", "gdpr-controller/authority-notification"),
                ("submission", "X-1"),
            ],
        ),
        ("unlock", vec![("password", "guess")]),
    ] {
        let mut f = fields.clone();
        f.push(("csrf", &csrf));
        let r = alice.post(&format!("/cases/{mag}/{action}"), &f);
        assert_eq!(r.status, 404, "{action}: {}", r.text());
    }
    let after = show(&sso, &mag);
    assert_eq!(after["timeline"].as_array().unwrap().len(), mag_events);
    assert_eq!(after["state"], mag_case["state"]);
    assert!(after["breach_notify_by"].is_null());

    // The Magenta analyst sees Magenta, and not Netcompany.
    let mads = sso.signed_in("mads@mag.example", &["mag-analysts"]);
    assert_eq!(mads.get(&format!("/cases/{mag}")).status, 200);
    assert_eq!(mads.get(&format!("/cases/{nc}")).status, 404);
    assert!(!mads.get("/cases").text().contains(&nc));

    // Evidence is served as hostile content.
    let page = alice.get(&format!("/cases/{nc}"));
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let html = page.text();
    for e in &nc_evidence {
        let id = e["object_id"].as_str().unwrap();
        let url = format!("/cases/{nc}/evidence/{id}");
        let d = alice.get(&url);
        assert_eq!(d.status, 200);
        assert_eq!(d.header("content-type"), Some("application/octet-stream"));
        assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
        assert!(
            d.header("content-disposition")
                .unwrap()
                .starts_with("attachment; filename=\"")
        );
        assert!(
            d.header("content-security-policy")
                .unwrap()
                .contains("sandbox")
        );
        assert_eq!(d.body.len() as u64, e["size"].as_u64().unwrap());
        let p = alice.get(&format!("{url}/preview"));
        let sniffed = e["sniffed_type"].as_str();
        if sniffed == Some("image/png") {
            assert_eq!(p.status, 200);
            assert_eq!(p.header("content-type"), Some("image/png"));
            assert!(html.contains(&format!("src=\"{url}/preview\"")));
        } else {
            // The SVG (and anything not verified as a raster image) is never
            // shown inline.
            assert_eq!(p.status, 404, "{:?} previewed", e["name"]);
            assert!(!html.contains(&format!("src=\"{url}/preview\"")));
        }
    }
    assert!(nc_evidence.iter().any(|e| e["name"] == "diagram.svg"));
    assert_eq!(
        nc_evidence
            .iter()
            .filter(|e| e["sniffed_type"] == "image/png")
            .count(),
        2
    );

    // Mail text is escaped, never markup.
    let page = alice.get(&format!("/cases/{hostile_ref}")).text();
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    assert!(!page.contains("<script>") && !page.contains("<img src=x"));

    assert_labelled(&alice.get("/cases").text());
    assert_labelled(&alice.get(&format!("/cases/{nc}")).text());

    // Filters: unflagged, awaiting password, overdue.
    let page = alice.get("/cases?unflagged=1").text();
    assert!(
        page.contains(&unflagged_ref) && !page.contains(&nc),
        "{page}"
    );
    assert!(page.contains("1 case(s)"));
    assert!(alice.get("/cases?awaiting=1").text().contains("0 case(s)"));
    assert!(alice.get("/cases?overdue=1").text().contains("0 case(s)"));
    let page = alice.get("/cases?state=new").text();
    assert!(page.contains(&nc) && page.contains("receipt: ") && page.contains(" left"));

    // Actions on one's own case: a close without a reason is refused and
    // says why; the breach flag starts its 72-hour clock.
    let csrf = alice.csrf(&format!("/cases/{nc}"));
    let r = alice.post(
        &format!("/cases/{nc}/transition"),
        &[("csrf", &csrf), ("state", "closed")],
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("closing needs a reason"), "{}", r.text());
    let r = alice.post(&format!("/cases/{nc}/breach"), &[("csrf", &csrf)]);
    assert_eq!(r.status, 303);
    let page = alice.get(&format!("/cases/{nc}")).text();
    // Netcompany is also a processor: the controller is told first, in
    // 24 hours; the authority's 72 hours are in the clocks table.
    assert!(page.contains("first notification due"), "{page}");
    assert!(
        page.contains("(23 h 59 min left)") || page.contains("(1 d 0 h left)"),
        "{page}"
    );
    assert!(page.contains("GDPR art. 33(1)"), "{page}");
    assert!(!show(&sso, &nc)["breach_notify_by"].is_null());

    // The audit view is for admins only; it shows the chain's verdict and
    // what this test did.
    assert_eq!(alice.get("/audit").status, 404);
    let admin = sso.signed_in("root@dmx.example", &["dmx-admins"]);
    let audit = admin.get("/audit");
    assert_eq!(audit.status, 200);
    let text = audit.text();
    assert!(text.contains("Chain intact"), "{text}");
    assert!(text.contains("evidence-download") && text.contains("alice@nc.example"));
    // An admin without an organisation role reads no cases.
    assert_eq!(admin.get(&format!("/cases/{nc}")).status, 404);
}
