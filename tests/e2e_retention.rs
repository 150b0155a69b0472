//! Personal data only as long as needed: retention erases the reporter
//! from a case closed for longer than its policy's period (a dry run
//! first), a person's erasure request reaches every case of every
//! organisation, an access request exports what is stored; afterwards a
//! dump of the database files holds the address nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mail::Mail;
use common::web::Sso;
use common::{INTAKE_ON, Server, deliver_from};
use serde_json::Value;

const ALICE: &str = "alice@researcher.example";
const BOB: &str = "bob@elsewhere.example";

fn hits(hay: &[u8], needle: &str) -> usize {
    hay.windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        .count()
}

fn json(server: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = server.cli(args, None);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn report(from: &str, to: &str, subject: &str) -> Vec<u8> {
    Mail::new(&format!("Alice Researcher <{from}>"), to, subject)
        .text(&format!(
            "Description: the login form at https://portal.netcompany.example/login leaks \
             whether an account exists (CWE-204).\n\nContact details: write to {from}.\n\nBest regards,\nAlice Researcher"
        ))
        .bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_then_erasure_leave_no_trace_of_the_address() {
    let sso = Sso::start("", INTAKE_ON);
    let mx = &sso.server;
    let nc = "security@netcompany.example";
    for (from, to, subject) in [
        (ALICE, nc, "Responsible disclosure: account enumeration"),
        (ALICE, nc, "Responsible disclosure: second finding"),
        (ALICE, "security@magenta.example", "Account enumeration"),
        (BOB, nc, "Responsible disclosure: open redirect"),
    ] {
        let mail = if from == BOB {
            Mail::new(&format!("Bob <{BOB}>"), to, subject)
                .text("Description: /go?url= redirects anywhere.")
                .bytes()
        } else {
            report(from, to, subject)
        };
        deliver_from(mx, from, to, &mail).await;
    }
    mx.wait_filed(4);
    let all: Vec<Value> = serde_json::from_value(json(mx, &["cases", "list", "--json"])).unwrap();
    let by_subject = |s: &str| {
        all.iter()
            .find(|c| c["subject"].as_str().unwrap().contains(s))
            .unwrap()["reference"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old = by_subject("account enumeration");
    let second = by_subject("second finding");
    let mag = by_subject("Account enumeration");
    let bobs = by_subject("open redirect");
    assert!(
        hits(&mx.database_bytes(), ALICE) > 0,
        "in clear before: envelope, outbox"
    );

    // The first was closed 800 days ago: past Netcompany's 730.
    let (ok, _, err) = mx.cli(
        &[
            "cases",
            "transition",
            &old,
            "closed",
            "--reason",
            "informative",
        ],
        None,
    );
    assert!(ok, "{err}");
    let mut db = mx.db().await;
    sqlx::query(
        "UPDATE case_events SET at = at - 800 * 86400
         WHERE kind = 'transition' AND case_id = (SELECT id FROM cases WHERE reference = $1)",
    )
    .bind(&old)
    .execute(&mut db)
    .await
    .unwrap();
    drop(db);

    // A dry run lists it and changes nothing.
    let dry = json(mx, &["retention", "run", "--dry-run", "--json"]);
    assert_eq!(dry.as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry[0]["reference"], old.as_str());
    let before = json(mx, &["cases", "show", &old, "--json"]);
    assert_eq!(before["reporter_address"], ALICE);
    assert!(before["erased_at"].is_null());

    let run = json(mx, &["retention", "run", "--json"]);
    assert_eq!(run.as_array().unwrap().len(), 1, "{run}");
    assert!(run[0]["removed"]["raw_messages"].as_u64().unwrap() >= 1);
    let after = json(mx, &["cases", "show", &old, "--json"]);
    for gone in ["reporter_address", "reporter_name", "contact", "channel"] {
        assert!(after[gone].is_null(), "{gone}: {after}");
    }
    assert!(after["erased_at"].is_i64());
    // The technical record stays.
    assert!(
        after["description"]
            .as_str()
            .unwrap()
            .contains("leaks whether an account exists"),
        "{after}"
    );
    assert_eq!(after["cwe_ids"][0], "CWE-204");
    assert_eq!(after["state"], "closed");
    let text = after.to_string();
    assert!(!text.to_lowercase().contains(ALICE), "{text}");
    assert!(!text.contains("Alice Researcher"), "{text}");
    let erased = after["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "erased")
        .unwrap()
        .clone();
    assert!(
        erased["detail"]
            .as_str()
            .unwrap()
            .starts_with("personal data erased (retention: resolved or closed for 730 days): reporter name and address"),
        "{erased}"
    );
    // Found no more by what was erased; still by what was kept.
    let found = |q: &str| -> Vec<String> {
        let rows = json(mx, &["cases", "list", "--search", q, "--json"]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!found("alice").contains(&old));
    assert!(found("alice").contains(&second), "open cases keep theirs");
    assert!(found("enumeration").contains(&old));
    let (ok, _, err) = mx.cli(&["cases", "raw", &old], None);
    assert!(
        !ok && err.contains("were erased with the reporter's personal data"),
        "{err}"
    );
    // Retention again finds nothing more to do.
    assert_eq!(
        json(mx, &["retention", "run", "--json"]),
        Value::Array(vec![])
    );

    // Access (art. 15): what is stored about Alice, in both organisations.
    let export = json(mx, &["reporters", "export", ALICE]);
    let refs: Vec<&str> = export["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(refs.contains(&second.as_str()) && refs.contains(&mag.as_str()));
    assert_eq!(export["cases"][0]["reporter_address"], ALICE);

    // Erasure (art. 17) from the admin's page: confirmed by typing the
    // address twice; refused to anyone else.
    let analyst = sso.signed_in("nils", &["nc-analysts"]);
    assert_eq!(analyst.get("/admin/reporters").status, 404);
    let admin = sso.signed_in("ada", &["dmx-admins"]);
    let csrf = admin.csrf("/admin/reporters");
    let r = admin.post(
        "/admin/reporters/erase",
        &[
            ("csrf", &csrf),
            ("address", ALICE),
            ("confirm", "alice@elsewhere.example"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        json(mx, &["cases", "show", &mag, "--json"])["reporter_address"],
        ALICE
    );
    let r = admin.post(
        "/admin/reporters/erase",
        &[("csrf", &csrf), ("address", ALICE), ("confirm", ALICE)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Erased from 2 case(s)"), "{}", r.text());
    for reference in [&second, &mag] {
        let c = json(mx, &["cases", "show", reference, "--json"]);
        assert!(c["reporter_address"].is_null(), "{c}");
        assert!(!c.to_string().to_lowercase().contains(ALICE));
    }
    assert_eq!(
        json(mx, &["cases", "show", &bobs, "--json"])["reporter_address"],
        BOB,
        "nobody else's"
    );
    let export = json(mx, &["reporters", "export", ALICE]);
    assert_eq!(export["cases"], Value::Array(vec![]));

    // The audit trail names a keyed hash, never the address.
    let audit = json(mx, &["audit", "list", "--json"]);
    let entries = audit.as_array().unwrap();
    let erasures: Vec<&Value> = entries.iter().filter(|e| e["action"] == "erase").collect();
    assert_eq!(erasures.len(), 3, "retention and two on request");
    assert!(
        erasures[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("reporter erasure (GDPR art. 17), address key "),
        "{erasures:?}"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "reporter-export")
            .count(),
        2
    );
    assert!(!audit.to_string().to_lowercase().contains(ALICE));

    // The database holds the address nowhere; Bob's is still there.
    let dump = mx.database_bytes();
    assert_eq!(hits(&dump, ALICE), 0);
    assert!(hits(&dump, BOB) > 0, "the search for it works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_applies_retention_by_itself() {
    let server = Server::start(common::Opts {
        intake: "enabled = true\npoll_interval = 1\nretention_interval = 1",
        ..common::Opts::default()
    });
    deliver_from(
        &server,
        ALICE,
        "security@magenta.example",
        &report(ALICE, "security@magenta.example", "Account enumeration"),
    )
    .await;
    server.wait_filed(1);
    let reference = server.case_of("magenta");
    let (ok, _, err) = server.cli(
        &[
            "cases",
            "transition",
            &reference,
            "closed",
            "--reason",
            "informative",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(json(&server, &["cases", "show", &reference, "--json"])["erased_at"].is_null());
    let mut db = server.db().await;
    sqlx::query("UPDATE case_events SET at = at - 731 * 86400 WHERE kind = 'transition'")
        .execute(&mut db)
        .await
        .unwrap();
    drop(db);
    common::wait_until(
        "the service's retention pass",
        std::time::Duration::from_secs(30),
        || json(&server, &["cases", "show", &reference, "--json"])["erased_at"].is_i64(),
    );
    let c = json(&server, &["cases", "show", &reference, "--json"]);
    assert!(c["reporter_address"].is_null());
    assert!(server.log().contains("retention erased personal data"));
    assert!(
        !server.log().to_lowercase().contains(ALICE),
        "the log names no address"
    );
}

#[test]
fn a_person_is_erased_only_by_an_operator() {
    let server = Server::start(common::Opts::default());
    let (ok, _, err) = server.cli(
        &["--for-org", "netcompany", "reporters", "erase", ALICE],
        None,
    );
    assert!(!ok && err.contains("only an operator"), "{err}");
    let (ok, _, err) = server.cli(&["reporters", "export", "not-an-address"], None);
    assert!(!ok && err.contains("not a mail address"), "{err}");
}
