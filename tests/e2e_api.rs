//! The JSON API end to end with curl: bearer tokens scoped to
//! organisations, 404 for other organisations' cases, transitions and notes
//! by the case rules, the OpenAPI document, revocation, and every call on
//! the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, deliver_from, fixture, sh};
use serde_json::Value;
use std::process::Command;

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn curl(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "-X", method, &format!("{base}{path}")]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data", b]);
    }
    let (ok, out) = sh(&mut cmd);
    assert!(ok, "{out}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_see_and_change_only_their_organisations_cases() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        extra: "[web]\nlisten = \"127.0.0.1:0\"\n".into(),
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
    let base = format!(
        "http://{}",
        std::fs::read_to_string(server.data_dir().join("api-listening"))
            .unwrap()
            .trim()
    );
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    let nc = list.iter().find(|c| c["org"] == "netcompany").unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mag = list.iter().find(|c| c["org"] == "magenta").unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();

    let (ok, token, err) = server.cli(&["tokens", "create", "nc-bot", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("dmx_") && token.len() == 68);
    let (ok, _, err) = server.cli(&["tokens", "create", "x", "--org", "nowhere"], None);
    assert!(!ok && err.contains("no organisation \"nowhere\""), "{err}");

    let r = curl(&base, "GET", "/api/v1/cases", None, None);
    assert_eq!(r.status, 401);
    assert!(r.headers.contains("www-authenticate: bearer"));
    assert_eq!(
        curl(&base, "GET", "/api/v1/cases", Some("dmx_wrong"), None).status,
        401
    );

    let r = curl(&base, "GET", "/api/v1/cases", Some(&token), None);
    assert_eq!(r.status, 200);
    assert!(
        r.headers.contains("x-content-type-options: nosniff")
            && r.headers.contains("cache-control: no-store"),
        "{}",
        r.headers
    );
    let cases: Vec<Value> = serde_json::from_str(&r.body).unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["reference"], nc.as_str());

    let r = curl(
        &base,
        "GET",
        &format!("/api/v1/cases/{mag}"),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 404, "another organisation's case looks absent");
    let r = curl(
        &base,
        "GET",
        "/api/v1/cases/NC-1999-9999",
        Some(&token),
        None,
    );
    assert_eq!(r.status, 404);
    let r = curl(
        &base,
        "GET",
        &format!("/api/v1/cases/{nc}"),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 200);
    let case: Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        case["description"]
            .as_str()
            .unwrap()
            .starts_with("The comment field")
    );

    let t = |body: &str| {
        curl(
            &base,
            "POST",
            &format!("/api/v1/cases/{nc}/transition"),
            Some(&token),
            Some(body),
        )
    };
    assert_eq!(t(r#"{"state":"acknowledged"}"#).status, 200);
    assert_eq!(t(r#"{"state":"resolved"}"#).status, 409);
    assert_eq!(t(r#"{"state":"closed"}"#).status, 422);
    assert_eq!(t(r#"{"state":"sleeping"}"#).status, 422);
    let r = curl(
        &base,
        "POST",
        &format!("/api/v1/cases/{mag}/transition"),
        Some(&token),
        Some(r#"{"state":"acknowledged"}"#),
    );
    assert_eq!(r.status, 404, "no change to another organisation's case");
    let note = |body: &str| {
        curl(
            &base,
            "POST",
            &format!("/api/v1/cases/{nc}/notes"),
            Some(&token),
            Some(body),
        )
    };
    assert_eq!(note(r#"{"text":"Triaged by the bot."}"#).status, 201);
    assert_eq!(note(r#"{"text":"   "}"#).status, 422);

    let r = curl(&base, "GET", "/api/v1/export", Some(&token), None);
    let all: Vec<Value> = serde_json::from_str(&r.body).unwrap();
    assert_eq!((r.status, all.len()), (200, 1));
    let timeline = all[0]["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "note" && e["actor"] == "token:nc-bot")
    );

    let r = curl(&base, "GET", "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200);
    let doc: Value = serde_json::from_str(&r.body).unwrap();
    assert!(doc["paths"]["/api/v1/cases/{reference}/transition"]["post"].is_object());

    assert!(server.cli(&["tokens", "revoke", "nc-bot"], None).0);
    assert_eq!(
        curl(&base, "GET", "/api/v1/cases", Some(&token), None).status,
        401
    );

    let (_, out, _) = server.cli(&["audit", "list", "--json"], None);
    let audit: Vec<Value> = serde_json::from_str(&out).unwrap();
    let api: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e["actor"] == "token:nc-bot")
        .map(|e| (e["action"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    assert!(api.contains(&("list", "127.0.0.1")) && api.contains(&("view", "127.0.0.1")));
    assert!(
        api.contains(&("transition", "127.0.0.1"))
            && api.contains(&("note", "127.0.0.1"))
            && api.contains(&("export", "127.0.0.1"))
    );
    assert!(!out.contains(&token), "tokens never reach the audit trail");
    let (ok, out, err) = server.cli(&["audit", "verify"], None);
    assert!(ok, "{out}{err}");
}
