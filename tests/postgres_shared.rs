//! Several receivers sharing one PostgreSQL database: two real servers,
//! both running intake over the same backlog, must file every message
//! exactly once and number the cases without gaps or clashes.
//! Needs the throwaway PostgreSQL server `make test` starts; without it the
//! test fails, it does not skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::{Opts, Server};
use std::collections::HashSet;

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
    let mut a = Server::start(Opts {
        store,
        ..Opts::default()
    });
    let mut b = Server::start(Opts {
        store,
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
}
