//! Runs the real `disclosure-mx` binary on loopback for end-to-end tests:
//! a temporary data directory, a config file, port 0, and helpers to read
//! what it stored through its own CLI and the SQLite file itself.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod client;
pub mod dns;
pub mod gpg;
pub mod haproxy;
pub mod hooks;
pub mod mail;
mod pg;
pub mod simplesamlphp;
pub mod web;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_disclosure-mx");
pub const RCPT: &str = "security@magenta.example";

pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub cert_pem: String,
    extra_args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// Config sections the tests add to; each string is TOML lines.
#[derive(Default, Clone)]
pub struct Opts {
    pub smtp: &'static str,
    pub limits: &'static str,
    pub tls: String,
    pub store: &'static str,
    /// `[intake]` lines; empty means intake off, for receiver-only tests.
    pub intake: &'static str,
    /// Whole tables appended at the end (e.g. `[outbound]`).
    pub extra: String,
    pub args: Vec<&'static str>,
    /// Arguments after `serve` (e.g. `--dev-idp`).
    pub serve_args: Vec<&'static str>,
    /// Environment variables for the server process.
    pub env: Vec<(&'static str, String)>,
}

impl Server {
    pub fn start(opts: Opts) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = if opts.store.is_empty() {
            match test_postgres() {
                Some(admin) => format!("url = \"{}\"", fresh_database(&admin)),
                None => String::new(),
            }
        } else {
            opts.store.to_owned()
        };
        let config = format!(
            "data_dir = {data:?}\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nhostname = \"mx.test\"\n{smtp}\n\
             [limits]\n{delay}{limits}\n[tls]\n{tls}\n[store]\n{store}\n[intake]\n{intake}\n[log]\nlevel = \"debug\"\n{extra}\n",
            data = dir.path().join("data"),
            smtp = opts.smtp,
            limits = opts.limits,
            delay = if opts.limits.contains("greeting_delay") {
                ""
            } else {
                "greeting_delay = 0\n"
            },
            tls = opts.tls,
            store = store,
            intake = if opts.intake.is_empty() {
                "enabled = false"
            } else {
                opts.intake
            },
            // Sender authentication looks up DNS; suites that test it
            // start their own server on loopback and say so.
            extra = {
                let mut extra = opts.extra.clone();
                if !extra.contains("[sender_auth]") {
                    // (Written without spaces: suites that turn intake on by
                    // replacing "enabled = false" leave this one alone.)
                    extra.push_str("\n[sender_auth]\nenabled=false\n");
                }
                // Servers run side by side: each its own metrics port.
                if !extra.contains("[metrics]") {
                    extra.push_str("\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
                }
                extra
            },
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let mut extra_args: Vec<String> = opts.args.iter().map(|s| s.to_string()).collect();
        extra_args.push("serve".into());
        extra_args.extend(opts.serve_args.iter().map(|s| s.to_string()));
        let mut s = Server {
            child: spawn(dir.path(), &extra_args, &opts.env),
            dir,
            addr: "127.0.0.1:1".parse().unwrap(),
            cert_pem: String::new(),
            extra_args,
            env: opts.env,
        };
        s.wait_ready();
        s
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn wait_ready(&mut self) {
        let file = self.data_dir().join("listening");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(line) = text.lines().next()
            {
                self.addr = line.parse().unwrap();
                break;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let cert = self.data_dir().join("tls/dev-cert.pem");
        self.cert_pem = std::fs::read_to_string(cert).unwrap_or_default();
    }

    /// Starts it again on the same data directory (after a kill).
    pub fn restart(&mut self) {
        let _ = std::fs::remove_file(self.data_dir().join("listening"));
        self.child = spawn(self.dir.path(), &self.extra_args, &self.env);
        self.wait_ready();
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn kill9(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; returns whether it exited with 0.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not exit within {limit:?}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `disclosure-mx messages list --json`, parsed.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let out = Command::new(BIN)
            .args(["messages", "list", "--json", "--config"])
            .arg(self.config_path())
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a subcommand with this server's configuration.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        cli_with(&self.config_path(), &self.env, args, stdin)
    }

    /// The reference of the first case of organisation `org`.
    /// An `[outbound]` table that relays through this server (a sink),
    /// trusting its development certificate, retrying after a second.
    pub fn as_relay(&self) -> String {
        format!(
            "[outbound]\nrelay = \"{}\"\nrelay_tls_name = \"localhost\"\nrelay_ca_file = {:?}\nretry_base = 1\n",
            self.addr,
            self.data_dir().join("tls/dev-cert.pem")
        )
    }

    /// The database as bytes: SQLite's files (the database, its WAL and
    /// shared memory) read whole, or PostgreSQL's `pg_dump`.
    pub fn database_bytes(&self) -> Vec<u8> {
        if self.is_postgres() {
            let out = Command::new("pg_dump")
                .arg(self.store_url())
                .output()
                .unwrap();
            assert!(out.status.success());
            return out.stdout;
        }
        let mut all = Vec::new();
        for entry in std::fs::read_dir(self.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("disclosure-mx.db")
            {
                all.extend(std::fs::read(path).unwrap());
            }
        }
        all
    }

    /// `cases show REFERENCE --json`, parsed.
    pub fn case_json(&self, reference: &str) -> serde_json::Value {
        let (ok, out, err) = self.cli(&["cases", "show", reference, "--json"], None);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    pub fn case_of(&self, org: &str) -> String {
        self.reference_where(|c| c["org"] == org, org)
    }

    /// The case whose subject is `subject`, whole (`cases show --json`).
    pub fn case_by_subject(&self, subject: &str) -> serde_json::Value {
        self.case_json(&self.reference_where(|c| c["subject"] == subject, subject))
    }

    /// The reference of the first listed case that `pick` chooses.
    fn reference_where(&self, pick: impl Fn(&serde_json::Value) -> bool, what: &str) -> String {
        let (ok, out, err) = self.cli(&["cases", "list", "--json"], None);
        assert!(ok, "{err}");
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.iter()
            .find(|c| pick(c))
            .and_then(|c| c["reference"].as_str())
            .unwrap_or_else(|| panic!("no case {what:?}: {out}"))
            .to_owned()
    }

    /// Waits until intake has filed or quarantined every stored message.
    pub fn wait_filed(&self, expected: usize) -> Vec<serde_json::Value> {
        self.wait_filed_within(expected, Duration::from_secs(30))
    }

    /// `wait_filed`, with its own time limit.
    pub fn wait_filed_within(&self, expected: usize, limit: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let list = self.messages();
            if list.len() >= expected && list.iter().all(|m| m["state"] != "pending") {
                return list;
            }
            assert!(
                start.elapsed() < limit,
                "not filed: {} of {expected} settled\n{}",
                list.iter().filter(|m| m["state"] != "pending").count(),
                self.log()
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The database this server uses: its SQLite file, or its PostgreSQL
    /// database when the suite runs on PostgreSQL.
    pub fn store_url(&self) -> String {
        let config = std::fs::read_to_string(self.config_path()).unwrap();
        config
            .lines()
            .filter_map(|l| l.strip_prefix("url = \"").and_then(|u| u.split('"').next()))
            // `[store] url`, not a webhook's.
            .find(|u| u.starts_with("sqlite:") || u.starts_with("postgres"))
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "sqlite:{}",
                    self.data_dir().join("disclosure-mx.db").display()
                )
            })
    }

    pub fn is_postgres(&self) -> bool {
        self.store_url().starts_with("postgres")
    }

    /// A direct connection to the server's database, for checks and for
    /// injecting real database failures.
    pub async fn db(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.store_url())
            .await
            .unwrap()
    }

    /// Raw stored content of every message, read from the database and
    /// opened with the server's master key (it is sealed at rest).
    pub async fn raw_messages(&self) -> Vec<Vec<u8>> {
        let mut conn = self.db().await;
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT queue_id, raw FROM messages ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let (sealer, _) =
            disclosure_mx::store::seal::Sealer::load(&self.data_dir().join("master.key"), false)
                .unwrap();
        rows.into_iter()
            .map(|(q, raw)| {
                assert!(
                    raw.starts_with(disclosure_mx::store::seal::MAGIC),
                    "sealed at rest, in the current format"
                );
                sealer
                    .open(disclosure_mx::store::seal::Label::Message(&q), &raw)
                    .unwrap()
            })
            .collect()
    }

    pub fn tls(&self) -> std::sync::Arc<tokio_rustls::rustls::ClientConfig> {
        client::tls_config(&self.cert_pem)
    }

    /// Peak resident memory of the server process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

fn spawn(dir: &Path, extra: &[String], env: &[(&'static str, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    Command::new(BIN)
        .args(extra)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain report message with CRLF line endings.
pub fn report(subject: &str, body: &str) -> Vec<u8> {
    mail::Mail::new("Reporter <reporter@example.org>", RCPT, subject)
        .message_id(&format!("{}@example.org", subject.replace(' ', ".")))
        .text(body)
        .bytes()
}

/// Runs a shell command, returning (success, stdout+stderr).
pub fn sh(cmd: &mut Command) -> (bool, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The admin URL of the throwaway PostgreSQL server `make test` starts,
/// when this suite is to run on PostgreSQL (`DISCLOSURE_MX_TEST_BACKEND`).
pub fn test_postgres() -> Option<String> {
    match std::env::var("DISCLOSURE_MX_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(postgres_admin()),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("DISCLOSURE_MX_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// The PostgreSQL server's admin URL; tests that need PostgreSQL fail
/// loudly without it rather than skip.
pub fn postgres_admin() -> String {
    std::env::var("DISCLOSURE_MX_TEST_POSTGRES")
        .expect("DISCLOSURE_MX_TEST_POSTGRES is unset: run through `make test`, which starts PostgreSQL (deploy/with-postgres.sh)")
}

/// A new, empty database on the test server; returns its URL.
pub fn fresh_database(admin: &str) -> String {
    pg::create_database(admin, "dmx").unwrap_or_else(|e| panic!("{e}"))
}

/// `[intake]` lines that turn intake on, polling every second.
pub const INTAKE_ON: &str = "enabled = true\npoll_interval = 1";

/// A report fixture from `fixtures/reports/`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Delivers `body` over STARTTLS and checks the 250.
pub async fn deliver_from(server: &Server, from: &str, to: &str, body: &[u8]) {
    let mut c = client::Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let reply = c.send(from, to, body).await.unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
}

/// Delivers `body` from `r@researcher.example` to `to` without TLS; the
/// final reply, or the error that ended the session.
pub async fn plaintext_send(server: &Server, to: &str, body: &[u8]) -> String {
    let (mut c, _) = client::Client::connect(server.addr).await.unwrap();
    c.cmd("EHLO plain.example", "250").await.unwrap();
    match c.send("r@researcher.example", to, body).await {
        Ok(reply) => reply,
        Err(e) => e.to_string(),
    }
}

/// Runs a subcommand with `config` and `env`, feeding `stdin`: (success,
/// stdout, stderr).
pub fn cli_with(
    config: &Path,
    env: &[(&'static str, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Base64 in 76-character lines, as mail clients write attachments.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    text.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A report mail from `r@researcher.example` to Netcompany: `note` as the
/// text, each `(name, data)` attached.
pub fn mail_with_attachments(subject: &str, note: &str, attachments: &[(&str, &[u8])]) -> Vec<u8> {
    let mut m = mail::Mail::new(
        "Reporter <r@researcher.example>",
        "security@netcompany.example",
        subject,
    )
    .message_id(&format!(
        "{}@researcher.example",
        subject.len() + attachments.len()
    ))
    .part(mail::Part::Text(note.into()));
    for (name, data) in attachments {
        m = m.part(mail::Part::Attachment((*name).into(), data.to_vec()));
    }
    m.bytes()
}

/// Waits until `done` holds, checking every 100 ms, for at most `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
