//! Several receivers sharing one PostgreSQL database: two real servers,
//! both running intake over the same backlog, must file every message
//! exactly once, number the cases without gaps or clashes, and send each
//! webhook event once, not once per receiver.
//! Needs the throwaway PostgreSQL server `make test` starts; without it the
//! test fails, it does not skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::hooks::Receiver;
use common::{Opts, Server};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_database_file_each_message_exactly_once() {
    let url = common::fresh_database(&common::postgres_admin());
    // Receivers sharing a database share its master key.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("master.key");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
            .unwrap();
        writeln!(f, "{}", "5a".repeat(32)).unwrap();
    }
    let store: &'static str =
        Box::leak(format!("url = \"{url}\"\nkey_file = {key:?}").into_boxed_str());
    // One webhook, configured on both receivers; it answers slowly, so
    // both receivers' delivery passes overlap.
    let hook = Receiver::start_slow(0, 30);
    let extra = format!(
        "[[webhooks]]\nname = \"siem\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret = \"s3cret\"\n",
        hook.port
    );
    let mut a = Server::start(Opts {
        store,
        extra: extra.clone(),
        ..Opts::default()
    });
    let mut b = Server::start(Opts {
        store,
        extra,
        ..Opts::default()
    });

    // A backlog of 120 reports, delivered through both receivers.
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/reports/en-netcompany-xss.eml"
    ))
    .unwrap();
    for (i, server) in [&a, &b].into_iter().cycle().take(120).enumerate() {
        let mut c = Client::connect_tls(server.addr, server.tls())
            .await
            .unwrap();
        let reply = c
            .send(
                &format!("r{i}@researcher.example"),
                "security@netcompany.example",
                &body,
            )
            .await
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    assert_eq!(a.messages().len(), 120, "one shared store");

    // Both restart with intake on and race over the same backlog.
    for s in [&mut a, &mut b] {
        s.kill9();
        let config = std::fs::read_to_string(s.config_path())
            .unwrap()
            .replace("enabled = false", "enabled = true");
        std::fs::write(s.config_path(), config).unwrap();
    }
    a.restart();
    b.restart();
    a.wait_filed(120);

    let mut db = a.db().await;
    let (rows, distinct_cases): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT case_id) FROM messages WHERE state = 'filed'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        (rows, distinct_cases),
        (120, 120),
        "each message filed once, each into its own case"
    );
    let refs: Vec<(String,)> = sqlx::query_as("SELECT reference FROM cases ORDER BY reference")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(refs.len(), 120);
    let numbers: HashSet<u32> = refs
        .iter()
        .map(|(r,)| r.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=120).collect::<HashSet<u32>>(),
        "numbered 1..=120 without gaps or clashes"
    );
    let receipts: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(receipts.0, 120, "one receipt queued per case");
    let opened = |s: &Server| s.log().matches("case opened").count();
    let (by_a, by_b) = (opened(&a), opened(&b));
    assert_eq!(by_a + by_b, 120);
    assert!(by_a > 0 && by_b > 0, "both workers filed: {by_a} + {by_b}");

    // Every new case went out once, whichever receiver sent it.
    let distinct = |hits: &[serde_json::Value]| -> HashSet<String> {
        hits.iter()
            .map(|h| {
                let body: serde_json::Value =
                    serde_json::from_str(h["body"].as_str().unwrap()).unwrap();
                body["delivery"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let start = Instant::now();
    while distinct(&hook.hits()).len() < 120 && start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(distinct(&hook.hits()).len(), 120, "every event");
    // One more event, after all of them: once it has arrived, the passes
    // that delivered the others are over, so a second delivery of any of
    // them would be here.
    let (_, out, _) = a.cli(&["cases", "list", "--json"], None);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let first = list[0]["reference"].as_str().unwrap();
    assert!(
        a.cli(&["cases", "transition", first, "acknowledged"], None)
            .0
    );
    let start = Instant::now();
    while distinct(&hook.hits()).len() < 121 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the last event was not delivered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let hits = hook.hits();
    assert_eq!(hits.len(), 121, "each event once, not once per receiver");
}
