//! The relay side of the outbox: delivers due receipts and replies through
//! the outbound relay, STARTTLS required, with retries and backoff.

use super::{OutboundConfig, OutboundError};
use crate::store::Store;
use crate::store::outbox;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use tracing::{info, warn};

/// How long a claimed entry is kept from other senders: past the relay
/// conversation's own time limits (60 s per command).
const SEND_LEASE_SECONDS: i64 = 300;

/// A mail with its headers set and its body still to be put in: in
/// clear, or encrypted to the reporter's key (RFC 3156 PGP/MIME).
pub(super) struct Draft {
    builder: lettre::message::MessageBuilder,
    body: Content,
}

enum Content {
    Plain(String),
    Encrypted(String),
}

impl Draft {
    /// The same mail, its body encrypted to `key` (armored public key).
    /// The text goes in a MIME part of its own inside the encryption, so
    /// the reporter's client shows it as the message.
    fn encrypted_to(self, key: &str) -> Result<Draft, String> {
        let Content::Plain(text) = self.body else {
            return Ok(self);
        };
        let part = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::Base64)
            .body(text);
        let reply = crate::keyring::encrypt_reply(key, &part.formatted())?;
        Ok(Draft {
            builder: self.builder,
            body: Content::Encrypted(reply.armored),
        })
    }

    fn finish(self) -> Result<Message, String> {
        match self.body {
            // Base64 body: no line of it can start with a dot, whatever
            // the template says, so dot-stuffing cannot matter on the way
            // out.
            Content::Plain(text) => {
                let body = Body::new_with_encoding(text, ContentTransferEncoding::Base64)
                    .map_err(|_| "body encoding".to_owned())?;
                self.builder
                    .header(ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(|e| e.to_string())
            }
            Content::Encrypted(armored) => {
                let control =
                    ContentType::parse("application/pgp-encrypted").map_err(|e| e.to_string())?;
                let data = ContentType::parse("application/octet-stream; name=\"encrypted.asc\"")
                    .map_err(|e| e.to_string())?;
                let multipart = MultiPart::encrypted("application/pgp-encrypted".into())
                    .singlepart(
                        SinglePart::builder()
                            .header(control)
                            .header(ContentTransferEncoding::SevenBit)
                            .body(String::from("Version: 1\r\n")),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(data)
                            .header(ContentTransferEncoding::SevenBit)
                            .body(armored),
                    );
                self.builder.multipart(multipart).map_err(|e| e.to_string())
            }
        }
    }
}

/// The signing key, when `[outbound]` names both the file and the selector.
pub fn load_dkim(config: &OutboundConfig) -> Result<Option<super::dkim::Dkim>, OutboundError> {
    match (&config.dkim_key_file, &config.dkim_selector) {
        (None, None) => Ok(None),
        (Some(path), Some(selector)) => super::dkim::Dkim::load(path, selector).map(Some),
        (path, _) => Err(OutboundError::Dkim {
            path: path.clone().unwrap_or_default(),
            reason: "dkim_key_file and dkim_selector must be set together".into(),
        }),
    }
}

/// Delivers due outbox entries through the relay.
pub struct Sender {
    config: OutboundConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Our name in EHLO.
    hostname: String,
    /// Signs each message for its `From:` domain, when configured.
    dkim: Option<super::dkim::Dkim>,
}

impl Sender {
    /// None when no relay is configured.
    pub fn new(config: &OutboundConfig, hostname: &str) -> Result<Option<Sender>, OutboundError> {
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
            transport,
            hostname: hostname.to_owned(),
            dkim: load_dkim(config)?,
        }))
    }

    /// Sends an organisation's digest to its team now (automatic mail,
    /// from the organisation's security address); Err with the reason
    /// when the relay did not accept it.
    pub async fn send_digest(
        &mut self,
        policies: &crate::policy::PolicySet,
        org: &str,
        to: &str,
        subject: &str,
        body: String,
    ) -> Result<(), String> {
        let policy = policies.get(org).ok_or("no policy for the organisation")?;
        let from = policy
            .addresses
            .first()
            .and_then(|a| a.parse::<Address>().ok())
            .map(|a| Mailbox::new(Some(format!("{} security", policy.name)), a))
            .ok_or("no sender address for the organisation")?;
        let message_id = format!(
            "<digest.{org}.{}@{}>",
            crate::store::cases::object_id(),
            self.hostname
        );
        let domain = from.email.domain().to_owned();
        let message = self
            .build(from, to, subject, body, &message_id, None, true)
            .and_then(Draft::finish)?;
        self.deliver(message, &domain).await
    }

    /// Hands `message` to the relay, DKIM-signed for `domain` when a key
    /// is configured.
    async fn deliver(&self, message: Message, domain: &str) -> Result<(), String> {
        match &self.dkim {
            None => self
                .transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Some(dkim) => {
                let signed = dkim.sign(domain, &message.formatted())?;
                self.transport
                    .send_raw(message.envelope(), &signed)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Sends what is due; returns how many were sent.
    pub async fn send_due(
        &mut self,
        store: &Store,
        policies: &crate::policy::PolicySet,
        now: i64,
    ) -> Result<usize, OutboundError> {
        let mut sent = 0;
        // Bounded per pass; the next pass comes a second later.
        for _ in 0..20 {
            let Some(due) = outbox::claim_due(store, now, SEND_LEASE_SECONDS).await? else {
                break;
            };
            if self.send_one(store, policies, now, due).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Sends one claimed entry; returns whether it was sent (a failure is
    /// recorded with its next attempt).
    async fn send_one(
        &mut self,
        store: &Store,
        policies: &crate::policy::PolicySet,
        now: i64,
        due: outbox::Due,
    ) -> Result<bool, OutboundError> {
        let policy = policies.get(&due.org);
        let from = policy
            .and_then(|p| p.addresses.first())
            .and_then(|a| a.parse::<Address>().ok())
            .map(|a| Mailbox::new(policy.map(|p| format!("{} security", p.name)), a));
        let domain = from
            .as_ref()
            .map(|f| f.email.domain().to_owned())
            .unwrap_or_default();
        let built = from
            .ok_or_else(|| "no sender address for the organisation".to_owned())
            .and_then(|from| {
                self.build(
                    from,
                    &due.to,
                    &due.subject,
                    due.body,
                    &due.message_id,
                    due.in_reply_to,
                    due.automatic,
                )
                .and_then(|m| match &due.encrypt_to {
                    Some(key) => m.encrypted_to(key),
                    None => Ok(m),
                })
                .and_then(Draft::finish)
            });
        let result = match built {
            Ok(message) => self.deliver(message, &domain).await,
            Err(e) => Err(e),
        };
        let id = due.id;
        match result {
            Ok(()) => {
                outbox::mark_sent(store, id, now).await?;
                info!(outbox = id, "receipt sent");
                Ok(true)
            }
            Err(reason) => {
                let attempts = due.attempts + 1;
                let failed = attempts >= i64::from(self.config.max_attempts);
                let delay = (self.config.retry_base.max(1) << (attempts - 1).clamp(0, 16))
                    .min(6 * 3600) as i64;
                outbox::mark_attempt_failed(store, id, attempts, failed, now + delay, &reason)
                    .await?;
                warn!(outbox = id, attempts, failed, error = %reason, "receipt not sent");
                Ok(false)
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
    ) -> Result<Draft, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("invalid recipient: {e}"))?;
        let to_address = to.email.clone();
        let from_address = from.email.clone();
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .date_now()
            .message_id(Some(message_id.to_owned()));
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

        // RFC 3834 §3.3: an automatic response goes out with a null reverse
        // path, so nothing ever bounces back into a loop.
        // A person's reply keeps the security address as its reverse path,
        // so a bounce reaches the team.
        let envelope =
            lettre::address::Envelope::new((!automatic).then_some(from_address), vec![to_address])
                .map_err(|e| e.to_string())?;
        Ok(Draft {
            builder: builder.envelope(envelope),
            body: Content::Plain(body),
        })
    }

    /// Runs until `stop` fires, sending every `every` and when woken.
    pub async fn run(
        mut self,
        store: Store,
        policies: std::sync::Arc<crate::policy::PolicySet>,
        wake: std::sync::Arc<tokio::sync::Notify>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        info!(hostname = %self.hostname, "outbound sender running");
        loop {
            let now = jiff::Timestamp::now().as_second();
            if let Err(e) = self.send_due(&store, &policies, now).await {
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
    fn no_line_of_a_receipt_can_start_with_a_dot() {
        let config = OutboundConfig {
            relay: Some("127.0.0.1:25".into()),
            ..OutboundConfig::default()
        };
        let sender = Sender::new(&config, "mx.test").unwrap().unwrap();
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
            .and_then(Draft::finish)
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
            .and_then(Draft::finish)
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
