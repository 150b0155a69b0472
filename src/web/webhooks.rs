//! Webhooks: a signed POST on each new case and each state change.
//!
//! The case timeline is the persisted queue: every new case has a
//! `received` event and every state change a `transition` event. Each
//! webhook keeps a cursor (the last event it delivered) in `store_meta`, and
//! the cursor moves only after the receiver answers 2xx, so a delivery
//! survives restarts and is retried with backoff until it succeeds. Bodies
//! carry the case reference, organisation and state, never report content;
//! they are signed with HMAC-SHA-256 under the webhook's secret
//! (`X-Disclosure-Signature: sha256=<hex>` over the exact body).

use crate::store::Store;
use serde::Deserialize;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// Bytes of a receiver's answer read: the status line is all we need.
const MAX_RESPONSE: usize = 8 * 1024;
/// Time for one delivery, connect to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Events sent per pass; the next pass follows at once if more wait.
const BATCH: i64 = 50;

/// The signature header value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!(
        "sha256={}",
        tag.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Option<Target> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_owned(), p.parse().ok()?)
        }
        _ => (authority.to_owned(), if tls { 443 } else { 80 }),
    };
    (!host.is_empty()).then(|| Target {
        tls,
        host,
        port,
        path: path.to_owned(),
    })
}

/// One POST; Ok(status) when the receiver answered.
async fn post(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    body: &[u8],
    signature: &str,
) -> Result<u16, String> {
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: disclosure-mx\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nX-Disclosure-Signature: {signature}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host,
        body.len()
    );
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    if target.tls {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| e.to_string())?;
        let mut s = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(body).await.map_err(|e| e.to_string())?;
        let _ = (&mut s)
            .take(MAX_RESPONSE as u64)
            .read_to_end(&mut answer)
            .await;
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(body).await.map_err(|e| e.to_string())?;
        let _ = (&mut s)
            .take(MAX_RESPONSE as u64)
            .read_to_end(&mut answer)
            .await;
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no HTTP status in the answer".to_owned())
}

/// Delivers events to every configured webhook until `stop` fires.
pub async fn run(
    store: Store,
    hooks: Vec<WebhookConfig>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match client_config() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            warn!(error = %e, "webhooks disabled: no TLS client configuration");
            return;
        }
    };
    let mut backoff: Vec<u32> = vec![0; hooks.len()];
    loop {
        for (i, hook) in hooks.iter().enumerate() {
            match deliver(&store, hook, &tls).await {
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

/// TLS 1.2+ to receivers, verified against the public web roots.
fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Sends the events after the hook's cursor; returns how many.
/// One delivery pass for `hook`. Receivers sharing a PostgreSQL database
/// each run this loop; a session advisory lock per webhook lets one of
/// them deliver at a time (the others skip the pass), so the cursor is
/// read and moved by one and each event goes out once.
async fn deliver(
    store: &Store,
    hook: &WebhookConfig,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<usize, String> {
    let mut conn = store.pool().acquire().await.map_err(|e| e.to_string())?;
    let shared = crate::store::Backend::of(&conn) == crate::store::Backend::Postgres;
    if shared {
        let (mine,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(7265, hashtext($1))")
            .bind(&hook.name)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        if !mine {
            return Ok(0);
        }
    }
    let result = deliver_locked(store, &mut conn, hook, tls).await;
    if shared {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(7265, hashtext($1))")
            .bind(&hook.name)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // Never hand a connection holding the lock back to the pool.
            let _ = conn.close().await;
        }
    }
    result
}

async fn deliver_locked(
    store: &Store,
    pool: &mut sqlx::AnyConnection,
    hook: &WebhookConfig,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<usize, String> {
    let target = parse_url(&hook.url).ok_or_else(|| format!("bad url {:?}", hook.url))?;
    let cursor_key = format!("webhook:{}", hook.name);
    let cursor: Option<(String,)> = sqlx::query_as("SELECT value FROM store_meta WHERE name = $1")
        .bind(&cursor_key)
        .fetch_optional(&mut *pool)
        .await
        .map_err(|e| e.to_string())?;
    let mut last: i64 = cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0);
    let rows = sqlx::query(
        "SELECT e.id, e.case_id, e.at, e.kind, e.detail, c.reference, c.org, c.state
         FROM case_events e JOIN cases c ON c.id = e.case_id
         WHERE e.id > $1 AND e.kind IN ('received', 'transition') ORDER BY e.id LIMIT $2",
    )
    .bind(last)
    .bind(BATCH)
    .fetch_all(&mut *pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut sent = 0;
    for r in rows {
        let id: i64 = r.try_get("id").map_err(|e| e.to_string())?;
        let org: String = r.try_get("org").map_err(|e| e.to_string())?;
        if hook.orgs.is_empty() || hook.orgs.contains(&org) {
            let kind: String = r.try_get("kind").map_err(|e| e.to_string())?;
            let case_id: i64 = r.try_get("case_id").map_err(|e| e.to_string())?;
            let mut body = serde_json::json!({
                "event": if kind == "received" { "case.created" } else { "case.state_changed" },
                "delivery": format!("{}-{id}", hook.name),
                "reference": r.try_get::<String, _>("reference").map_err(|e| e.to_string())?,
                "org": org,
                "state": r.try_get::<String, _>("state").map_err(|e| e.to_string())?,
                "at": r.try_get::<i64, _>("at").map_err(|e| e.to_string())?,
            });
            if kind == "transition" {
                // "from -> to (reason)": our own words, not report content.
                let detail = store
                    .sealer()
                    .open_text(
                        &crate::cases::store::case_child(case_id, "event"),
                        &r.try_get::<String, _>("detail")
                            .map_err(|e| e.to_string())?,
                    )
                    .map_err(|e| e.to_string())?;
                body["change"] = serde_json::Value::String(detail);
            }
            let bytes = body.to_string().into_bytes();
            let status = tokio::time::timeout(
                DELIVERY_TIMEOUT,
                post(&target, tls, &bytes, &signature(&hook.secret, &bytes)),
            )
            .await
            .map_err(|_| "timed out".to_owned())??;
            if !(200..300).contains(&status) {
                return Err(format!("receiver answered {status}"));
            }
            sent += 1;
        }
        last = id;
        let updated = sqlx::query("UPDATE store_meta SET value = $1 WHERE name = $2")
            .bind(last.to_string())
            .bind(&cursor_key)
            .execute(&mut *pool)
            .await
            .map_err(|e| e.to_string())?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO store_meta (name, value) VALUES ($1, $2)")
                .bind(&cursor_key)
                .bind(last.to_string())
                .execute(&mut *pool)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_signatures() {
        let t = parse_url("http://127.0.0.1:8099/hook?x=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 8099, "/hook?x=1")
        );
        let t = parse_url("https://hooks.example").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/"));
        assert!(parse_url("ftp://x").is_none());
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
