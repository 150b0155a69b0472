//! A small, strict SMTP client over STARTTLS, for the end-to-end tests and
//! the load generator. It speaks exactly what it is told, so tests can also
//! make it misbehave.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::ServerName};

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct Client {
    io: BufReader<Box<dyn Stream>>,
}

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A TLS client config trusting exactly `cert_pem` (the server's cert).
pub fn tls_config(cert_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.expect("cert pem")).expect("add root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Result<(Client, String)> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut c = Client {
            io: BufReader::new(Box::new(tcp)),
        };
        let greeting = c.reply().await?;
        Ok((c, greeting))
    }

    /// Connects from `source` (another loopback address, say) and reads
    /// the greeting.
    pub async fn connect_from(
        addr: SocketAddr,
        source: std::net::IpAddr,
    ) -> Result<(Client, String)> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let tcp = socket.connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut c = Client {
            io: BufReader::new(Box::new(tcp)),
        };
        let greeting = c.reply().await?;
        Ok((c, greeting))
    }

    /// Connects, greets, upgrades to TLS and greets again.
    pub async fn connect_tls(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Client> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut plain = BufReader::new(tcp);
        expect(read_reply(&mut plain).await?, "220")?;
        plain.get_mut().write_all(b"EHLO client.test\r\n").await?;
        expect(read_reply(&mut plain).await?, "250")?;
        plain.get_mut().write_all(b"STARTTLS\r\n").await?;
        expect(read_reply(&mut plain).await?, "220")?;
        let stream = TlsConnector::from(tls)
            .connect(ServerName::try_from("localhost")?, plain.into_inner())
            .await?;
        let mut c = Client {
            io: BufReader::new(Box::new(stream)),
        };
        c.cmd("EHLO client.test", "250").await?;
        Ok(c)
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.io.get_mut().write_all(bytes).await?;
        self.io.get_mut().flush().await?;
        Ok(())
    }

    /// Reads one (possibly multi-line) reply.
    pub async fn reply(&mut self) -> Result<String> {
        read_reply(&mut self.io).await
    }

    /// Sends a command line and checks the reply's prefix.
    pub async fn cmd(&mut self, line: &str, want: &str) -> Result<String> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        expect(self.reply().await?, want)
    }

    /// One whole transaction; returns the final reply after the data.
    /// `body` uses CRLF; leading dots are stuffed here.
    pub async fn send(&mut self, from: &str, to: &str, body: &[u8]) -> Result<String> {
        self.cmd(&format!("MAIL FROM:<{from}>"), "250").await?;
        self.cmd(&format!("RCPT TO:<{to}>"), "250").await?;
        self.cmd("DATA", "354").await?;
        let mut data = Vec::with_capacity(body.len() + 16);
        let mut at_line_start = true;
        for &b in body {
            if at_line_start && b == b'.' {
                data.push(b'.');
            }
            data.push(b);
            at_line_start = b == b'\n';
        }
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        self.write(&data).await?;
        self.reply().await
    }
}

async fn read_reply<R: AsyncBufReadExt + Unpin>(io: &mut R) -> Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 {
            return Err(format!("connection closed after {all:?}").into());
        }
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return Ok(all);
        }
    }
}

fn expect(reply: String, want: &str) -> Result<String> {
    if reply.starts_with(want) {
        Ok(reply)
    } else {
        Err(format!("wanted {want}, got {reply:?}").into())
    }
}
