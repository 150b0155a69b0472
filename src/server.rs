//! Assembles a running receiver from a `Config`: store, writer, TLS,
//! listeners, and the signals (SIGTERM/SIGINT drain, SIGHUP reloads the
//! certificate).

use crate::cases::inbox::{Inbox, Receipts};
use crate::cases::unlock::Unlocker;
use crate::config::Config;
use crate::intake::mime::MimeLimits;
use crate::intake::worker::{Failure, WorkerPool};
use crate::outbound::{OutboundError, Sender};
use crate::policy::{PlaintextRule, PolicyError, PolicySet};
use crate::smtp::content::{ContentCheck, Verdict};
use crate::smtp::driver::{self, Admission, Receiver, ShutdownControl};
use crate::smtp::session::{AcceptFor, SessionConfig};
use crate::smtp::tls::{self, CertFiles, CertStore, TlsError};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error(
        "no recipient would be accepted: smtp.accept_for is empty and no policy owns an address"
    )]
    NoRecipients,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    #[error(transparent)]
    Worker(#[from] Failure),
    #[error(transparent)]
    Keys(#[from] crate::keyring::KeyError),
    #[error("{0}")]
    SenderAuth(String),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error("building the search index: {0}")]
    Index(#[from] crate::cases::CaseError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

/// The name of the file in `data_dir` that lists the bound addresses, one per
/// line, once the server accepts connections (useful with port 0).
pub const LISTENING_FILE: &str = "listening";

/// Runs until SIGTERM or SIGINT, then drains.
pub async fn serve(config: Config, dev_idp: bool) -> Result<(), ServeError> {
    let io = |what| move |source| ServeError::Io { what, source };
    std::fs::create_dir_all(&config.data_dir).map_err(io("creating data_dir"))?;

    let policies = load_policies(&config)?;
    let mut recipients = config.smtp.accept_for.clone();
    recipients.extend(policies.addresses());
    // Where senders mail their TLS reports (RFC 8460), when it is in one
    // of our domains.
    let ours = crate::publish::domains(recipients.iter().map(String::as_str));
    recipients.extend(
        config
            .mta_sts
            .tls_rpt
            .iter()
            .filter_map(|a| a.strip_prefix("mailto:"))
            .filter(|a| {
                crate::publish::domains([*a])
                    .iter()
                    .all(|d| ours.contains(d))
            })
            .map(str::to_owned),
    );
    if recipients.is_empty() {
        return Err(ServeError::NoRecipients);
    }

    let store = Store::open(
        &config.store.url,
        &config.data_dir,
        &config.store.key_path(&config.data_dir),
    )
    .await?;
    let (writer, writer_task) = store.writer(config.store.group_commit_max).await?;

    let files = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert_file), Some(key_file)) => CertFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        },
        _ => {
            let files = tls::ensure_dev_cert(&config.data_dir.join("tls"), &config.smtp.hostname)?;
            warn!(cert = %files.cert_file.display(), "no certificate configured: using a self-signed development certificate");
            files
        }
    };
    let certs = CertStore::open(files)?;
    let acceptor = TlsAcceptor::from(tls::server_config(Arc::clone(&certs))?);

    // Parse workers, started before any message can arrive: one pool for
    // intake (and nothing else), one for the plaintext rule in sessions.
    let settings = &config.intake;
    // A security.txt about to expire, or expired, is still served (it is
    // the policy's), but ops hear of it at every start.
    for p in policies.iter() {
        if let Some(s) = &p.security_txt {
            match s.expiry(jiff::Timestamp::now()) {
                Ok(None) => {}
                Ok(Some(w)) | Err(w) => warn!(org = %p.id, "{w}"),
            }
        }
    }
    let shared_policies = Arc::new(policies.clone());
    // Decryption keys: checked now, so a key others can read, or a file
    // that is no key, stops the start rather than the first report.
    let keyring = Arc::new(crate::keyring::Keyring::load(&policies)?);
    for p in policies.iter() {
        if let Some((fingerprint, true)) = keyring.openpgp_status(&p.id) {
            warn!(org = %p.id, %fingerprint, "OpenPGP key is passphrase-protected: reports encrypted to it wait until `disclosure-mx keys unlock {}`", p.id);
        }
    }
    let intake_workers = WorkerPool::start(
        settings.workers,
        settings.parse_budget(),
        policies.sources().to_vec(),
    )
    .await?;
    let check_workers = WorkerPool::start(
        settings.check_workers,
        settings.parse_budget(),
        policies.sources().to_vec(),
    )
    .await?;
    let extract_limits = crate::intake::extract::ExtractLimits::default();
    let unlocker = Arc::new(Unlocker::new(
        store.clone(),
        Arc::clone(&shared_policies),
        settings.unlock_budget(extract_limits.max_time),
        extract_limits,
    ));
    let cases = Arc::new(
        crate::cases::Cases::new(
            store.clone(),
            Arc::clone(&shared_policies),
            Arc::clone(&unlocker),
            config.smtp.hostname.clone(),
            settings.retry_budget_factor,
        )
        .with_outbound(config.outbound.clone())
        .with_keyring(Arc::clone(&keyring)),
    );
    // Cases filed before the search index existed are indexed once.
    if let Some(n) = cases.reindex_if_needed().await? {
        tracing::info!(cases = n, "search index built");
    }

    let stored = Arc::new(tokio::sync::Notify::new());
    let (intake_stop, intake_stop_rx) = tokio::sync::watch::channel(false);
    // Sender authentication: filed messages are assessed after the fact,
    // woken by intake (`cases::authenticate`).
    let filed = Arc::new(tokio::sync::Notify::new());
    let auth_task = if config.sender_auth.enabled && config.intake.enabled {
        let auth = crate::sender_auth::SenderAuth::new(&config.sender_auth, &config.smtp.hostname)
            .map_err(|e| ServeError::SenderAuth(e.to_string()))?;
        let every = std::time::Duration::from_secs(config.intake.poll_interval.max(1));
        let authenticator = crate::cases::authenticate::Authenticator::new(store.clone(), auth);
        Some(tokio::spawn(authenticator.run(
            Arc::clone(&filed),
            every,
            intake_stop.subscribe(),
        )))
    } else {
        None
    };
    let intake_task = config.intake.enabled.then(|| {
        let receipts = Receipts {
            hostname: config.smtp.hostname.clone(),
            outbound: config.outbound.clone(),
            hold_for_sender_auth: config.sender_auth.enabled,
        };
        let intake = Inbox::new(
            store.clone(),
            Arc::clone(&shared_policies),
            receipts,
            Arc::clone(&intake_workers),
            config.intake.clone(),
        )
        .with_keyring(Arc::clone(&keyring), config.limits.max_message_size)
        .with_tls_rpt(&config.mta_sts.tls_rpt)
        .notifying(Arc::clone(&filed));
        let every = std::time::Duration::from_secs(config.intake.poll_interval.max(1));
        tokio::spawn(intake.run(Arc::clone(&stored), every, intake_stop_rx))
    });

    let control_task = {
        let listener =
            crate::control::bind(&config.data_dir).map_err(io("binding the control socket"))?;
        tokio::spawn(crate::control::serve(
            listener,
            Arc::clone(&cases),
            intake_stop.subscribe(),
        ))
    };

    let sender_task = match Sender::new(&config.outbound, &config.smtp.hostname)? {
        Some(sender) => Some(tokio::spawn(sender.run(
            store.clone(),
            Arc::new(policies.clone()),
            Arc::new(tokio::sync::Notify::new()),
            intake_stop.subscribe(),
        ))),
        None => {
            warn!("no [outbound] relay configured: receipts wait in the outbox");
            None
        }
    };

    let body_kib = u32::try_from(config.limits.max_inflight_body_bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(tokio::sync::Semaphore::MAX_PERMITS as u32);
    let receiver = Arc::new(Receiver {
        body_memory: Arc::new(tokio::sync::Semaphore::new(body_kib as usize)),
        session: Arc::new(SessionConfig {
            hostname: config.smtp.hostname.clone(),
            accept_for: AcceptFor::new(&recipients),
            allow_plaintext: config.smtp.allow_plaintext,
            plaintext_fallback: AcceptFor::new(
                policies
                    .iter()
                    .filter(|p| p.plaintext == PlaintextRule::EncryptedArchiveOnly)
                    .flat_map(|p| p.addresses.iter()),
            ),
            limits: config.limits.clone(),
        }),
        tls: acceptor.clone(),
        store: Arc::new(StoreSink(writer)),
        stored,
        content: Arc::new(PlaintextCheck {
            workers: check_workers,
            limits: MimeLimits::default(),
        }),
        trusted_proxies: config.smtp.proxy_protocol_from.clone(),
    });
    let admission = Admission::new(&config.limits);
    let control = ShutdownControl::new();

    // Metrics and health first, so a readiness probe can say "not yet"
    // while the other listeners come up.
    let listening_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let metrics_task = if config.metrics.enabled {
        let handle = crate::telemetry::install()?;
        let addr = config.metrics.listen;
        let listener = bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(io("reading bound address"))?;
        info!(addr = %local, "metrics listening");
        std::fs::write(
            config.data_dir.join("metrics-listening"),
            format!("{local}\n"),
        )
        .map_err(io("writing metrics-listening file"))?;
        let probe = Arc::new(crate::telemetry::Probe {
            handle,
            store: store.clone(),
            body_memory: Arc::clone(&receiver.body_memory),
            body_limit_kib: body_kib as usize,
            webhooks: config.webhooks.iter().map(|w| w.name.clone()).collect(),
            orgs: policies.iter().map(|p| p.id.clone()).collect(),
            listening: Arc::clone(&listening_flag),
        });
        let mut stop = intake_stop.subscribe();
        Some(tokio::spawn(crate::telemetry::serve(
            listener,
            probe,
            async move {
                let _ = stop.changed().await;
            },
        )))
    } else {
        None
    };

    let mut bound = String::new();
    let mut loops = Vec::new();
    for addr in &config.smtp.listen {
        let listener = bind(*addr).await.map_err(|source| ServeError::Bind {
            addr: *addr,
            source,
        })?;
        let local = listener.local_addr().map_err(io("reading bound address"))?;
        info!(addr = %local, "listening");
        bound.push_str(&format!("{local}\n"));
        let Some(handle) = control.handle() else {
            break;
        };
        loops.push(tokio::spawn(driver::accept_loop(
            listener,
            Arc::clone(&receiver),
            admission.clone(),
            handle,
        )));
    }
    // Written whole, then renamed, so a reader never sees half a list.
    let listening = config.data_dir.join(LISTENING_FILE);
    let partial = config.data_dir.join(format!("{LISTENING_FILE}.tmp"));
    std::fs::write(&partial, bound).map_err(io("writing listening file"))?;
    std::fs::rename(&partial, &listening).map_err(io("writing listening file"))?;

    let web_listen = match (config.web.listen, dev_idp) {
        (Some(addr), _) => Some(addr),
        (None, true) => Some(std::net::SocketAddr::from(([127, 0, 0, 1], 8080))),
        (None, false) => None,
    };
    let mut refusal_task = None;
    let api_task = match web_listen {
        Some(addr) => {
            // Checked before binding: the dev IdP never listens elsewhere,
            // nor answers to a public URL.
            if dev_idp {
                crate::web::check_dev_idp(&config, addr)?;
            }
            let listener = bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?;
            let local = listener.local_addr().map_err(io("reading bound address"))?;
            info!(addr = %local, "api listening");
            std::fs::write(config.data_dir.join("api-listening"), format!("{local}\n"))
                .map_err(io("writing api-listening file"))?;
            let domains = crate::publish::domains(recipients.iter().map(String::as_str));
            let mut app = crate::web::api::router(store.clone(), Arc::clone(&cases)).merge(
                crate::web::mta_sts::router(config.mta_sts.policy(&config.smtp.hostname), domains),
            );
            match crate::web::interface(
                &config,
                &store,
                Arc::clone(&shared_policies),
                Arc::clone(&cases),
                local,
                dev_idp,
            )
            .await?
            {
                Some(ui) => {
                    info!(addr = %local, "analyst interface listening");
                    let refusals = Arc::clone(&ui.refusals);
                    let (store, stop) = (store.clone(), intake_stop.subscribe());
                    refusal_task = Some(tokio::spawn(async move {
                        refusals.run(store, stop).await;
                    }));
                    app = app.merge(crate::web::pages::router(ui));
                }
                None => {
                    warn!("analyst interface off: saml.idp_metadata is not set (JSON API only)")
                }
            }
            let app = crate::web::forwarded::layer(app, config.web.trusted_proxies.clone());
            let mut stop = intake_stop.subscribe();
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            if config.web.tls {
                let tls = crate::web::listener::TlsListener::spawn(listener, acceptor.clone())
                    .map_err(io("starting the HTTPS listener"))?;
                Some(tokio::spawn(crate::web::listener::serve_tls(
                    tls, app, shutdown,
                )))
            } else {
                let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                Some(tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await;
                }))
            }
        }
        None => None,
    };

    listening_flag.store(true, std::sync::atomic::Ordering::Release);
    let watchdog_task = notify_systemd(&intake_stop);

    // SQLite's WAL copied into the database in the background, not by the
    // commit a 250 waits for.
    let checkpoint_task = tokio::spawn(crate::store::checkpoint::run(
        store.clone(),
        intake_stop.subscribe(),
    ));
    // Deadlines coming due and passing, for the webhooks to deliver.
    let alert_task = (!config.webhooks.is_empty()).then(|| {
        let cases = Arc::clone(&cases);
        let mut stop = intake_stop.subscribe();
        tokio::spawn(async move {
            loop {
                match cases.raise_clock_alerts().await {
                    Ok(0) => {}
                    Ok(n) => info!(alerts = n, "clock alerts raised"),
                    Err(e) => tracing::warn!(error = %e, "clock alerts failed; will retry"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(crate::cases::alerts::ALERT_INTERVAL) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    });
    // Retention: the personal data of cases resolved or closed for longer
    // than their policy's period is erased every `intake.retention_interval`.
    let retention_task = {
        let cases = Arc::clone(&cases);
        let mut stop = intake_stop.subscribe();
        let every = std::time::Duration::from_secs(config.intake.retention_interval.max(1));
        tokio::spawn(async move {
            let operator = crate::cases::Principal {
                id: "retention".into(),
                door: crate::cases::Door::Cli,
                source: "service".into(),
                scope: crate::cases::Scope::All,
            };
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                match cases.run_retention(&operator, false).await {
                    Ok(erased) if !erased.is_empty() => {
                        info!(cases = erased.len(), "retention erased personal data")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
                }
            }
        })
    };
    // Daily digests to the teams whose policies ask for one, through the
    // relay (a second connection of the receipts' sender).
    let wants_digest = shared_policies.iter().any(|p| p.digest.is_some());
    let digest_task = match (
        wants_digest,
        Sender::new(&config.outbound, &config.smtp.hostname)?,
    ) {
        (true, Some(mut sender)) => {
            let cases = Arc::clone(&cases);
            let policies = Arc::clone(&shared_policies);
            let mut stop = intake_stop.subscribe();
            Some(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(crate::cases::alerts::ALERT_INTERVAL) => {}
                        _ = stop.changed() => return,
                    }
                    let due = match cases.digests_due().await {
                        Ok(due) => due,
                        Err(e) => {
                            tracing::warn!(error = %e, "digests not computed; will retry");
                            continue;
                        }
                    };
                    for d in due {
                        match sender
                            .send_digest(&policies, &d.org, &d.to, &d.subject, d.body.clone())
                            .await
                        {
                            Ok(()) => {
                                info!(org = %d.org, day = %d.day, "digest sent");
                                if let Err(e) = cases.digest_sent(&d).await {
                                    tracing::warn!(error = %e, "digest not marked sent");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(org = %d.org, error = %e, "digest not sent; will retry")
                            }
                        }
                    }
                }
            }))
        }
        _ => None,
    };
    let webhook_task = (!config.webhooks.is_empty()).then(|| {
        tokio::spawn(crate::outbound::webhooks::run(
            store.clone(),
            config.webhooks.clone(),
            intake_stop.subscribe(),
        ))
    });

    let mut term = signal(SignalKind::terminate()).map_err(io("installing SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("installing SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io("installing SIGHUP handler"))?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match certs.reload() {
                Ok(()) => info!("certificate reloaded"),
                Err(e) => error!(error = %e, "certificate reload failed; keeping the old one"),
            },
        }
    }

    info!("shutting down: no new sessions; finishing messages in flight");
    listening_flag.store(false, std::sync::atomic::Ordering::Release);
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining"),
    ]);
    let _ = std::fs::remove_file(&listening);
    let all_ended = control.drain(config.limits.shutdown_grace).await;
    if !all_ended {
        warn!(
            "shutdown grace period over; sessions still open are cut (none of their messages was acknowledged)"
        );
    }
    for l in loops {
        let _ = l.await;
    }
    drop(receiver);
    writer_task.finish().await;
    let _ = intake_stop.send(true);
    if let Some(task) = intake_task {
        let _ = task.await;
    }
    if let Some(task) = sender_task {
        let _ = task.await;
    }
    if let Some(task) = api_task {
        let _ = task.await;
    }
    if let Some(task) = refusal_task {
        let _ = task.await;
    }
    if let Some(task) = webhook_task {
        let _ = task.await;
    }
    let _ = retention_task.await;
    let _ = checkpoint_task.await;
    let _ = control_task.await;
    if let Some(task) = auth_task {
        let _ = task.await;
    }
    let _ = std::fs::remove_file(crate::control::path(&config.data_dir));
    if let Some(task) = alert_task {
        let _ = task.await;
    }
    if let Some(task) = digest_task {
        let _ = task.await;
    }
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    if let Some(task) = watchdog_task {
        let _ = task.await;
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

/// A listening socket. An IPv6 one is IPv6 only (`IPV6_V6ONLY`), as
/// Postfix makes it, so `listen = ["0.0.0.0:25", "[::]:25"]` binds both
/// families instead of the second failing with "address in use" on a
/// dual-stack host; and SO_REUSEADDR, so a restart does not wait for the
/// last connections' TIME_WAIT.
async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Under systemd (`Type=notify`): READY=1 now that every listener is
/// bound, and, when the unit sets `WatchdogSec=`, a ping at half the
/// interval from a task on the same runtime, so a runtime that stops
/// making progress stops pinging and systemd restarts the service. Without
/// `NOTIFY_SOCKET` both are no-ops.
fn notify_systemd(stop: &tokio::sync::watch::Sender<bool>) -> Option<tokio::task::JoinHandle<()>> {
    if let Err(e) = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("accepting mail"),
    ]) {
        warn!(error = %e, "could not tell systemd we are ready");
    }
    let every = sd_notify::watchdog_enabled()? / 2;
    let mut stop = stop.subscribe();
    Some(tokio::spawn(async move {
        loop {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }))
}

/// The plaintext rule, run in a parse worker for the receiver.
/// The store's writer as the receiver's sink.
struct StoreSink(crate::store::Writer);

impl crate::smtp::sink::MessageSink for StoreSink {
    fn commit<'a>(
        &'a self,
        delivery: crate::smtp::session::Delivery,
        stamp: crate::smtp::sink::Stamp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .commit(delivery, stamp)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

struct PlaintextCheck {
    workers: Arc<WorkerPool>,
    limits: MimeLimits,
}

impl ContentCheck for PlaintextCheck {
    fn plaintext<'a>(
        &'a self,
        body: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + 'a>> {
        Box::pin(async move {
            match self.workers.check_plaintext(body, &self.limits).await {
                Ok(Ok(())) => Verdict::Admit,
                Ok(Err(why)) => Verdict::Refuse(why.to_string()),
                // Without TLS only what could be verified is admitted: a
                // message that kills the check is refused like any other.
                Err(f @ Failure::Killed(_)) => Verdict::Refuse(f.to_string()),
                Err(f) => Verdict::Unavailable(f.to_string()),
            }
        })
    }
}

/// The organisation policies, validated. A missing directory is not an
/// error (a bare receiver needs none); an invalid file is.
pub fn load_policies(config: &Config) -> Result<PolicySet, PolicyError> {
    if !config.policies_dir.exists() {
        warn!(dir = %config.policies_dir.display(), "no policies directory: accepting smtp.accept_for only");
        return Ok(PolicySet::default());
    }
    let set = PolicySet::load_dir(&config.policies_dir)?;
    for p in set.iter() {
        info!(org = %p.id, file = %p.file.display(), addresses = p.addresses.len(), "policy loaded");
    }
    Ok(set)
}
