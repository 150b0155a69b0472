//! SQLite's WAL checkpoints, off the commit path. A checkpoint copies the
//! WAL into the database file and fsyncs it; left to SQLite, the commit
//! that crosses its threshold pays for it, and a 1 MiB message then waits
//! for megabytes of someone else's pages (`make bench`, 4 × 1 MiB). The
//! server runs `run` instead: a PASSIVE checkpoint (it never blocks a
//! writer or a reader) whenever the WAL has frames to copy, so the WAL
//! restarts from its beginning and stays small. Commits still checkpoint
//! by themselves past `FALLBACK_PAGES` (the CLI, or a checkpointer that
//! falls behind).

use super::{Backend, Store, StoreError};
use std::time::Duration;

/// WAL pages after which a commit checkpoints by itself (~40 MiB with
/// 4 KiB pages): a backstop, not the usual path. SQLite's default is 1,000.
pub const FALLBACK_PAGES: u32 = 10_000;

/// How often the checkpointer looks when the WAL had nothing to copy.
const IDLE_INTERVAL: Duration = Duration::from_millis(50);

/// One PASSIVE checkpoint: (frames in the WAL, frames copied so far).
pub async fn checkpoint(store: &Store) -> Result<(i64, i64), StoreError> {
    let (_busy, log, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(store.pool())
        .await?;
    Ok((log, done))
}

/// Checkpoints until `stop` changes; nothing for PostgreSQL.
pub async fn run(store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
    if store.backend() != Backend::Sqlite {
        return;
    }
    let mut copied_before = 0;
    loop {
        let wait = match checkpoint(&store).await {
            // More was copied than last time: the WAL is filling, look again
            // at once.
            Ok((log, done)) if done > copied_before && log > 0 => {
                copied_before = done;
                Duration::ZERO
            }
            Ok((_, done)) => {
                copied_before = done;
                IDLE_INTERVAL
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
