//! The SAML service provider's signing key, and the next one while a
//! rollover is under way: the certificates in clear (they are published),
//! the private keys sealed. Every receiver sharing the database signs with
//! the key stored here, so a switch reaches them all.

use super::seal::Label;
use super::{Backend, SharedLock, Store, StoreError, WriteTx};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

/// The rows of one key: (certificate, sealed private key).
#[derive(Clone, Copy)]
struct Slot {
    cert: &'static str,
    key: &'static str,
}

/// The key in use.
const CURRENT: Slot = Slot {
    cert: "saml_sp_cert",
    key: "saml_sp_key",
};
/// The key published for a rollover, not yet used.
const NEXT: Slot = Slot {
    cert: "saml_sp_next_cert",
    key: "saml_sp_next_key",
};

/// A certificate (DER) and its private key (DER).
pub struct KeyPair {
    pub cert: Vec<u8>,
    pub key: Zeroizing<Vec<u8>>,
}

/// What is stored, by its certificates: a receiver reloads its keys when
/// this changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    current: Option<String>,
    next: Option<String>,
}

/// The certificates stored now.
pub async fn stamp(store: &Store) -> Result<Stamp, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value FROM store_meta WHERE name IN ($1, $2)")
            .bind(CURRENT.cert)
            .bind(NEXT.cert)
            .fetch_all(store.pool())
            .await?;
    let find = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    Ok(Stamp {
        current: find(CURRENT.cert),
        next: find(NEXT.cert),
    })
}

async fn read(store: &Store, slot: Slot) -> Result<Option<KeyPair>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value FROM store_meta WHERE name IN ($1, $2)")
            .bind(slot.cert)
            .bind(slot.key)
            .fetch_all(store.pool())
            .await?;
    let find = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let (Some(cert), Some(key)) = (find(slot.cert), find(slot.key)) else {
        return Ok(None);
    };
    let cert = B64
        .decode(cert)
        .map_err(|_| StoreError::Corrupt(format!("{} is not base64", slot.cert)))?;
    let key = Zeroizing::new(store.sealer().open_text(Label::SamlKey, key)?);
    let key = B64
        .decode(key.as_bytes())
        .map_err(|_| StoreError::Corrupt(format!("{} is not base64", slot.key)))?;
    Ok(Some(KeyPair {
        cert,
        key: Zeroizing::new(key),
    }))
}

/// A write transaction that changes the keys: on SQLite `BEGIN IMMEDIATE`
/// serialises it; on PostgreSQL (read committed) an advisory lock does, so
/// two receivers or commands never mix one key's certificate with
/// another's private key, and the first key stored wins.
async fn locked(store: &Store) -> Result<WriteTx<'static>, StoreError> {
    let mut tx = store.write().await?;
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SharedLock::SamlKey.id())
            .execute(tx.conn())
            .await?;
    }
    Ok(tx)
}

/// Stores `pair` in `slot` unless a key is there: whether it was stored.
async fn store_in(store: &Store, slot: Slot, pair: &KeyPair) -> Result<bool, StoreError> {
    let sealed = store
        .sealer()
        .seal_text(Label::SamlKey, &Zeroizing::new(B64.encode(&*pair.key)));
    let mut tx = locked(store).await?;
    let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM store_meta WHERE name = $1")
        .bind(slot.key)
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_some() {
        return Ok(false);
    }
    for (name, value) in [(slot.cert, B64.encode(&pair.cert)), (slot.key, sealed)] {
        sqlx::query("INSERT INTO store_meta (name, value) VALUES ($1, $2)")
            .bind(name)
            .bind(value)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// The key in use, stored on first use from `make` (which runs only when
/// none is stored; when two receivers race, the first stored wins and
/// both use it).
pub async fn current(
    store: &Store,
    make: impl FnOnce() -> Option<KeyPair>,
) -> Result<Option<KeyPair>, StoreError> {
    if let Some(found) = read(store, CURRENT).await? {
        return Ok(Some(found));
    }
    let Some(pair) = make() else {
        return Ok(None);
    };
    store_in(store, CURRENT, &pair).await?;
    read(store, CURRENT).await
}

/// The next key, if a rollover is under way.
pub async fn next(store: &Store) -> Result<Option<KeyPair>, StoreError> {
    read(store, NEXT).await
}

/// Publishes `pair` as the next key: false when one is published already.
pub async fn begin(store: &Store, pair: &KeyPair) -> Result<bool, StoreError> {
    store_in(store, NEXT, pair).await
}

/// Makes the next key the one in use and forgets the old one, in one
/// transaction: (the old certificate, the new one), or `None` when no
/// rollover is under way.
pub async fn switch(store: &Store) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
    let mut tx = locked(store).await?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value FROM store_meta WHERE name IN ($1, $2, $3)")
            .bind(NEXT.cert)
            .bind(NEXT.key)
            .bind(CURRENT.cert)
            .fetch_all(tx.conn())
            .await?;
    let find = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let (Some(next_cert), Some(next_key)) = (find(NEXT.cert), find(NEXT.key)) else {
        return Ok(None);
    };
    let decode = |c: Option<String>| c.and_then(|c| B64.decode(c).ok()).unwrap_or_default();
    let (old, new) = (decode(find(CURRENT.cert)), decode(Some(next_cert.clone())));
    for (name, v) in [(CURRENT.cert, next_cert), (CURRENT.key, next_key)] {
        sqlx::query("UPDATE store_meta SET value = $1 WHERE name = $2")
            .bind(v)
            .bind(name)
            .execute(tx.conn())
            .await?;
    }
    forget_next(&mut tx).await?;
    tx.commit().await?;
    Ok(Some((old, new)))
}

async fn forget_next(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM store_meta WHERE name IN ($1, $2)")
        .bind(NEXT.cert)
        .bind(NEXT.key)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Drops the next key without using it: its certificate, or `None` when
/// there was none.
pub async fn withdraw(store: &Store) -> Result<Option<Vec<u8>>, StoreError> {
    let mut tx = locked(store).await?;
    let cert: Option<(String,)> = sqlx::query_as("SELECT value FROM store_meta WHERE name = $1")
        .bind(NEXT.cert)
        .fetch_optional(tx.conn())
        .await?;
    forget_next(&mut tx).await?;
    tx.commit().await?;
    Ok(cert.map(|(c,)| B64.decode(c).unwrap_or_default()))
}
