//! Durable storage of received messages.
//!
//! `Store::commit` returns only once the message and its envelope are in a
//! committed SQLite transaction with `synchronous=FULL` in WAL mode, so the
//! 250 that follows it is a promise the disk keeps across `kill -9` and power
//! loss. Commits from many sessions are batched by one writer task (group
//! commit): one fsync covers every message that arrived while the previous
//! one was running, so sessions do not queue behind each other's fsyncs.
//!
//! What it must never do: answer Ok for a message that is not committed, or
//! store part of a message. A failed batch answers Err to every message in
//! it, and the transaction leaves nothing behind.

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {0:?} is not supported: use sqlite:PATH (PostgreSQL arrives with intake)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store writer has stopped")]
    WriterGone,
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

/// A message as the receiver hands it over: envelope plus raw content
/// (trace header already prepended).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: EnvelopeRecord,
    pub session_id: String,
    pub raw: Vec<u8>,
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

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many ran. Never edit a shipped step: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the receiver's message store.
    "CREATE TABLE IF NOT EXISTS messages (
        id          INTEGER PRIMARY KEY,
        queue_id    TEXT    NOT NULL UNIQUE,
        received_at INTEGER NOT NULL,
        session_id  TEXT    NOT NULL,
        peer        TEXT    NOT NULL,
        helo        TEXT    NOT NULL,
        tls_version TEXT,
        tls_cipher  TEXT,
        mail_from   TEXT    NOT NULL,
        rcpt_to     TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        raw         BLOB    NOT NULL,
        state       TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'filed', 'quarantined'))
    );
    CREATE INDEX IF NOT EXISTS messages_by_state ON messages (state, id);",
    // 2: cases, filed by intake.
    "ALTER TABLE messages ADD COLUMN quarantine_reason TEXT;
    ALTER TABLE messages ADD COLUMN case_id INTEGER;
    CREATE TABLE cases (
        id                  INTEGER PRIMARY KEY,
        org                 TEXT    NOT NULL,
        reference           TEXT    NOT NULL UNIQUE,
        kind                TEXT    NOT NULL CHECK (kind IN ('disclosure', 'unflagged')),
        state               TEXT    NOT NULL,
        close_reason        TEXT,
        subject             TEXT    NOT NULL,
        reporter_name       TEXT,
        reporter_address    TEXT,
        anonymous           INTEGER NOT NULL,
        channel             TEXT,
        contact             TEXT,
        description         TEXT,
        steps               TEXT,
        impact              TEXT,
        mitigation          TEXT,
        language            TEXT,
        cve_ids             TEXT    NOT NULL,
        cwe_ids             TEXT    NOT NULL,
        cvss_vector         TEXT,
        cvss_score          REAL,
        cvss_severity       TEXT,
        tls_version         TEXT,
        tls_cipher          TEXT,
        authentication_results TEXT,
        message_id          TEXT,
        received_at         INTEGER NOT NULL,
        acknowledge_by      INTEGER NOT NULL,
        feedback_by         INTEGER NOT NULL,
        feedback_paused_at  INTEGER,
        breach_notify_by    INTEGER,
        updated_at          INTEGER NOT NULL
    );
    CREATE INDEX cases_by_org_state ON cases (org, state);
    CREATE TABLE case_assets (
        case_id  INTEGER NOT NULL REFERENCES cases (id),
        value    TEXT    NOT NULL,
        in_scope INTEGER NOT NULL
    );
    CREATE TABLE case_suggestions (
        case_id INTEGER NOT NULL REFERENCES cases (id),
        kind    TEXT    NOT NULL,
        name    TEXT    NOT NULL,
        label   TEXT    NOT NULL,
        matched TEXT    NOT NULL
    );
    CREATE TABLE case_evidence (
        id            INTEGER PRIMARY KEY,
        case_id       INTEGER NOT NULL REFERENCES cases (id),
        kind          TEXT    NOT NULL CHECK (kind IN ('screenshot', 'attachment')),
        name          TEXT,
        declared_type TEXT    NOT NULL,
        sniffed_type  TEXT,
        size          INTEGER NOT NULL,
        forwarded     INTEGER NOT NULL,
        data          BLOB    NOT NULL
    );
    CREATE TABLE case_events (
        id         INTEGER PRIMARY KEY,
        case_id    INTEGER NOT NULL REFERENCES cases (id),
        at         INTEGER NOT NULL,
        kind       TEXT    NOT NULL,
        actor      TEXT    NOT NULL,
        detail     TEXT    NOT NULL,
        message_id INTEGER
    );
    CREATE INDEX case_events_by_case ON case_events (case_id, id);",
    // 3: the outbox for receipts.
    "CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        case_id         INTEGER NOT NULL REFERENCES cases (id),
        kind            TEXT    NOT NULL,
        to_address      TEXT    NOT NULL,
        subject         TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        message_id      TEXT    NOT NULL,
        in_reply_to     TEXT,
        state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'suppressed')),
        reason          TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_by_address ON outbox (to_address, created_at);",
];

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let (done,): (i64,) = sqlx::query_as("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        sqlx::raw_sql(*step).execute(&mut *tx).await?;
        // PRAGMA takes no bound parameters; the value is our own counter.
        let version = i + 1;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The database: a read pool, and the means to start the one writer.
#[derive(Clone)]
pub struct Store {
    options: SqliteConnectOptions,
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the store at `url`. `{data_dir}` in the
    /// URL is replaced by `data_dir`.
    pub async fn open(url: &str, data_dir: &Path) -> Result<Store, StoreError> {
        let url = url.replace("{data_dir}", &data_dir.to_string_lossy());
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url));
        }
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit, so a committed
            // message survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        migrate(&pool).await?;
        Ok(Store { options, pool })
    }

    /// Starts the group-commit writer. `max_batch` messages at most share
    /// one transaction; 1 turns batching off.
    pub async fn writer(&self, max_batch: usize) -> Result<(Writer, WriterTask), StoreError> {
        let conn = SqliteConnection::connect_with(&self.options).await?;
        // Room for every session to have a message waiting.
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run_writer(conn, rx, max_batch.max(1)));
        Ok((Writer { tx }, WriterTask(task)))
    }

    /// Messages without content, oldest first, optionally by state.
    pub async fn list(&self, state: Option<&str>) -> Result<Vec<MessageSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT queue_id, received_at, peer, helo, tls_version, tls_cipher, mail_from, rcpt_to, size, state,
                    quarantine_reason
             FROM messages WHERE (?1 IS NULL OR state = ?1) ORDER BY id",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let rcpt: String = r.try_get("rcpt_to")?;
                Ok(MessageSummary {
                    envelope: EnvelopeRecord {
                        queue_id: r.try_get("queue_id")?,
                        received_at: r.try_get("received_at")?,
                        peer: r.try_get("peer")?,
                        helo: r.try_get("helo")?,
                        tls_version: r.try_get("tls_version")?,
                        tls_cipher: r.try_get("tls_cipher")?,
                        mail_from: r.try_get("mail_from")?,
                        rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
                    },
                    size: r.try_get("size")?,
                    state: r.try_get("state")?,
                    quarantine_reason: r.try_get("quarantine_reason")?,
                })
            })
            .collect()
    }

    /// The read/write pool, for the case functions and intake.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A dedicated connection (intake's worker uses one for its
    /// `BEGIN IMMEDIATE` filing transactions).
    pub async fn connection(&self) -> Result<SqliteConnection, StoreError> {
        Ok(SqliteConnection::connect_with(&self.options).await?)
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
    /// Returns once the message is durably committed, or with the reason
    /// it is not. Either way nothing partial remains.
    pub async fn commit(&self, message: Incoming) -> Result<(), StoreError> {
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

async fn run_writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let result = commit_batch(&mut conn, &batch).await.map_err(|e| {
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

async fn commit_batch(conn: &mut SqliteConnection, batch: &[Job]) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for (message, _) in batch {
        let m = &message.envelope;
        let rcpt = serde_json::to_string(&m.rcpt_to).map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(
            "INSERT INTO messages (queue_id, received_at, session_id, peer, helo, tls_version,
                 tls_cipher, mail_from, rcpt_to, size, raw)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(&message.raw)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
