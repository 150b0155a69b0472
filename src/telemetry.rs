//! Metrics and health on a listener of their own (`[metrics] listen`,
//! loopback by default), never on the analysts' web listener: a scrape
//! needs no sign-in, so it must not share a door with report content.
//!
//! Counters are kept where things happen (the SMTP driver, intake) through
//! the `metrics` facade; the gauges that describe stored state (queues,
//! outbox, cases) are read from the store at each scrape. Nothing here
//! names a reporter, an address or a subject: labels are outcomes, states,
//! TLS parameters and organisation ids.

use crate::store::{Store, gauges};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Metric names, in one place with the SMTP driver's: the README's table
/// lists the same.
pub mod names {
    pub use crate::smtp::metrics::*;
    pub const BODY_INFLIGHT: &str = "dmx_smtp_inflight_body_bytes";
    pub const BODY_LIMIT: &str = "dmx_smtp_inflight_body_limit_bytes";
    pub const PENDING: &str = "dmx_messages_pending";
    pub const QUARANTINED: &str = "dmx_messages_quarantined";
    pub const OLDEST_PENDING: &str = "dmx_oldest_pending_age_seconds";
    pub use crate::cases::inbox::{INTAKE_DURATION, INTAKE_FILED};
    pub const OUTBOX: &str = "dmx_outbox_messages";
    pub const WEBHOOK_LAG: &str = "dmx_webhook_lag_seconds";
    pub const CASES_OPEN: &str = "dmx_cases_open";
    pub const CASES_OVERDUE: &str = "dmx_cases_overdue";
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics` (Prometheus text) and `/healthz/live`,
    /// `/healthz/ready` listen. Default 127.0.0.1:9125: loopback, so only
    /// the host's own agent scrapes it; ops who scrape from elsewhere
    /// say so here.
    pub listen: SocketAddr,
    /// Off: no metrics listener, and counters are not kept.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9125)),
            enabled: true,
        }
    }
}

/// Seconds the database has to answer a readiness check: a probe that
/// hangs is itself a failure, and orchestrators time out at a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Intake durations, in seconds: one message takes milliseconds; a batch
/// behind a slow worker, seconds; anything beyond a minute is a stall.
const INTAKE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, thiserror::Error)]
#[error("installing the metrics recorder: {0}")]
pub struct TelemetryError(String);

/// Installs the process-wide recorder. Once per process.
pub fn install() -> Result<PrometheusHandle, TelemetryError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::INTAKE_DURATION.into()), INTAKE_BUCKETS)
        .map_err(|e| TelemetryError(e.to_string()))?
        .install_recorder()
        .map_err(|e| TelemetryError(e.to_string()))
}

/// What the listener reads at a scrape.
pub struct Probe {
    pub handle: PrometheusHandle,
    pub store: Store,
    /// The receivers' shared message memory, in KiB permits.
    pub body_memory: Arc<tokio::sync::Semaphore>,
    pub body_limit_kib: usize,
    pub webhooks: Vec<String>,
    /// Every organisation, so one whose last open case closed reads 0.
    pub orgs: Vec<String>,
    /// Set once every listener is bound.
    pub listening: Arc<AtomicBool>,
}

pub fn router(probe: Arc<Probe>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz/live", get(|| async { "live\n" }))
        .route("/healthz/ready", get(ready))
        .with_state(probe)
}

async fn ready(State(p): State<Arc<Probe>>) -> impl IntoResponse {
    if !p.listening.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: listeners not bound yet\n".to_owned(),
        );
    }
    match tokio::time::timeout(READY_TIMEOUT, gauges::ping(&p.store)).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database: {e}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: database did not answer within {}s\n",
                READY_TIMEOUT.as_secs()
            ),
        ),
    }
}

async fn metrics(State(p): State<Arc<Probe>>) -> impl IntoResponse {
    let now = jiff::Timestamp::now().as_second();
    let held_kib = p
        .body_limit_kib
        .saturating_sub(p.body_memory.available_permits());
    metrics::gauge!(names::BODY_INFLIGHT).set((held_kib * 1024) as f64);
    metrics::gauge!(names::BODY_LIMIT).set((p.body_limit_kib * 1024) as f64);
    match gauges::read(&p.store, now).await {
        Ok(g) => {
            metrics::gauge!(names::PENDING).set(g.pending as f64);
            metrics::gauge!(names::QUARANTINED).set(g.quarantined as f64);
            let age = g.oldest_pending_at.map_or(0, |at| (now - at).max(0));
            metrics::gauge!(names::OLDEST_PENDING).set(age as f64);
            for state in ["pending", "sent", "failed", "suppressed"] {
                let n = g.outbox.iter().find(|(s, _)| s == state).map_or(0, |x| x.1);
                metrics::gauge!(names::OUTBOX, "state" => state).set(n as f64);
            }
            for org in &p.orgs {
                let (open, overdue) = g
                    .cases
                    .iter()
                    .find(|c| &c.0 == org)
                    .map_or((0, 0), |c| (c.1, c.2));
                metrics::gauge!(names::CASES_OPEN, "org" => org.clone()).set(open as f64);
                metrics::gauge!(names::CASES_OVERDUE, "org" => org.clone()).set(overdue as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: store gauges not read"),
    }
    for name in &p.webhooks {
        match crate::store::webhooks::lag(&p.store, name, now).await {
            Ok(lag) => {
                metrics::gauge!(names::WEBHOOK_LAG, "webhook" => name.clone()).set(lag as f64)
            }
            Err(e) => tracing::warn!(error = %e, "metrics: webhook lag not read"),
        }
    }
    p.handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        p.handle.render(),
    )
}

/// Serves the router on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    probe: Arc<Probe>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let _ = axum::serve(listener, router(probe))
        .with_graceful_shutdown(shutdown)
        .await;
}
