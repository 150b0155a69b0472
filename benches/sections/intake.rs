//! Intake throughput: `n` flagged reports stored with intake off, then the
//! same data directory served with intake on, timed from start-up until its
//! metrics count every one settled (parse workers, release build). On
//! SQLite with sender authentication off and on (SPF and DKIM against a DNS
//! server the bench starts on loopback), and on PostgreSQL when `make
//! bench` started one (DISCLOSURE_MX_TEST_POSTGRES).

use super::client::{self, Client};
use super::hostile::{NO_SENDER_AUTH, Server, serve};
use super::summary::{Target, record};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NC: &str = "security@netcompany.example";

pub fn bench_intake(rt: &tokio::runtime::Runtime) {
    let n = super::env_or("BENCH_INTAKE_MESSAGES", 10_000);
    println!("\nintake: {n} flagged reports in the store, cases filed per second from start-up");
    run(rt, n, "SQLite", NO_SENDER_AUTH, Target::AtLeast(2000.0));
    let dns = super::dns::Dns::start(&[("researcher.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")]);
    run(
        rt,
        n,
        "SQLite, sender authentication on",
        &dns.sender_auth("mx.bench"),
        Target::None,
    );
    let asked = dns.queries().lines().count();
    println!("  (the loopback DNS server answered {asked} queries)");
    match std::env::var("DISCLOSURE_MX_TEST_POSTGRES") {
        Ok(admin) => match super::postgres::fresh_database(&admin) {
            Ok(url) => {
                let store = format!("[store]\nurl = \"{url}\"\n{NO_SENDER_AUTH}");
                run(rt, n, "PostgreSQL", &store, Target::None);
            }
            Err(e) => println!("  PostgreSQL: not measured: {e}"),
        },
        Err(_) => {
            println!("  PostgreSQL: not measured (run through `make bench`, which starts one)")
        }
    }
}

fn run(rt: &tokio::runtime::Runtime, n: usize, label: &str, extra: &str, target: Target) {
    let server = Server::start_with(false, extra);
    let tls = client::tls_config(&server.cert);
    let body = Arc::new(
        format!(
            "From: Reporter <r@researcher.example>\r\nTo: {NC}\r\nSubject: Responsible disclosure: bench\r\n\r\n\
             Description: the login page at https://login.netcompany.example/ reflects the next parameter.\r\n\r\n\
             Steps to reproduce:\r\n1. Open https://login.netcompany.example/?next=//evil.example\r\n\r\n\
             Impact: phishing with a trusted link (CWE-601).\r\n"
        )
        .into_bytes(),
    );
    rt.block_on(async {
        let mut tasks = Vec::new();
        for s in 0..16 {
            let (tls, body, addr) = (tls.clone(), body.clone(), server.addr);
            let count = n / 16 + usize::from(s < n % 16);
            tasks.push(tokio::spawn(async move {
                let mut c = Client::connect_tls(addr, tls).await.unwrap();
                for _ in 0..count {
                    let r = c.send("r@researcher.example", NC, &body).await.unwrap();
                    assert!(r.starts_with("250"), "{r}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let dir = server.stop();
    let config = std::fs::read_to_string(dir.path().join("config.toml"))
        .unwrap()
        .replacen("enabled = false", "enabled = true", 1);
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let data = dir.path().join("data");
    let _ = std::fs::remove_file(data.join("metrics-listening"));
    let started = Instant::now();
    let mut child = serve(dir.path());
    let (settled, filed) = loop {
        std::thread::sleep(Duration::from_millis(100));
        let settled = super::metric(&data, "dmx_intake_messages_total") as usize;
        if settled >= n || started.elapsed() > Duration::from_secs(600) {
            let filed = super::metric(&data, "dmx_intake_messages_total{outcome=\"new_case\"}");
            break (settled, filed as usize);
        }
    };
    let took = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let rate = filed as f64 / took.as_secs_f64();
    println!(
        "  {label:<34} {filed} cases filed ({settled} of {n} settled) in {:.1} s: {rate:.0} cases/s",
        took.as_secs_f64()
    );
    record(
        format!("intake, cases filed ({label})"),
        rate,
        "cases/s",
        target,
    );
}
