//! The service manager's side of `Type=notify` and `WatchdogSec=`: the
//! test plays systemd, binding the datagram socket named in NOTIFY_SOCKET
//! and setting WATCHDOG_USEC, and reads what the real binary sends: READY=1
//! only once it accepts mail, watchdog pings at half the interval, and
//! STOPPING=1 when SIGTERM starts the drain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Opts, Server};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

fn next(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_after_binding_watchdog_pings_and_stopping_on_term() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut server = Server::start(Opts {
        env: vec![
            ("NOTIFY_SOCKET", path.display().to_string()),
            ("WATCHDOG_USEC", "400000".into()),
        ],
        ..Opts::default()
    });
    let ready = next(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // READY means it accepts mail: the SMTP listener answers.
    let greeting = std::net::TcpStream::connect(server.addr).unwrap();
    drop(greeting);

    // Pings every 200 ms (half of 400 ms); a loaded machine may delay
    // some, so only "more than one within two seconds" is asserted.
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(2) && pings < 3 {
        if next(&socket).lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
    }
    assert!(pings >= 2, "{pings} pings in two seconds");

    server.signal("TERM");
    let mut stopping = false;
    for _ in 0..20 {
        if next(&socket).lines().any(|l| l == "STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    assert!(
        server.wait_exit(Duration::from_secs(30)),
        "{}",
        server.log()
    );
}
