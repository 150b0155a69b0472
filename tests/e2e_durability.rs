//! Durable acceptance, end to end: kill -9 under load, a failing commit,
//! and a graceful SIGTERM with a message in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::{Opts, RCPT, Server, report};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn token_of(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let start = text.find("token-")?;
    let end = text[start..].find(|c: char| c.is_whitespace())? + start;
    Some(text[start..end].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_message_and_stores_none_twice() {
    let mut server = Server::start(Opts::default());
    let tls = server.tls();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let attempted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = Vec::new();
    // Bounded: 8 clients, at most 400 messages each, at most 30 seconds.
    for c in 0..8 {
        let (addr, tls, acked, attempted) =
            (server.addr, tls.clone(), acked.clone(), attempted.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut client) = Client::connect_tls(addr, tls).await else {
                return;
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            for i in 0..400 {
                if Instant::now() > deadline {
                    return;
                }
                let token = format!("token-{c}-{i}");
                attempted.lock().unwrap().insert(token.clone());
                let body = report(
                    "Responsible disclosure",
                    &format!("{token} \n{}", "x".repeat(2000)),
                );
                match client.send("r@example.org", RCPT, &body).await {
                    Ok(reply) if reply.starts_with("250") => {
                        acked.lock().unwrap().insert(token);
                    }
                    _ => return,
                }
            }
        }));
    }
    // Kill in the middle of the load.
    let start = Instant::now();
    while acked.lock().unwrap().len() < 150 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 150,
        "the load ran: {} acknowledged",
        acked.len()
    );
    assert!(
        attempted.lock().unwrap().len() > acked.len() - 8,
        "killed while clients were sending"
    );

    server.restart();
    let stored = server.raw_messages().await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for raw in &stored {
        *counts
            .entry(token_of(raw).expect("token in stored message"))
            .or_default() += 1;
    }
    let missing: Vec<_> = acked.iter().filter(|t| !counts.contains_key(*t)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    // Messages that were committed but whose 250 the kill cut off may be
    // stored; at most one per client can be in that window.
    assert!(
        stored.len() <= acked.len() + 8,
        "{} stored, {} acked",
        stored.len(),
        acked.len()
    );
    // And the server works again after the crash.
    let mut client = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let reply = client
        .send(
            "r@example.org",
            RCPT,
            &report("Responsible disclosure", "token-after"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(server.messages().len(), stored.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_answers_451_and_stores_nothing() {
    let server = Server::start(Opts::default());
    // A real database failure, injected into the real database: any
    // insert of a message over 50 kB aborts, as a full disk would.
    let mut db = server.db().await;
    let trigger: &[&str] = if server.is_postgres() {
        &[
            "CREATE FUNCTION fail_big() RETURNS trigger AS $$ BEGIN
               IF NEW.size > 50000 THEN RAISE EXCEPTION 'simulated disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_big BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION fail_big()",
        ]
    } else {
        &[
            "CREATE TRIGGER fail_big BEFORE INSERT ON messages WHEN NEW.size > 50000
           BEGIN SELECT RAISE(ABORT, 'simulated disk full'); END",
        ]
    };
    for sql in trigger {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut db)
            .await
            .unwrap();
    }
    let mut client = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let big = report("Responsible disclosure", &"y".repeat(60_000));
    let reply = client.send("r@example.org", RCPT, &big).await.unwrap();
    assert!(reply.starts_with("451 4.3.0"), "{reply}");
    assert!(server.messages().is_empty(), "nothing half-stored");
    // The session goes on, and a message that can be stored is.
    let reply = client
        .send(
            "r@example.org",
            RCPT,
            &report("Responsible disclosure", "small"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_message_in_flight_then_closes_everything() {
    let mut server = Server::start(Opts::default());
    let mut sender = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let mut idle = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    sender
        .cmd("MAIL FROM:<r@example.org>", "250")
        .await
        .unwrap();
    sender
        .cmd(&format!("RCPT TO:<{RCPT}>"), "250")
        .await
        .unwrap();
    sender.cmd("DATA", "354").await.unwrap();
    sender
        .write(b"Subject: Responsible disclosure\r\n\r\nfirst half\r\n")
        .await
        .unwrap();
    // Let the server read the first half before the signal.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("TERM");
    // The idle session is told at once.
    let r = tokio::time::timeout(Duration::from_secs(5), idle.reply())
        .await
        .unwrap()
        .unwrap();
    assert!(r.starts_with("421 4.3.2"), "{r}");
    // New connections are no longer accepted (the listener closes as the
    // idle session is told).
    let start = std::time::Instant::now();
    while Client::connect(server.addr).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "listener still open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The message in flight completes and is stored, then 421.
    sender.write(b"second half\r\n.\r\n").await.unwrap();
    let r = sender.reply().await.unwrap();
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let r = sender.reply().await.unwrap();
    assert!(r.starts_with("421 4.3.2"), "{r}");
    assert!(
        server.wait_exit(Duration::from_secs(10)),
        "clean exit:\n{}",
        server.log()
    );
    let raw = server.raw_messages().await;
    assert_eq!(raw.len(), 1);
    assert!(String::from_utf8_lossy(&raw[0]).ends_with("first half\r\nsecond half\r\n"));
}

/// SQLite's WAL is copied into the database in the background while mail
/// arrives, so it restarts and stays small; left to the commits, it would
/// grow to the 10,000-page backstop (~40 MiB) before the first checkpoint,
/// paid for by a message waiting for its 250.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_in_the_background_under_load() {
    let server = Server::start(Opts::default());
    if server.is_postgres() {
        // SQLite's WAL only: PostgreSQL checkpoints by itself.
        return;
    }
    let mut client = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let line = "The quick brown fox jumps over the lazy dog, again and again.\r\n";
    let text = line.repeat((1024 * 1024) / line.len());
    let sent = 48;
    for i in 0..sent {
        let body = report(&format!("Responsible disclosure {i}"), &text);
        let reply = client
            .send("reporter@example.org", RCPT, &body)
            .await
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    assert_eq!(server.messages().len(), sent);
    let wal = std::fs::metadata(server.data_dir().join("disclosure-mx.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 24 * 1024 * 1024,
        "{sent} MiB received, the WAL is {wal} bytes"
    );
}
