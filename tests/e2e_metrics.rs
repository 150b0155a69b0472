//! The metrics listener after a small load: each counter moved by exactly
//! what the load did, the stored-state gauges read the store, health
//! answers, and no label carries a reporter's address or subject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::{Opts, Server, report, sh, wait_until};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const INTAKE_ON: &str = "enabled = true\npoll_interval = 1";

fn base(server: &Server) -> String {
    let file = server.data_dir().join("metrics-listening");
    wait_until("metrics listener", Duration::from_secs(10), || {
        file.exists()
    });
    format!("http://{}", std::fs::read_to_string(file).unwrap().trim())
}

fn get(url: &str) -> (u16, String) {
    let (ok, out) = sh(Command::new("curl").args(["-sS", "-w", "\n%{http_code}", url]));
    assert!(ok, "{out}");
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.trim_end().to_owned())
}

/// `name{labels}` → value, for every sample line.
fn scrape(base: &str) -> (BTreeMap<String, f64>, String) {
    let (code, text) = get(&format!("{base}/metrics"));
    assert_eq!(code, 200, "{text}");
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    (samples, text)
}

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_the_load_did() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let base = base(&server);
    assert_eq!(get(&format!("{base}/healthz/live")), (200, "live".into()));
    wait_until("ready", Duration::from_secs(10), || {
        get(&format!("{base}/healthz/ready")) == (200, "ready".into())
    });
    let (before, _) = scrape(&base);

    // Three reports over TLS, each session ended with QUIT.
    let mut bytes = 0;
    for i in 0..3 {
        let body = report(
            &format!("Responsible disclosure: metrics {i}"),
            "Secret-sounding finding text",
        );
        bytes += body.len();
        let mut c = Client::connect_tls(server.addr, server.tls())
            .await
            .unwrap();
        let reply = c
            .send("reporter@example.org", common::RCPT, &body)
            .await
            .unwrap();
        assert!(reply.starts_with("250 2.0.0"), "{reply}");
        c.cmd("QUIT", "221").await.unwrap();
    }
    // One unknown recipient, one plaintext report (refused by the
    // plaintext rule), both ended with QUIT.
    let mut c = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    c.cmd("MAIL FROM:<reporter@example.org>", "250")
        .await
        .unwrap();
    c.cmd("RCPT TO:<nobody@magenta.example>", "550")
        .await
        .unwrap();
    c.cmd("QUIT", "221").await.unwrap();
    let (mut c, _) = Client::connect(server.addr).await.unwrap();
    c.cmd("EHLO plain.example", "250").await.unwrap();
    let reply = c
        .send(
            "reporter@example.org",
            common::RCPT,
            &report("Responsible disclosure: plain", "x"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("550 5.7.10"), "{reply}");
    c.cmd("QUIT", "221").await.unwrap();
    server.wait_filed(3);

    let delta = |after: &BTreeMap<String, f64>, key: &str| value(after, key) - value(&before, key);
    let mut after = BTreeMap::new();
    let mut text = String::new();
    wait_until("counters settle", Duration::from_secs(10), || {
        (after, text) = scrape(&base);
        delta(&after, "dmx_smtp_connections_total{outcome=\"closed\"}") >= 5.0
            && value(&after, "dmx_intake_duration_seconds_count") >= 3.0
    });
    assert_eq!(
        delta(&after, "dmx_smtp_connections_total{outcome=\"closed\"}"),
        5.0,
        "{text}"
    );
    let tls: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("dmx_smtp_tls_sessions_total{") && k.contains("TLSv1.3"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(tls, 4.0, "four sessions started TLS: {text}");
    for (reason, class, n) in [
        ("queued", "2xx", 3.0),
        ("unknown_recipient", "5xx", 1.0),
        ("plaintext_refused", "5xx", 1.0),
        ("bye", "2xx", 5.0),
        ("ready_to_start_tls", "2xx", 4.0),
    ] {
        let key = format!("dmx_smtp_replies_total{{class=\"{class}\",reason=\"{reason}\"}}");
        assert_eq!(delta(&after, &key), n, "{key}: {text}");
    }
    assert_eq!(delta(&after, "dmx_smtp_messages_stored_total"), 3.0);
    let received = delta(&after, "dmx_smtp_received_bytes_total");
    assert!(
        received > bytes as f64 && received < (bytes + 8 * 1024) as f64,
        "{received} bytes read for {bytes} bytes of mail"
    );
    assert_eq!(delta(&after, "dmx_intake_duration_seconds_count"), 3.0);
    assert_eq!(
        delta(&after, "dmx_intake_messages_total{outcome=\"new_case\"}"),
        3.0
    );
    assert_eq!(value(&after, "dmx_messages_pending"), 0.0);
    assert_eq!(value(&after, "dmx_messages_quarantined"), 0.0);
    assert_eq!(value(&after, "dmx_oldest_pending_age_seconds"), 0.0);
    assert_eq!(value(&after, "dmx_cases_open{org=\"magenta\"}"), 3.0);
    assert_eq!(value(&after, "dmx_cases_open{org=\"netcompany\"}"), 0.0);
    assert_eq!(value(&after, "dmx_cases_overdue{org=\"magenta\"}"), 0.0);
    // Receipts wait in the outbox (no relay is configured here).
    assert_eq!(
        value(&after, "dmx_outbox_messages{state=\"pending\"}"),
        3.0,
        "{text}"
    );
    assert_eq!(value(&after, "dmx_smtp_sessions_open"), 0.0);
    assert_eq!(value(&after, "dmx_smtp_inflight_body_bytes"), 0.0);
    assert_eq!(
        value(&after, "dmx_smtp_inflight_body_limit_bytes"),
        512.0 * 1024.0 * 1024.0
    );
    for secret in ["example.org", "Secret-sounding", "metrics 1"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}
