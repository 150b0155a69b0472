//! The hard check for poison messages: table bombs among a thousand
//! normal reports, with the service killed (`kill -9`) twice meanwhile.
//! Every bomb becomes an `unparsed` case holding exactly what was sent,
//! every normal report is filed, and the listener answers throughout.
//!
//! The one-pass HTML converter turns a table bomb into text at its own
//! length, so at the default budget a bomb is simply filed
//! (`e2e_hostile.rs`). Here the parse budget is lowered until these bombs
//! (8 MiB, base64) no longer fit, while a normal report still does: what is
//! under test is the quarantine path, under crashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::mail::Mail;
use common::{Opts, Server};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const NC: &str = "security@netcompany.example";

fn bomb(i: usize) -> Vec<u8> {
    let mut html = format!("<table><tr><td>{}</td></tr>", "A".repeat(100_000));
    while html.len() < 6 * 1024 * 1024 {
        html.push_str("<tr><td>x</td></tr>");
    }
    Mail::new(
        &format!("Bomb <b{i}@researcher.example>"),
        NC,
        &format!("Responsible disclosure: bomb {i}"),
    )
    .html_base64(&html)
    .bytes()
}

fn normal(i: usize) -> Vec<u8> {
    Mail::new(
        &format!("Reporter <r{i}@researcher.example>"),
        NC,
        &format!("Responsible disclosure: report {i}"),
    )
    .message_id(&format!("normal-{i}@researcher.example"))
    .text(&format!("Description: finding number {i}."))
    .bytes()
}

/// Sends `mails` over STARTTLS on 4 connections; every one must get 250.
async fn send_all(server: &Server, mails: Vec<Vec<u8>>) {
    let tls = server.tls();
    let mails = Arc::new(mails);
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let (tls, mails, addr) = (tls.clone(), mails.clone(), server.addr);
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect_tls(addr, tls).await.unwrap();
            for m in mails.iter().skip(lane).step_by(4) {
                let r = c.send("r@researcher.example", NC, m).await.unwrap();
                assert!(r.starts_with("250 2.0.0"), "{r}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// `raw` without the `Received:` header we put on top.
fn as_sent(raw: &[u8]) -> &[u8] {
    let mut at = 0;
    loop {
        let end = raw[at..].windows(2).position(|w| w == b"\r\n").unwrap() + at + 2;
        at = end;
        if !matches!(raw.get(at), Some(b' ' | b'\t')) {
            return &raw[at..];
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bombs_among_a_thousand_reports_with_two_crashes() {
    let mut server = Server::start(Opts {
        intake: "enabled = true\npoll_interval = 1\nparse_memory_mib = 12\n",
        limits: "max_sessions_per_ip = 64",
        ..Opts::default()
    });
    // The probe: a greeting every 100 ms while the server is meant to run.
    let (up, stop, lost, answered) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let addr = Arc::new(std::sync::Mutex::new(server.addr));
    let probe = {
        let (up, stop, lost, answered, addr) = (
            up.clone(),
            stop.clone(),
            lost.clone(),
            answered.clone(),
            addr.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if up.load(Ordering::Relaxed) {
                    let a = *addr.lock().unwrap();
                    let ok = matches!(
                        tokio::time::timeout(Duration::from_secs(3), Client::connect(a)).await,
                        Ok(Ok((_, g))) if g.starts_with("220")
                    );
                    // The state may have changed while connecting.
                    if up.load(Ordering::Relaxed) {
                        if ok {
                            answered.fetch_add(1, Ordering::Relaxed);
                        } else {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let bombs: Vec<Vec<u8>> = (0..10).map(bomb).collect();
    let mut sent_bombs = 0;
    for phase in 0..3 {
        // A third of the reports, with bombs among them.
        let mut mails: Vec<Vec<u8>> = (phase * 334..((phase + 1) * 334).min(1000))
            .map(normal)
            .collect();
        let take = if phase == 2 { 10 - sent_bombs } else { 3 };
        for (k, b) in bombs[sent_bombs..sent_bombs + take].iter().enumerate() {
            mails.insert((k + 1) * mails.len() / (take + 1), b.clone());
        }
        sent_bombs += take;
        send_all(&server, mails).await;
        if phase < 2 {
            // Killed while intake is at work on what just arrived.
            tokio::time::sleep(Duration::from_millis(300)).await;
            up.store(false, Ordering::Relaxed);
            server.kill9();
            server.restart();
            *addr.lock().unwrap() = server.addr;
            up.store(true, Ordering::Relaxed);
        }
    }
    // Blocks this thread only; the probe runs on the others.
    let list = server.wait_filed_within(1010, Duration::from_secs(180));
    stop.store(true, Ordering::Relaxed);
    probe.await.unwrap();

    assert_eq!(list.len(), 1010);
    let filed = list.iter().filter(|m| m["state"] == "filed").count();
    let quarantined: Vec<&serde_json::Value> = list
        .iter()
        .filter(|m| m["state"] == "quarantined")
        .collect();
    assert_eq!(filed, 1000, "every normal report is filed");
    assert_eq!(quarantined.len(), 10, "every bomb is quarantined");
    for q in &quarantined {
        let reason = q["quarantine_reason"].as_str().unwrap();
        assert!(
            reason.starts_with("intake worker killed")
                || reason.starts_with("intake did not complete"),
            "{reason}"
        );
    }
    let (ok, out, err) = server.cli(&["cases", "list", "--json", "--state", "new"], None);
    assert!(ok, "{err}");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let unparsed: Vec<&serde_json::Value> =
        cases.iter().filter(|c| c["kind"] == "unparsed").collect();
    assert_eq!(unparsed.len(), 10);
    assert_eq!(cases.len(), 1010);
    let mut hashes: Vec<Vec<u8>> = bombs.iter().map(|b| sha256(b)).collect();
    for c in unparsed {
        let (ok, raw, err) = server.cli(&["cases", "raw", c["reference"].as_str().unwrap()], None);
        assert!(ok, "{err}");
        let h = sha256(as_sent(raw.as_bytes()));
        let at = hashes
            .iter()
            .position(|x| *x == h)
            .expect("the raw message is what was sent");
        hashes.remove(at);
    }
    assert!(hashes.is_empty());
    assert_eq!(
        lost.load(Ordering::Relaxed),
        0,
        "the listener answered throughout"
    );
    assert!(answered.load(Ordering::Relaxed) > 10);
}
