//! Every reply the receiver can send, and the one table that renders them.
//!
//! Handlers name a `Reply`; only `Reply::render` knows codes and texts, so a
//! refusal reads the same wherever it is raised. No reply ever echoes client
//! input beyond a validated domain or queue id, so nothing hostile is
//! reflected back.

use std::fmt::Write as _;

/// A reply to the client. Multi-line replies (EHLO) carry their lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Greeting {
        hostname: String,
    },
    Ehlo {
        hostname: String,
        peer_name: String,
        extensions: Vec<String>,
    },
    Helo {
        hostname: String,
    },
    Ok,
    SenderOk,
    RecipientOk,
    StartData,
    Queued {
        queue_id: String,
    },
    ReadyToStartTls,
    Help,
    CannotVrfy,
    Bye {
        hostname: String,
    },
    // Refusals, grouped by the layer that raises them.
    SyntaxUnrecognized,
    SyntaxBadArgs,
    LineTooLong,
    PipelineOverflow,
    BareLineEnding,
    NulInData,
    BadSequence,
    AlreadyTls,
    HeloFirst,
    MustStartTls,
    MustUseSmtpUtf8,
    PathTooLong,
    BadAddress,
    UnknownParameter,
    SizeTooLarge,
    MessageTooLarge,
    UnknownRecipient,
    TooManyRecipients,
    NoRecipients,
    PipelinedData,
    TalkedFirst,
    /// A PROXY header from a peer not in `smtp.proxy_protocol_from`.
    ProxyRefused,
    /// A trusted proxy sent no valid PROXY header in time.
    ProxyMissing,
    TooManyErrors,
    TooBusy,
    IdleTimeout,
    SessionTimeout,
    ShuttingDown,
    StoreFailed,
    PlaintextRefused,
    /// The content check could not run (no parse worker): try later.
    CheckUnavailable,
    BusyMemory,
    NotImplemented,
}

impl Reply {
    /// A stable name for metrics labels (`dmx_smtp_replies_total`).
    pub fn reason(&self) -> &'static str {
        match self {
            Reply::Greeting { .. } => "greeting",
            Reply::Ehlo { .. } => "ehlo",
            Reply::Helo { .. } => "helo",
            Reply::Ok => "ok",
            Reply::SenderOk => "sender_ok",
            Reply::RecipientOk => "recipient_ok",
            Reply::StartData => "start_data",
            Reply::Queued { .. } => "queued",
            Reply::ReadyToStartTls => "ready_to_start_tls",
            Reply::Help => "help",
            Reply::CannotVrfy => "cannot_vrfy",
            Reply::Bye { .. } => "bye",
            Reply::SyntaxUnrecognized => "syntax_unrecognized",
            Reply::SyntaxBadArgs => "syntax_bad_args",
            Reply::LineTooLong => "line_too_long",
            Reply::PipelineOverflow => "pipeline_overflow",
            Reply::BareLineEnding => "bare_line_ending",
            Reply::NulInData => "nul_in_data",
            Reply::BadSequence => "bad_sequence",
            Reply::AlreadyTls => "already_tls",
            Reply::HeloFirst => "helo_first",
            Reply::MustStartTls => "must_start_tls",
            Reply::MustUseSmtpUtf8 => "must_use_smtputf8",
            Reply::PathTooLong => "path_too_long",
            Reply::BadAddress => "bad_address",
            Reply::UnknownParameter => "unknown_parameter",
            Reply::SizeTooLarge => "size_too_large",
            Reply::MessageTooLarge => "message_too_large",
            Reply::UnknownRecipient => "unknown_recipient",
            Reply::TooManyRecipients => "too_many_recipients",
            Reply::NoRecipients => "no_recipients",
            Reply::PipelinedData => "pipelined_data",
            Reply::TalkedFirst => "talked_first",
            Reply::ProxyRefused => "proxy_refused",
            Reply::ProxyMissing => "proxy_missing",
            Reply::TooManyErrors => "too_many_errors",
            Reply::TooBusy => "too_busy",
            Reply::IdleTimeout => "idle_timeout",
            Reply::SessionTimeout => "session_timeout",
            Reply::ShuttingDown => "shutting_down",
            Reply::StoreFailed => "store_failed",
            Reply::PlaintextRefused => "plaintext_refused",
            Reply::CheckUnavailable => "check_unavailable",
            Reply::BusyMemory => "busy_memory",
            Reply::NotImplemented => "not_implemented",
        }
    }

    /// "2xx", "4xx", "5xx"...
    pub fn class(&self) -> &'static str {
        match self.code() / 100 {
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        }
    }
    /// The three-digit code; 4xx and 5xx are refusals.
    pub fn code(&self) -> u16 {
        self.parts().0
    }

    /// True when the reply refuses what the client asked, so it counts
    /// towards `Limits::max_errors`.
    pub fn is_protocol_error(&self) -> bool {
        matches!(
            self,
            Reply::SyntaxUnrecognized
                | Reply::SyntaxBadArgs
                | Reply::LineTooLong
                | Reply::BareLineEnding
                | Reply::NulInData
                | Reply::BadSequence
                | Reply::AlreadyTls
                | Reply::HeloFirst
                | Reply::MustStartTls
                | Reply::MustUseSmtpUtf8
                | Reply::PathTooLong
                | Reply::BadAddress
                | Reply::UnknownParameter
                | Reply::UnknownRecipient
                | Reply::NoRecipients
                | Reply::NotImplemented
        )
    }

    fn parts(&self) -> (u16, &'static str, &'static str) {
        match self {
            Reply::Greeting { .. } => (220, "", "ESMTP disclosure-mx ready"),
            Reply::Ehlo { .. } | Reply::Helo { .. } => (250, "", ""),
            Reply::Ok => (250, "2.0.0", "OK"),
            Reply::SenderOk => (250, "2.1.0", "Sender OK"),
            Reply::RecipientOk => (250, "2.1.5", "Recipient OK"),
            Reply::StartData => (354, "", "End data with <CR><LF>.<CR><LF>"),
            Reply::Queued { .. } => (250, "2.0.0", "Stored safely as"),
            Reply::ReadyToStartTls => (220, "2.0.0", "Ready to start TLS"),
            Reply::Help => (
                214,
                "2.0.0",
                "See RFC 5321; commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
            ),
            Reply::CannotVrfy => (
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Reply::Bye { .. } => (221, "2.0.0", "closing connection"),
            Reply::SyntaxUnrecognized => (500, "5.5.2", "Syntax error, command unrecognized"),
            Reply::SyntaxBadArgs => (501, "5.5.4", "Syntax error in parameters or arguments"),
            Reply::LineTooLong => (500, "5.5.6", "Line too long"),
            Reply::PipelineOverflow => {
                (421, "4.7.0", "Too much pipelined input; closing connection")
            }
            Reply::BareLineEnding => (
                550,
                "5.5.2",
                "Bare CR or LF not allowed; lines end with CRLF; transaction failed",
            ),
            Reply::NulInData => (
                550,
                "5.6.0",
                "NUL byte in message content; transaction failed",
            ),
            Reply::BadSequence => (503, "5.5.1", "Bad sequence of commands"),
            Reply::AlreadyTls => (503, "5.5.1", "TLS already active"),
            Reply::HeloFirst => (503, "5.5.1", "Send EHLO or HELO first"),
            Reply::MustStartTls => (530, "5.7.0", "Must issue a STARTTLS command first"),
            Reply::MustUseSmtpUtf8 => (
                553,
                "5.6.7",
                "Non-ASCII address requires the SMTPUTF8 parameter",
            ),
            Reply::PathTooLong => (
                501,
                "5.5.4",
                "Path, local part or domain exceeds RFC 5321 length limits",
            ),
            Reply::BadAddress => (553, "5.1.3", "Malformed address"),
            Reply::UnknownParameter => (555, "5.5.4", "Unsupported or malformed parameter"),
            Reply::SizeTooLarge => (
                552,
                "5.3.4",
                "Declared message size exceeds the fixed maximum message size",
            ),
            Reply::MessageTooLarge => (
                552,
                "5.3.4",
                "Message exceeds the fixed maximum message size",
            ),
            Reply::UnknownRecipient => (550, "5.1.1", "No such recipient here"),
            Reply::TooManyRecipients => (452, "4.5.3", "Too many recipients"),
            Reply::NoRecipients => (503, "5.5.1", "Need RCPT before DATA"),
            Reply::PipelinedData => (
                554,
                "5.5.0",
                "Message content sent before the 354 reply; closing connection",
            ),
            Reply::TalkedFirst => (
                554,
                "5.5.0",
                "Client talked before the greeting; closing connection",
            ),
            Reply::ProxyRefused => (
                554,
                "5.7.1",
                "PROXY header refused: not from a trusted proxy; closing connection",
            ),
            Reply::ProxyMissing => (
                421,
                "4.7.0",
                "No valid PROXY header from the proxy; closing connection",
            ),
            Reply::TooManyErrors => (421, "4.7.0", "Too many errors; closing connection"),
            Reply::TooBusy => (421, "4.7.0", "Too many connections; try again later"),
            Reply::IdleTimeout => (421, "4.4.2", "Idle timeout; closing connection"),
            Reply::SessionTimeout => (
                421,
                "4.4.2",
                "Session time limit reached; closing connection",
            ),
            Reply::ShuttingDown => (421, "4.3.2", "Service shutting down; try again later"),
            Reply::StoreFailed => (
                451,
                "4.3.0",
                "Could not store the message safely; try again later",
            ),
            Reply::BusyMemory => (
                452,
                "4.3.1",
                "Insufficient system storage for this message now; try again later",
            ),
            Reply::PlaintextRefused => (
                550,
                "5.7.10",
                "Without TLS only an encrypted report (OpenPGP, S/MIME, or a zip or 7z with a password) \
                 with a short covering note is accepted: use STARTTLS with TLS 1.2 or newer, or encrypt \
                 the report to our key or in a password-protected archive and send the password by another channel",
            ),
            Reply::CheckUnavailable => (
                451,
                "4.3.0",
                "Could not check the message now; try again later",
            ),
            Reply::NotImplemented => (502, "5.5.1", "Command not implemented"),
        }
    }

    /// The reply as it goes on the wire, CRLF-terminated.
    pub fn render(&self) -> String {
        let (code, status, text) = self.parts();
        let mut out = String::with_capacity(64);
        match self {
            Reply::Greeting { hostname } => {
                let _ = write!(out, "{code} {hostname} {text}\r\n");
            }
            Reply::Helo { hostname } => {
                let _ = write!(out, "{code} {hostname}\r\n");
            }
            Reply::Ehlo {
                hostname,
                peer_name,
                extensions,
            } => {
                let _ = write!(out, "{code}");
                let sep = if extensions.is_empty() { ' ' } else { '-' };
                let _ = write!(out, "{sep}{hostname} greets {peer_name}\r\n");
                for (i, ext) in extensions.iter().enumerate() {
                    let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
                    let _ = write!(out, "{code}{sep}{ext}\r\n");
                }
            }
            Reply::Queued { queue_id } => {
                let _ = write!(out, "{code} {status} {text} {queue_id}\r\n");
            }
            Reply::Bye { hostname } => {
                let _ = write!(out, "{code} {status} {hostname} {text}\r\n");
            }
            _ if status.is_empty() => {
                let _ = write!(out, "{code} {text}\r\n");
            }
            _ => {
                let _ = write!(out, "{code} {status} {text}\r\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_renders_as_multiline() {
        let r = Reply::Ehlo {
            hostname: "mx.test".into(),
            peer_name: "client.test".into(),
            extensions: vec!["PIPELINING".into(), "SIZE 10".into()],
        };
        assert_eq!(
            r.render(),
            "250-mx.test greets client.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn refusals_carry_enhanced_codes() {
        assert_eq!(Reply::BareLineEnding.render().get(..9), Some("550 5.5.2"));
        assert_eq!(Reply::StoreFailed.render().get(..9), Some("451 4.3.0"));
        assert_eq!(Reply::TooBusy.render().get(..9), Some("421 4.7.0"));
    }
}
