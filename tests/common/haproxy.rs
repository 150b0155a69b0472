//! A real HAProxy (Debian's `haproxy`) on loopback, in front of the server
//! under test: the PROXY protocol and `X-Forwarded-For` as a balancer
//! really sends them.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

/// A loopback port free right now (HAProxy binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Haproxy {
    /// Starts `haproxy -db` with `sections` after a minimal global and
    /// defaults, and waits until every port in `ports` accepts.
    pub fn start(sections: &str, ports: &[u16]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global\n  maxconn 200\n\ndefaults\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\n{sections}\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        for port in ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], *port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "haproxy not listening on {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Haproxy { child, _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
