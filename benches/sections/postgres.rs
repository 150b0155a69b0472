//! The receiver on PostgreSQL (the throwaway cluster `make bench` starts
//! with deploy/with-postgres.sh, fsync on), next to SQLite in the same run,
//! and two receivers sharing one database. On a 2-core machine the two
//! receivers, PostgreSQL and the load generator share the same CPUs, so
//! the second receiver shows what sharing a database costs, not what a
//! second machine would add.

use super::summary::{Target, record};
use super::{Load, client, report, run_load, start_ours_with};
use std::time::Instant;

/// A new, empty database on the server `admin` names; returns its URL.
pub fn fresh_database(admin: &str) -> Result<String, String> {
    super::pg::create_database(admin, "dmx_bench")
}

pub fn bench_postgres_receiver(rt: &tokio::runtime::Runtime, load: &Load) {
    let Ok(admin) = std::env::var("DISCLOSURE_MX_TEST_POSTGRES") else {
        println!(
            "\nPostgreSQL receiver: not measured (run through `make bench`, which starts PostgreSQL)"
        );
        return;
    };
    println!(
        "\nPostgreSQL receiver: {} sessions x {} messages x {} bytes, STARTTLS; SQLite in the same run",
        load.sessions, load.messages, load.size
    );
    let sqlite = start_ours_with(256, "", None);
    let s = rt.block_on(run_load(
        sqlite.addr,
        client::tls_config(&sqlite.cert),
        load,
    ));
    report("disclosure-mx on SQLite", &s, None);
    drop(sqlite);
    let url = match fresh_database(&admin) {
        Ok(url) => url,
        Err(e) => {
            println!("  not measured: {e}");
            return;
        }
    };
    let store = format!("url = \"{url}\"");
    let one = start_ours_with(256, &store, None);
    let p = rt.block_on(run_load(one.addr, client::tls_config(&one.cert), load));
    report("disclosure-mx on PostgreSQL", &p, None);
    record(
        "receiver on PostgreSQL",
        p.msgs_per_sec,
        "msg/s",
        Target::None,
    );
    record(
        "receiver on PostgreSQL / on SQLite",
        p.msgs_per_sec / s.msgs_per_sec.max(f64::MIN_POSITIVE),
        "x",
        Target::None,
    );
    // A second receiver on the same database; half the sessions each.
    let two = start_ours_with(256, &store, Some(&one.master_key()));
    let half = Load {
        sessions: load.sessions / 2,
        messages: load.messages,
        size: load.size,
    };
    let start = Instant::now();
    let (a, b) = rt.block_on(async {
        tokio::join!(
            run_load(one.addr, client::tls_config(&one.cert), &half),
            run_load(two.addr, client::tls_config(&two.cert), &half)
        )
    });
    let both = (a.delivered + b.delivered) as f64 / start.elapsed().as_secs_f64();
    println!(
        "two receivers on one PostgreSQL database: {both:.0} msg/s together ({:.0} + {:.0}; failures {}), {:.2}x one receiver",
        a.msgs_per_sec,
        b.msgs_per_sec,
        a.failures + b.failures,
        both / p.msgs_per_sec.max(f64::MIN_POSITIVE)
    );
    record(
        "two receivers on one PostgreSQL database",
        both,
        "msg/s",
        Target::None,
    );
}
