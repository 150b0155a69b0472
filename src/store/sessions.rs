//! Sign-in state: analysts' browser sessions (only the SHA-256 of each
//! cookie is kept) and the replay cache of SAML messages already used.
//! The service provider's signing key is in `saml_key`.

use super::{Store, StoreError};
use sqlx::Row;

/// A session as stored: the cookie's hash is its key.
pub struct StoredSession {
    /// The person's stable identity (NameID or configured attribute).
    pub actor: String,
    /// The NameID the IdP signed us in with, for its single logout.
    pub name_id: String,
    pub name_id_format: Option<String>,
    /// The IdP's SessionIndex, if it gave one.
    pub session_index: Option<String>,
    pub display: String,
    /// The roles, as the web layer serialised them.
    pub roles: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
}

pub async fn insert(store: &Store, hash: &str, s: &StoredSession) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO web_sessions (hash, actor, display, roles, csrf, created_at, last_seen,
                                   name_id, name_id_format, session_index)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(hash)
    .bind(&s.actor)
    .bind(&s.display)
    .bind(&s.roles)
    .bind(&s.csrf)
    .bind(s.created_at)
    .bind(s.last_seen)
    .bind(&s.name_id)
    .bind(&s.name_id_format)
    .bind(&s.session_index)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub async fn find(store: &Store, hash: &str) -> Result<Option<StoredSession>, StoreError> {
    let Some(r) = sqlx::query(
        "SELECT actor, display, roles, csrf, created_at, last_seen, name_id, name_id_format,
                session_index
         FROM web_sessions WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(StoredSession {
        actor: r.try_get("actor")?,
        name_id: r.try_get("name_id")?,
        name_id_format: r.try_get("name_id_format")?,
        session_index: r.try_get("session_index")?,
        display: r.try_get("display")?,
        roles: r.try_get("roles")?,
        csrf: r.try_get("csrf")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
    }))
}

pub async fn touch(store: &Store, hash: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE web_sessions SET last_seen = $1 WHERE hash = $2")
        .bind(now)
        .bind(hash)
        .execute(store.pool())
        .await?;
    Ok(())
}

pub async fn delete(store: &Store, hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
        .bind(hash)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A session ended by single logout.
pub struct Ended {
    pub hash: String,
    pub actor: String,
}

/// Ends the sessions made for `name_id`: all of them, or those of the
/// given IdP session indexes, and those that recorded none (when unsure,
/// the session ends).
pub async fn end_for_subject(
    store: &Store,
    name_id: &str,
    session_indexes: &[String],
) -> Result<Vec<Ended>, StoreError> {
    let mut tx = store.write().await?;
    let rows =
        sqlx::query("SELECT hash, actor, session_index FROM web_sessions WHERE name_id = $1")
            .bind(name_id)
            .fetch_all(tx.conn())
            .await?;
    let mut ended = Vec::new();
    for r in rows {
        let index: Option<String> = r.try_get("session_index")?;
        let matches =
            session_indexes.is_empty() || index.is_none_or(|i| session_indexes.contains(&i));
        if !matches {
            continue;
        }
        let hash: String = r.try_get("hash")?;
        sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
            .bind(&hash)
            .execute(tx.conn())
            .await?;
        ended.push(Ended {
            hash,
            actor: r.try_get("actor")?,
        });
    }
    tx.commit().await?;
    Ok(ended)
}

/// Deletes sessions idle since `idle_before` or created before
/// `created_before`.
pub async fn sweep(store: &Store, idle_before: i64, created_before: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE last_seen <= $1 OR created_at <= $2")
        .bind(idle_before)
        .bind(created_before)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Records each `(id, expires_at)` as used, all or none, after forgetting
/// expired ones. `Err(i)` inside: entry `i` was used before (or is being
/// recorded by a concurrent request), and nothing was recorded.
pub async fn mark_used(
    store: &Store,
    now: i64,
    ids: &[(String, i64)],
) -> Result<Result<(), usize>, StoreError> {
    let mut tx = store.write().await?;
    sqlx::query("DELETE FROM saml_used WHERE expires_at <= $1")
        .bind(now)
        .execute(tx.conn())
        .await?;
    for (i, (id, expires)) in ids.iter().enumerate() {
        let seen: Option<(String,)> = sqlx::query_as("SELECT id FROM saml_used WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
        if seen.is_some() {
            return Ok(Err(i));
        }
        let inserted = sqlx::query("INSERT INTO saml_used (id, expires_at) VALUES ($1, $2)")
            .bind(id)
            .bind(*expires)
            .execute(tx.conn())
            .await;
        // A concurrent insert of the same id loses here: also a replay.
        if inserted.is_err() {
            return Ok(Err(i));
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}
