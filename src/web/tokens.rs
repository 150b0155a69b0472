//! Service-account bearer tokens for the JSON API.
//!
//! A token is shown once, when created; only its SHA-256 is stored (tokens
//! are 256 random bits, so a fast hash is enough). Each token is scoped to
//! one or more organisations and can be revoked.

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use sqlx::{AnyPool, Row};

/// A service account, as an authenticated request carries it.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub name: String,
    pub orgs: Vec<String>,
}

impl ServiceAccount {
    pub fn may_see(&self, org: &str) -> bool {
        self.orgs.iter().any(|o| o == org)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub orgs: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named {0} exists already")]
    Exists(String),
    #[error("no token named {0}")]
    NotFound(String),
    #[error("a token needs at least one organisation")]
    NoOrg,
    #[error("no randomness from the operating system")]
    Random,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// SHA-256 of a bearer secret, hex: what the database keeps instead of it.
pub(crate) fn hash(token: &str) -> String {
    digest(&SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` random bytes from the OS, hex; None if the OS gives none.
pub(crate) fn random_hex(n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates a token and returns it; it cannot be shown again.
pub async fn create(pool: &AnyPool, name: &str, orgs: &[String]) -> Result<String, TokenError> {
    if orgs.is_empty() {
        return Err(TokenError::NoOrg);
    }
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Random)?;
    let token = format!(
        "dmx_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM api_tokens WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    if exists.is_some() {
        return Err(TokenError::Exists(name.to_owned()));
    }
    sqlx::query("INSERT INTO api_tokens (name, hash, orgs, created_at) VALUES ($1, $2, $3, $4)")
        .bind(name)
        .bind(hash(&token))
        .bind(serde_json::to_string(orgs).unwrap_or_else(|_| "[]".into()))
        .bind(jiff::Timestamp::now().as_second())
        .execute(pool)
        .await?;
    Ok(token)
}

pub async fn revoke(pool: &AnyPool, name: &str) -> Result<(), TokenError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(jiff::Timestamp::now().as_second())
            .bind(name)
            .execute(pool)
            .await?;
    if done.rows_affected() == 0 {
        return Err(TokenError::NotFound(name.to_owned()));
    }
    Ok(())
}

pub async fn list(pool: &AnyPool) -> Result<Vec<TokenInfo>, TokenError> {
    let rows = sqlx::query("SELECT name, orgs, created_at, revoked_at FROM api_tokens ORDER BY id")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                name: r.try_get("name")?,
                orgs: serde_json::from_str(&r.try_get::<String, _>("orgs")?).unwrap_or_default(),
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// The live service account a presented token belongs to.
pub async fn authenticate(
    pool: &AnyPool,
    token: &str,
) -> Result<Option<ServiceAccount>, sqlx::Error> {
    if !token.starts_with("dmx_") || token.len() != 68 {
        return Ok(None);
    }
    let row =
        sqlx::query("SELECT name, orgs FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash(token))
            .fetch_optional(pool)
            .await?;
    row.map(|r| {
        Ok(ServiceAccount {
            name: r.try_get("name")?,
            orgs: serde_json::from_str(&r.try_get::<String, _>("orgs")?).unwrap_or_default(),
        })
    })
    .transpose()
}
