//! Mail we send: receipts to reporters, through an outbound relay
//! (smarthost), from a persisted outbox with retries.
//!
//! Intake puts a receipt in the outbox in the same transaction that opens
//! the case, so a receipt is neither lost nor sent for a case that does not
//! exist. The sender delivers due entries with STARTTLS required to the
//! relay, marks them sent, or retries with exponential backoff until
//! `max_attempts`, then marks them failed; all of it visible in the outbox.
//!
//! What it must never do: send to a null sender, an auto-responder, a
//! syntactically invalid address, or anyone but the envelope sender when
//! it matches `From:` (RFC 3834 §4); send past any receipt limit (per
//! address, domain, client, hour); put text the sender chose in a receipt;
//! talk to the relay without TLS. Receipts to forged senders (backscatter)
//! are bounded by those limits, not prevented: that needs sender
//! authentication.

pub mod dkim;
pub mod relay;
pub mod webhooks;

pub use relay::Sender;

use crate::policy::Policy;
use crate::store::outbox::{self, Target};
pub use crate::store::outbox::{OutboxEntry, Outgoing};
use crate::store::seal::Sealer;
use crate::store::{StoreError, WriteTx};
use lettre::Address;
use serde::Deserialize;
use std::path::PathBuf;

/// `[outbound]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// The relay, `host:port`. Unset: receipts wait in the outbox.
    pub relay: Option<String>,
    /// Name to verify the relay's certificate against (default: its host).
    pub relay_tls_name: Option<String>,
    /// An extra PEM trust anchor for the relay (a private CA).
    pub relay_ca_file: Option<PathBuf>,
    /// Receipts to one address per 24 hours, counted after normalisation
    /// (case, `+tag`); more are recorded as suppressed. Five lets a
    /// reporter send several reports in a day and stops us being used to
    /// flood a forged address.
    pub receipts_per_address_per_day: u32,
    /// Receipts to one domain per 24 hours (20): a team reporting together
    /// fits; `victim1@`, `victim2@`... of one domain do not.
    pub receipts_per_domain_per_day: u32,
    /// Receipts caused by one client address (the delivering MTA) per 24
    /// hours (20): one sender cannot aim receipts at many addresses.
    pub receipts_per_client_per_day: u32,
    /// Receipts of all kinds per hour (100): the ceiling on what the
    /// security address can be made to send, far above real report rates.
    pub receipts_per_hour: u32,
    /// Seconds before the first retry; doubled at each attempt, capped at
    /// six hours.
    pub retry_base: u64,
    /// Attempts before an entry is marked failed. Twelve attempts from one
    /// minute spans about two days, like an MTA's queue lifetime.
    pub max_attempts: u32,
    /// An RSA key (PEM, mode 0600, 2048 bits or more) that DKIM-signs
    /// what we send, for the domain of its `From:`; with `dkim_selector`.
    /// Unset: unsigned, and reporters' servers may file receipts as spam.
    pub dkim_key_file: Option<PathBuf>,
    /// The selector (`<selector>._domainkey.<domain>`); `dns records`
    /// prints the record.
    pub dkim_selector: Option<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            relay: None,
            relay_tls_name: None,
            relay_ca_file: None,
            receipts_per_address_per_day: 5,
            receipts_per_domain_per_day: 20,
            receipts_per_client_per_day: 20,
            receipts_per_hour: 100,
            retry_base: 60,
            max_attempts: 12,
            dkim_key_file: None,
            dkim_selector: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("outbound.relay {0:?}: expected host:port")]
    Relay(String),
    #[error("outbound.relay_ca_file {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("outbound.dkim_key_file {path}: {reason}")]
    Dkim { path: PathBuf, reason: String },
}

/// An address as receipt limits count it: lower case, without a
/// `+tag` in the local part (RFC 5233), and its domain. `None` if it is
/// not a mailbox.
pub fn normalise(address: &str) -> Option<(String, String)> {
    let address = address.trim().trim_matches(['<', '>']).to_lowercase();
    let parsed: Address = address.parse().ok()?;
    let (user, domain) = (parsed.user(), parsed.domain());
    let user = user.split_once('+').map_or(user, |(u, _)| u);
    if user.is_empty() {
        return None;
    }
    Some((format!("{user}@{domain}"), domain.to_owned()))
}

/// Whom a receipt goes to, or why none is sent: only the envelope sender,
/// and only when it is the `From:` address after normalisation (RFC 3834
/// §4), so the security address cannot be told to write to a third party
/// named in a header.
pub fn receipt_recipient<'a>(
    from_header: Option<&str>,
    envelope_sender: &'a str,
    auto_submitted: Option<&str>,
) -> Result<&'a str, &'static str> {
    if envelope_sender.is_empty() {
        // RFC 3834 §2: never answer a null reverse path (bounces, notices).
        return Err("null sender");
    }
    if auto_submitted.is_some_and(|v| !v.trim().eq_ignore_ascii_case("no")) {
        return Err("auto-submitted message");
    }
    let Some(from) = from_header.filter(|a| !a.is_empty()) else {
        return Err("no reporter address (anonymous)");
    };
    let Some((from, _)) = normalise(from) else {
        return Err("invalid reporter address");
    };
    match normalise(envelope_sender) {
        None => Err("invalid envelope sender"),
        Some((sender, _)) if sender != from => {
            Err("envelope sender does not match From (RFC 3834 section 4)")
        }
        Some(_) => Ok(envelope_sender),
    }
}

/// What a receipt may say besides the policy's own words: facts of the
/// delivery, never text the sender chose.
#[derive(Debug, Clone)]
pub struct ReceiptFacts<'a> {
    pub received_at: i64,
    pub tls_version: Option<&'a str>,
    /// The report came in an encrypted archive: say how to deliver the
    /// password out of band.
    pub awaiting_password: bool,
}

/// The receipt's subject and body, from the policy's templates in the
/// report's language, with the delivery facts.
pub fn compose(
    policy: &Policy,
    danish: bool,
    reference: &str,
    facts: &ReceiptFacts<'_>,
) -> (String, String) {
    let t = &policy.receipt;
    let (subject, body) = if danish {
        (&t.subject_da, &t.body_da)
    } else {
        (&t.subject_en, &t.body_en)
    };
    let within = if danish {
        policy.feedback_within.danish()
    } else {
        policy.feedback_within.to_string()
    };
    let fill = |s: &str| {
        s.replace("{reference}", reference)
            .replace("{organisation}", &policy.name)
            .replace("{feedback_within}", &within)
    };
    let when = jiff::Timestamp::from_second(facts.received_at)
        .map(|t| {
            t.to_zoned(policy.timezone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default();
    let mut body = fill(body).trim_end().to_owned();
    body.push_str("\n\n");
    body.push_str(&match (danish, facts.tls_version) {
        (false, Some(v)) => format!("Received {when}, over {v}."),
        (false, None) => format!("Received {when}, without TLS."),
        (true, Some(v)) => format!("Modtaget {when}, over {v}."),
        (true, None) => format!("Modtaget {when}, uden TLS."),
    });
    if facts.awaiting_password {
        body.push_str("\n\n");
        body.push_str(fill(policy.receipt.password_text(danish)).trim());
    }
    body.push('\n');
    (format!("[{reference}] {}", fill(subject)), body)
}

/// Who a receipt is counted against.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub address: &'a str,
    /// The delivering client's IP address.
    pub client_ip: &'a str,
}

/// The first receipt limit `to` would pass, if any: one query for all
/// four.
async fn receipt_limit(
    tx: &mut WriteTx<'_>,
    config: &OutboundConfig,
    to: &Target<'_>,
    now: i64,
) -> Result<Option<&'static str>, StoreError> {
    let caps = [
        config.receipts_per_address_per_day,
        config.receipts_per_domain_per_day,
        config.receipts_per_client_per_day,
        config.receipts_per_hour,
    ];
    let recent = outbox::recent_receipts(tx, to, caps, now).await?;
    Ok([
        (
            recent.address,
            caps[0],
            "rate limit: receipts_per_address_per_day",
        ),
        (
            recent.domain,
            caps[1],
            "rate limit: receipts_per_domain_per_day",
        ),
        (
            recent.client,
            caps[2],
            "rate limit: receipts_per_client_per_day",
        ),
        (recent.hour, caps[3], "rate limit: receipts_per_hour"),
    ]
    .into_iter()
    .find(|(count, limit, _)| *count >= i64::from(*limit))
    .map(|(_, _, reason)| reason))
}

/// Puts a receipt in the outbox (inside the caller's transaction), or a
/// suppressed entry naming the limit it would pass. Returns whether it was
/// queued.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue_receipt(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    config: &OutboundConfig,
    case_id: i64,
    to: &Recipient<'_>,
    subject: &str,
    body: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let Some((normal, domain)) = normalise(to.address) else {
        outbox::record_suppressed(
            tx,
            case_id,
            Some(to.address),
            "invalid reporter address",
            now,
        )
        .await?;
        return Ok(false);
    };
    let target = Target {
        normal: &normal,
        domain: &domain,
        client_ip: to.client_ip,
    };
    let limited = receipt_limit(tx, config, &target, now).await?;
    let entry = Outgoing {
        kind: "receipt",
        case_id,
        to: to.address,
        subject,
        body,
        message_id,
        in_reply_to,
    };
    outbox::insert(
        tx,
        sealer,
        &entry,
        (&normal, &domain),
        limited,
        to.client_ip,
        now,
    )
    .await?;
    Ok(limited.is_none())
}

/// Puts an analyst's reply in the outbox (inside the caller's
/// transaction). Not rate-limited: a person chose to send it.
pub async fn enqueue_reply(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    entry: &Outgoing<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let (normal, domain) = normalise(entry.to).unwrap_or_default();
    outbox::insert(tx, sealer, entry, (&normal, &domain), None, "", now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_go_only_to_the_envelope_sender_matching_from() {
        fn r<'a>(
            from: Option<&str>,
            sender: &'a str,
            auto: Option<&str>,
        ) -> Result<&'a str, &'static str> {
            receipt_recipient(from, sender, auto)
        }
        assert_eq!(r(Some("a@b.example"), "", None), Err("null sender"));
        assert_eq!(
            r(Some("a@b.example"), "a@b.example", Some("auto-replied")),
            Err("auto-submitted message")
        );
        assert_eq!(
            r(Some("a@b.example"), "a@b.example", Some("no")),
            Ok("a@b.example")
        );
        assert_eq!(
            r(None, "a@b.example", None),
            Err("no reporter address (anonymous)")
        );
        assert_eq!(
            r(Some("not an address"), "x@y.example", None),
            Err("invalid reporter address")
        );
        assert_eq!(
            r(Some("victim@target.example"), "attacker@evil.example", None),
            Err("envelope sender does not match From (RFC 3834 section 4)")
        );
        // Same mailbox after normalisation: case and +tag.
        assert_eq!(
            r(Some("Alice@Example.org"), "alice+reports@example.org", None),
            Ok("alice+reports@example.org")
        );
        assert_eq!(
            normalise("Victim+1@Target.Example"),
            Some(("victim@target.example".into(), "target.example".into()))
        );
        assert_eq!(normalise("+tag@x.example"), None);
        assert_eq!(normalise("nope"), None);
    }
}
