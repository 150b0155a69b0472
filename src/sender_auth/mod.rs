//! Sender authentication we compute ourselves: SPF for the envelope
//! sender, DKIM, DMARC and ARC, with `mail-auth` (from the Stalwart
//! project) against the configured resolver.
//!
//! At a public MX, an `Authentication-Results` header in a message was
//! written by its sender, so it proves nothing. Once a message is filed,
//! `cases::authenticate` has it assessed here and stores our own header
//! (RFC 8601, our authserv-id), removing any header the sender wrote under
//! that id (`annotate`). The results are signals for the analyst and the
//! receipt rule, never a reason to refuse a report; and they never sit on
//! the filing path, so intake speed does not depend on DNS.
//!
//! DNS look-ups have a timeout and hickory's cache; a failed look-up is a
//! `temperror`, never a pass.

use crate::model::auth::{Assessment, Check, Method, Outcome};
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    SpfResult,
};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// `[sender_auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderAuthSettings {
    /// Assess every filed message (on). Off: no `Authentication-Results`
    /// of ours, and receipts go out without waiting for one.
    pub enabled: bool,
    /// Our authserv-id (RFC 8601 §2.5); default: `smtp.hostname`.
    pub authserv_id: Option<String>,
    /// Resolvers to ask (`ip:port`); empty: those of `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Seconds one DNS query may take (5): a slow zone costs a
    /// `temperror`, not a stalled queue.
    pub timeout: u64,
    /// Tries per query (2).
    pub attempts: usize,
    /// DNS answers kept in the cache (4096), for their TTL: a burst from
    /// one domain asks once.
    pub cache_size: u64,
    /// Seconds one message's whole assessment may take (30), all
    /// look-ups together; past it, what is missing is a `temperror`.
    pub message_timeout: u64,
}

impl Default for SenderAuthSettings {
    fn default() -> Self {
        SenderAuthSettings {
            enabled: true,
            authserv_id: None,
            nameservers: Vec::new(),
            timeout: 5,
            attempts: 2,
            cache_size: 4096,
            message_timeout: 30,
        }
    }
}

/// The SMTP envelope of a message, as recorded at receipt.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    pub mail_from: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("sender authentication: cannot build the resolver: {0}")]
pub struct ResolverError(String);

/// Assesses messages against one resolver.
pub struct SenderAuth {
    authenticator: MessageAuthenticator,
    authserv_id: String,
    message_timeout: Duration,
}

impl SenderAuth {
    pub fn new(settings: &SenderAuthSettings, hostname: &str) -> Result<SenderAuth, ResolverError> {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(settings.timeout.max(1));
        options.attempts = settings.attempts.max(1);
        options.cache_size = settings.cache_size;
        let authenticator = if settings.nameservers.is_empty() {
            let (config, mut system) = mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolverError(e.to_string()))?;
            system.timeout = options.timeout;
            system.attempts = options.attempts;
            system.cache_size = options.cache_size;
            MessageAuthenticator::new(config, system)
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut server.connections {
                        c.port = addr.port();
                    }
                    server
                })
                .collect();
            MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), options)
        }
        .map_err(|e| ResolverError(e.to_string()))?;
        Ok(SenderAuth {
            authenticator,
            authserv_id: settings
                .authserv_id
                .clone()
                .unwrap_or_else(|| hostname.to_owned()),
            message_timeout: Duration::from_secs(settings.message_timeout.max(1)),
        })
    }

    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// Assesses `raw` as it arrived (before our `Received:` line, which
    /// DKIM does not cover anyway) from `envelope`.
    pub async fn assess(&self, raw: &[u8], envelope: &Envelope<'_>) -> Assessment {
        match tokio::time::timeout(self.message_timeout, self.checks(raw, envelope)).await {
            Ok(a) => a,
            Err(_) => self.unassessed(envelope, "the look-ups took too long"),
        }
    }

    async fn checks(&self, raw: &[u8], envelope: &Envelope<'_>) -> Assessment {
        let auth = &self.authenticator;
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return self.unassessed(envelope, "the message could not be read");
        };
        let helo = envelope.helo;
        let sender_domain = envelope
            .mail_from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or(helo);
        let spf = auth
            .verify_spf(SpfParameters::verify_mail_from(
                envelope.ip,
                helo,
                &self.authserv_id,
                envelope.mail_from,
            ))
            .await;
        let dkim = auth.verify_dkim(&message).await;
        let arc = auth.verify_arc(&message).await;
        let dmarc = auth
            .verify_dmarc(DmarcParameters::new(&message, &dkim, sender_domain, &spf))
            .await;
        let from = message.from().to_owned();
        let header = AuthenticationResults::new(&self.authserv_id)
            .with_dkim_results(&dkim, &from)
            .with_spf_mailfrom_result(&spf, envelope.ip, envelope.mail_from, helo)
            .with_arc_result(&arc, envelope.ip)
            .with_dmarc_result(&dmarc)
            .to_string();

        let mut checks = Vec::new();
        let spf_outcome = spf_outcome(spf.result());
        let who = if envelope.mail_from.is_empty() {
            "the null sender".to_owned()
        } else {
            envelope.mail_from.to_owned()
        };
        checks.push(Check {
            method: Method::Spf,
            result: spf_outcome,
            line: format!(
                "SPF: {who} from {}, {}",
                envelope.ip,
                plain(
                    spf_outcome,
                    "authorised by its domain",
                    "NOT authorised by its domain"
                )
            ),
        });
        let from_domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let mut aligned_dkim = false;
        if dkim.is_empty() {
            checks.push(Check {
                method: Method::Dkim,
                result: Outcome::None,
                line: "DKIM: not signed".into(),
            });
        }
        for d in &dkim {
            let domain = d
                .signature()
                .map(|s| s.d.to_ascii_lowercase())
                .unwrap_or_default();
            let outcome = dkim_outcome(d.result());
            if outcome == Outcome::Pass && aligned(&domain, &from_domain) {
                aligned_dkim = true;
            }
            let by = if domain.is_empty() {
                "an unnamed domain"
            } else {
                domain.as_str()
            };
            checks.push(Check {
                method: Method::Dkim,
                result: outcome,
                line: match d.result() {
                    DkimResult::Pass => format!("DKIM: signed by {by}, valid"),
                    DkimResult::None => "DKIM: not signed".into(),
                    // A changed body or header: the signature does not
                    // hold (mail-auth calls a body-hash mismatch neutral).
                    DkimResult::Fail(e) | DkimResult::Neutral(e) => {
                        format!("DKIM: signed by {by}, INVALID ({e})")
                    }
                    DkimResult::TempError(e) => format!(
                        "DKIM: signed by {by}; its key could not be looked up ({e}): temperror, not a pass"
                    ),
                    DkimResult::PermError(e) => {
                        format!("DKIM: signed by {by}; broken signature or key ({e})")
                    }
                },
            });
        }
        let dmarc_outcome = match dmarc.result() {
            DmarcResult::Pass => Outcome::Pass,
            DmarcResult::Fail(_) => Outcome::Fail,
            DmarcResult::TempError(_) => Outcome::TempError,
            DmarcResult::PermError(_) => Outcome::PermError,
            DmarcResult::None => Outcome::None,
        };
        let policy = match dmarc.policy() {
            Policy::Reject => " (its policy: reject)",
            Policy::Quarantine => " (its policy: quarantine)",
            Policy::None => " (its policy: none)",
            Policy::Unspecified => "",
        };
        checks.push(Check {
            method: Method::Dmarc,
            result: dmarc_outcome,
            line: match dmarc_outcome {
                Outcome::None => format!("DMARC: {} publishes no policy", dmarc.domain()),
                o => format!(
                    "DMARC: {}, {}{policy}",
                    dmarc.domain(),
                    plain(o, "aligned", "NOT aligned")
                ),
            },
        });
        let arc_outcome = dkim_outcome(arc.result());
        checks.push(Check {
            method: Method::Arc,
            result: arc_outcome,
            line: match arc_outcome {
                Outcome::None => "ARC: no chain".into(),
                o => format!("ARC: chain {}", plain(o, "valid", "INVALID")),
            },
        });
        Assessment {
            header,
            authenticated: spf_outcome == Outcome::Pass || aligned_dkim,
            checks,
        }
    }

    /// What is recorded when nothing could be assessed.
    pub fn unassessed(&self, envelope: &Envelope<'_>, why: &str) -> Assessment {
        Assessment {
            header: format!(
                "{}; spf=temperror smtp.mailfrom={}; dkim=temperror",
                self.authserv_id,
                if envelope.mail_from.is_empty() {
                    "<>"
                } else {
                    envelope.mail_from
                }
            ),
            checks: vec![Check {
                method: Method::Spf,
                result: Outcome::TempError,
                line: format!("not assessed: {why}"),
            }],
            authenticated: false,
        }
    }
}

/// The From domain is the signing domain or below it (relaxed alignment,
/// RFC 7489 §3.1.1, without the public suffix list: a parent must have a
/// dot, so `example` never aligns `a.example`'s neighbours).
fn aligned(signing: &str, from: &str) -> bool {
    !signing.is_empty()
        && (from == signing || (signing.contains('.') && from.ends_with(&format!(".{signing}"))))
}

fn spf_outcome(r: SpfResult) -> Outcome {
    match r {
        SpfResult::Pass => Outcome::Pass,
        SpfResult::Fail => Outcome::Fail,
        SpfResult::SoftFail => Outcome::SoftFail,
        SpfResult::Neutral => Outcome::Neutral,
        SpfResult::TempError => Outcome::TempError,
        SpfResult::PermError => Outcome::PermError,
        SpfResult::None => Outcome::None,
    }
}

fn dkim_outcome(r: &DkimResult) -> Outcome {
    match r {
        DkimResult::Pass => Outcome::Pass,
        DkimResult::Neutral(_) => Outcome::Neutral,
        DkimResult::Fail(_) => Outcome::Fail,
        DkimResult::PermError(_) => Outcome::PermError,
        DkimResult::TempError(_) => Outcome::TempError,
        DkimResult::None => Outcome::None,
    }
}

/// "pass" and "fail" in words, the rest by name.
fn plain(o: Outcome, pass: &str, fail: &str) -> String {
    match o {
        Outcome::Pass => pass.to_owned(),
        Outcome::Fail => fail.to_owned(),
        Outcome::SoftFail => format!("{fail} (softfail)"),
        Outcome::Neutral => "neutral: its domain says nothing".to_owned(),
        Outcome::None => "no record".to_owned(),
        Outcome::TempError => "temperror: the look-up failed (not a pass)".to_owned(),
        Outcome::PermError => "permerror: its record is broken".to_owned(),
    }
}

/// Most header bytes `annotate` reads: a header section is a few KiB; the
/// whole message is bounded by the size limit anyway.
const MAX_HEADER_SECTION: usize = 1024 * 1024;

/// `raw` with our `Authentication-Results: header` first, and every
/// `Authentication-Results` the sender wrote under our authserv-id removed
/// (RFC 8601 §5). Headers of other authserv-ids stay, as the sender's.
pub fn annotate(raw: &[u8], authserv_id: &str, header: &str) -> Vec<u8> {
    let end = header_end(raw).min(MAX_HEADER_SECTION).min(raw.len());
    let mut out = Vec::with_capacity(raw.len() + header.len() + 64);
    out.extend_from_slice(b"Authentication-Results: ");
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Split the header section into fields (a field runs until a line
    // that does not start with white space).
    while i < end {
        let line_end = raw[i..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |p| i + p + 1);
        let next = raw.get(line_end).copied();
        if line_end >= end || !matches!(next, Some(b' ' | b'\t')) {
            fields.push(&raw[start..line_end]);
            start = line_end;
        }
        i = line_end;
    }
    for f in fields {
        if !claims(f, authserv_id) {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(&raw[end..]);
    out
}

/// Where the header section ends (after its blank line), or the length.
fn header_end(raw: &[u8]) -> usize {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => raw.len(),
    }
}

/// A field `Authentication-Results: <authserv_id>;…`.
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let text = String::from_utf8_lossy(field);
    let Some((name, value)) = text.split_once(':') else {
        return false;
    };
    if !name.trim().eq_ignore_ascii_case("authentication-results") {
        return false;
    }
    // The authserv-id: up to ';' or white space, after any comment.
    let value = value.trim_start();
    let value = strip_comments(value);
    let id: String = value
        .trim_start()
        .chars()
        .take_while(|c| *c != ';' && !c.is_whitespace())
        .collect();
    id.eq_ignore_ascii_case(authserv_id)
}

fn strip_comments(v: &str) -> String {
    let mut depth = 0usize;
    v.chars()
        .filter(|c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_header_under_our_id_goes_and_others_stay() {
        let raw = b"Received: from x\r\nAuthentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=ceo@bank.example\r\n\
Authentication-Results: (comment) MX.TEST; dkim=pass\r\nAuthentication-Results: other.example; spf=fail\r\nSubject: hi\r\n\r\n\
Authentication-Results: mx.test; in the body stays\r\n";
        let out = String::from_utf8(annotate(
            raw,
            "mx.test",
            "mx.test; spf=fail smtp.mailfrom=x@y",
        ))
        .unwrap();
        assert!(out.starts_with("Authentication-Results: mx.test; spf=fail smtp.mailfrom=x@y\r\nReceived: from x\r\n"), "{out}");
        assert!(!out.contains("ceo@bank.example"), "{out}");
        assert!(!out.contains("dkim=pass"), "{out}");
        assert!(
            out.contains("Authentication-Results: other.example; spf=fail\r\n"),
            "{out}"
        );
        assert!(
            out.ends_with(
                "Subject: hi\r\n\r\nAuthentication-Results: mx.test; in the body stays\r\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn alignment_is_relaxed_but_never_sideways() {
        assert!(aligned("researcher.example", "researcher.example"));
        assert!(aligned("researcher.example", "mail.researcher.example"));
        assert!(!aligned("researcher.example", "evilresearcher.example"));
        assert!(!aligned("example", "a.example"));
        assert!(!aligned("", "x.example"));
    }
}
