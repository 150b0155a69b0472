//! Every bound the SMTP receiver enforces, in one place.
//!
//! Each field says what it caps and why the default is what it is. A value
//! that is not here is not a limit: nothing in `smtp/` may invent its own
//! constant for client-controlled sizes, counts or times.

use serde::Deserialize;
use std::time::Duration;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: a path, with its angle brackets, is at most 256 octets.
pub const MAX_PATH: usize = 256;

/// Bounds on one session and on the whole listener.
///
/// All of them can be set in the `[limits]` table of the configuration file;
/// durations are given in seconds there.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message accepted, in bytes, after dot-unstuffing.
    /// 25 MiB: reports carry screenshots and archives, and 25 MiB is what
    /// the large public mail services accept, so a reporter's server will
    /// not have to split anything we refuse.
    pub max_message_size: usize,
    /// Recipients per transaction. RFC 5321 §4.5.3.1.8 requires at least
    /// 100 to be accepted; more only helps mass mailers.
    pub max_recipients: usize,
    /// Protocol errors tolerated before the session is closed with 421.
    /// Ten leaves room for a confused but honest client and stops a
    /// scanner from probing at leisure.
    pub max_errors: u32,
    /// Seconds a client may stay silent before it is cut with 421.
    /// RFC 5321 §4.5.3.2.7 asks servers to wait at least 5 minutes.
    #[serde(with = "seconds")]
    pub idle_timeout: Duration,
    /// Seconds a whole session may last, however active. 30 minutes lets a
    /// slow link deliver several 25 MiB messages and still bounds how long
    /// one connection can hold a slot.
    #[serde(with = "seconds")]
    pub session_timeout: Duration,
    /// Seconds a TLS handshake may take after STARTTLS. A handshake is a few
    /// round trips; 30 s covers a bad link and stops a stalled handshake
    /// holding a slot.
    #[serde(with = "seconds")]
    pub tls_handshake_timeout: Duration,
    /// Seconds the server listens before sending its greeting. A client that
    /// talks first is not a real mail server (RFC 5321 §3.1) and is refused
    /// with 554. 0 disables the wait. Half a second catches the bots that
    /// talk at once and costs an honest peer nothing it would notice.
    #[serde(with = "seconds_f64")]
    pub greeting_delay: Duration,
    /// Sessions open at once on the whole listener. Each may hold up to
    /// `max_message_size` of body in memory, so this bounds memory too:
    /// 256 sessions stay well inside the machine even at full size.
    pub max_sessions: usize,
    /// Sessions open at once from one IP address. A legitimate MTA rarely
    /// opens more than a handful of parallel connections to one MX.
    pub max_sessions_per_ip: usize,
    /// Message bytes all sessions together may hold in memory while they
    /// receive. Bounds memory whatever the number of sessions: a flood of
    /// large messages gets 452 4.3.1 (try later) instead of exhausting the
    /// machine. 512 MiB is twenty full-size messages at once.
    pub max_inflight_body_bytes: usize,
    /// Bytes of client input held unprocessed (pipelined commands waiting
    /// behind a delivery). Far above any honest pipeline, far below harm.
    pub max_pending_input: usize,
    /// Seconds a trusted proxy (`smtp.proxy_protocol_from`) has to send its
    /// PROXY header. A balancer sends it at once on connecting; 5 s is
    /// Postfix's `smtpd_upstream_proxy_timeout`, and stops a stalled
    /// connection from the balancer's address holding a task.
    #[serde(with = "seconds")]
    pub proxy_header_timeout: Duration,
    /// Seconds a draining shutdown waits for sessions before giving up.
    #[serde(with = "seconds")]
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            idle_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(30 * 60),
            tls_handshake_timeout: Duration::from_secs(30),
            greeting_delay: Duration::from_millis(500),
            max_sessions: 256,
            max_sessions_per_ip: 10,
            max_inflight_body_bytes: 512 * 1024 * 1024,
            max_pending_input: 64 * 1024,
            proxy_header_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

mod seconds {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

mod seconds_f64 {
    use serde::{Deserialize, Deserializer, de::Error};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(D::Error::custom)
    }
}
