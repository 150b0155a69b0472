//! A webhook receiver for tests: Python's http.server on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::time::{Duration, Instant};

/// A receiver that answers 503 to its first `fail_first` requests, then
/// 200, appending each request's signature and body as a JSON line.
pub struct Receiver {
    child: std::process::Child,
    pub port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start(fail_first: u32) -> Receiver {
        Receiver::start_slow(fail_first, 0)
    }

    /// As `start`, answering each request after `delay_ms`.
    pub fn start_slow(fail_first: u32, delay_ms: u32) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("hits.jsonl");
        let port_file = dir.path().join("port");
        let script = r#"
import http.server, json, sys, time
log, port_file, fail, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seen = {"n": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        seen["n"] += 1
        time.sleep(delay / 1000)
        ok = seen["n"] > fail
        with open(log, "a") as f:
            f.write(json.dumps({"ok": ok, "sig": self.headers.get("X-Disclosure-Signature"), "body": body.decode()}) + "\n")
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_address[1]))
s.serve_forever()
"#;
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&log)
            .arg(&port_file)
            .arg(fail_first.to_string())
            .arg(delay_ms.to_string())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break p;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        };
        Receiver {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn hits(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
