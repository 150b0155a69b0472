//! Behind a real HAProxy: the PROXY protocol (v2 and v1) from the trusted
//! balancer names the client, whose address is then admitted, capped,
//! stamped in `Received:` and recorded; a PROXY header from anyone else is
//! refused. The web listener believes `X-Forwarded-For` only from its
//! trusted proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client::Client;
use common::haproxy::{Haproxy, free_port};
use common::{Opts, RCPT, Server, report, sh};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancers_client_is_the_peer_and_strangers_cannot_claim_one() {
    let server = Server::start(Opts {
        smtp: "allow_plaintext = true\nproxy_protocol_from = [\"127.0.0.1/32\"]",
        limits: "max_sessions_per_ip = 1",
        ..Opts::default()
    });
    let (v2, v1) = (free_port(), free_port());
    let _haproxy = Haproxy::start(
        &format!(
            "frontend smtp_v2\n  mode tcp\n  bind 127.0.0.1:{v2}\n  default_backend mx_v2\n\
             backend mx_v2\n  mode tcp\n  server mx {mx} send-proxy-v2 source 127.0.0.1\n\
             frontend smtp_v1\n  mode tcp\n  bind 127.0.0.1:{v1}\n  default_backend mx_v1\n\
             backend mx_v1\n  mode tcp\n  server mx {mx} send-proxy source 127.0.0.1\n",
            mx = server.addr
        ),
        &[v2, v1],
    );
    let via = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

    // Through the balancer, v2 and v1, from two clients.
    let (mut a, greeting) = Client::connect_from(via(v2), ip("127.0.0.5"))
        .await
        .unwrap();
    assert!(greeting.starts_with("220 mx.test"), "{greeting}");
    a.cmd("EHLO a.example", "250").await.unwrap();
    // The per-IP cap (1) counts the client, not the balancer: a second
    // client is admitted, a second session of the first is not.
    let (mut b, greeting) = Client::connect_from(via(v1), ip("127.0.0.6"))
        .await
        .unwrap();
    assert!(greeting.starts_with("220 mx.test"), "{greeting}");
    let refused = Client::connect_from(via(v2), ip("127.0.0.5")).await;
    let text = match refused {
        Ok((_, greeting)) => greeting,
        Err(e) => e.to_string(),
    };
    assert!(text.starts_with("421 4.7.0 Too many connections"), "{text}");

    b.cmd("EHLO b.example", "250").await.unwrap();
    let reply = a
        .send(
            "r@a.example",
            RCPT,
            &report("Responsible disclosure: via v2", "x"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let reply = b
        .send(
            "r@b.example",
            RCPT,
            &report("Responsible disclosure: via v1", "x"),
        )
        .await
        .unwrap();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    a.cmd("QUIT", "221").await.unwrap();
    b.cmd("QUIT", "221").await.unwrap();

    let messages = server.messages();
    let peer_of = |from: &str| -> String {
        let m: &Value = messages.iter().find(|m| m["mail_from"] == from).unwrap();
        m["peer"].as_str().unwrap().to_owned()
    };
    assert!(
        peer_of("r@a.example").starts_with("127.0.0.5:"),
        "{messages:?}"
    );
    assert!(
        peer_of("r@b.example").starts_with("127.0.0.6:"),
        "{messages:?}"
    );
    let raw = server.raw_messages().await;
    let raw: Vec<String> = raw
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    let received = |who: &str| {
        raw.iter()
            .find(|r| r.contains(&format!("Responsible disclosure: via {who}")))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(received("v2").contains("[127.0.0.5]"), "{}", received("v2"));
    assert!(received("v1").contains("[127.0.0.6]"), "{}", received("v1"));
    assert!(!received("v2").contains("127.0.0.1"), "{}", received("v2"));

    // A stranger cannot claim an address: its PROXY header is refused.
    let (mut c, greeting) = Client::connect_from(server.addr, ip("127.0.0.9"))
        .await
        .unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    c.write(b"PROXY TCP4 192.0.2.66 127.0.0.1 4000 25\r\n")
        .await
        .unwrap();
    let reply = c.reply().await.unwrap();
    assert!(
        reply.starts_with("554 5.7.1 PROXY header refused"),
        "{reply}"
    );
    // ...and a v2 header likewise, from another stranger: with
    // max_sessions_per_ip = 1 a second session from 127.0.0.9 could meet
    // the cap before the first one's slot is released, be refused 421
    // and closed unread, and the header written to it reset the socket.
    let (mut c, greeting) = Client::connect_from(server.addr, ip("127.0.0.10"))
        .await
        .unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    let mut v2_header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2_header.extend_from_slice(&[192, 0, 2, 66, 127, 0, 0, 1, 0x0f, 0xa0, 0, 25]);
    c.write(&v2_header).await.unwrap();
    let reply = c.reply().await.unwrap();
    assert!(
        reply.starts_with("554 5.7.1 PROXY header refused"),
        "{reply}"
    );
    // The trusted balancer's address without a header gets a clear 421.
    let direct = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut direct = tokio::io::BufReader::new(direct);
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    direct
        .get_mut()
        .write_all(b"EHLO nobody\r\n")
        .await
        .unwrap();
    let mut line = String::new();
    direct.read_line(&mut line).await.unwrap();
    assert!(
        line.starts_with("421 4.7.0 No valid PROXY header"),
        "{line}"
    );

    assert_eq!(
        server.messages().len(),
        2,
        "nothing stored from the refusals"
    );
    let log = server.log();
    assert!(
        !log.contains("192.0.2.66"),
        "a refused claim is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_believes_forwarded_for_only_from_its_proxy() {
    let server = Server::start(Opts {
        intake: "enabled = true",
        extra: "[web]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n".into(),
        ..Opts::default()
    });
    let web: SocketAddr = common::web::web_addr(&server.data_dir()).parse().unwrap();
    let front = free_port();
    let _haproxy = Haproxy::start(
        &format!(
            "frontend web\n  mode http\n  bind 127.0.0.1:{front}\n  option forwardfor\n  default_backend app\n\
             backend app\n  mode http\n  server app {web}\n"
        ),
        &[front],
    );
    let (ok, token, err) = server.cli(&["tokens", "create", "bot", "--org", "netcompany"], None);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let get = |base: String, source: &str, forged: Option<&str>| {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--interface",
            source,
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
        if let Some(f) = forged {
            cmd.args(["-H", &format!("X-Forwarded-For: {f}")]);
        }
        let (ok, out) = sh(cmd.arg(format!("{base}/api/v1/cases")));
        assert!(ok && out == "200", "{out}");
    };
    // Through the proxy, with a forged hop the client prepended.
    get(
        format!("http://127.0.0.1:{front}"),
        "127.0.0.7",
        Some("192.0.2.66"),
    );
    // Straight to the listener with a forged header.
    get(format!("http://{web}"), "127.0.0.8", Some("192.0.2.77"));

    let (_, out, _) = server.cli(&["audit", "list", "--json"], None);
    let audit: Vec<Value> = serde_json::from_str(&out).unwrap();
    let sources: Vec<&str> = audit
        .iter()
        .filter(|e| e["actor"] == "token:bot")
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["127.0.0.7", "127.0.0.8"], "{audit:?}");
}
