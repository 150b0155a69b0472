//! A DNS server the test starts on loopback (Python's `dnslib`, from the
//! test virtual environment `deploy/system-deps.sh test` makes), serving
//! the records the test gives, and logging what was asked.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

pub struct Dns {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dns {
    /// Serves `records`: (name, type, value) with type TXT, A, AAAA, MX or
    /// SERVFAIL.
    pub fn start(records: &[(&str, &str, &str)]) -> Dns {
        let dir = tempfile::tempdir().unwrap();
        let zone = dir.path().join("zone.json");
        let json: Vec<[&str; 3]> = records.iter().map(|(n, t, v)| [*n, *t, *v]).collect();
        std::fs::write(&zone, serde_json::to_vec(&json).unwrap()).unwrap();
        let log = dir.path().join("queries.log");
        std::fs::write(&log, "").unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new(format!("{root}/target/test-venv/bin/python"))
            .arg(format!("{root}/tests/common/dns_server.py"))
            .arg(&zone)
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the test virtual environment (deploy/system-deps.sh test)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the DNS server's port");
        Dns { child, dir, port }
    }

    /// The queries it answered, as "name TYPE" lines.
    pub fn queries(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("queries.log")).unwrap_or_default()
    }

    /// The `[sender_auth]` table that points the server at this resolver.
    pub fn sender_auth(&self, authserv_id: &str) -> String {
        format!(
            "[sender_auth]\nenabled = true\nauthserv_id = \"{authserv_id}\"\nnameservers = [\"127.0.0.1:{}\"]\ntimeout = 2\n",
            self.port
        )
    }
}
