//! The byte stream a session runs over, plain TCP or TLS, and how to wait
//! for input without holding a read buffer: an idle session then costs no
//! buffer of ours at all (`make bench`, idle sessions).

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub trait Wire: AsyncRead + AsyncWrite + Unpin {
    /// Resolves when a read would find input (or the end, or an error):
    /// it may still find none, and then waits as any read does.
    fn input(&self) -> impl Future<Output = std::io::Result<()>>;
}

impl Wire for TcpStream {
    async fn input(&self) -> std::io::Result<()> {
        self.readable().await
    }
}

impl Wire for TlsStream<TcpStream> {
    async fn input(&self) -> std::io::Result<()> {
        let (tcp, conn) = self.get_ref();
        // Decrypted bytes waiting (or a close_notify): no socket read needed.
        // Otherwise rustls has processed every whole record it holds, so
        // more input means more bytes on the socket.
        if !conn.wants_read() {
            return Ok(());
        }
        tcp.readable().await
    }
}
