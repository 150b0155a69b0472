//! API service accounts: a name, the organisations it may see, and the
//! SHA-256 of its bearer token (never the token).

use super::{Store, StoreError};
use sqlx::Row;

/// A service account as stored.
pub struct TokenRow {
    pub name: String,
    pub orgs: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn orgs_of(r: &sqlx::any::AnyRow) -> Result<Vec<String>, StoreError> {
    Ok(serde_json::from_str(&r.try_get::<String, _>("orgs")?).unwrap_or_default())
}

pub async fn exists(store: &Store, name: &str) -> Result<bool, StoreError> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM api_tokens WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await?;
    Ok(found.is_some())
}

pub async fn insert(
    store: &Store,
    name: &str,
    hash: &str,
    orgs: &[String],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO api_tokens (name, hash, orgs, created_at) VALUES ($1, $2, $3, $4)")
        .bind(name)
        .bind(hash)
        .bind(serde_json::to_string(orgs).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Revokes the live token `name`; false if there is none.
pub async fn revoke(store: &Store, name: &str, now: i64) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(name)
            .execute(store.pool())
            .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn list(store: &Store) -> Result<Vec<TokenRow>, StoreError> {
    let rows = sqlx::query("SELECT name, orgs, created_at, revoked_at FROM api_tokens ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenRow {
                name: r.try_get("name")?,
                orgs: orgs_of(r)?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// The live account whose token hashes to `hash`: its name and orgs.
pub async fn find_live(
    store: &Store,
    hash: &str,
) -> Result<Option<(String, Vec<String>)>, StoreError> {
    let row =
        sqlx::query("SELECT name, orgs FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(store.pool())
            .await?;
    row.map(|r| Ok((r.try_get("name")?, orgs_of(&r)?)))
        .transpose()
}
