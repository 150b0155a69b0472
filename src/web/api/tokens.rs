//! Service-account bearer tokens for the JSON API.
//!
//! A token is shown once, when created; only its SHA-256 is stored (tokens
//! are 256 random bits, so a fast hash is enough). Each token is scoped to
//! one or more organisations and can be revoked.

use crate::store::{Store, StoreError, tokens};
use crate::web::auth::secrets::{hash, random_hex};
use serde::Serialize;

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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token and returns it; it cannot be shown again.
pub async fn create(store: &Store, name: &str, orgs: &[String]) -> Result<String, TokenError> {
    if orgs.is_empty() {
        return Err(TokenError::NoOrg);
    }
    let token = format!("dmx_{}", random_hex(32).ok_or(TokenError::Random)?);
    if tokens::exists(store, name).await? {
        return Err(TokenError::Exists(name.to_owned()));
    }
    let now = jiff::Timestamp::now().as_second();
    tokens::insert(store, name, &hash(&token), orgs, now).await?;
    Ok(token)
}

pub async fn revoke(store: &Store, name: &str) -> Result<(), TokenError> {
    if !tokens::revoke(store, name, jiff::Timestamp::now().as_second()).await? {
        return Err(TokenError::NotFound(name.to_owned()));
    }
    Ok(())
}

pub async fn list(store: &Store) -> Result<Vec<TokenInfo>, TokenError> {
    Ok(tokens::list(store)
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            name: t.name,
            orgs: t.orgs,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        })
        .collect())
}

/// The live service account a presented token belongs to.
pub async fn authenticate(
    store: &Store,
    token: &str,
) -> Result<Option<ServiceAccount>, StoreError> {
    if !token.starts_with("dmx_") || token.len() != 68 {
        return Ok(None);
    }
    Ok(tokens::find_live(store, &hash(token))
        .await?
        .map(|(name, orgs)| ServiceAccount { name, orgs }))
}
