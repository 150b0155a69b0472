//! The SMTP session as a state machine, free of I/O.
//!
//! The driver feeds it the bytes it read and carries out the `Action`s it
//! returns: write a reply, start TLS, store a message, close. It never
//! touches a socket, a clock or a database, so every protocol rule here is
//! tested by feeding bytes (see `tests` below and `tests/smtp_core.rs`).
//!
//! What it must never do: end DATA anywhere but at CRLF.CRLF, let a bare CR
//! or LF through, carry bytes across a STARTTLS, or hold more client input
//! than `Limits` allows.

pub use super::accept::AcceptFor;
use super::command::{self, Command, CommandError};
use super::limits::{Limits, MAX_COMMAND_LINE};
use super::reply::Reply;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the driver must do next, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Flush replies, then hand the connection to the TLS acceptor and call
    /// `Session::tls_established`.
    StartTls,
    /// Commit this message durably, then call `Session::stored`. No further
    /// input is processed until then.
    Deliver(Delivery),
    /// Flush replies and close the connection.
    Close,
}

/// Parameters negotiated by the TLS layer, recorded with every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// The envelope of one accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub peer: SocketAddr,
    pub helo: String,
    pub tls: Option<TlsInfo>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub smtputf8: bool,
}

/// A complete, checked message ready to be stored: the content with
/// dot-stuffing undone, exactly as the client meant it. Only the session
/// builds one, and only from DATA that ended at CRLF.CRLF with no bare CR,
/// bare LF or NUL and within the size limit: holding a `Delivery` is proof
/// that those checks ran.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery {
    envelope: Envelope,
    body: Vec<u8>,
}

impl Delivery {
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_parts(self) -> (Envelope, Vec<u8>) {
        (self.envelope, self.body)
    }
}

/// What a session needs to know about its server; shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub accept_for: AcceptFor,
    /// Accept anything without STARTTLS (an ops override). Off by default:
    /// the policies demand TLS 1.2 or newer.
    pub allow_plaintext: bool,
    /// Recipients whose policy allows the encrypted-archive fallback: a
    /// plaintext session may address them, and the driver then checks the
    /// content before storing. Everyone else needs STARTTLS first.
    pub plaintext_fallback: AcceptFor,
    pub limits: Limits,
}

/// The state of an open mail transaction.
#[derive(Debug, Clone)]
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    smtputf8: bool,
}

/// The DATA terminator scanner's position; see `Session::scan_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Just after CRLF (or right after the 354): a '.' here is special.
    LineStart,
    /// Inside a line.
    Mid,
    /// Saw CR; only LF may follow.
    Cr,
    /// Saw '.' at line start.
    Dot,
    /// Saw ".CR" at line start; LF ends the message.
    DotCr,
}

/// Named by what each state waits for.
#[derive(Debug)]
enum State {
    /// The greeting has not been sent; a client that talks now is refused.
    ExpectGreeting,
    ExpectEhlo,
    ExpectMail,
    ExpectRcpt(Transaction),
    ExpectRcptOrData(Transaction),
    /// Reading content that will be delivered if it ends cleanly.
    ReceivingData {
        txn: Transaction,
        scan: Scan,
        body: Vec<u8>,
    },
    /// Reading content to its end only to keep our place; `refusal` is sent
    /// once CRLF.CRLF arrives. Nothing is kept.
    DrainingData {
        scan: Scan,
        refusal: Reply,
    },
    /// A `Deliver` is out; waiting for `stored`.
    AwaitingStore,
    /// A `StartTls` is out; waiting for `tls_established`.
    AwaitingTls,
    Closed,
}

pub struct Session {
    config: Arc<SessionConfig>,
    peer: SocketAddr,
    state: State,
    /// Unprocessed input. Bounded: a command line by `MAX_COMMAND_LINE`,
    /// pipelined input behind a delivery by `Limits::max_pending_input`.
    input: Vec<u8>,
    tls: Option<TlsInfo>,
    helo: Option<String>,
    errors: u32,
    /// Shutdown was requested while a message was in flight.
    closing: bool,
}

impl Session {
    pub fn new(config: Arc<SessionConfig>, peer: SocketAddr) -> Self {
        Session {
            config,
            peer,
            state: State::ExpectGreeting,
            input: Vec::new(),
            tls: None,
            helo: None,
            errors: 0,
            closing: false,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The opening 220. Call once, when the greeting delay has passed quietly.
    pub fn greeting(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::ExpectGreeting) {
            self.state = State::ExpectEhlo;
            out.push(Action::Reply(Reply::Greeting {
                hostname: self.config.hostname.clone(),
            }));
        }
        out
    }

    /// Feeds bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        // Only a trusted proxy may name the client (the driver reads its header).
        if self.helo.is_none() && self.errors == 0 && super::proxy::is_header_start(bytes) {
            self.fail(Reply::ProxyRefused, &mut out);
            return out;
        }
        match self.state {
            State::Closed | State::AwaitingTls => return out,
            State::ExpectGreeting => {
                self.fail(Reply::TalkedFirst, &mut out);
                return out;
            }
            State::AwaitingStore
                if self.input.len() + bytes.len() > self.config.limits.max_pending_input =>
            {
                self.fail(Reply::PipelineOverflow, &mut out);
                return out;
            }
            _ => {}
        }
        self.input.extend_from_slice(bytes);
        self.process(&mut out);
        out
    }

    /// The driver's answer to `Action::Deliver`.
    /// `Err` carries the refusal: `StoreFailed` when the commit failed, or
    /// a content refusal decided by the driver (`PlaintextRefused`).
    pub fn stored(&mut self, result: Result<String, Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        if !matches!(self.state, State::AwaitingStore) {
            return out;
        }
        self.state = State::ExpectMail;
        match result {
            Ok(queue_id) => self.reply(Reply::Queued { queue_id }, &mut out),
            Err(refusal) => self.reply(refusal, &mut out),
        }
        if self.closing {
            self.fail(Reply::ShuttingDown, &mut out);
            return out;
        }
        self.process(&mut out);
        out
    }

    /// The driver's answer to `Action::StartTls`: the handshake succeeded.
    /// RFC 3207 §4.2: all knowledge from before is discarded, so the client
    /// must send EHLO again.
    pub fn tls_established(&mut self, info: TlsInfo) {
        if matches!(self.state, State::AwaitingTls) {
            self.tls = Some(info);
            self.helo = None;
            self.input.clear();
            self.state = State::ExpectEhlo;
        }
    }

    /// Whether message content is being read (a big read buffer pays).
    pub fn reads_content(&self) -> bool {
        matches!(
            self.state,
            State::ReceivingData { .. } | State::DrainingData { .. }
        )
    }

    /// Bytes of message body this session holds in memory right now.
    pub fn body_len(&self) -> usize {
        match &self.state {
            State::ReceivingData { body, .. } => body.len(),
            _ => 0,
        }
    }

    /// The driver could not grant memory for the body being received: the
    /// content is drained to its end, then refused with `refusal`, and the
    /// buffer is freed at once.
    pub fn refuse_body(&mut self, refusal: Reply) {
        if let State::ReceivingData { scan, .. } = self.state {
            self.state = State::DrainingData { scan, refusal };
        }
    }

    /// The server is shutting down. Outside a message the session ends now
    /// with 421; a message in flight is finished (and stored) first.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::ReceivingData { .. } | State::DrainingData { .. } | State::AwaitingStore => {
                self.closing = true;
            }
            State::Closed => {}
            _ => self.fail(Reply::ShuttingDown, &mut out),
        }
        out
    }

    /// A timeout decided by the driver; the session ends with `reply`.
    pub fn timed_out(&mut self, reply: Reply) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_closed() {
            self.fail(reply, &mut out);
        }
        out
    }

    fn reply(&mut self, reply: Reply, out: &mut Vec<Action>) {
        let counts = reply.is_protocol_error();
        out.push(Action::Reply(reply));
        if counts {
            self.errors += 1;
            if self.errors >= self.config.limits.max_errors {
                self.fail(Reply::TooManyErrors, out);
            }
        }
    }

    /// Sends a final reply and closes; nothing after it is processed.
    fn fail(&mut self, reply: Reply, out: &mut Vec<Action>) {
        if self.is_closed() {
            return;
        }
        out.push(Action::Reply(reply));
        out.push(Action::Close);
        self.state = State::Closed;
        self.input.clear();
    }

    fn process(&mut self, out: &mut Vec<Action>) {
        loop {
            match self.state {
                State::ReceivingData { .. } | State::DrainingData { .. } => {
                    if !self.scan_data(out) {
                        return;
                    }
                }
                State::ExpectEhlo
                | State::ExpectMail
                | State::ExpectRcpt(_)
                | State::ExpectRcptOrData(_) => {
                    let Some(lf) = self.input.iter().position(|&b| b == b'\n') else {
                        if self.input.len() >= MAX_COMMAND_LINE {
                            // No LF within a command's length: we cannot find
                            // the next command, so we reply and close.
                            self.fail(Reply::LineTooLong, out);
                        }
                        return;
                    };
                    let line: Vec<u8> = self.input.drain(..=lf).collect();
                    self.command_line(&line, out);
                }
                State::ExpectGreeting
                | State::AwaitingStore
                | State::AwaitingTls
                | State::Closed => {
                    return;
                }
            }
        }
    }

    /// Handles one line, LF included.
    fn command_line(&mut self, line: &[u8], out: &mut Vec<Action>) {
        if line.len() > MAX_COMMAND_LINE {
            return self.reply(Reply::LineTooLong, out);
        }
        let Some(body) = line.strip_suffix(b"\r\n") else {
            return self.bare_line_ending(out);
        };
        if body.contains(&b'\r') {
            return self.bare_line_ending(out);
        }
        match command::parse(body) {
            Ok(cmd) => self.command(cmd, out),
            Err(e) => {
                let reply = match e {
                    CommandError::Unrecognized => Reply::SyntaxUnrecognized,
                    CommandError::BadArgs => Reply::SyntaxBadArgs,
                    CommandError::PathTooLong => Reply::PathTooLong,
                    CommandError::BadAddress => Reply::BadAddress,
                    CommandError::NeedsSmtpUtf8 => Reply::MustUseSmtpUtf8,
                    CommandError::UnknownParameter => Reply::UnknownParameter,
                };
                self.reply(reply, out)
            }
        }
    }

    /// A bare CR or LF in a command fails the whole transaction, so that no
    /// later line can be read as part of a message the client began.
    fn bare_line_ending(&mut self, out: &mut Vec<Action>) {
        if matches!(
            self.state,
            State::ExpectRcpt(_) | State::ExpectRcptOrData(_)
        ) {
            self.state = State::ExpectMail;
        }
        self.reply(Reply::BareLineEnding, out)
    }

    fn command(&mut self, cmd: Command, out: &mut Vec<Action>) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let (next, reply) = self.transition(state, cmd, out);
        self.state = next;
        if let Some(reply) = reply {
            self.reply(reply, out);
        }
    }

    /// The command table: given the state and a command, the next state
    /// and the reply. Side actions (StartTls, Deliver, Close) go to `out`.
    fn transition(
        &mut self,
        state: State,
        cmd: Command,
        out: &mut Vec<Action>,
    ) -> (State, Option<Reply>) {
        use State::*;
        let config = Arc::clone(&self.config);
        let limits = &config.limits;
        match (state, cmd) {
            (_, Command::Quit) => {
                out.push(Action::Reply(Reply::Bye {
                    hostname: self.config.hostname.clone(),
                }));
                out.push(Action::Close);
                (Closed, None)
            }
            (s, Command::Noop) => (s, Some(Reply::Ok)),
            (s, Command::Help) => (s, Some(Reply::Help)),
            (s, Command::Vrfy) => (s, Some(Reply::CannotVrfy)),
            (s, Command::NotOffered) => (s, Some(Reply::NotImplemented)),
            (_, Command::Ehlo(name)) => {
                let reply = Reply::Ehlo {
                    hostname: self.config.hostname.clone(),
                    peer_name: name.clone(),
                    extensions: self.extensions(),
                };
                self.helo = Some(name);
                (ExpectMail, Some(reply))
            }
            (_, Command::Helo(name)) => {
                self.helo = Some(name);
                let hostname = self.config.hostname.clone();
                (ExpectMail, Some(Reply::Helo { hostname }))
            }
            (ExpectEhlo, Command::Rset) => (ExpectEhlo, Some(Reply::Ok)),
            (_, Command::Rset) => (ExpectMail, Some(Reply::Ok)),
            (ExpectEhlo, _) => (ExpectEhlo, Some(Reply::HeloFirst)),
            (ExpectMail, Command::StartTls) => {
                if self.tls.is_some() {
                    return (ExpectMail, Some(Reply::AlreadyTls));
                }
                out.push(Action::Reply(Reply::ReadyToStartTls));
                out.push(Action::StartTls);
                // RFC 3207 §5: bytes pipelined after STARTTLS are an
                // injection attempt; they must not survive the upgrade.
                self.input.clear();
                (AwaitingTls, None)
            }
            (s, Command::StartTls) if self.tls.is_some() => (s, Some(Reply::AlreadyTls)),
            // No TLS: MAIL is refused unless some organisation's policy allows
            // the encrypted-archive fallback (checked per recipient at RCPT).
            (ExpectMail, Command::Mail(_))
                if self.tls.is_none()
                    && !self.config.allow_plaintext
                    && self.config.plaintext_fallback.is_empty() =>
            {
                (ExpectMail, Some(Reply::MustStartTls))
            }
            (ExpectMail, Command::Mail(mail)) => {
                if mail
                    .size
                    .is_some_and(|s| s > limits.max_message_size as u64)
                {
                    return (ExpectMail, Some(Reply::SizeTooLarge));
                }
                let txn = Transaction {
                    mail_from: mail.address,
                    rcpt_to: Vec::new(),
                    smtputf8: mail.smtputf8,
                };
                (ExpectRcpt(txn), Some(Reply::SenderOk))
            }
            (ExpectRcpt(mut txn) | ExpectRcptOrData(mut txn), Command::Rcpt(to)) => {
                let had_rcpt = !txn.rcpt_to.is_empty();
                let back = |txn| {
                    if had_rcpt {
                        ExpectRcptOrData(txn)
                    } else {
                        ExpectRcpt(txn)
                    }
                };
                if !to.is_ascii() && !txn.smtputf8 {
                    return (back(txn), Some(Reply::MustUseSmtpUtf8));
                }
                if !self.config.accept_for.accepts(&to) {
                    return (back(txn), Some(Reply::UnknownRecipient));
                }
                if self.tls.is_none()
                    && !self.config.allow_plaintext
                    && !self.config.plaintext_fallback.accepts(&to)
                {
                    // This organisation's policy rejects plaintext outright.
                    return (back(txn), Some(Reply::MustStartTls));
                }
                if txn.rcpt_to.len() >= limits.max_recipients {
                    return (back(txn), Some(Reply::TooManyRecipients));
                }
                txn.rcpt_to.push(to);
                (ExpectRcptOrData(txn), Some(Reply::RecipientOk))
            }
            (ExpectRcpt(txn), Command::Data) => (ExpectRcpt(txn), Some(Reply::NoRecipients)),
            (ExpectRcptOrData(txn), Command::Data) => {
                if !self.input.is_empty() {
                    // RFC 2920 §3.1: DATA ends a pipelined group; content
                    // before our 354 is a client that does not wait.
                    // (`self.state` is a placeholder here, so not `fail`.)
                    out.push(Action::Reply(Reply::PipelinedData));
                    out.push(Action::Close);
                    self.input.clear();
                    return (Closed, None);
                }
                out.push(Action::Reply(Reply::StartData));
                (
                    ReceivingData {
                        txn,
                        scan: Scan::LineStart,
                        body: Vec::new(),
                    },
                    None,
                )
            }
            (s, _) => (s, Some(Reply::BadSequence)),
        }
    }

    fn extensions(&self) -> Vec<String> {
        let mut ext = vec![
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.limits.max_message_size),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.tls.is_none() {
            ext.push("STARTTLS".to_owned());
        }
        ext.push("SMTPUTF8".to_owned());
        ext
    }

    /// Consumes input in DATA. Returns true when the terminator was found and
    /// processing may go on with what follows it.
    ///
    /// Only CRLF "." CRLF ends the data. A bare CR or LF anywhere, or a NUL,
    /// turns the transaction into `DrainingData`: the content is read on to
    /// the real terminator and then refused, so nothing that follows a fake
    /// terminator can ever be taken for a command or a second message.
    fn scan_data(&mut self, out: &mut Vec<Action>) -> bool {
        let max = self.config.limits.max_message_size;
        let input = std::mem::take(&mut self.input);
        let (mut scan, mut refusal) = match &self.state {
            State::ReceivingData { scan, .. } => (*scan, None),
            State::DrainingData { scan, refusal } => (*scan, Some(refusal.clone())),
            _ => return false,
        };
        let mut end = None;
        {
            let mut body = match &mut self.state {
                State::ReceivingData { body, .. } => Some(body),
                _ => None,
            };
            let mut emit = |bytes: &[u8], refusal: &mut Option<Reply>| {
                if refusal.is_some() {
                    return;
                }
                if let Some(b) = body.as_deref_mut() {
                    if b.len() + bytes.len() > max {
                        *refusal = Some(Reply::MessageTooLarge);
                        *b = Vec::new();
                    } else {
                        b.extend_from_slice(bytes);
                    }
                }
            };
            let flaw = |r: Reply, refusal: &mut Option<Reply>| {
                // The first flaw decides the reply; the body is dropped.
                if refusal.is_none() || *refusal == Some(Reply::MessageTooLarge) {
                    *refusal = Some(r);
                }
            };
            let mut start = 0; // start of a run of plain bytes to emit
            let mut i = 0;
            while i < input.len() {
                if scan == Scan::Mid {
                    // Inside a line only CR, LF and NUL matter: skip to the
                    // next one (memchr, a word or vector at a time).
                    match memchr::memchr3(b'\r', b'\n', 0, &input[i..]) {
                        Some(k) => i += k,
                        None => break,
                    }
                }
                let b = input[i];
                i += 1;
                if b == 0 {
                    flaw(Reply::NulInData, &mut refusal);
                }
                scan = match (scan, b) {
                    (Scan::Cr, b'\n') => Scan::LineStart,
                    (Scan::DotCr, b'\n') => {
                        end = Some(i);
                        break;
                    }
                    (Scan::Cr | Scan::DotCr, b'\r') => {
                        flaw(Reply::BareLineEnding, &mut refusal);
                        Scan::Cr
                    }
                    (Scan::Cr | Scan::DotCr, _) => {
                        flaw(Reply::BareLineEnding, &mut refusal);
                        Scan::Mid
                    }
                    (_, b'\n') => {
                        // A bare LF never starts a line: `\n.\r\n` is no end.
                        flaw(Reply::BareLineEnding, &mut refusal);
                        Scan::Mid
                    }
                    (Scan::LineStart, b'.') => {
                        emit(&input[start..i - 1], &mut refusal);
                        start = i; // the dot is not content (yet)
                        Scan::Dot
                    }
                    (Scan::Dot, b'\r') => Scan::DotCr,
                    (Scan::LineStart | Scan::Mid, b'\r') => Scan::Cr,
                    // RFC 5321 §4.5.2: a leading dot followed by more text
                    // is removed; the byte after it is content.
                    (Scan::LineStart | Scan::Mid | Scan::Dot, _) => Scan::Mid,
                };
            }
            let stop = match end {
                Some(e) => e.saturating_sub(3),
                // A CR just after a line-start dot may yet be the terminator.
                None if scan == Scan::DotCr => input.len().saturating_sub(1),
                None => input.len(),
            };
            // On the terminator, `start` sits after its dot; the final CRLF
            // before it belongs to the message and was emitted already.
            if start < stop {
                emit(&input[start..stop], &mut refusal);
            }
        }
        match end {
            None => {
                self.state = match std::mem::replace(&mut self.state, State::Closed) {
                    State::ReceivingData { txn, body, .. } if refusal.is_none() => {
                        State::ReceivingData { txn, scan, body }
                    }
                    _ => State::DrainingData {
                        scan,
                        refusal: refusal.unwrap_or(Reply::BareLineEnding),
                    },
                };
                false
            }
            Some(e) => {
                self.input = input[e..].to_vec();
                let finished = std::mem::replace(&mut self.state, State::AwaitingStore);
                match (finished, refusal) {
                    (State::ReceivingData { txn, body, .. }, None) => {
                        out.push(Action::Deliver(Delivery {
                            envelope: Envelope {
                                peer: self.peer,
                                helo: self.helo.clone().unwrap_or_default(),
                                tls: self.tls.clone(),
                                mail_from: txn.mail_from,
                                rcpt_to: txn.rcpt_to,
                                smtputf8: txn.smtputf8,
                            },
                            body,
                        }));
                        false
                    }
                    (_, refusal) => {
                        self.state = State::ExpectMail;
                        self.reply(refusal.unwrap_or(Reply::BareLineEnding), out);
                        if self.closing {
                            self.fail(Reply::ShuttingDown, out);
                            return false;
                        }
                        true
                    }
                }
            }
        }
    }
}
