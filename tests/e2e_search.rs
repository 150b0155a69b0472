//! Finding any case: keyset pages of 50 through the CLI, the API (with a
//! `Link: rel="next"` header) and the web list; search through the blind
//! index by words, CVE ids and hosts; the filters; and isolation — an
//! analyst of one organisation searching for a word only another's cases
//! hold gets nothing, and every total counts only their own cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::web::Sso;
use common::{INTAKE_ON, deliver_from, report, sh};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const NC: usize = 57;

/// GET through the API: status, headers (lower-case names), JSON body.
fn api(base: &str, token: &str, path: &str) -> (u16, Vec<(String, String)>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("h"), dir.path().join("b"));
    let (ok, status) = sh(Command::new("curl")
        .args(["-sS", "-g", "-o"])
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
    let body = std::fs::read(&body).unwrap();
    (
        status.trim().parse().unwrap(),
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn references(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["reference"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_search_and_filters_see_only_ones_own_organisation() {
    let sso = Sso::start("", INTAKE_ON);
    let mx = &sso.server;
    for n in 1..=NC {
        let extra = if n == 7 {
            " It is tracked as CVE-2026-4242 on intranet.netcompany.example."
        } else {
            ""
        };
        deliver_from(
            mx,
            "r@researcher.example",
            "security@netcompany.example",
            &report(
                &format!("Responsible disclosure: finding {n}"),
                &format!("Stored XSS in the search page, marker{n}.{extra}"),
            ),
        )
        .await;
    }
    for n in 1..=3 {
        deliver_from(
            mx,
            "s@borger.example",
            "security@magenta.example",
            &report(
                &format!("Responsible disclosure: magenta {n}"),
                "The zebrafinch endpoint leaks stored XSS payloads.",
            ),
        )
        .await;
    }
    mx.wait_filed(NC + 3);
    let token = |org: &str| {
        let (ok, t, err) = mx.cli(
            &["tokens", "create", &format!("{org}-bot"), "--org", org],
            None,
        );
        assert!(ok, "{err}");
        t.trim().to_owned()
    };
    let (nc, mag) = (token("netcompany"), token("magenta"));

    // ------------------------------------------------------------ the API
    let (status, headers, first) = api(&sso.base, &nc, "/api/v1/cases");
    assert_eq!(status, 200);
    assert_eq!(first.as_array().unwrap().len(), 50, "a page is 50 cases");
    assert_eq!(header(&headers, "x-total-count").as_deref(), Some("57"));
    let link = header(&headers, "link").expect("a next page");
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .unwrap()
        .0
        .to_owned();
    assert!(next.starts_with("/api/v1/cases?after="), "{next}");
    let (status, headers, second) = api(&sso.base, &nc, &next);
    assert_eq!(status, 200);
    assert_eq!(second.as_array().unwrap().len(), NC - 50);
    assert_eq!(header(&headers, "link"), None, "the last page");
    let api_all: Vec<String> = [references(&first), references(&second)].concat();
    assert_eq!(
        api_all.iter().collect::<BTreeSet<_>>().len(),
        NC,
        "no case twice"
    );
    assert!(api_all.iter().all(|r| r.starts_with("NC-")));
    // Oldest first, the order the cursor follows.
    let expected: Vec<String> = (1..=NC).map(|n| format!("NC-2026-{n:04}")).collect();
    let mut sorted = api_all.clone();
    sorted.sort_by_key(|r| r.clone());
    assert_eq!(sorted, expected);
    // A filter carries over to the next page.
    let (_, headers, page) = api(&sso.base, &nc, "/api/v1/cases?state=new&limit=20");
    assert_eq!(page.as_array().unwrap().len(), 20);
    assert!(
        header(&headers, "link")
            .unwrap()
            .contains("state=new&limit=20&after=")
    );

    // Search: a word, an id, a host, two words at once.
    let found = |token: &str, q: &str| {
        let (status, headers, list) = api(&sso.base, token, &format!("/api/v1/cases?q={q}"));
        assert_eq!(status, 200, "{list}");
        (
            references(&list),
            header(&headers, "x-total-count").unwrap(),
        )
    };
    assert_eq!(
        found(&nc, "marker7"),
        (vec!["NC-2026-0007".to_owned()], "1".into())
    );
    assert_eq!(found(&nc, "CVE-2026-4242").0, ["NC-2026-0007"]);
    assert_eq!(found(&nc, "intranet").0, ["NC-2026-0007"]);
    assert_eq!(found(&nc, "MARKER12%20xss").0, ["NC-2026-0012"]);
    assert_eq!(found(&nc, "marker12%20zebrafinch").0, Vec::<String>::new());
    // Isolation: the word only Magenta's cases hold.
    assert_eq!(found(&nc, "zebrafinch"), (Vec::new(), "0".into()));
    assert_eq!(found(&mag, "zebrafinch").0.len(), 3);
    assert_eq!(found(&mag, "marker7"), (Vec::new(), "0".into()));
    // An organisation outside the token's: nothing, not an error.
    let (status, headers, list) = api(&sso.base, &nc, "/api/v1/cases?org=magenta&q=xss");
    assert_eq!((status, references(&list)), (200, Vec::<String>::new()));
    assert_eq!(header(&headers, "x-total-count").as_deref(), Some("0"));
    // Totals count one's own cases only.
    let (_, headers, _) = api(&sso.base, &mag, "/api/v1/cases?q=xss");
    assert_eq!(header(&headers, "x-total-count").as_deref(), Some("3"));
    let (_, headers, _) = api(&sso.base, &nc, "/api/v1/cases?q=xss");
    assert_eq!(header(&headers, "x-total-count").as_deref(), Some("57"));
    // Refusals, with the reason.
    let (status, _, body) = api(&sso.base, &nc, "/api/v1/cases?after=bogus");
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("the cursor \"bogus\" is not one this list gave"))
    );
    let (status, _, body) = api(&sso.base, &nc, "/api/v1/cases?q=%21%21");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("has no word to search for")
    );

    // ------------------------------------------------------------ the CLI
    let (ok, out, err) = mx.cli(
        &[
            "--for-org",
            "netcompany",
            "cases",
            "list",
            "--limit",
            "50",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let page1: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        references(&page1),
        references(&first),
        "the same page as the API"
    );
    let cursor = err
        .lines()
        .find_map(|l| l.strip_prefix("next page: --after "))
        .unwrap()
        .to_owned();
    assert_eq!(
        page1[49]["cursor"],
        cursor.as_str(),
        "each row carries its cursor"
    );
    let (ok, out, err) = mx.cli(
        &[
            "--for-org",
            "netcompany",
            "cases",
            "list",
            "--after",
            &cursor,
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        references(&serde_json::from_str(&out).unwrap()),
        references(&second)
    );
    assert!(!err.contains("next page"));
    // Without paging options the whole list, as scripts expect.
    let (_, out, _) = mx.cli(&["cases", "list", "--json"], None);
    assert_eq!(
        references(&serde_json::from_str(&out).unwrap()).len(),
        NC + 3
    );
    let (ok, out, err) = mx.cli(
        &[
            "--for-org",
            "netcompany",
            "cases",
            "list",
            "--search",
            "zebrafinch",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("0 of 0 case(s)"), "{out}");
    let (_, out, _) = mx.cli(&["cases", "list", "--search", "zebrafinch", "--json"], None);
    assert_eq!(
        references(&serde_json::from_str(&out).unwrap()).len(),
        3,
        "the operator sees all"
    );

    // Filters: breach, received between.
    let (ok, _, err) = mx.cli(&["cases", "breach", "NC-2026-0003"], None);
    assert!(ok, "{err}");
    let (_, out, _) = mx.cli(&["cases", "list", "--breach", "--json"], None);
    assert_eq!(
        references(&serde_json::from_str(&out).unwrap()),
        ["NC-2026-0003"]
    );
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let tomorrow = today.tomorrow().unwrap().to_string();
    let today = today.to_string();
    let (_, out, _) = mx.cli(
        &[
            "cases", "list", "--since", &today, "--before", &tomorrow, "--json",
        ],
        None,
    );
    assert_eq!(
        references(&serde_json::from_str(&out).unwrap()).len(),
        NC + 3
    );
    let (_, out, _) = mx.cli(&["cases", "list", "--before", &today, "--json"], None);
    assert!(references(&serde_json::from_str(&out).unwrap()).is_empty());
    let (ok, _, err) = mx.cli(&["cases", "list", "--since", "30/11/2026"], None);
    assert!(
        !ok && err
            .contains("\"30/11/2026\" is neither a date (YYYY-MM-DD, UTC) nor a time (RFC 3339)"),
        "{err}"
    );
    let (_, headers, list) = api(
        &sso.base,
        &nc,
        &format!("/api/v1/cases?breach=true&received_since={today}"),
    );
    assert_eq!(references(&list), ["NC-2026-0003"]);
    assert_eq!(header(&headers, "x-total-count").as_deref(), Some("1"));

    // ------------------------------------------------------------ the web
    let web = sso.signed_in("alice@nc.example", &["nc-analysts"]);
    let page = web.get("/cases").text();
    assert!(page.contains("57 case(s); 50 on this page"), "{page}");
    assert_eq!(page.matches("class=\"case-link\"").count(), 50);
    let next = page
        .split("id=\"next-page\"")
        .next()
        .unwrap()
        .rsplit("<a href=\"")
        .next()
        .unwrap()
        .trim_end_matches("\" ")
        .replace("&#38;", "&");
    let second_page = web.get(&next).text();
    assert_eq!(
        second_page.matches("class=\"case-link\"").count(),
        NC - 50,
        "{next}"
    );
    assert!(second_page.contains("id=\"first-page\""));
    assert!(!second_page.contains("id=\"next-page\""));
    let searched = web.get("/cases?q=marker7").text();
    assert!(searched.contains("1 case(s)"), "{searched}");
    assert!(searched.contains(">NC-2026-0007<"));
    let isolated = web.get("/cases?q=zebrafinch").text();
    assert!(isolated.contains("0 case(s)"), "{isolated}");
    assert!(!isolated.contains("MAG-"));
    let refused = web.get("/cases?after=bogus");
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text()
            .contains("the cursor &#34;bogus&#34; is not one this list gave"),
        "{}",
        refused.text()
    );
}
