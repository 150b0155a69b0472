//! `make bench`: the project's own load generator against disclosure-mx and,
//! in the same run, against Postfix, Exim and Haraka (`sections/peers.rs`,
//! configurations in `benches/peers/`: STARTTLS required, a discarding
//! delivery, each one's own durability, no DNS), after an strace check
//! that no server sends anything off loopback; the receiver on PostgreSQL;
//! the memory cost of idle sessions; archives against the 7z CLI; hostile
//! mail; intake throughput. Ends with the summary table
//! (`target/bench/summary.json`).
//!
//! Every figure is printed with the parameters that produced it. Ratios to
//! a peer in the same run are what to compare across machines; absolute
//! numbers vary.
//!
//! Parameters (environment): BENCH_SESSIONS (16), BENCH_MESSAGES per session
//! (200), BENCH_SIZE bytes (10240) for the first load point,
//! BENCH_MESSAGES_256 (20), BENCH_MESSAGES_1M (25), BENCH_IDLE sessions
//! (10000), BENCH_PEERS (postfix,exim,haraka), BENCH_INTAKE_MESSAGES
//! (10000), BENCH_HOSTILE_SIZE. BENCH_ONLY=load, postgres, idle, archives,
//! hostile or intake runs one section.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "sections/archives.rs"]
mod archives;
#[path = "../tests/common/client.rs"]
mod client;
#[path = "../tests/common/dns.rs"]
mod dns;
#[path = "sections/hostile.rs"]
mod hostile;
#[path = "sections/intake.rs"]
mod intake;
#[path = "sections/peers.rs"]
mod peers;
#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "sections/postgres.rs"]
mod postgres;
#[path = "sections/summary.rs"]
mod summary;

use client::Client;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

const BIN: &str = env!("CARGO_BIN_EXE_disclosure-mx");
const RCPT: &str = "security@magenta.example";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Load {
    sessions: usize,
    messages: usize,
    size: usize,
}

struct Outcome {
    /// Messages answered 250.
    delivered: usize,
    msgs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: usize,
}

/// How long one step may take before the session counts its remaining
/// messages as failures: a stalled server cannot hold the bench.
const STALL: Duration = Duration::from_secs(30);

/// N sessions in parallel, each STARTTLS then M messages of S bytes.
/// Latency is from the end of DATA to the 250: the cost of durability.
async fn run_load(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, load: &Load) -> Outcome {
    let body = {
        let mut b = format!("From: bench@example.org\r\nTo: {RCPT}\r\nSubject: Responsible disclosure: bench\r\n\r\n").into_bytes();
        let line =
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
        while b.len() + line.len() <= load.size {
            b.extend_from_slice(line);
        }
        Arc::new(b)
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..load.sessions {
        let (tls, body, messages) = (tls.clone(), body.clone(), load.messages);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages);
            let mut failures = 0;
            let connect = tokio::time::timeout(STALL, Client::connect_tls(addr, tls)).await;
            let mut c = match connect {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    eprintln!("connect failed: {e}");
                    return (latencies, messages);
                }
                Err(_) => {
                    eprintln!("no greeting or STARTTLS within {STALL:?}");
                    return (latencies, messages);
                }
            };
            for sent in 0..messages {
                let r = async {
                    c.cmd("MAIL FROM:<bench@example.org>", "250").await?;
                    c.cmd(&format!("RCPT TO:<{RCPT}>"), "250").await?;
                    c.cmd("DATA", "354").await?;
                    let mut data = body.to_vec();
                    data.extend_from_slice(b".\r\n");
                    let t = Instant::now();
                    c.write(&data).await?;
                    let reply = c.reply().await?;
                    if !reply.starts_with("250") {
                        return Err(reply.into());
                    }
                    client::Result::Ok(t.elapsed())
                };
                match tokio::time::timeout(STALL, r).await {
                    Ok(Ok(d)) => latencies.push(d),
                    Ok(Err(_)) => failures += 1,
                    Err(_) => {
                        // The session is in an unknown state: the rest fail.
                        eprintln!("a message took over {STALL:?}");
                        return (latencies, failures + messages - sent);
                    }
                }
            }
            let _ = c.cmd("QUIT", "221").await;
            (latencies, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failures += f;
    }
    let wall = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Outcome {
        delivered: all.len(),
        msgs_per_sec: all.len() as f64 / wall,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        failures,
    }
}

fn rss_kib(pid: u32) -> u64 {
    rss_field(pid, "VmRSS:")
}

fn rss_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Ours {
    child: Child,
    addr: SocketAddr,
    cert: String,
    _dir: tempfile::TempDir,
}

impl Drop for Ours {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ours {
    fn master_key(&self) -> PathBuf {
        self._dir.path().join("data/master.key")
    }
}

impl peers::Peer for Ours {
    fn name(&self) -> &'static str {
        "disclosure-mx"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn root_pid(&self) -> Option<u32> {
        Some(self.child.id())
    }
    fn received(&self) -> usize {
        // Its metrics count each message whose commit the 250 waited for.
        metric(
            &self._dir.path().join("data"),
            "dmx_smtp_messages_stored_total",
        ) as usize
    }
}

/// One counter or gauge from a running server's /metrics.
fn metric(data: &Path, name: &str) -> f64 {
    use std::io::{Read, Write};
    let Some(addr) = std::fs::read_to_string(data.join("metrics-listening"))
        .ok()
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
    else {
        return 0.0;
    };
    let mut text = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
        let _ = s.read_to_string(&mut text);
    }
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn start_ours(group_commit_max: usize) -> Ours {
    start_ours_with(group_commit_max, "", None)
}

/// With `store` as the body of its `[store]` table (e.g. a PostgreSQL URL)
/// and, for a second receiver on one database, the first one's master key.
fn start_ours_with(group_commit_max: usize, store: &str, key: Option<&Path>) -> Ours {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    if let Some(key) = key {
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::copy(key, data.join("master.key")).unwrap();
    }
    let config = format!(
        "data_dir = {data:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nhostname = \"mx.bench\"\n\
         [limits]\ngreeting_delay = 0\nmax_sessions = 12000\nmax_sessions_per_ip = 12000\n\
         [store]\ngroup_commit_max = {group_commit_max}\n{store}\n[intake]\nenabled = false\n[sender_auth]\nenabled=false\n[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n"
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let addr = loop {
        if let Some(line) = std::fs::read_to_string(data.join("listening"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
        {
            break line.parse().unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server not ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let cert = std::fs::read_to_string(data.join("tls/dev-cert.pem")).unwrap();
    Ours {
        child,
        addr,
        cert,
        _dir: dir,
    }
}

fn report(name: &str, o: &Outcome, rss: Option<u64>) {
    println!(
        "{name:<34} {:>9.0} msg/s   p50 {:>6.2} ms   p99 {:>7.2} ms   failures {:>3}{}",
        o.msgs_per_sec,
        o.p50_ms,
        o.p99_ms,
        o.failures,
        rss.map_or(String::new(), |r| format!(
            "   peak RSS {:.1} MiB",
            r as f64 / 1024.0
        ))
    );
}

/// Opens `n` sessions that greet (and with `tls`, upgrade) and then idle;
/// returns the server's RSS growth in KiB.
async fn idle_sessions(server: &Ours, n: usize, tls: bool) -> (u64, usize) {
    let before = rss_kib(server.child.id());
    let config = client::tls_config(&server.cert);
    let mut held = Vec::with_capacity(n);
    let mut opened = 0;
    for chunk in 0..n.div_ceil(100) {
        let mut tasks = Vec::new();
        for _ in 0..100.min(n - chunk * 100) {
            let (addr, config) = (server.addr, config.clone());
            tasks.push(tokio::spawn(async move {
                if tls {
                    Client::connect_tls(addr, config).await.ok()
                } else {
                    let (mut c, _) = Client::connect(addr).await.ok()?;
                    c.cmd("EHLO idle.example", "250").await.ok()?;
                    Some(c)
                }
            }));
        }
        for t in tasks {
            if let Some(c) = t.await.unwrap() {
                opened += 1;
                held.push(c);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(server.child.id());
    drop(held);
    (after.saturating_sub(before), opened)
}

/// Raises this process's open-file limit to its hard limit (the servers it
/// starts inherit it): 10,000 idle sessions need as many descriptors.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        println!("cannot raise the open-file limit: {e}");
    }
}

fn main() {
    if let Ok(path) = std::env::var("BENCH_EXTRACT_ONE") {
        return archives::extract_one(&path);
    }
    raise_file_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `cargo bench` passes --bench; nothing else is expected.
    let only = std::env::var("BENCH_ONLY").ok();
    match only.as_deref() {
        Some("archives") => archives::bench_archives(),
        Some("idle") => bench_idle(&rt, env_or("BENCH_IDLE", 10_000)),
        Some("hostile") => hostile::bench_hostile(&rt),
        Some("intake") => intake::bench_intake(&rt),
        Some("postgres") => {
            let load = Load {
                sessions: env_or("BENCH_SESSIONS", 16),
                messages: env_or("BENCH_MESSAGES", 200),
                size: env_or("BENCH_SIZE", 10 * 1024),
            };
            postgres::bench_postgres_receiver(&rt, &load);
        }
        _ => {
            let points = [
                Load {
                    sessions: env_or("BENCH_SESSIONS", 16),
                    messages: env_or("BENCH_MESSAGES", 200),
                    size: env_or("BENCH_SIZE", 10 * 1024),
                },
                Load {
                    sessions: 256,
                    messages: env_or("BENCH_MESSAGES_256", 20),
                    size: 10 * 1024,
                },
                Load {
                    sessions: 4,
                    messages: env_or("BENCH_MESSAGES_1M", 25),
                    size: 1024 * 1024,
                },
            ];
            bench_load(&rt, &points);
            postgres::bench_postgres_receiver(&rt, &points[0]);
            if only.as_deref() != Some("load") {
                bench_idle(&rt, env_or("BENCH_IDLE", 10_000));
                archives::bench_archives();
                hostile::bench_hostile(&rt);
                intake::bench_intake(&rt);
            }
        }
    }
    summary::finish();
}

/// Each load point against a fresh disclosure-mx (group commit; at the
/// first point also one fsync per message) and, in the same run, every
/// peer; first a short run against each under strace, the automatic
/// no-off-loopback check.
fn bench_load(rt: &tokio::runtime::Runtime, points: &[Load]) {
    use summary::{Target, record};
    let dir = tempfile::tempdir().unwrap();
    let certs = start_ours(256);
    let tls_dir = certs._dir.path().join("data/tls");
    let peers = peers::start(
        dir.path(),
        &tls_dir.join("dev-cert.pem"),
        &tls_dir.join("dev-key.pem"),
    );
    let tls = client::tls_config(&certs.cert);
    println!(
        "
no-off-loopback check: 4 sessions x 5 messages against each server under `strace -f`"
    );
    let control = peers::trace_flags_a_known_offender(dir.path());
    println!("  control: a UDP connect to 192.0.2.1:53 flagged: {control}");
    record(
        "strace check flags a known off-loopback DNS connect",
        f64::from(u8::from(control)),
        "",
        Target::Exactly(1.0),
    );
    let mut servers: Vec<&dyn peers::Peer> = vec![&certs];
    servers.extend(peers.iter().map(|p| p.as_ref()));
    for server in servers {
        let short = Load {
            sessions: 4,
            messages: 5,
            size: 10 * 1024,
        };
        let offending = match server
            .root_pid()
            .ok_or_else(|| "no process".to_owned())
            .and_then(|pid| peers::Trace::attach(pid, dir.path()))
        {
            Ok(trace) => {
                rt.block_on(run_load(server.addr(), tls.clone(), &short));
                // What a server does after its 250 (queue manager,
                // delivery) is traced too.
                std::thread::sleep(Duration::from_secs(3));
                let verdict = trace.finish();
                println!(
                    "  {:<16} {} calls naming an address traced ({} sessions accepted), {} off loopback or to port 53",
                    server.name(),
                    verdict.addressed,
                    verdict.accepted,
                    verdict.offending.len()
                );
                for line in verdict.offending.iter().take(5) {
                    println!("    {line}");
                }
                if verdict.accepted < short.sessions {
                    println!(
                        "  {}: not checked: the trace missed the run's sessions",
                        server.name()
                    );
                    f64::NAN
                } else {
                    verdict.offending.len() as f64
                }
            }
            Err(e) => {
                println!("  {}: not checked: {e}", server.name());
                f64::NAN
            }
        };
        record(
            format!("{}: network calls off loopback or DNS", server.name()),
            offending,
            "calls",
            Target::Exactly(0.0),
        );
    }
    for (i, load) in points.iter().enumerate() {
        let point = format!("{}x{}", load.sessions, human(load.size));
        println!(
            "\nload {point}: {} sessions x {} messages x {} bytes, STARTTLS, each server's own durability",
            load.sessions, load.messages, load.size
        );
        let ours = start_ours(256);
        let own = client::tls_config(&ours.cert);
        let o = measure(rt, &ours, own, "disclosure-mx (group commit)", load, &point);
        drop(ours);
        if i == 0 {
            let single = start_ours(1);
            let own = client::tls_config(&single.cert);
            let label = "disclosure-mx (one fsync/message)";
            measure(rt, &single, own, label, load, &point);
        }
        record(
            format!("{point} disclosure-mx p99"),
            o.p99_ms,
            "ms",
            if i == 0 {
                Target::AtMost(8.0)
            } else {
                Target::None
            },
        );
        for peer in &peers {
            let p = measure(rt, peer.as_ref(), tls.clone(), peer.name(), load, &point);
            let ratio = o.msgs_per_sec / p.msgs_per_sec.max(f64::MIN_POSITIVE);
            let short = peer.name().split(' ').next().unwrap_or_default();
            println!("ratio disclosure-mx / {short}: {ratio:.2}x msgs/s");
            record(
                format!("{point} ratio to {short}"),
                ratio,
                "x",
                Target::AtLeast(if short == "postfix" { 6.0 } else { 1.0 }),
            );
        }
    }
    println!(
        "  (peak RSS: the server's process tree summed every 20 ms during the run; shared pages count once per process)"
    );
}

/// One load against one server: rate, latency, the tree's peak RSS, and
/// the server's own count of what it accepted against what was sent.
fn measure(
    rt: &tokio::runtime::Runtime,
    server: &dyn peers::Peer,
    tls: Arc<rustls::ClientConfig>,
    label: &str,
    load: &Load,
    point: &str,
) -> Outcome {
    use summary::{Target, record};
    let before = server.received();
    let rss = server.root_pid().map(peers::PeakRss::start);
    let o = rt.block_on(run_load(server.addr(), tls, load));
    let rss = rss.map(peers::PeakRss::kib);
    report(label, &o, rss);
    // Logs are written a moment after the 250; wait for them to settle.
    let sent = load.sessions * load.messages;
    let start = Instant::now();
    let mut received = server.received().saturating_sub(before);
    while received < sent && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        received = server.received().saturating_sub(before);
    }
    if received != sent || o.delivered != sent {
        println!(
            "  COUNT MISMATCH: sent {sent}, answered 250 {}, received by its own count {received}",
            o.delivered
        );
    }
    record(
        format!("{point} {label} received (of {sent})"),
        received as f64,
        "msgs",
        Target::Exactly(sent as f64),
    );
    record(
        format!("{point} {label}"),
        o.msgs_per_sec,
        "msg/s",
        Target::None,
    );
    if let Some(kib) = rss {
        record(
            format!("{point} {label} peak RSS"),
            kib as f64 / 1024.0,
            "MiB",
            Target::None,
        );
    }
    o
}

/// 10240 as "10KiB", 1048576 as "1MiB".
fn human(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{}MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

/// The memory of `idle` sessions, after EHLO and after STARTTLS, each on
/// a fresh server.
fn bench_idle(rt: &tokio::runtime::Runtime, idle: usize) {
    let fresh = start_ours(256);
    let (plain_kib, plain_n) = rt.block_on(idle_sessions(&fresh, idle, false));
    drop(fresh);
    let fresh = start_ours(256);
    let (tls_kib, tls_n) = rt.block_on(idle_sessions(&fresh, idle, true));
    println!(
        "\nidle sessions: {plain_n} after EHLO: +{:.1} MiB RSS ({:.1} KiB each); {tls_n} after STARTTLS: +{:.1} MiB RSS ({:.1} KiB each); total RSS {:.1} MiB",
        plain_kib as f64 / 1024.0,
        plain_kib as f64 / plain_n.max(1) as f64,
        tls_kib as f64 / 1024.0,
        tls_kib as f64 / tls_n.max(1) as f64,
        rss_kib(fresh.child.id()) as f64 / 1024.0,
    );
    drop(fresh);
    use summary::{Target, record};
    record(
        format!("idle sessions ({plain_n}) after EHLO, each"),
        plain_kib as f64 / plain_n.max(1) as f64,
        "KiB",
        Target::None,
    );
    record(
        format!("idle sessions ({tls_n}) after STARTTLS, each"),
        tls_kib as f64 / tls_n.max(1) as f64,
        "KiB",
        Target::AtMost(12.0),
    );
}
