//! The tokio driver: accepts connections, admits them under the caps, and
//! runs each session by reading, feeding the core, writing its replies and
//! carrying out its actions. It also owns time (greeting delay, idle and
//! session timeouts) and the STARTTLS upgrade.
//!
//! What it must never do: decide protocol questions (that is `session`),
//! stall `accept` (refusals are written without waiting), or let a plaintext
//! byte read before the handshake reach the TLS session: the upgrade moves
//! the bare `TcpStream` into the acceptor and the core has dropped its input.

use super::content::{ContentCheck, Verdict};
use super::limits::Limits;
use super::metrics as names;
use super::reply::Reply;
use super::session::{Action, Delivery, Session, SessionConfig};
use super::sink::{MessageSink, Stamp};
use super::wire::Wire;
use super::{proxy, tls, trace};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{Instrument, debug, info, info_span, warn};

/// Bytes read from a socket at a time while message content arrives: large
/// enough that DATA moves in few reads.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read at a time between messages: a command line's worth, so that
/// thousands of idle sessions cost little (`make bench`, idle sessions).
const COMMAND_CHUNK: usize = 1024;

/// Everything sessions share.
pub struct Receiver {
    pub session: Arc<SessionConfig>,
    /// Message memory all sessions share, in KiB permits
    /// (`Limits::max_inflight_body_bytes`).
    pub body_memory: Arc<Semaphore>,
    pub tls: TlsAcceptor,
    /// Stores what arrived (the store's group-commit writer).
    pub store: Arc<dyn MessageSink>,
    /// Signalled after every committed message, for whoever processes them.
    pub stored: Arc<tokio::sync::Notify>,
    /// Judges what arrived without TLS (the plaintext rule).
    pub content: Arc<dyn ContentCheck>,
    /// Peers that must, and alone may, open with a PROXY header naming
    /// the client they relay for (`smtp.proxy_protocol_from`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The shutdown signal and the tracker that tells when the last session has
/// gone (mini-redis style): each session holds a clone of `done`.
#[derive(Clone)]
pub struct Shutdown {
    signal: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
}

pub struct ShutdownControl {
    signal: watch::Sender<bool>,
    done_rx: mpsc::Receiver<()>,
    done_tx: Option<mpsc::Sender<()>>,
}

impl ShutdownControl {
    pub fn new() -> Self {
        let (signal, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        ShutdownControl {
            signal,
            done_rx,
            done_tx: Some(done_tx),
        }
    }

    pub fn handle(&self) -> Option<Shutdown> {
        Some(Shutdown {
            signal: self.signal.subscribe(),
            _done: self.done_tx.clone()?,
        })
    }

    /// Signals every session, then waits until all have ended or `grace`
    /// has passed. Returns whether all ended.
    pub async fn drain(mut self, grace: std::time::Duration) -> bool {
        let _ = self.signal.send(true);
        self.done_tx = None;
        timeout(grace, self.done_rx.recv()).await.is_ok()
    }
}

impl Default for ShutdownControl {
    fn default() -> Self {
        Self::new()
    }
}

/// Admission: a global cap and a per-IP cap, both released on drop.
#[derive(Clone)]
pub struct Admission {
    global: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
}

pub struct Permit {
    _global: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(limits: &Limits) -> Self {
        Admission {
            global: Arc::new(Semaphore::new(limits.max_sessions)),
            per_ip: Arc::default(),
            max_per_ip: limits.max_sessions_per_ip,
        }
    }

    /// A permit, or None when either cap is reached. Never waits.
    pub fn try_admit(&self, ip: IpAddr) -> Option<Permit> {
        let ip = client_key(ip);
        let global = Arc::clone(&self.global).try_acquire_owned().ok()?;
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(Permit {
            _global: global,
            ip,
            per_ip: Arc::clone(&self.per_ip),
        })
    }
}

/// The unit the per-IP cap counts: an IPv4 address, or an IPv6 /64 (one
/// end site usually holds a whole /64, so counting /128s would let a single
/// host open unlimited sessions).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
        v4 => v4,
    }
}

/// Accepts until `shutdown` fires. Each admitted connection gets a task.
pub async fn accept_loop(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    admission: Admission,
    shutdown: Shutdown,
) {
    let mut signal = shutdown.signal.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly
                    // rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let receiver = Arc::clone(&receiver);
        let shutdown = shutdown.clone();
        let admission = admission.clone();
        let id = session_id();
        if receiver
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&peer.ip()))
        {
            // The client's address comes first; admission counts the client,
            // not the balancer. Read in the session's task, never in accept.
            let proxy = peer;
            tokio::spawn(async move {
                let limits = &receiver.session.limits;
                let Some((peer, early)) = proxy_header(&tcp, limits).await else {
                    connection_ended("no_proxy_header");
                    let _ = tcp.try_write(Reply::ProxyMissing.render().as_bytes());
                    return;
                };
                let span = info_span!("session", id = %id, %peer, %proxy);
                admit_and_run(tcp, peer, early, receiver, admission, shutdown, id)
                    .instrument(span)
                    .await;
            });
        } else {
            let span = info_span!("session", id = %id, %peer);
            tokio::spawn(
                admit_and_run(tcp, peer, Vec::new(), receiver, admission, shutdown, id)
                    .instrument(span),
            );
        }
    }
}

/// Reads a trusted proxy's PROXY header: the client's address (the proxy's
/// own for LOCAL) and any bytes that followed it, or None (logged) when no
/// valid header came within `Limits::proxy_header_timeout`.
async fn proxy_header(tcp: &TcpStream, limits: &Limits) -> Option<(SocketAddr, Vec<u8>)> {
    let own = tcp.peer_addr().ok()?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let deadline = Instant::now() + limits.proxy_header_timeout;
    loop {
        match proxy::parse(&buf) {
            proxy::Parsed::NeedMore => {}
            proxy::Parsed::Header { source, len } => {
                let client = match source {
                    proxy::Source::Client(addr) => addr,
                    proxy::Source::Local => own,
                };
                return Some((client, buf.split_off(len)));
            }
            proxy::Parsed::Invalid(why) => {
                info!(proxy = %own, reason = why, "refused: no valid PROXY header");
                return None;
            }
        }
        let room = (proxy::MAX_PROXY_HEADER - buf.len()).min(chunk.len());
        let read = timeout_at(deadline, async {
            loop {
                tcp.readable().await?;
                match tcp.try_read(&mut chunk[..room]) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            }
        })
        .await;
        match read {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return None,
            Err(_) => {
                info!(proxy = %own, "refused: PROXY header timed out");
                return None;
            }
        }
    }
}

/// Admits the client under both caps (refusing with 421 without waiting
/// when either is full), then runs its session.
async fn admit_and_run(
    tcp: TcpStream,
    peer: SocketAddr,
    early: Vec<u8>,
    receiver: Arc<Receiver>,
    admission: Admission,
    shutdown: Shutdown,
    id: String,
) {
    let Some(permit) = admission.try_admit(peer.ip()) else {
        // Best effort, without waiting: a full socket buffer on a fresh
        // connection is impossible in practice, and if it happens the
        // client just sees the close.
        let _ = tcp.try_write(Reply::TooBusy.render().as_bytes());
        debug!("refused: session cap reached");
        connection_ended("busy");
        return;
    };
    let open = metrics::gauge!(names::SESSIONS_OPEN);
    open.increment(1.0);
    let outcome = run_session(tcp, peer, early, &receiver, shutdown, &id).await;
    open.decrement(1.0);
    connection_ended(outcome);
    drop(permit);
}

/// Counts a connection by how it ended: `closed` (the session ran to its
/// end, whatever it refused), `lost` (an I/O error), `tls_failed`, `busy`
/// (a cap was full), `no_proxy_header`.
fn connection_ended(outcome: &'static str) {
    metrics::counter!(names::CONNECTIONS, "outcome" => outcome).increment(1);
}

enum Next {
    Close,
    StartTls,
}

async fn run_session(
    mut tcp: TcpStream,
    peer: SocketAddr,
    early: Vec<u8>,
    receiver: &Receiver,
    mut shutdown: Shutdown,
    id: &str,
) -> &'static str {
    let limits = &receiver.session.limits;
    let deadline = Instant::now() + limits.session_timeout;
    let mut session = Session::new(Arc::clone(&receiver.session), peer);
    let mut ctx = Ctx {
        receiver,
        id,
        deadline,
        body_permit: None,
        buf: vec![0; COMMAND_CHUNK],
        out: Vec::new(),
        delivered: 0,
    };
    info!("connected");

    // RFC 5321 §3.1: the client waits for the greeting. Listen first.
    // Bytes that came behind a PROXY header were sent before it too.
    let mut first = Vec::new();
    if !early.is_empty() {
        first = session.feed(&early);
    } else if !limits.greeting_delay.is_zero()
        && let Ok(r) = timeout(limits.greeting_delay, tcp.read(&mut ctx.buf)).await
    {
        match r {
            Ok(0) => return "closed",
            Err(_) => return "lost",
            Ok(n) => {
                metrics::counter!(names::BYTES).increment(n as u64);
                first = session.feed(&ctx.buf[..n]);
            }
        }
    }
    if first.is_empty() {
        first = session.greeting();
    }
    // Each step's future and result end with its statement, so an idle
    // TLS session's future holds the stream once and nothing of the plain
    // part before it (`make bench`, idle sessions).
    let plain = Box::pin(converse(
        &mut tcp,
        &mut session,
        &mut ctx,
        &mut shutdown,
        first,
    ))
    .await;
    let result = match plain {
        Ok(Next::StartTls) => {
            let Some(mut stream) = start_tls(tcp, receiver).await else {
                return "tls_failed";
            };
            let info = tls::negotiated(stream.get_ref().1);
            info!(version = %info.version, cipher = %info.cipher, "tls established");
            metrics::counter!(names::TLS, "version" => info.version.clone(), "cipher" => info.cipher.clone())
                .increment(1);
            session.tls_established(info);
            let secure = Box::pin(converse(
                &mut stream,
                &mut session,
                &mut ctx,
                &mut shutdown,
                Vec::new(),
            ))
            .await;
            secure.map(|_| ())
        }
        Ok(Next::Close) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            info!(messages = ctx.delivered, "closed");
            "closed"
        }
        Err(e) => {
            info!(messages = ctx.delivered, error = %e, "connection lost");
            "lost"
        }
    }
}

/// The TLS handshake under its timeout: the stream, or None (logged).
async fn start_tls(tcp: TcpStream, receiver: &Receiver) -> Option<TlsStream<TcpStream>> {
    let limit = receiver.session.limits.tls_handshake_timeout;
    match timeout(limit, receiver.tls.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            info!(error = %e, "tls handshake failed");
            None
        }
        Err(_) => {
            info!("tls handshake timed out");
            None
        }
    }
}

struct Ctx<'a> {
    receiver: &'a Receiver,
    /// This session's share of `Receiver::body_memory`.
    body_permit: Option<OwnedSemaphorePermit>,
    id: &'a str,
    deadline: Instant,
    buf: Vec<u8>,
    out: Vec<u8>,
    delivered: u64,
}

/// Runs the session over one stream until it closes or asks for TLS.
async fn converse<S: Wire>(
    stream: &mut S,
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    shutdown: &mut Shutdown,
    first: Vec<Action>,
) -> std::io::Result<Next> {
    let limits = &ctx.receiver.session.limits;
    let mut pending: std::collections::VecDeque<Action> = first.into();
    let mut shutdown_seen = *shutdown.signal.borrow();
    if shutdown_seen {
        pending.extend(session.shutdown());
    }
    loop {
        while let Some(action) = pending.pop_front() {
            match action {
                Action::Reply(reply) => {
                    metrics::counter!(names::REPLIES, "class" => reply.class(), "reason" => reply.reason())
                        .increment(1);
                    if reply.code() >= 400 {
                        debug!(code = reply.code(), reply = ?reply, "refused");
                    }
                    ctx.out.extend_from_slice(reply.render().as_bytes());
                }
                Action::Deliver(delivery) => {
                    flush(stream, &mut ctx.out, limits).await?;
                    let result = deliver(ctx, delivery).await;
                    // The body is stored (or refused) and freed.
                    ctx.body_permit = None;
                    pending.extend(session.stored(result));
                }
                Action::StartTls => {
                    flush(stream, &mut ctx.out, limits).await?;
                    return Ok(Next::StartTls);
                }
                Action::Close => {
                    flush(stream, &mut ctx.out, limits).await?;
                    let _ = stream.shutdown().await;
                    return Ok(Next::Close);
                }
            }
        }
        flush(stream, &mut ctx.out, limits).await?;

        let idle = Instant::now() + limits.idle_timeout;
        let wake = idle.min(ctx.deadline);
        let content = session.reads_content();
        let read = async {
            if !content {
                // Between messages, wait for input holding no buffer: an
                // idle session costs none; a command line then gets a small
                // one, message content a large one.
                ctx.buf = Vec::new();
                stream.input().await?;
            }
            let chunk = if content { READ_CHUNK } else { COMMAND_CHUNK };
            if ctx.buf.len() != chunk {
                ctx.buf = vec![0; chunk];
            }
            stream.read(&mut ctx.buf).await
        };
        tokio::select! {
            r = timeout_at(wake, read) => match r {
            Ok(Ok(0)) => return Ok(Next::Close),
                Ok(Ok(n)) => {
                    metrics::counter!(names::BYTES).increment(n as u64);
                    pending.extend(session.feed(&ctx.buf[..n]));
                    reserve_body_memory(session, ctx);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    let reply = if Instant::now() >= ctx.deadline { Reply::SessionTimeout } else { Reply::IdleTimeout };
                    info!(reply = ?reply, "timed out");
                    pending.extend(session.timed_out(reply));
                }
            },
            _ = shutdown.signal.changed(), if !shutdown_seen => {
                shutdown_seen = true;
                pending.extend(session.shutdown());
            }
        }
    }
}

/// Keeps this session's share of the global message memory equal to the
/// body it holds; when no more can be granted, the message is drained and
/// refused with 452 4.3.1 instead of growing memory.
fn reserve_body_memory(session: &mut Session, ctx: &mut Ctx<'_>) {
    let want = u32::try_from(session.body_len().div_ceil(1024)).unwrap_or(u32::MAX);
    let held = ctx
        .body_permit
        .as_ref()
        .map_or(0, |p| p.num_permits() as u32);
    if want == 0 {
        ctx.body_permit = None;
    } else if want > held {
        match Arc::clone(&ctx.receiver.body_memory).try_acquire_many_owned(want - held) {
            Ok(more) => match ctx.body_permit.as_mut() {
                Some(p) => p.merge(more),
                None => ctx.body_permit = Some(more),
            },
            Err(_) => {
                info!("message memory exhausted; refusing this message with 452");
                session.refuse_body(Reply::BusyMemory);
                ctx.body_permit = None;
            }
        }
    }
}

/// Writes what is queued. A client that does not read is cut after the idle
/// timeout rather than holding the session forever.
async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Vec<u8>,
    limits: &Limits,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(out).await?;
        stream.flush().await
    };
    match timeout(limits.idle_timeout, write).await {
        Ok(r) => {
            // Not kept: an idle session holds no reply buffer.
            *out = Vec::new();
            r
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}

/// Stamps, stores and answers for one message: Ok(queue id) only once the
/// store has committed it. A message that came without TLS is first put to
/// the content check (the encrypted-archive rule, in a parse worker).
async fn deliver(ctx: &mut Ctx<'_>, delivery: Delivery) -> Result<String, Reply> {
    if delivery.envelope().tls.is_none() && !ctx.receiver.session.allow_plaintext {
        match ctx.receiver.content.plaintext(delivery.body()).await {
            Verdict::Admit => {}
            Verdict::Refuse(why) => {
                info!(reason = %why, "plaintext delivery refused; nothing stored");
                return Err(Reply::PlaintextRefused);
            }
            Verdict::Unavailable(why) => {
                warn!(reason = %why, "plaintext delivery not checked; answered 451");
                return Err(Reply::CheckUnavailable);
            }
        }
    }
    let queue_id = queue_id();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let trace_header = trace::received_header(
        delivery.envelope(),
        &ctx.receiver.session.hostname,
        &queue_id,
        now,
    );
    let size = trace_header.len() + delivery.body().len();
    let stamp = Stamp {
        queue_id: queue_id.clone(),
        received_at: now,
        session_id: ctx.id.to_owned(),
        trace_header,
    };
    match ctx.receiver.store.commit(delivery, stamp).await {
        Ok(()) => {
            ctx.delivered += 1;
            metrics::counter!(names::MESSAGES).increment(1);
            ctx.receiver.stored.notify_one();
            info!(queue_id = %queue_id, size, "stored");
            Ok(queue_id)
        }
        Err(e) => {
            warn!(error = %e, "store failed; answered 451");
            Err(Reply::StoreFailed)
        }
    }
}

fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    // SystemRandom reads the OS source; should it ever fail, a time-based
    // value keeps ids distinct enough for logs (queue ids are also UNIQUE in
    // the store, so a clash fails the commit with 451, never overwrites).
    if ring::rand::SystemRandom::new().fill(&mut buf).is_err() {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (t >> ((i % 16) * 8)) as u8);
    }
    hex::encode(buf)
}

/// A queue id: 96 random bits, unguessable and collision-free in practice.
fn queue_id() -> String {
    random_hex(12)
}

fn session_id() -> String {
    random_hex(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_cap_counts_ipv6_by_slash_64() {
        let limits = Limits {
            max_sessions: 10,
            max_sessions_per_ip: 2,
            ..Limits::default()
        };
        let a = Admission::new(&limits);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _p1 = a.try_admit(ip("2001:db8:1:2::1")).unwrap();
        let _p2 = a.try_admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(a.try_admit(ip("2001:db8:1:2::77")).is_none(), "same /64");
        let _p3 = a.try_admit(ip("2001:db8:1:3::1")).unwrap();
        let _p4 = a.try_admit(ip("::ffff:192.0.2.1")).unwrap();
        let _p5 = a.try_admit(ip("192.0.2.1")).unwrap();
        assert!(
            a.try_admit(ip("192.0.2.1")).is_none(),
            "v4-mapped counts as v4"
        );
        drop(_p5);
        assert!(a.try_admit(ip("192.0.2.1")).is_some(), "released on drop");
    }
}
