//! Parsing one SMTP command line into a `Command`.
//!
//! The input is a single line whose CRLF the session has already checked and
//! removed. This module trusts nothing in it: verbs, paths and parameters are
//! checked against RFC 5321 syntax and length limits, and anything unusual is
//! a typed `CommandError`. It never allocates more than the line it is given.

use super::limits::{MAX_DOMAIN, MAX_LOCAL_PART, MAX_PATH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail(MailFrom),
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    /// Recognised but not offered here (EXPN, BDAT, AUTH, TURN, ETRN...).
    NotOffered,
}

/// The arguments of `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// The reverse path without brackets; empty for the null sender `<>`.
    pub address: String,
    pub size: Option<u64>,
    pub body_8bit: bool,
    pub smtputf8: bool,
}

/// Why a command line was refused. `Session` maps each to one `Reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unrecognised command")]
    Unrecognized,
    #[error("bad arguments")]
    BadArgs,
    #[error("path too long")]
    PathTooLong,
    #[error("malformed address")]
    BadAddress,
    #[error("non-ASCII address without SMTPUTF8")]
    NeedsSmtpUtf8,
    #[error("unknown parameter")]
    UnknownParameter,
}

/// Parses a command line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.contains(&0) {
        return Err(CommandError::Unrecognized);
    }
    let line = std::str::from_utf8(line).map_err(|_| CommandError::BadArgs)?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    if verb.len() > 8 {
        return Err(CommandError::Unrecognized);
    }
    let verb = verb.to_ascii_uppercase();
    let no_args = |c: Command| {
        if rest.trim().is_empty() {
            Ok(c)
        } else {
            Err(CommandError::BadArgs)
        }
    };
    match verb.as_str() {
        "EHLO" => Ok(Command::Ehlo(client_name(rest)?)),
        "HELO" => Ok(Command::Helo(client_name(rest)?)),
        "MAIL" => parse_mail(rest).map(Command::Mail),
        "RCPT" => parse_rcpt(rest).map(Command::Rcpt),
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        // RFC 5321 §4.1.1.9: NOOP may carry an argument, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" | "BDAT" | "AUTH" | "TURN" | "ETRN" | "ATRN" | "SEND" | "SOML" | "SAML" => {
            Ok(Command::NotOffered)
        }
        _ => Err(CommandError::Unrecognized),
    }
}

/// The EHLO/HELO argument: a domain or address literal, printable ASCII.
fn client_name(arg: &str) -> Result<String, CommandError> {
    let arg = arg.trim_end();
    if arg.is_empty() || arg.len() > MAX_DOMAIN || arg.contains(' ') {
        return Err(CommandError::BadArgs);
    }
    if !arg.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CommandError::BadArgs);
    }
    Ok(arg.to_owned())
}

/// Splits `FROM:<path> params` (the keyword given) into path and parameters.
/// A space after the colon is tolerated, as every deployed server does.
fn split_path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), CommandError> {
    let head = rest.get(..keyword.len()).ok_or(CommandError::BadArgs)?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(CommandError::BadArgs);
    }
    let rest = rest[keyword.len()..].trim_start_matches(' ');
    if !rest.starts_with('<') {
        return Err(CommandError::BadArgs);
    }
    let close = rest.find('>').ok_or(CommandError::BadArgs)?;
    let path = &rest[..=close];
    if path.len() > MAX_PATH {
        return Err(CommandError::PathTooLong);
    }
    let params = &rest[close + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(CommandError::BadArgs);
    }
    Ok((path, params.trim()))
}

fn parse_mail(rest: &str) -> Result<MailFrom, CommandError> {
    let (path, params) = split_path(rest, "FROM:")?;
    let mut mail = MailFrom {
        address: String::new(),
        size: None,
        body_8bit: false,
        smtputf8: false,
    };
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) if mail.size.is_none() => {
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CommandError::UnknownParameter);
                }
                // More digits than u64 holds is simply "too large".
                mail.size = Some(v.parse().unwrap_or(u64::MAX));
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => mail.body_8bit = true,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {}
            ("SMTPUTF8", None) => mail.smtputf8 = true,
            _ => return Err(CommandError::UnknownParameter),
        }
    }
    mail.address = mailbox(path, mail.smtputf8, true)?;
    Ok(mail)
}

fn parse_rcpt(rest: &str) -> Result<String, CommandError> {
    let (path, params) = split_path(rest, "TO:")?;
    if !params.is_empty() {
        // No RCPT extension (DSN's NOTIFY/ORCPT) is advertised.
        return Err(CommandError::UnknownParameter);
    }
    // RCPT may carry UTF-8 only if MAIL said SMTPUTF8; the session checks
    // that, so here non-ASCII is allowed and flagged by `is_ascii` later.
    mailbox(path, true, false)
}

/// Checks `<mailbox>` (or `<>` where allowed) and returns the bare mailbox.
fn mailbox(path: &str, utf8: bool, null_ok: bool) -> Result<String, CommandError> {
    let inner = path
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix('>'))
        .ok_or(CommandError::BadArgs)?;
    if inner.is_empty() {
        return if null_ok {
            Ok(String::new())
        } else {
            Err(CommandError::BadAddress)
        };
    }
    if !inner.is_ascii() && !utf8 {
        return Err(CommandError::NeedsSmtpUtf8);
    }
    // RFC 5321 §4.1.2: a source route (`@a,@b:`) must be accepted and ignored.
    let inner = match inner.strip_prefix('@') {
        Some(_) => inner.split_once(':').ok_or(CommandError::BadAddress)?.1,
        None => inner,
    };
    let at = inner.rfind('@').ok_or(CommandError::BadAddress)?;
    let (local, domain) = (&inner[..at], &inner[at + 1..]);
    if local.len() > MAX_LOCAL_PART || domain.len() > MAX_DOMAIN {
        return Err(CommandError::PathTooLong);
    }
    if !valid_local(local) || !valid_domain(domain) {
        return Err(CommandError::BadAddress);
    }
    Ok(inner.to_owned())
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn valid_local(local: &str) -> bool {
    if local.is_empty() {
        return false;
    }
    if let Some(q) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        // quoted-string: printable ASCII (or UTF-8) with `\` escapes.
        let mut escaped = false;
        for c in q.chars() {
            if escaped {
                if !(c == ' ' || c.is_ascii_graphic()) {
                    return false;
                }
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' || (c.is_ascii() && !(c == ' ' || c.is_ascii_graphic())) {
                return false;
            }
        }
        return !escaped;
    }
    local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn valid_domain(domain: &str) -> bool {
    if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return match lit.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                lit[5..].parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => lit.parse::<std::net::Ipv4Addr>().is_ok(),
        };
    }
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(line: &str) -> Result<MailFrom, CommandError> {
        match parse(line.as_bytes())? {
            Command::Mail(m) => Ok(m),
            other => panic!("not MAIL: {other:?}"),
        }
    }

    #[test]
    fn table() {
        use CommandError::*;
        let cases: &[(&str, Result<Command, CommandError>)] = &[
            (
                "EHLO client.example",
                Ok(Command::Ehlo("client.example".into())),
            ),
            ("ehlo [127.0.0.1]", Ok(Command::Ehlo("[127.0.0.1]".into()))),
            ("EHLO", Err(BadArgs)),
            ("EHLO a b", Err(BadArgs)),
            ("DATA", Ok(Command::Data)),
            ("DATA x", Err(BadArgs)),
            ("NOOP anything", Ok(Command::Noop)),
            ("VRFY root", Ok(Command::Vrfy)),
            ("EXPN list", Ok(Command::NotOffered)),
            ("XYZZY", Err(Unrecognized)),
            (
                "RCPT TO:<security@magenta.example>",
                Ok(Command::Rcpt("security@magenta.example".into())),
            ),
            (
                "RCPT TO: <a@b.example>",
                Ok(Command::Rcpt("a@b.example".into())),
            ),
            (
                "RCPT TO:<@relay.example:a@b.example>",
                Ok(Command::Rcpt("a@b.example".into())),
            ),
            ("RCPT TO:<a@b.example> NOTIFY=NEVER", Err(UnknownParameter)),
            ("RCPT TO:<>", Err(BadAddress)),
            ("RCPT TO:<a..b@c.example>", Err(BadAddress)),
            ("RCPT TO:<a@-c.example>", Err(BadAddress)),
            (
                "RCPT TO:<\"a b\"@c.example>",
                Ok(Command::Rcpt("\"a b\"@c.example".into())),
            ),
            (
                "RCPT TO:<a@[192.0.2.1]>",
                Ok(Command::Rcpt("a@[192.0.2.1]".into())),
            ),
            (
                "RCPT TO:<a@[IPv6:::1]>",
                Ok(Command::Rcpt("a@[IPv6:::1]".into())),
            ),
            ("RCPT TO:<a@[999.0.2.1]>", Err(BadAddress)),
            ("MAIL FROM:<a@b.example> FOO=1", Err(UnknownParameter)),
            ("MAIL FROM:<a@b.example> SIZE=", Err(UnknownParameter)),
            (
                "MAIL FROM:<a@b.example> SIZE=1 SIZE=2",
                Err(UnknownParameter),
            ),
            ("MAIL FROM:a@b.example", Err(BadArgs)),
            ("MAIL FROM:<a@b.example>x", Err(BadArgs)),
            ("MAIL FROM:<pær@b.example>", Err(NeedsSmtpUtf8)),
        ];
        for (line, want) in cases {
            assert_eq!(&parse(line.as_bytes()), want, "{line}");
        }
    }

    #[test]
    fn mail_parameters() {
        let m = mail("MAIL FROM:<> SIZE=1000 BODY=8BITMIME").unwrap();
        assert_eq!(
            (m.address.as_str(), m.size, m.body_8bit),
            ("", Some(1000), true)
        );
        let m = mail("MAIL FROM:<pær@bø.example> SMTPUTF8").unwrap();
        assert!(m.smtputf8);
        assert_eq!(m.address, "pær@bø.example");
        let m = mail("MAIL FROM:<a@b.example> SIZE=99999999999999999999").unwrap();
        assert_eq!(m.size, Some(u64::MAX));
    }

    #[test]
    fn rfc5321_lengths() {
        let local64 = "a".repeat(64);
        let local65 = "a".repeat(65);
        assert!(mail(&format!("MAIL FROM:<{local64}@b.example>")).is_ok());
        assert_eq!(
            mail(&format!("MAIL FROM:<{local65}@b.example>")),
            Err(CommandError::PathTooLong)
        );
        // 250 octets of domain plus brackets and local part exceeds the 256 path limit.
        let long_domain = format!("{}.example", "d".repeat(60)).repeat(4);
        assert_eq!(
            mail(&format!("MAIL FROM:<a@{long_domain}>")),
            Err(CommandError::PathTooLong)
        );
        let label64 = format!("{}.example", "d".repeat(64));
        assert_eq!(
            mail(&format!("MAIL FROM:<a@{label64}>")),
            Err(CommandError::BadAddress)
        );
    }

    #[test]
    fn nul_and_invalid_utf8_are_refused() {
        assert_eq!(parse(b"NOOP\0"), Err(CommandError::Unrecognized));
        assert_eq!(parse(b"MAIL FROM:<\xff@b>"), Err(CommandError::BadArgs));
    }
}
