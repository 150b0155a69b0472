//! SQLite's WAL checkpoints, off the commit path. A checkpoint copies the
//! WAL into the database file and fsyncs it; left to SQLite, the commit
//! that crosses its threshold pays for it, and a 1 MiB message then waits
//! for megabytes of someone else's pages (`make bench`, 4 × 1 MiB). The
//! server runs `run` instead: a PASSIVE checkpoint (it never blocks a
//! writer or a reader) every `INTERVAL`, so the WAL restarts from its
//! beginning and stays small. Commits still checkpoint
//! by themselves past `FALLBACK_PAGES` (the CLI, or a checkpointer that
//! falls behind).

use super::{Backend, Store, StoreError};
use std::time::Duration;

/// WAL pages after which a commit checkpoints by itself (~40 MiB with
/// 4 KiB pages): a backstop, not the usual path. SQLite's default is 1,000.
pub const FALLBACK_PAGES: u32 = 10_000;

/// How often the checkpointer runs: at most 20 checkpoints (and database
/// fsyncs) a second, beside the commits, whatever the load; at 1 MiB
/// messages the WAL then holds a few megabytes between two.
const INTERVAL: Duration = Duration::from_millis(50);

/// One PASSIVE checkpoint: as much of the WAL as no reader still needs.
pub async fn checkpoint(store: &Store) -> Result<(), StoreError> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Checkpoints until `stop` changes; nothing for PostgreSQL.
pub async fn run(store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
    if store.backend() != Backend::Sqlite {
        return;
    }
    loop {
        let wait = match checkpoint(&store).await {
            Ok(_) => INTERVAL,
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
