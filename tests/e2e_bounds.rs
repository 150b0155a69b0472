//! Bounds end to end: slowloris, session caps, early talkers, endless
//! lines, logs that carry no content, and the embedded defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::{BIN, Opts, RCPT, Server, report};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF (or `limit`), returning what came.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> String {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut all)).await;
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_at_the_idle_timeout_while_others_are_served() {
    let server = Server::start(Opts {
        limits: "idle_timeout = 2\nmax_sessions = 64\nmax_sessions_per_ip = 60\n",
        ..Opts::default()
    });
    let started = Instant::now();
    let mut idlers = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let mut greeting = [0u8; 5];
        s.read_exact(&mut greeting).await.unwrap();
        // Half of them dribble a partial command and stop.
        if idlers.len() % 2 == 0 {
            s.write_all(b"EHLO slow").await.unwrap();
        }
        idlers.push(s);
    }
    // Meanwhile an honest client is served promptly.
    let mut honest = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let reply = honest
        .send(
            "r@example.org",
            RCPT,
            &report("Responsible disclosure", "served during the attack"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served before the idlers timed out"
    );

    for mut s in idlers {
        let got = read_to_close(&mut s, Duration::from_secs(10)).await;
        assert!(got.contains("421 4.4.2 Idle timeout"), "{got:?}");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_caps_answer_421_at_the_greeting_without_stalling_accept() {
    let server = Server::start(Opts {
        limits: "max_sessions = 3\nmax_sessions_per_ip = 2\n",
        ..Opts::default()
    });
    let (_a, g) = Client::connect(server.addr).await.unwrap();
    assert!(g.starts_with("220"));
    let (_b, g) = Client::connect(server.addr).await.unwrap();
    assert!(g.starts_with("220"));
    // Third from the same IP: per-IP cap.
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let got = read_to_close(&mut c, Duration::from_secs(5)).await;
    assert!(got.starts_with("421 4.7.0"), "{got:?}");
    // From another loopback address: allowed by the per-IP cap, then the
    // global cap is reached on the next one.
    let other = |ip: &str| {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        sock.connect(server.addr)
    };
    let mut d = other("127.0.0.2").await.unwrap();
    let mut greeting = [0u8; 3];
    d.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"220");
    let mut e = other("127.0.0.3").await.unwrap();
    let got = read_to_close(&mut e, Duration::from_secs(5)).await;
    assert!(got.starts_with("421 4.7.0"), "{got:?}");
    // A slot frees when a session ends.
    drop(d);
    // The server sees the close when it next reads: until then the slot is
    // taken and a new session is told so.
    let start = std::time::Instant::now();
    loop {
        let mut f = other("127.0.0.3").await.unwrap();
        f.read_exact(&mut greeting).await.unwrap();
        if &greeting == b"220" {
            break;
        }
        assert_eq!(&greeting, b"421", "refused while the slot is taken");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the slot never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_talks_before_the_greeting_is_refused() {
    let server = Server::start(Opts {
        limits: "greeting_delay = 0.5\n",
        ..Opts::default()
    });
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"EHLO eager.example\r\nMAIL FROM:<a@b.example>\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(got.starts_with("554 5.5.0"), "{got:?}");
    assert!(
        !got.contains("220"),
        "no greeting for early talkers: {got:?}"
    );
    // A patient client gets the greeting after the delay.
    let (_c, g) = Client::connect(server.addr).await.unwrap();
    assert!(g.starts_with("220 mx.test"), "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_line_without_lf_gets_a_reply_and_a_close_without_memory_growth() {
    let server = Server::start(Opts::default());
    let before = server.peak_rss_kib();
    let (c, _) = Client::connect(server.addr).await.unwrap();
    drop(c);
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut greeting = [0u8; 3];
    s.read_exact(&mut greeting).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..10 {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.contains("500 5.5.6 Line too long"), "{got:?}");
    let _ = writer.await;
    let after = server.peak_rss_kib();
    assert!(
        after < before + 4 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_session_ids_and_never_content() {
    let server = Server::start(Opts {
        args: vec!["--log-json"],
        ..Opts::default()
    });
    let mut client = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let secret = "SECRET-PAYLOAD-7731";
    let reply = client
        .send(
            "r@example.org",
            RCPT,
            &report(&format!("Responsible disclosure {secret}"), secret),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250"));
    client.cmd("QUIT", "221").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(!log.contains(secret), "content leaked into the log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stored = lines
        .iter()
        .find(|l| l["fields"]["message"] == "stored")
        .expect("a stored event");
    assert!(
        stored["span"]["id"]
            .as_str()
            .is_some_and(|id| id.len() == 12),
        "{stored}"
    );
    assert!(stored["fields"]["queue_id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_config_file_runs_on_the_embedded_defaults() {
    // The defaults listen on 127.0.0.1:2525, with ./data beside the cwd.
    let cwd = tempfile::tempdir().unwrap();
    // Only the policies come from the checkout, as `make run` finds them.
    let mut child = std::process::Command::new(BIN)
        .arg("serve")
        .current_dir(cwd.path())
        .env(
            "DISCLOSURE_MX_POLICIES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies"),
        )
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let data = cwd.path().join("data");
    let start = Instant::now();
    while !data.join("listening").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cert = std::fs::read_to_string(data.join("tls/dev-cert.pem")).unwrap();
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("tls/dev-key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        key_mode & 0o077,
        0,
        "dev key readable by others: {key_mode:o}"
    );
    let addr = "127.0.0.1:2525".parse().unwrap();
    // The defaults keep the greeting delay; the client simply waits.
    let mut client = Client::connect_tls(addr, common::client::tls_config(&cert))
        .await
        .unwrap();
    let reply = client
        .send(
            "r@example.org",
            "security@netcompany.example",
            &report("Responsible disclosure", "defaults"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(data.join("disclosure-mx.db").exists());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_session_is_still_cut_at_the_total_session_time() {
    let server = Server::start(Opts {
        limits: "idle_timeout = 30\nsession_timeout = 2\n",
        ..Opts::default()
    });
    let (mut c, _) = Client::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut last = String::new();
    // Bounded: at most 40 NOOPs, one every 200 ms.
    for _ in 0..40 {
        match c.cmd("NOOP", "250").await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                last = e.to_string();
                break;
            }
        }
    }
    assert!(last.contains("421 4.4.2 Session time limit"), "{last}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_memory_is_bounded_across_sessions_with_452_for_the_overflow() {
    let server = Server::start(Opts {
        limits: "max_message_size = 1048576\nmax_inflight_body_bytes = 1048576\n",
        ..Opts::default()
    });
    let chunk = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".repeat(11_000)
    );
    assert!(chunk.len() > 700_000 && chunk.len() < 800_000);
    let mut a = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    let mut b = Client::connect_tls(server.addr, server.tls())
        .await
        .unwrap();
    for c in [&mut a, &mut b] {
        c.cmd("MAIL FROM:<r@example.org>", "250").await.unwrap();
        c.cmd(&format!("RCPT TO:<{RCPT}>"), "250").await.unwrap();
        c.cmd("DATA", "354").await.unwrap();
    }
    // A holds ~740 KB in memory, unfinished.
    a.write(chunk.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // B's ~740 KB do not fit beside it: drained, then refused, try later.
    b.write(chunk.as_bytes()).await.unwrap();
    b.write(b".\r\n").await.unwrap();
    let r = b.reply().await.unwrap();
    assert!(r.starts_with("452 4.3.1"), "{r}");
    // A completes; then B's retry fits.
    a.write(b".\r\n").await.unwrap();
    assert!(a.reply().await.unwrap().starts_with("250 2.0.0"));
    let r = b
        .send("r@example.org", RCPT, chunk.as_bytes())
        .await
        .unwrap();
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(server.messages().len(), 2);
}
