//! `BENCH_ONLY=hostile`: worst-case messages, built here, up to the size
//! limit, sent to a release server on its default budgets; and intake
//! throughput with parse workers.
//!
//! For each generator: whether it was filed or quarantined (and why), the
//! time from its 250 to that outcome, the worst parse attempt's CPU time and
//! peak RSS in its worker (from the server's log), the reply to the same
//! bytes without TLS (the plaintext rule), and whether the listener kept
//! answering meanwhile (a probe connects every 100 ms; its slowest greeting
//! and its failures are reported). The target: every message in at most
//! 2 s and 256 MiB, or quarantined within the budget; the listener always
//! answers.

use super::client::{self, Client};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_disclosure-mx");
const NC: &str = "security@netcompany.example";

/// `disclosure-mx serve` with `dir`'s config.toml, logging to its
/// server.log.
pub fn serve(dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub const NO_SENDER_AUTH: &str = "[sender_auth]\nenabled = false\n";

/// A release server with intake on, logging at info to a file.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub cert: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sender authentication off: no DNS in the bench but its own.
    pub fn start(intake: bool) -> Server {
        Server::start_with(intake, NO_SENDER_AUTH)
    }

    /// With `extra` tables appended to the configuration.
    pub fn start_with(intake: bool, extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let config = format!(
            "data_dir = {data:?}\npolicies_dir = {policies:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nhostname = \"mx.bench\"\n\
             [limits]\ngreeting_delay = 0\nmax_sessions = 4096\nmax_sessions_per_ip = 4096\n\
             [intake]\nenabled = {intake}\npoll_interval = 1\n[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"info\"\n{extra}\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let child = serve(dir.path());
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
        Server {
            child,
            addr,
            cert,
            dir,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn messages(&self) -> Vec<serde_json::Value> {
        let out = Command::new(BIN)
            .args(["messages", "list", "--json", "--config"])
            .arg(self.config())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

fn html(body: &str) -> Vec<u8> {
    format!(
        "From: r@researcher.example\r\nTo: {NC}\r\nSubject: Responsible disclosure: bench\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn repeat_to(unit: &str, size: usize) -> String {
    unit.repeat(size / unit.len())
}

/// The worst cases, each up to `size` bytes.
fn generators(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let half = size / 2;
    let deep = format!("{}x{}", repeat_to("<div>", half), repeat_to("</div>", half));
    let mut table = format!("<table><tr><td>{}</td></tr>", "A".repeat(100_000));
    table.push_str(&repeat_to(
        "<tr><td>x</td></tr>",
        size.saturating_sub(table.len()),
    ));
    let parts = {
        let mut m = format!(
            "From: r@researcher.example\r\nTo: {NC}\r\nSubject: Responsible disclosure: parts\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        );
        m.push_str(&repeat_to(
            "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n",
            size,
        ));
        m.push_str("--b--\r\n");
        m.into_bytes()
    };
    let headers = format!(
        "From: r@researcher.example\r\nTo: {NC}\r\nSubject: Responsible disclosure: headers\r\n{}\r\nbody\r\n",
        repeat_to("X-Header: value\r\n", size)
    )
    .into_bytes();
    let base64_line = format!(
        "From: r@researcher.example\r\nTo: {NC}\r\nSubject: Responsible disclosure: base64\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n{}\r\n--b--\r\n",
        repeat_to("QUFB", size)
    )
    .into_bytes();
    let nested = {
        let mut m = format!(
            "From: r@researcher.example\r\nTo: {NC}\r\nSubject: Responsible disclosure: nested\r\n"
        );
        let level = "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n";
        m.push_str(&repeat_to(level, size));
        m.push_str("\r\nthe innermost text\r\n");
        m.into_bytes()
    };
    vec![
        ("deep HTML nesting", html(&deep)),
        ("mis-nested HTML", html(&repeat_to("<div></i>", size))),
        ("wide table, long word", html(&table)),
        ("many parts", parts),
        ("many headers", headers),
        ("one huge base64 line", base64_line),
        ("nested message/rfc822", nested),
    ]
}

/// An encrypted zip with `entries` empty files, and a mail with `copies`
/// of it.
fn archive_mails() -> Vec<(&'static str, Vec<u8>)> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_aes_encryption(zip::AesMode::Aes256, "bench password");
    for i in 0..60_000 {
        zip.start_file(format!("e{i}"), options).unwrap();
        zip.write_all(b"").unwrap();
    }
    let many = zip.finish().unwrap().into_inner();
    let kdf = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/archives/hostile/kdf-22.7z"),
    )
    .unwrap();
    let mail = |subject: &str, archives: &[(&str, &[u8])]| {
        let mut m = format!(
            "From: r@researcher.example\r\nTo: {NC}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
             The report is attached.\r\n"
        );
        for (name, data) in archives {
            use base64::Engine as _;
            m.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64::engine::general_purpose::STANDARD.encode(data)
            ));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    };
    let kdf_parts: Vec<(String, &[u8])> = (0..100)
        .map(|i| (format!("p{i}.7z"), kdf.as_slice()))
        .collect();
    let kdf_refs: Vec<(&str, &[u8])> = kdf_parts.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    vec![
        (
            "zip, 60,000 AES entries",
            mail(
                "Responsible disclosure: many entries",
                &[("many.zip", &many)],
            ),
        ),
        (
            "100 7z, 2^22 KDF rounds",
            mail("Responsible disclosure: kdf", &kdf_refs),
        ),
    ]
}

/// Connects every 100 ms until stopped; the slowest greeting and failures.
async fn probe(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    worst_ms: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match tokio::time::timeout(Duration::from_secs(2), Client::connect(addr)).await {
            Ok(Ok((_, g))) if g.starts_with("220") => {
                worst_ms.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            _ => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The worst `cpu_ms` and `peak_rss_kib` the log gives for `queue_id`,
/// and the reasons of failed attempts.
fn attempts(log: &str, queue_id: &str) -> (u64, u64, Vec<String>) {
    let (mut cpu, mut rss, mut failed) = (0, 0, Vec::new());
    for line in log.lines().filter(|l| l.contains(queue_id)) {
        let field = |name: &str| -> Option<u64> {
            line.split(&format!("{name}="))
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        if line.contains("parsed") {
            cpu = cpu.max(field("cpu_ms").unwrap_or(0));
            rss = rss.max(field("peak_rss_kib").unwrap_or(0));
        }
        if (line.contains("intake attempt failed") || line.contains("quarantined"))
            && let Some(r) = line.split("reason=").nth(1)
        {
            failed.push(r.trim_matches('"').to_owned());
        }
    }
    (cpu, rss, failed)
}

pub fn bench_hostile(rt: &tokio::runtime::Runtime) {
    let size = std::env::var("BENCH_HOSTILE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24 * 1024 * 1024);
    let server = Server::start(true);
    let tls = client::tls_config(&server.cert);
    let (stop, worst, failures) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let prober = rt.spawn(probe(
        server.addr,
        stop.clone(),
        worst.clone(),
        failures.clone(),
    ));
    println!(
        "\nhostile messages (release build, default budgets: 256 MiB and 2 CPU s per parse, 3 attempts):"
    );
    println!(
        "  {:<26} {:>9}  {:<11} {:>9} {:>9} {:>10}  {:<14} outcome",
        "generator", "bytes", "no TLS", "to done", "worst cpu", "peak RSS", "probe worst"
    );
    let mut all = generators(size);
    all.extend(archive_mails());
    for (name, mail) in all {
        worst.store(0, Ordering::Relaxed);
        let before = failures.load(Ordering::Relaxed);
        // Without TLS: the plaintext rule, in a worker.
        let t = Instant::now();
        let plain = rt.block_on(async {
            let (mut c, _) = Client::connect(server.addr).await.ok()?;
            c.cmd("EHLO bench.example", "250").await.ok()?;
            c.send("r@researcher.example", NC, &mail).await.ok()
        });
        let plain = format!(
            "{} {:.0}ms",
            plain.as_deref().map_or("-", |r| r.get(..3).unwrap_or("?")),
            t.elapsed().as_secs_f64() * 1e3
        );
        let known = server.messages().len();
        let sent = rt.block_on(async {
            let mut c = Client::connect_tls(server.addr, tls.clone()).await.ok()?;
            c.send("r@researcher.example", NC, &mail).await.ok()
        });
        let accepted = Instant::now();
        if !sent.as_deref().is_some_and(|r| r.starts_with("250")) {
            println!("  {name:<26} {:>9}  refused over TLS: {sent:?}", mail.len());
            continue;
        }
        let done = loop {
            let list = server.messages();
            if let Some(m) = list.get(known).filter(|m| m["state"] != "pending") {
                break m.clone();
            }
            if accepted.elapsed() > Duration::from_secs(120) {
                break serde_json::json!({"state": "still pending after 120 s"});
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = accepted.elapsed();
        let queue_id = done["queue_id"].as_str().unwrap_or("");
        let (cpu, rss, failed) = attempts(&server.log(), queue_id);
        let outcome = match done["state"].as_str() {
            Some("filed") => "filed".to_owned(),
            Some("quarantined") => format!(
                "quarantined: {}",
                done["quarantine_reason"].as_str().unwrap_or("")
            ),
            other => format!("{other:?}"),
        };
        println!(
            "  {name:<26} {:>9}  {plain:<11} {:>7.2} s {:>6} ms {:>6.1} MiB  {:>5} ms, {} lost  {outcome}{}",
            mail.len(),
            took.as_secs_f64(),
            cpu,
            rss as f64 / 1024.0,
            worst.load(Ordering::Relaxed),
            failures.load(Ordering::Relaxed) - before,
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({} failed attempt(s))", failed.len())
            }
        );
    }
    // The archives: one wrong guess at each locked case, timed.
    let cases = Command::new(BIN)
        .args([
            "cases",
            "list",
            "--json",
            "--state",
            "awaiting-password",
            "--config",
        ])
        .arg(server.config())
        .output()
        .unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&cases.stdout).unwrap_or_default();
    for c in cases {
        let reference = c["reference"].as_str().unwrap_or("");
        let t = Instant::now();
        let out = Command::new(BIN)
            .args(["unlock", reference, "--password-stdin", "--config"])
            .arg(server.config())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"a wrong guess\n")?;
                child.wait_with_output()
            })
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let first = said.lines().next().unwrap_or("");
        println!(
            "  unlock {reference} ({}) with a wrong password: {:.2} s: {first}",
            c["subject"].as_str().unwrap_or(""),
            t.elapsed().as_secs_f64()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(prober);
    println!(
        "  probe: {} connection(s) failed over the whole section",
        failures.load(Ordering::Relaxed)
    );
}
