//! Webhooks: a signed POST on each new case, each state change, and each
//! deadline that comes within a business day or passes (`cases::alerts`).
//!
//! The case timeline is the persisted queue: every new case has a
//! `received` event and every state change a `transition` event. Each
//! webhook keeps a cursor (the last event it delivered) in `store_meta`, and
//! the cursor moves only after the receiver answers 2xx, so a delivery
//! survives restarts and is retried with backoff until it succeeds. Bodies
//! carry the case reference, organisation and state, never report content;
//! they are signed with HMAC-SHA-256 under the webhook's secret
//! (`X-Disclosure-Signature: sha256=<hex>` over the exact body).

use crate::model::case::EventKind;
use crate::store::{Store, webhooks};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// `[[webhooks]]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name, for the cursor and the logs.
    pub name: String,
    /// `http://host:port/path` or `https://...`.
    pub url: String,
    /// The HMAC key receivers verify signatures with.
    pub secret: String,
    /// Organisations whose cases are reported; empty means all.
    #[serde(default)]
    pub orgs: Vec<String>,
}

/// Time for one delivery, connect to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Events sent per pass; the next pass follows at once if more wait.
const BATCH: i64 = 50;

/// The signature header value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(ring::hmac::sign(&key, body)))
}

/// The HTTP client: TLS 1.2+ verified against the public web roots, no
/// redirects (a receiver that moves is misconfigured, and a redirect must
/// not carry a signed body elsewhere), one time limit per delivery.
fn client() -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .user_agent("disclosure-mx")
        .build()
        .map_err(|e| e.to_string())
}

/// One POST; Ok(status) when the receiver answered.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    signature: &str,
) -> Result<u16, String> {
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Disclosure-Signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.status().as_u16())
}

/// Delivers events to every configured webhook until `stop` fires.
pub async fn run(
    store: Store,
    hooks: Vec<WebhookConfig>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "webhooks disabled: no HTTP client");
            return;
        }
    };
    let mut backoff: Vec<u32> = vec![0; hooks.len()];
    loop {
        for (i, hook) in hooks.iter().enumerate() {
            match deliver(&store, hook, &client).await {
                Ok(n) => {
                    backoff[i] = 0;
                    if n > 0 {
                        info!(webhook = %hook.name, events = n, "webhook delivered");
                    }
                }
                Err(e) => {
                    backoff[i] = (backoff[i] + 1).min(10);
                    warn!(webhook = %hook.name, attempt = backoff[i], error = %e, "webhook delivery failed; will retry");
                }
            }
        }
        // Retry failing hooks with growing pauses (1 s .. ~17 min), others
        // every second.
        let wait = backoff
            .iter()
            .map(|&b| if b == 0 { 1 } else { 1u64 << b })
            .min()
            .unwrap_or(1);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One delivery pass for `hook`: the events after its cursor; returns how
/// many were sent. Receivers sharing a PostgreSQL database each run this
/// loop; the turn (`store::webhooks`) lets one of them deliver a webhook at
/// a time (the others skip the pass), so the cursor is read and moved by
/// one and each event goes out once.
async fn deliver(
    store: &Store,
    hook: &WebhookConfig,
    client: &reqwest::Client,
) -> Result<usize, String> {
    if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
        return Err(format!("bad url {:?}", hook.url));
    }
    let Some(mut turn) = webhooks::take_turn(store, &hook.name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(0);
    };
    let result = deliver_turn(store, &mut turn, hook, client).await;
    turn.finish().await;
    result
}

async fn deliver_turn(
    store: &Store,
    turn: &mut webhooks::Turn,
    hook: &WebhookConfig,
    client: &reqwest::Client,
) -> Result<usize, String> {
    let last = turn.cursor().await.map_err(|e| e.to_string())?;
    let events = turn
        .events_after(store.sealer(), last, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut sent = 0;
    for e in events {
        if hook.orgs.is_empty() || hook.orgs.contains(&e.org) {
            let mut body = serde_json::json!({
                "event": match e.kind {
                    EventKind::Received => "case.created",
                    EventKind::DueSoon => "case.due_soon",
                    EventKind::Overdue => "case.overdue",
                    EventKind::ClockStarted => "case.clock_started",
                    _ => "case.state_changed",
                },
                "delivery": format!("{}-{}", hook.name, e.id),
                "reference": e.reference,
                "org": e.org,
                "state": e.state,
                "at": e.at,
            });
            if let Some(change) = e.change {
                body["change"] = serde_json::Value::String(change);
            }
            let bytes = body.to_string().into_bytes();
            let signed = signature(&hook.secret, &bytes);
            let status = post(client, &hook.url, bytes, &signed).await?;
            if !(200..300).contains(&status) {
                return Err(format!("receiver answered {status}"));
            }
            sent += 1;
        }
        turn.set_cursor(e.id).await.map_err(|e| e.to_string())?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
