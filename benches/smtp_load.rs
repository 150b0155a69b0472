//! `make bench`: the project's own load generator against disclosure-mx and,
//! in the same run, against Debian's Postfix (STARTTLS required, discard
//! transport, queue fsync as always), then the memory cost of idle sessions.
//!
//! Every figure is printed with the parameters that produced it. Ratios to
//! Postfix are what to compare across machines; absolute numbers vary.
//!
//! Parameters (environment): BENCH_SESSIONS (16), BENCH_MESSAGES per session
//! (200), BENCH_SIZE bytes (10240), BENCH_IDLE sessions (10000),
//! BENCH_POSTFIX=0 to skip Postfix. BENCH_ONLY=load, idle, archives or hostile
//! runs one section (`hostile`: worst-case messages and intake throughput,
//! BENCH_HOSTILE_SIZE, BENCH_INTAKE_MESSAGES).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/client.rs"]
mod client;
#[path = "sections/hostile.rs"]
mod hostile;
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
    msgs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: usize,
}

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
            let mut c = match Client::connect_tls(addr, tls).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("connect failed: {e}");
                    return (latencies, messages);
                }
            };
            for _ in 0..messages {
                let r: client::Result<Duration> = async {
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
                    Ok(t.elapsed())
                }
                .await;
                match r {
                    Ok(d) => latencies.push(d),
                    Err(_) => failures += 1,
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
        msgs_per_sec: all.len() as f64 / wall,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        failures,
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    rss_field(pid, "VmHWM:")
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

fn start_ours(group_commit_max: usize) -> Ours {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        "data_dir = {data:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nhostname = \"mx.bench\"\n\
         [limits]\ngreeting_delay = 0\nmax_sessions = 12000\nmax_sessions_per_ip = 12000\n\
         [store]\ngroup_commit_max = {group_commit_max}\n[intake]\nenabled = false\n[sender_auth]\nenabled=false\n[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n"
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

/// A private Postfix instance under `dir`: STARTTLS required (TLS 1.2+),
/// mail for the security domains relayed to the discard transport.
struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    addr: SocketAddr,
}

impl Postfix {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Result<Postfix, String> {
        let run = |args: &[&str]| -> Result<String, String> {
            let out = Command::new(args[0])
                .args(&args[1..])
                .output()
                .map_err(|e| format!("{}: {e}", args[0]))?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                Ok(text)
            } else {
                Err(format!("{args:?}: {text}"))
            }
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let config_dir = dir.join("etc");
        let queue = dir.join("queue");
        let data = dir.join("data");
        for d in [&config_dir, &queue, &data] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        run(&["chown", "postfix:postfix", &data.to_string_lossy()])?;
        std::fs::copy("/etc/postfix/master.cf", config_dir.join("master.cf"))
            .map_err(|e| e.to_string())?;
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {d}\nmail_owner = postfix\nsetgid_group = postdrop\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = pf.bench\nmydestination =\nmynetworks = 127.0.0.0/8\n\
             relay_domains = magenta.example netcompany.example\nsmtpd_relay_restrictions = permit_mynetworks, reject\n\
             default_transport = discard\nrelay_transport = discard\nlocal_transport = discard\nalias_maps =\nalias_database =\n\
             smtpd_tls_cert_file = {c}\nsmtpd_tls_key_file = {k}\nsmtpd_tls_security_level = encrypt\nsmtpd_tls_protocols = >=TLSv1.2\n\
             smtpd_tls_mandatory_protocols = >=TLSv1.2\nsmtpd_tls_session_cache_database =\nmaillog_file_prefixes = {dir}\nmaillog_file = {log}\n\
             smtpd_client_connection_count_limit = 0\nsmtpd_client_message_rate_limit = 0\nanvil_rate_time_unit = 60s\n\
             default_process_limit = 300\nsmtpd_banner = $myhostname ESMTP\n",
            q = queue.display(),
            d = data.display(),
            c = cert.display(),
            k = key.display(),
            log = dir.join("maillog").display(),
            dir = dir.display(),
        );
        std::fs::write(config_dir.join("main.cf"), main_cf).map_err(|e| e.to_string())?;
        let cfg = config_dir.to_string_lossy().into_owned();
        // Listen on our port, and no chroot (the private queue has no /etc).
        run(&["postconf", "-c", &cfg, "-M#", "smtp/inet"])?;
        run(&[
            "postconf",
            "-c",
            &cfg,
            "-M",
            &format!("127.0.0.1:{port}/inet = 127.0.0.1:{port} inet n - n - - smtpd"),
        ])?;
        run(&["postconf", "-c", &cfg, "-F", "*/*/chroot = n"])?;
        let maillog = || std::fs::read_to_string(dir.join("maillog")).unwrap_or_default();
        run(&["postfix", "-c", &cfg, "check"]).map_err(|e| format!("{e}{}", maillog()))?;
        run(&["postfix", "-c", &cfg, "start"]).map_err(|e| format!("{e}{}", maillog()))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e: std::net::AddrParseError| e.to_string())?;
        let start = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                return Err("postfix did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Postfix {
            config_dir,
            queue_dir: queue,
            addr,
        })
    }

    /// The master and all its children (smtpd, cleanup, qmgr...): summed
    /// peak RSS, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let pid_file = self.queue_dir.join("pid/master.pid");
        let Some(master) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            return 0;
        };
        let children = Command::new("pgrep")
            .args(["-P", &master.to_string()])
            .output()
            .ok();
        let children = children.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect::<Vec<u32>>()
        });
        peak_rss_kib(master)
            + children
                .unwrap_or_default()
                .into_iter()
                .map(peak_rss_kib)
                .sum::<u64>()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .args(["-c", &self.config_dir.to_string_lossy(), "stop"])
            .output();
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

/// Decrypt-and-extract time of our bounded extractor against `7z x` on the
/// same files (best of 5 each; the CLI's time includes its process start).
fn bench_archives() {
    use disclosure_mx::intake::extract::{ExtractLimits, extract};
    const PW: &str = "correct horse battery staple";
    let dir = tempfile::tempdir().unwrap();
    // A 20 MB 7z: 20 MB of varied text, AES-256, encrypted headers.
    let mut text = String::with_capacity(21 << 20);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while text.len() < 20 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!(
            "line {x:016x} of a long log attached to a report\n"
        ));
    }
    std::fs::write(dir.path().join("big.log"), &text).unwrap();
    let big = dir.path().join("big.7z");
    let made = Command::new("7z")
        .args(["a", "-t7z", "-mhe=on", "-bd", "-bso0", &format!("-p{PW}")])
        .arg(&big)
        .arg(dir.path().join("big.log"))
        .status();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/archives");
    let mut files: Vec<PathBuf> = [
        "report-aes-he.7z",
        "report-aes.7z",
        "report-aes256.zip",
        "report-zipcrypto.zip",
        "zip-in-7z.7z",
    ]
    .iter()
    .map(|n| fixtures.join(n))
    .collect();
    if made.is_ok_and(|s| s.success()) {
        files.push(big);
    } else {
        println!("archives: 7z not available; run `make bench`, which installs p7zip-full");
        return;
    }
    println!(
        "\narchives: decrypt and extract in memory (ours, first of 5 runs) vs `7z x -so` (best of 5, process start included)"
    );
    let limits = ExtractLimits::default();
    for path in files {
        let data = std::fs::read(&path).unwrap();
        // The first run is what an unlock costs (sevenz-rust2 may cache a
        // derived key within one process); the best run shows the rest.
        let runs: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let got = extract(&data, PW, &limits).unwrap();
                assert!(!got.files().is_empty());
                t.elapsed()
            })
            .collect();
        let (ours, ours_best) = (runs[0], runs.iter().min().copied().unwrap());
        let cli = (0..5)
            .map(|_| {
                let t = Instant::now();
                let ok = Command::new("7z")
                    .args(["x", "-so", "-bd", &format!("-p{PW}")])
                    .arg(&path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
                t.elapsed()
            })
            .min()
            .unwrap();
        println!(
            "  {:<22} {:>9} bytes   ours first {:>8.2} ms (best {:>7.2})   7z best {:>8.2} ms   7z/ours {:>6.2}x",
            path.file_name().unwrap().to_string_lossy(),
            data.len(),
            ours.as_secs_f64() * 1e3,
            ours_best.as_secs_f64() * 1e3,
            cli.as_secs_f64() * 1e3,
            cli.as_secs_f64() / ours.as_secs_f64()
        );
        summary::record(
            format!(
                "archive {} 7z/ours (first run)",
                path.file_name().unwrap().to_string_lossy()
            ),
            cli.as_secs_f64() / ours.as_secs_f64(),
            "x",
            summary::Target::AtLeast(1.0),
        );
    }
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
    raise_file_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `cargo bench` passes --bench; nothing else is expected.
    let only = std::env::var("BENCH_ONLY").ok();
    match only.as_deref() {
        Some("archives") => bench_archives(),
        Some("idle") => bench_idle(&rt, env_or("BENCH_IDLE", 10_000)),
        Some("hostile") => {
            hostile::bench_hostile(&rt);
            hostile::bench_intake(&rt);
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
            if only.as_deref() != Some("load") {
                bench_idle(&rt, env_or("BENCH_IDLE", 10_000));
                bench_archives();
                hostile::bench_hostile(&rt);
                hostile::bench_intake(&rt);
            }
        }
    }
    summary::finish();
}

/// Each load point against a fresh disclosure-mx (group commit; at the
/// first point also one fsync per message) and, in the same run, Postfix.
fn bench_load(rt: &tokio::runtime::Runtime, points: &[Load]) {
    use summary::{Target, record};
    let dir = tempfile::tempdir().unwrap();
    let certs = start_ours(256);
    let tls_dir = certs._dir.path().join("data/tls");
    let postfix = if std::env::var("BENCH_POSTFIX").as_deref() == Ok("0") {
        None
    } else {
        match Postfix::start(
            dir.path(),
            &tls_dir.join("dev-cert.pem"),
            &tls_dir.join("dev-key.pem"),
        ) {
            Ok(pf) => Some(pf),
            Err(e) => {
                println!("postfix: not measured: {e}");
                None
            }
        }
    };
    for (i, load) in points.iter().enumerate() {
        let point = format!("{}x{}", load.sessions, human(load.size));
        println!(
            "\nload {point}: {} sessions x {} messages x {} bytes, STARTTLS, durable 250 (fsync before reply)",
            load.sessions, load.messages, load.size
        );
        let ours = start_ours(256);
        let o = rt.block_on(run_load(ours.addr, client::tls_config(&ours.cert), load));
        let rss = peak_rss_kib(ours.child.id());
        report("disclosure-mx (group commit)", &o, Some(rss));
        drop(ours);
        record(
            format!("{point} disclosure-mx"),
            o.msgs_per_sec,
            "msg/s",
            Target::None,
        );
        record(
            format!("{point} disclosure-mx p50"),
            o.p50_ms,
            "ms",
            Target::None,
        );
        let p99_target = if i == 0 {
            Target::AtMost(8.0)
        } else {
            Target::None
        };
        record(
            format!("{point} disclosure-mx p99"),
            o.p99_ms,
            "ms",
            p99_target,
        );
        record(
            format!("{point} disclosure-mx peak RSS"),
            rss as f64 / 1024.0,
            "MiB",
            Target::None,
        );
        if i == 0 {
            let single = start_ours(1);
            let s = rt.block_on(run_load(
                single.addr,
                client::tls_config(&single.cert),
                load,
            ));
            report(
                "disclosure-mx (one fsync/message)",
                &s,
                Some(peak_rss_kib(single.child.id())),
            );
            record(
                format!("{point} disclosure-mx, one fsync/message"),
                s.msgs_per_sec,
                "msg/s",
                Target::None,
            );
        }
        if let Some(pf) = &postfix {
            let p = rt.block_on(run_load(pf.addr, client::tls_config(&certs.cert), load));
            report(
                "postfix 3.7 (discard transport)",
                &p,
                Some(pf.peak_rss_kib()),
            );
            record(
                format!("{point} postfix"),
                p.msgs_per_sec,
                "msg/s",
                Target::None,
            );
            record(format!("{point} postfix p99"), p.p99_ms, "ms", Target::None);
            let ratio = o.msgs_per_sec / p.msgs_per_sec.max(f64::MIN_POSITIVE);
            println!("ratio disclosure-mx / postfix: {ratio:.2}x msgs/s");
            record(
                format!("{point} ratio to postfix"),
                ratio,
                "x",
                Target::AtLeast(6.0),
            );
        }
    }
    if postfix.is_some() {
        println!(
            "  (postfix's peak RSS is summed over its processes: master, smtpd, cleanup, qmgr...; shared pages count once per process)"
        );
    }
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
