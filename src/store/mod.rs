//! Durable storage of received messages.
//!
//! `Store::commit` returns only once the message and its envelope are in a
//! committed transaction — SQLite with `synchronous=FULL` in WAL mode, or
//! PostgreSQL with its default synchronous commit — so the 250 that follows
//! it is a promise the disk keeps across `kill -9` and power loss. Commits from many sessions are batched by one writer task (group
//! commit): one fsync covers every message that arrived while the previous
//! one was running, so sessions do not queue behind each other's fsyncs.
//!
//! What it must never do: answer Ok for a message that is not committed, or
//! store part of a message. A failed batch answers Err to every message in
//! it, and the transaction leaves nothing behind.

use crate::smtp::session::Delivery;
use crate::smtp::sink::Stamp;
use serde::Serialize;
use sqlx::Connection;
use sqlx::any::AnyPoolOptions;
pub use sqlx::{AnyConnection, AnyPool};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {0:?} is not supported: use sqlite:PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store writer has stopped")]
    WriterGone,
    #[error("{0}")]
    NotFound(String),
    #[error("the store holds a value this binary cannot read: {0}")]
    Corrupt(String),
    #[error(
        "the store's schema is version {found}, newer than this binary knows ({known}): run the newer release, or restore a backup made for this one"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// The envelope as stored: who delivered, how, and to whom.
#[derive(Debug, Clone, Serialize)]
pub struct EnvelopeRecord {
    pub queue_id: String,
    pub received_at: i64,
    pub peer: String,
    pub helo: String,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// A message as the writer stores it: envelope plus raw content (our
/// trace header prepended). Built only from a `Delivery`, which only the
/// protocol core makes once the DATA checks ran.
#[derive(Debug, Clone)]
struct Incoming {
    envelope: EnvelopeRecord,
    session_id: String,
    raw: Vec<u8>,
}

impl Incoming {
    fn new(delivery: Delivery, stamp: Stamp) -> Incoming {
        let (envelope, body) = delivery.into_parts();
        let mut raw = Vec::with_capacity(stamp.trace_header.len() + body.len());
        raw.extend_from_slice(stamp.trace_header.as_bytes());
        raw.extend_from_slice(&body);
        drop(body);
        Incoming {
            envelope: EnvelopeRecord {
                queue_id: stamp.queue_id,
                received_at: stamp.received_at,
                peer: envelope.peer.to_string(),
                helo: envelope.helo,
                tls_version: envelope.tls.as_ref().map(|t| t.version.clone()),
                tls_cipher: envelope.tls.map(|t| t.cipher),
                mail_from: envelope.mail_from,
                rcpt_to: envelope.rcpt_to,
            },
            session_id: stamp.session_id,
            raw,
        }
    }
}

/// What `messages list` shows: everything but the content.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    #[serde(flatten)]
    pub envelope: EnvelopeRecord,
    pub size: i64,
    pub state: String,
    /// Why intake could not file it, for quarantined messages.
    pub quarantine_reason: Option<String>,
}

pub mod analysts;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cases;
pub mod checkpoint;
pub mod clocks;
pub mod crypto;
pub mod gauges;
mod keyfile;
mod legacy;
pub mod messages;
pub mod outbox;
pub mod retention;
pub mod rotate;
pub mod saml_key;
pub mod schema;
pub mod seal;
pub mod search;
pub mod sessions;
pub mod sla;
pub mod tlsrpt;
pub mod tokens;
pub mod unlocks;
pub mod webhooks;

use seal::{Label, SealError, Sealer};
use std::sync::Arc;

/// Which database a store URL names. Behaviour is the same on both; only
/// locking differs (SQLite: one writer, `BEGIN IMMEDIATE`; PostgreSQL:
/// row locks, `FOR UPDATE SKIP LOCKED` for work queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of an open connection.
    pub fn of(conn: &AnyConnection) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// The statement that opens a transaction that will write.
    pub fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// The suffix that lets several workers claim queue rows without
    /// waiting on each other.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// `skip_locked` for a join, locking only the rows of `alias`.
    pub fn skip_locked_of(self, alias: &str) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Postgres => format!(" FOR UPDATE OF {alias} SKIP LOCKED"),
        }
    }
}

/// PostgreSQL advisory locks that serialise work across receivers sharing
/// one database; each has its own id. SQLite needs none: it has one
/// writer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SharedLock {
    /// Migrating the schema at start-up.
    Migrations = 7263,
    /// Appending to the audit chain.
    AuditChain = 7264,
    /// Delivering one webhook's events (keyed by the webhook's name).
    Webhook = 7265,
    /// Changing the SAML signing keys (`saml_key`).
    SamlKey = 7266,
}

impl SharedLock {
    fn id(self) -> i64 {
        self as i64
    }
}

/// A write transaction in progress: only `Store::write` makes one, so a
/// function that takes `&mut WriteTx` runs inside a transaction that holds
/// the backend's write lock. Dropped without `commit`, it rolls back.
pub struct WriteTx<'c> {
    tx: sqlx::Transaction<'c, sqlx::Any>,
    backend: Backend,
}

impl WriteTx<'_> {
    /// The connection the transaction runs on, for the repositories.
    pub(in crate::store) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A savepoint inside this transaction: itself a write transaction,
    /// whose `commit` keeps its changes for the outer one to commit and
    /// whose drop (or `rollback`) undoes only them.
    pub async fn savepoint(&mut self) -> Result<WriteTx<'_>, StoreError> {
        let backend = self.backend;
        let tx = sqlx::Connection::begin(&mut *self.tx).await?;
        Ok(WriteTx { tx, backend })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

/// Per-connection settings for SQLite. WAL lets readers run beside the
/// writer; FULL fsyncs the WAL at every commit, so a committed message
/// survives power loss, not only a process crash; secure_delete zeroes
/// freed space, so a value replaced by its sealed form leaves no trace.
/// Checkpoints run in the background (`checkpoint`); a commit checkpoints
/// only past `checkpoint::FALLBACK_PAGES`.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

/// The database: a pool for reads and short writes, and the means to start
/// the one group-commit writer.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    url: String,
    pool: AnyPool,
    sealer: Arc<Sealer>,
}

async fn prepare(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        sqlx::raw_sql(SQLITE_PRAGMAS).execute(&mut *conn).await?;
        let fallback = format!("PRAGMA wal_autocheckpoint = {}", checkpoint::FALLBACK_PAGES);
        sqlx::raw_sql(sqlx::AssertSqlSafe(fallback))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    if backend == Backend::Sqlite {
        // A step may rebuild a table (SQLite cannot alter a CHECK); its
        // children's references must not be checked while it is gone. This
        // has no effect inside a transaction, so it is set before one, and
        // the references are checked before the commit.
        sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await?;
    }
    let result = migrate_steps(&mut conn, backend).await;
    if backend == Backend::Sqlite {
        sqlx::raw_sql("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn migrate_steps(conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    let mut tx = conn.begin_with(backend.begin_write()).await?;
    if backend == Backend::Postgres {
        // Two receivers starting at once must not both migrate.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SharedLock::Migrations.id())
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .execute(&mut *tx)
        .await?;
    let (done,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await?;
    let steps = match backend {
        Backend::Sqlite => schema::SQLITE,
        Backend::Postgres => schema::POSTGRES,
    };
    // A newer release has changed this store in ways this binary does not
    // know: running on it could misread or corrupt it.
    if done > steps.len() as i64 {
        return Err(StoreError::NewerSchema {
            found: done,
            known: steps.len() as i64,
        });
    }
    for (i, step) in steps.iter().enumerate().skip(done.max(0) as usize) {
        sqlx::raw_sql(*step).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await?;
    }
    // Only after a migration ran: on a large store the check reads every
    // row (30 s for 100,000 cases and their index), and a start that
    // changed nothing has nothing to check.
    if backend == Backend::Sqlite && done < steps.len() as i64 {
        let broken: Vec<sqlx::any::AnyRow> = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut *tx)
            .await?;
        if !broken.is_empty() {
            return Err(StoreError::Commit(format!(
                "migration left {} broken references; nothing was changed",
                broken.len()
            )));
        }
    }
    tx.commit().await?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite:PATH` or
    /// `postgres://...`. `{data_dir}` in the URL is replaced by `data_dir`.
    /// `key_file` holds the master key (or `DISCLOSURE_MX_MASTER_KEY` does).
    pub async fn open(url: &str, data_dir: &Path, key_file: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let mut url = url.replace("{data_dir}", &data_dir.to_string_lossy());
        let backend = if url.starts_with("sqlite:") {
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| Box::pin(async move { prepare(conn, backend).await }))
            .connect(&url)
            .await?;
        migrate(&pool, backend).await?;
        let sealer = Arc::new(unlock_store(&pool, key_file).await?);
        if legacy::migrate_legacy(&pool, &sealer).await? && backend == Backend::Sqlite {
            // Old pages with the clear text must not linger in the WAL.
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await?;
        }
        Ok(Store {
            backend,
            url,
            pool,
            sealer,
        })
    }

    /// The master key, for everything that reads or writes report content.
    pub fn sealer(&self) -> &Arc<Sealer> {
        &self.sealer
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts the group-commit writer. `max_batch` messages at most share
    /// one transaction; 1 turns batching off.
    pub async fn writer(&self, max_batch: usize) -> Result<(Writer, WriterTask), StoreError> {
        let conn = self.connection().await?;
        // Room for every session to have a message waiting.
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run_writer(
            conn,
            self.backend,
            rx,
            max_batch.max(1),
            Arc::clone(&self.sealer),
        ));
        Ok((Writer { tx }, WriterTask(task)))
    }

    /// The shared pool, for the case functions and intake.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A dedicated connection, prepared like the pool's.
    pub async fn connection(&self) -> Result<AnyConnection, StoreError> {
        let mut conn = AnyConnection::connect(&self.url).await?;
        prepare(&mut conn, self.backend).await?;
        Ok(conn)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

type Job = (Incoming, oneshot::Sender<Result<(), String>>);

/// A handle sessions use to commit messages; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Returns once the delivery is durably committed, or with the reason
    /// it is not. Either way nothing partial remains.
    pub async fn commit(&self, delivery: Delivery, stamp: Stamp) -> Result<(), StoreError> {
        let message = Incoming::new(delivery, stamp);
        let (done, answer) = oneshot::channel();
        self.tx
            .send((message, done))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Commit(reason)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

/// The writer's task; it ends once every `Writer` handle is dropped and the
/// queue is empty.
pub struct WriterTask(tokio::task::JoinHandle<()>);

impl WriterTask {
    pub async fn finish(self) {
        let _ = self.0.await;
    }
}

async fn run_writer(
    mut conn: AnyConnection,
    backend: Backend,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    sealer: Arc<Sealer>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let result = commit_batch(&mut conn, backend, &batch, &sealer)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, messages = batch.len(), "store commit failed");
                e.to_string()
            });
        tracing::debug!(messages = batch.len(), ok = result.is_ok(), "group commit");
        for (_, done) in batch.drain(..) {
            let _ = done.send(result.clone());
        }
    }
    let _ = conn.close().await;
}

async fn commit_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[Job],
    sealer: &Sealer,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin_with(backend.begin_write()).await?;
    for (message, _) in batch {
        let m = &message.envelope;
        let rcpt = serde_json::to_string(&m.rcpt_to).map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(
            "INSERT INTO messages (queue_id, received_at, session_id, peer, helo, tls_version,
                 tls_cipher, mail_from, rcpt_to, size, raw)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&m.queue_id)
        .bind(m.received_at)
        .bind(&message.session_id)
        .bind(&m.peer)
        .bind(&m.helo)
        .bind(&m.tls_version)
        .bind(&m.tls_cipher)
        .bind(&m.mail_from)
        .bind(&rcpt)
        .bind(message.raw.len() as i64)
        .bind(sealer.seal(Label::Message(&m.queue_id), &message.raw))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Checks (or, for a store that holds nothing sealed yet, creates) the
/// master key against a value sealed with it.
async fn unlock_store(pool: &AnyPool, key_file: &Path) -> Result<Sealer, StoreError> {
    const CHECK: Label<'static> = Label::KeyCheck;
    let check: Option<(String,)> =
        sqlx::query_as("SELECT value FROM store_meta WHERE name = 'key_check'")
            .fetch_optional(pool)
            .await?;
    match check {
        Some((value,)) => {
            let (sealer, _) = Sealer::load(key_file, false)?;
            match sealer.open_text(CHECK, &value) {
                Ok(v) if v == "disclosure-mx" => Ok(sealer),
                _ => Err(SealError::WrongKey.into()),
            }
        }
        None => {
            let (sealer, _) = Sealer::load(key_file, true)?;
            sqlx::query("INSERT INTO store_meta (name, value) VALUES ('key_check', $1)")
                .bind(sealer.seal_text(CHECK, "disclosure-mx"))
                .execute(pool)
                .await?;
            Ok(sealer)
        }
    }
}
