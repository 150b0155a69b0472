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

use crate::policy::Policy;
use crate::store::seal::Sealer;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use sqlx::Row;
use sqlx::{AnyConnection, AnyPool};
use std::path::PathBuf;
use std::time::Duration;
use tracing::{info, warn};

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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("outbound.relay {0:?}: expected host:port")]
    Relay(String),
    #[error("outbound.relay_ca_file {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Seal(#[from] crate::store::seal::SealError),
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
/// four. Suppressed entries are outside the (partial) indexes and each
/// count stops at its limit, so a flood of suppressed receipts costs
/// nothing here.
async fn receipt_limit(
    conn: &mut AnyConnection,
    config: &OutboundConfig,
    normal: &str,
    domain: &str,
    client_ip: &str,
    now: i64,
) -> Result<Option<&'static str>, sqlx::Error> {
    const RECENT: &str = "kind = 'receipt' AND state != 'suppressed'";
    let sql = format!(
        "SELECT
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE to_normal = $1 AND {RECENT} AND created_at > $5 LIMIT $6) AS a),
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE to_domain = $2 AND {RECENT} AND created_at > $5 LIMIT $7) AS d),
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE client_ip = $3 AND {RECENT} AND created_at > $5 LIMIT $8) AS c),
           (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE {RECENT} AND created_at > $4 LIMIT $9) AS h)"
    );
    let (address, domains, client, hour): (i64, i64, i64, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(normal)
            .bind(domain)
            .bind(client_ip)
            .bind(now - 3600)
            .bind(now - 86_400)
            .bind(i64::from(config.receipts_per_address_per_day))
            .bind(i64::from(config.receipts_per_domain_per_day))
            .bind(i64::from(config.receipts_per_client_per_day))
            .bind(i64::from(config.receipts_per_hour))
            .fetch_one(&mut *conn)
            .await?;
    Ok([
        (
            address,
            config.receipts_per_address_per_day,
            "rate limit: receipts_per_address_per_day",
        ),
        (
            domains,
            config.receipts_per_domain_per_day,
            "rate limit: receipts_per_domain_per_day",
        ),
        (
            client,
            config.receipts_per_client_per_day,
            "rate limit: receipts_per_client_per_day",
        ),
        (
            hour,
            config.receipts_per_hour,
            "rate limit: receipts_per_hour",
        ),
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
    conn: &mut AnyConnection,
    sealer: &Sealer,
    config: &OutboundConfig,
    case_id: i64,
    to: &Recipient<'_>,
    subject: &str,
    body: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let Some((normal, domain)) = normalise(to.address) else {
        record_suppressed(
            conn,
            case_id,
            Some(to.address),
            "invalid reporter address",
            now,
        )
        .await?;
        return Ok(false);
    };
    let limited = receipt_limit(conn, config, &normal, &domain, to.client_ip, now).await?;
    let entry = Outgoing {
        kind: "receipt",
        case_id,
        to: to.address,
        subject,
        body,
        message_id,
        in_reply_to,
    };
    insert(conn, sealer, &entry, limited, to.client_ip, now).await?;
    Ok(limited.is_none())
}

/// One message for the outbox.
pub struct Outgoing<'a> {
    /// `receipt` (automatic) or `reply` (written by an analyst).
    pub kind: &'static str,
    pub case_id: i64,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
}

/// Writes `entry` pending, or suppressed for `suppressed_because`.
async fn insert(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    entry: &Outgoing<'_>,
    suppressed_because: Option<&str>,
    client_ip: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (normal, domain) = normalise(entry.to).unwrap_or_default();
    sqlx::query(
        "INSERT INTO outbox (case_id, kind, to_address, subject, body, message_id, in_reply_to, state, reason,
             next_attempt_at, created_at, to_normal, to_domain, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(entry.case_id)
    .bind(entry.kind)
    .bind(entry.to.to_ascii_lowercase())
    .bind(sealer.seal_text(&format!("outbox:{}:subject", entry.message_id), entry.subject))
    .bind(sealer.seal_text(&format!("outbox:{}:body", entry.message_id), entry.body))
    .bind(entry.message_id)
    .bind(entry.in_reply_to)
    .bind(if suppressed_because.is_some() { "suppressed" } else { "pending" })
    .bind(suppressed_because)
    .bind(now)
    .bind(now)
    .bind(normal)
    .bind(domain)
    .bind(client_ip)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Puts an analyst's reply in the outbox (inside the caller's
/// transaction). Not rate-limited: a person chose to send it.
pub async fn enqueue_reply(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    entry: &Outgoing<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    insert(conn, sealer, entry, None, "", now).await
}

/// Records a receipt that will not be sent, and why.
pub async fn record_suppressed(
    conn: &mut AnyConnection,
    case_id: i64,
    to: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (case_id, kind, to_address, subject, body, message_id, state, reason, next_attempt_at, created_at)
         VALUES ($1, 'receipt', $2, '', '', '', 'suppressed', $3, $4, $5)",
    )
    .bind(case_id)
    .bind(to.unwrap_or(""))
    .bind(reason)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One outbox entry as `outbox list` shows it (no body).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub case_id: i64,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub message_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
}

pub async fn list(pool: &AnyPool, sealer: &Sealer) -> Result<Vec<OutboxEntry>, OutboundError> {
    let rows = sqlx::query(
        "SELECT id, case_id, kind, to_address, subject, message_id, state, reason, attempts, next_attempt_at, sent_at
         FROM outbox ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxEntry {
                id: r.try_get("id")?,
                case_id: r.try_get("case_id")?,
                kind: r.try_get("kind")?,
                to_address: r.try_get("to_address")?,
                subject: sealer.open_text(
                    &format!("outbox:{}:subject", r.try_get::<String, _>("message_id")?),
                    &r.try_get::<String, _>("subject")?,
                )?,
                message_id: r.try_get("message_id")?,
                state: r.try_get("state")?,
                reason: r.try_get("reason")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                sent_at: r.try_get("sent_at")?,
            })
        })
        .collect()
}

/// Delivers due outbox entries through the relay.
pub struct Sender {
    config: OutboundConfig,
    /// Opens the sealed subject and body of outbox entries.
    sealer: std::sync::Arc<Sealer>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Our name in EHLO.
    hostname: String,
}

impl Sender {
    /// None when no relay is configured.
    pub fn new(
        config: &OutboundConfig,
        hostname: &str,
        sealer: std::sync::Arc<Sealer>,
    ) -> Result<Option<Sender>, OutboundError> {
        let Some(relay) = &config.relay else {
            return Ok(None);
        };
        let (host, port) = relay
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(['[', ']']).to_owned(),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| OutboundError::Relay(relay.clone()))?;
        let name = config
            .relay_tls_name
            .clone()
            .unwrap_or_else(|| host.clone());
        let mut tls = TlsParameters::builder(name);
        if let Some(path) = &config.relay_ca_file {
            let pem = std::fs::read(path).map_err(|e| OutboundError::Ca {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| OutboundError::Ca {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| OutboundError::Ca {
            path: config.relay_ca_file.clone().unwrap_or_default(),
            reason: e.to_string(),
        })?;
        // "dangerous" only means lettre sets no TLS by itself: we require
        // STARTTLS explicitly, so a relay without it is never used.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(Tls::Required(tls))
            .hello_name(ClientId::Domain(hostname.to_owned()))
            .timeout(Some(Duration::from_secs(60)))
            .build();
        Ok(Some(Sender {
            config: config.clone(),
            sealer,
            transport,
            hostname: hostname.to_owned(),
        }))
    }

    /// Sends what is due; returns how many were sent.
    pub async fn send_due(
        &mut self,
        pool: &AnyPool,
        policies: &crate::policy::PolicySet,
        now: i64,
    ) -> Result<usize, OutboundError> {
        let mut conn = pool.acquire().await?;
        let postgres = !conn.backend_name().eq_ignore_ascii_case("sqlite");
        let mut sent = 0;
        // Bounded per pass; the next pass comes a second later.
        for _ in 0..20 {
            let done = if postgres {
                // Several receivers may share the outbox: each claims a
                // different entry and holds it while sending, so no receipt
                // goes out twice.
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let done = self
                    .send_one(&mut tx, policies, now, " FOR UPDATE OF o SKIP LOCKED")
                    .await?;
                tx.commit().await?;
                done
            } else {
                // One node: no transaction, so the database is not locked
                // while the relay is talked to.
                self.send_one(&mut conn, policies, now, "").await?
            };
            match done {
                None => break,
                Some(true) => sent += 1,
                Some(false) => {}
            }
        }
        Ok(sent)
    }

    /// Sends the oldest due entry: None when there is none, else whether it
    /// was sent (a failure is recorded with its next attempt).
    async fn send_one(
        &mut self,
        conn: &mut AnyConnection,
        policies: &crate::policy::PolicySet,
        now: i64,
        lock: &'static str,
    ) -> Result<Option<bool>, OutboundError> {
        let sql = format!(
            "SELECT o.id, o.kind, o.to_address, o.subject, o.body, o.message_id, o.in_reply_to, o.attempts, c.org
             FROM outbox o JOIN cases c ON c.id = o.case_id
             WHERE o.state = 'pending' AND o.next_attempt_at <= $1 ORDER BY o.id LIMIT 1{lock}"
        );
        let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let id: i64 = r.try_get("id")?;
        let org: String = r.try_get("org")?;
        let attempts: i64 = r.try_get("attempts")?;
        let policy = policies.get(&org);
        let from = policy
            .and_then(|p| p.addresses.first())
            .and_then(|a| a.parse::<Address>().ok())
            .map(|a| Mailbox::new(policy.map(|p| format!("{} security", p.name)), a));
        let to: String = r.try_get("to_address")?;
        let message_id_for_aad: String = r.try_get("message_id")?;
        let subject = self.sealer.open_text(
            &format!("outbox:{message_id_for_aad}:subject"),
            &r.try_get::<String, _>("subject")?,
        )?;
        let body = self.sealer.open_text(
            &format!("outbox:{message_id_for_aad}:body"),
            &r.try_get::<String, _>("body")?,
        )?;
        let message_id: String = r.try_get("message_id")?;
        let in_reply_to: Option<String> = r.try_get("in_reply_to")?;
        let automatic = r.try_get::<String, _>("kind")? == "receipt";
        let built = from
            .ok_or_else(|| "no sender address for the organisation".to_owned())
            .and_then(|from| {
                self.build(
                    from,
                    &to,
                    &subject,
                    body,
                    &message_id,
                    in_reply_to,
                    automatic,
                )
            });
        let result = match built {
            Ok(message) => self
                .transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                sqlx::query("UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, reason = NULL WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                info!(outbox = id, "receipt sent");
                Ok(Some(true))
            }
            Err(reason) => {
                let attempts = attempts + 1;
                let failed = attempts >= i64::from(self.config.max_attempts);
                let delay = (self.config.retry_base.max(1) << (attempts - 1).clamp(0, 16))
                    .min(6 * 3600) as i64;
                sqlx::query("UPDATE outbox SET state = $1, attempts = $2, next_attempt_at = $3, reason = $4 WHERE id = $5")
                    .bind(if failed { "failed" } else { "pending" })
                    .bind(attempts)
                    .bind(now + delay)
                    .bind(&reason)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                warn!(outbox = id, attempts, failed, error = %reason, "receipt not sent");
                Ok(Some(false))
            }
        }
    }

    /// A receipt (`automatic`) or an analyst's reply.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        from: Mailbox,
        to: &str,
        subject: &str,
        body: String,
        message_id: &str,
        in_reply_to: Option<String>,
        automatic: bool,
    ) -> Result<Message, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("invalid recipient: {e}"))?;
        let to_address = to.email.clone();
        let from_address = from.email.clone();
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .date_now()
            .message_id(Some(message_id.to_owned()))
            .header(ContentType::TEXT_PLAIN);
        if automatic {
            // RFC 3834: an automatic reply; well-behaved responders will
            // not answer it, so no loop can start.
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-replied".into(),
            ));
        }
        if let Some(parent) = in_reply_to {
            builder = builder.in_reply_to(parent.clone()).references(parent);
        }
        // Base64 body: no line of it can start with a dot, whatever the
        // template says, so dot-stuffing cannot matter on the way out.
        let body = Body::new_with_encoding(body, ContentTransferEncoding::Base64)
            .map_err(|_| "body encoding".to_owned())?;
        // RFC 3834 §3.3: an automatic response goes out with a null reverse
        // path, so nothing ever bounces back into a loop.
        // A person's reply keeps the security address as its reverse path,
        // so a bounce reaches the team.
        let envelope =
            lettre::address::Envelope::new((!automatic).then_some(from_address), vec![to_address])
                .map_err(|e| e.to_string())?;
        builder
            .envelope(envelope)
            .body(body)
            .map_err(|e| e.to_string())
    }

    /// Runs until `stop` fires, sending every `every` and when woken.
    pub async fn run(
        mut self,
        pool: AnyPool,
        policies: std::sync::Arc<crate::policy::PolicySet>,
        wake: std::sync::Arc<tokio::sync::Notify>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        info!(hostname = %self.hostname, "outbound sender running");
        loop {
            let now = jiff::Timestamp::now().as_second();
            if let Err(e) = self.send_due(&pool, &policies, now).await {
                warn!(error = %e, "outbound pass failed");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }
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

    #[test]
    fn no_line_of_a_receipt_can_start_with_a_dot() {
        let config = OutboundConfig {
            relay: Some("127.0.0.1:25".into()),
            ..OutboundConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let (sealer, _) = Sealer::load(&dir.path().join("k"), true).unwrap();
        let sender = Sender::new(&config, "mx.test", std::sync::Arc::new(sealer))
            .unwrap()
            .unwrap();
        let from = Mailbox::new(None, "security@netcompany.example".parse().unwrap());
        let body = ".\r\n.hidden line\r\nMAIL FROM:<x@y>\r\n".to_owned();
        let message = sender
            .build(
                from,
                "r@example.org",
                "subject",
                body,
                "<NC-2026-0001.receipt@mx.test>",
                None,
                true,
            )
            .unwrap();
        let wire = String::from_utf8(message.formatted()).unwrap();
        assert!(wire.contains("Content-Transfer-Encoding: base64"), "{wire}");
        assert!(wire.lines().all(|l| !l.starts_with('.')), "{wire}");
        assert!(wire.contains("Auto-Submitted: auto-replied"));
        assert_eq!(message.envelope().from(), None, "null reverse path");

        // A person's reply: a real reverse path, no Auto-Submitted.
        let from = Mailbox::new(None, "security@netcompany.example".parse().unwrap());
        let reply = sender
            .build(
                from,
                "r@example.org",
                "Re: x",
                "thanks".into(),
                "<NC-2026-0001.abc@mx.test>",
                Some("<orig@example.org>".into()),
                false,
            )
            .unwrap();
        let wire = String::from_utf8(reply.formatted()).unwrap();
        assert!(!wire.contains("Auto-Submitted"), "{wire}");
        assert!(wire.contains("In-Reply-To: <orig@example.org>"), "{wire}");
        assert_eq!(
            reply.envelope().from().map(ToString::to_string).as_deref(),
            Some("security@netcompany.example")
        );
    }
}
