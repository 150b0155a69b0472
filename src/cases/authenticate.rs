//! Sender authentication after filing: each filed message is assessed
//! (`sender_auth`: SPF, DKIM, DMARC, ARC against DNS), our own
//! `Authentication-Results` goes on top of the stored message (the
//! sender's claims under our authserv-id removed), the case shows our
//! results only, and the case's receipt — held at filing — goes out only
//! when the sender is authenticated: SPF passed for the envelope sender,
//! or a DKIM signature aligned with `From:` verified. Otherwise it waits
//! for an analyst to release it (`Cases::release_receipt`). This is what
//! stops receipts to forged senders (backscatter).
//!
//! Filing never waits for this: intake files first, then wakes this loop.

use super::service::{Cases, Change, record};
use super::{Authorized, Case, CaseError, EventKind};
use crate::sender_auth::{self, Envelope, SenderAuth};
use crate::store::Store;
use crate::store::audit::AuditAction;
use crate::store::auth::{self as auth_store, Unassessed};
use crate::store::outbox;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Why a receipt waits: its sender is being assessed.
pub const AWAITING: &str = "awaiting-sender-authentication";
/// Why a receipt waits: its sender is not authenticated.
pub const UNAUTHENTICATED: &str = "unauthenticated-sender";

/// Messages assessed side by side in one pass: DNS waits dominate, so a
/// few at once hide each other's latency.
const PARALLEL: i64 = 8;

/// The assessing loop over one store.
pub struct Authenticator {
    store: Store,
    auth: Arc<SenderAuth>,
}

impl Authenticator {
    pub fn new(store: Store, auth: SenderAuth) -> Authenticator {
        Authenticator {
            store,
            auth: Arc::new(auth),
        }
    }

    /// Assesses filed messages until none is left; returns how many.
    pub async fn drain(&self) -> Result<usize, CaseError> {
        let mut done = 0;
        loop {
            let batch =
                auth_store::unassessed(self.store.pool(), self.store.sealer(), PARALLEL).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            let mut jobs = tokio::task::JoinSet::new();
            for mut m in batch {
                let auth = Arc::clone(&self.auth);
                jobs.spawn(async move {
                    let peer = m
                        .peer
                        .parse::<std::net::SocketAddr>()
                        .map(|a| a.ip())
                        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
                    let (helo, mail_from) = (m.helo.clone(), m.mail_from.clone());
                    let raw = std::mem::take(&mut m.raw);
                    // A panic in a verifier costs this message's
                    // assessment (recorded as not assessed, its stored
                    // mail left as it is), never the loop, and the message
                    // is not tried again.
                    let inner = Arc::clone(&auth);
                    let assessed = tokio::spawn(async move {
                        let envelope = Envelope {
                            ip: peer,
                            helo: &helo,
                            mail_from: &mail_from,
                        };
                        let a = inner.assess(after_our_trace(&raw), &envelope).await;
                        (raw, a)
                    })
                    .await;
                    match assessed {
                        Ok((raw, a)) => {
                            m.raw = raw;
                            (m, a, true)
                        }
                        Err(_) => {
                            let envelope = Envelope {
                                ip: peer,
                                helo: &m.helo,
                                mail_from: &m.mail_from,
                            };
                            let a = auth.unassessed(&envelope, "the verifier failed");
                            (m, a, false)
                        }
                    }
                });
            }
            let mut assessed = Vec::new();
            while let Some(r) = jobs.join_next().await {
                match r {
                    Ok(done) => assessed.push(done),
                    Err(e) => warn!(error = %e, "a sender assessment failed"),
                }
            }
            if assessed.is_empty() {
                // Every job failed: stop rather than spin; the next pass
                // tries again.
                return Ok(done);
            }
            let now = jiff::Timestamp::now().as_second();
            let mut tx = self.store.write().await?;
            for (m, a, whole) in &assessed {
                let annotated = whole
                    .then(|| sender_auth::annotate(&m.raw, self.auth.authserv_id(), &a.header));
                let sealer = self.store.sealer();
                if !auth_store::record(&mut tx, sealer, m, a, annotated.as_deref(), now).await? {
                    continue;
                }
                if m.opened_case {
                    settle_receipt(&mut tx, m, a.authenticated, now).await?;
                }
                info!(queue_id = %m.queue_id, authenticated = a.authenticated, "sender assessed");
                done += 1;
            }
            tx.commit().await?;
        }
    }

    /// Runs until `stop` fires: drains, then waits for `wake` or `every`.
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            // A pass may wait on a slow resolver for its whole budget:
            // shutdown does not wait for it. Nothing is half-recorded
            // (each batch is one transaction), and what was not recorded
            // is assessed at the next start.
            tokio::select! {
                r = self.drain() => {
                    if let Err(e) = r {
                        warn!(error = %e, "sender assessment pass failed; retrying");
                    }
                }
                _ = stop.changed() => return,
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

impl Cases {
    /// Sends the case's receipt that was held because its sender is not
    /// authenticated: the analyst has judged the report genuine. Returns
    /// whether one was held.
    pub async fn release_receipt(&self, case: &Authorized<Case>) -> Result<bool, CaseError> {
        let now = self.now();
        let who = case.principal().who();
        let mut tx = self.store.write().await?;
        let released =
            outbox::resume_suppressed(&mut tx, case.id, "receipt", UNAUTHENTICATED, now).await?;
        if released == 0 {
            return Err(CaseError::NoHeldReceipt(case.reference.clone()));
        }
        record(
            &mut tx,
            self.store.sealer(),
            case,
            &who,
            now,
            Change {
                event: EventKind::ReceiptReleased,
                timeline: "receipt released: the sender was not authenticated",
                action: AuditAction::ReceiptRelease,
                audit: "held receipt released",
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The held receipt of the case `m` opened: released, or held for an
/// analyst.
async fn settle_receipt(
    tx: &mut crate::store::WriteTx<'_>,
    m: &Unassessed,
    authenticated: bool,
    now: i64,
) -> Result<(), CaseError> {
    if authenticated {
        outbox::resume_suppressed(tx, m.case_id, "receipt", AWAITING, now).await?;
    } else {
        outbox::resuppress(tx, m.case_id, "receipt", AWAITING, UNAUTHENTICATED).await?;
    }
    Ok(())
}

/// The message as it arrived: our own `Received:` line (the first field,
/// added at receipt) is not the sender's, and DKIM never covers it.
fn after_our_trace(raw: &[u8]) -> &[u8] {
    if !raw.starts_with(b"Received:") {
        return raw;
    }
    let mut i = 0;
    while let Some(p) = raw[i..].iter().position(|&b| b == b'\n') {
        i += p + 1;
        if !matches!(raw.get(i), Some(b' ' | b'\t')) {
            return &raw[i..];
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    #[test]
    fn our_trace_line_is_not_the_senders() {
        let raw = b"Received: from a\r\n\tby mx.test\r\nFrom: r@x\r\n\r\nbody";
        assert_eq!(super::after_our_trace(raw), b"From: r@x\r\n\r\nbody");
        assert_eq!(
            super::after_our_trace(b"From: r@x\r\n\r\n"),
            b"From: r@x\r\n\r\n"
        );
    }
}
