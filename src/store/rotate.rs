//! Master-key rotation, crash-safe at every step.
//!
//! 1. `begin`: a new key is written beside the old one
//!    (`<key_file>.next`), the old one is kept as
//!    `<key_file>.old-<id>`, and the new one renamed over `<key_file>`
//!    (atomic). From then on every `Sealer` that loads (or `reload`s) seals
//!    with the new key and opens with both.
//! 2. `reseal`: every sealed value (the `SEALED` inventory) not under the
//!    current key is opened and sealed again, in small committed batches,
//!    each row updated only if it still holds the value read, so a row the
//!    service changed meanwhile is left to the next pass.
//! 3. The audit chain is verified under the ring and its MACs recomputed
//!    under the new key (`audit::rekey`), in one transaction.
//! 4. `stale` scans every text and binary column of every table for a value
//!    sealed under any other key — the inventory's safety net — and only
//!    when none remains does `retire` delete the old key file.
//!
//! A `kill -9` anywhere leaves either the old key file or the new values,
//! never a value without its key; running the rotation again resumes.

use super::seal::{self, Label, Sealer};
use super::{Backend, Store, StoreError};
use sqlx::Row;
use std::path::{Path, PathBuf};

/// What owns a sealed column, which names its label.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// `messages.raw`: the queue id.
    Message,
    /// A `cases` column: the reference and the column's name.
    CaseField,
    /// A child row of a case: its `case_id` and the label's table name.
    CaseChild(&'static str),
    /// `case_evidence.data`: the object id.
    Evidence,
    /// A `case_evidence` column: the object id and the column's name.
    EvidenceField,
    /// `outbox.subject` and `.body`: the Message-ID and the column.
    Outbox,
    /// A `store_meta` value, by name.
    Meta(&'static str, Label<'static>),
    /// `tls_reports.details`: the message it came in.
    TlsReport,
}

struct Column {
    table: &'static str,
    /// The row's key column.
    key: &'static str,
    column: &'static str,
    /// Bytes (`BLOB`/`BYTEA`) rather than `sealed:` text.
    binary: bool,
    owner: Owner,
}

const fn col(
    table: &'static str,
    key: &'static str,
    column: &'static str,
    binary: bool,
    owner: Owner,
) -> Column {
    Column {
        table,
        key,
        column,
        binary,
        owner,
    }
}

/// Every column that holds sealed values. `stale` checks the whole
/// database, so a column missing here stops a rotation before the old key
/// is deleted, rather than after.
const SEALED: &[Column] = &[
    col("messages", "id", "raw", true, Owner::Message),
    col("cases", "id", "subject", false, Owner::CaseField),
    col("cases", "id", "reporter_name", false, Owner::CaseField),
    col("cases", "id", "reporter_address", false, Owner::CaseField),
    col("cases", "id", "channel", false, Owner::CaseField),
    col("cases", "id", "contact", false, Owner::CaseField),
    col("cases", "id", "description", false, Owner::CaseField),
    col("cases", "id", "steps", false, Owner::CaseField),
    col("cases", "id", "impact", false, Owner::CaseField),
    col("cases", "id", "mitigation", false, Owner::CaseField),
    col("cases", "id", "language", false, Owner::CaseField),
    col("cases", "id", "cve_ids", false, Owner::CaseField),
    col("cases", "id", "cwe_ids", false, Owner::CaseField),
    col("cases", "id", "message_id", false, Owner::CaseField),
    col("cases", "id", "cvss", false, Owner::CaseField),
    col(
        "cases",
        "id",
        "authentication_results",
        false,
        Owner::CaseField,
    ),
    col(
        "case_events",
        "id",
        "detail",
        false,
        Owner::CaseChild("event"),
    ),
    col(
        "case_assets",
        "id",
        "value",
        false,
        Owner::CaseChild("asset"),
    ),
    col(
        "case_suggestions",
        "id",
        "kind",
        false,
        Owner::CaseChild("suggestion"),
    ),
    col(
        "case_suggestions",
        "id",
        "name",
        false,
        Owner::CaseChild("suggestion"),
    ),
    col(
        "case_suggestions",
        "id",
        "label",
        false,
        Owner::CaseChild("suggestion"),
    ),
    col(
        "case_suggestions",
        "id",
        "matched",
        false,
        Owner::CaseChild("suggestion"),
    ),
    col(
        "case_messages",
        "id",
        "sender",
        false,
        Owner::CaseChild("conversation"),
    ),
    col(
        "case_messages",
        "id",
        "subject",
        false,
        Owner::CaseChild("conversation"),
    ),
    col(
        "case_messages",
        "id",
        "body",
        false,
        Owner::CaseChild("conversation"),
    ),
    col("case_evidence", "id", "data", true, Owner::Evidence),
    col("case_evidence", "id", "name", false, Owner::EvidenceField),
    col(
        "case_evidence",
        "id",
        "declared_type",
        false,
        Owner::EvidenceField,
    ),
    col(
        "case_evidence",
        "id",
        "sniffed_type",
        false,
        Owner::EvidenceField,
    ),
    col(
        "case_evidence",
        "id",
        "archive",
        false,
        Owner::EvidenceField,
    ),
    col("outbox", "id", "subject", false, Owner::Outbox),
    col("outbox", "id", "body", false, Owner::Outbox),
    col(
        "message_auth",
        "message_id",
        "header",
        false,
        Owner::CaseChild("message_auth"),
    ),
    col(
        "message_auth",
        "message_id",
        "checks",
        false,
        Owner::CaseChild("message_auth"),
    ),
    col(
        "message_encryption",
        "message_id",
        "reporter_key",
        true,
        Owner::CaseChild("message_encryption"),
    ),
    col("tls_reports", "id", "details", false, Owner::TlsReport),
    col(
        "store_meta",
        "name",
        "value",
        false,
        Owner::Meta("key_check", Label::KeyCheck),
    ),
    col(
        "store_meta",
        "name",
        "value",
        false,
        Owner::Meta("saml_sp_key", Label::SamlKey),
    ),
    col(
        "store_meta",
        "name",
        "value",
        false,
        Owner::Meta("saml_sp_next_key", Label::SamlKey),
    ),
];

impl From<sqlx::Error> for RotateError {
    fn from(e: sqlx::Error) -> Self {
        RotateError::Store(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error("{0}")]
    Refused(String),
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> RotateError + '_ {
    move |e| RotateError::Refused(format!("{}: {e}", what.display()))
}

fn sync_dir(path: &Path) -> Result<(), RotateError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

fn next_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.file_name().unwrap_or_default().to_os_string();
    name.push(".next");
    key_file.with_file_name(name)
}

/// Step 1, or its resumption: the new key in place, the old kept. Returns
/// (old id, new id); with a rotation already past this step, the ids it
/// left.
pub fn begin(key_file: &Path) -> Result<(Vec<String>, String), RotateError> {
    if std::env::var(seal::KEY_ENV).is_ok() {
        return Err(RotateError::Refused(format!(
            "the master key comes from {}: rotate by giving a new one there after re-sealing is not supported; use a key file",
            seal::KEY_ENV
        )));
    }
    let retired = seal::retired_key_files(key_file);
    let next = next_path(key_file);
    if !retired.is_empty() && !next.exists() {
        // Past the switch: resume re-sealing.
        let current = seal::key_id_of(&seal::read_master_key(key_file)?)?;
        let old = retired
            .iter()
            .map(|p| seal::key_id_of(&seal::read_master_key(p)?))
            .collect::<Result<_, _>>()?;
        return Ok((old, current));
    }
    let current = seal::read_master_key(key_file)?;
    let old_id = seal::key_id_of(&current)?;
    if !next.exists() {
        use ring::rand::SecureRandom;
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| seal::SealError::Random)?;
        seal::write_master_key(&next, &bytes)?;
        sync_dir(&next)?;
    }
    let new_id = seal::key_id_of(&seal::read_master_key(&next)?)?;
    let keep = seal::retired_key_path(key_file, &old_id);
    if !keep.exists() {
        seal::write_master_key(&keep, &current)?;
        sync_dir(&keep)?;
    }
    std::fs::rename(&next, key_file).map_err(io(key_file))?;
    sync_dir(key_file)?;
    Ok((vec![old_id], new_id))
}

/// Deletes the retired key files (after `stale` found nothing under them).
pub fn retire(key_file: &Path) -> Result<Vec<String>, RotateError> {
    let mut ids = Vec::new();
    for p in seal::retired_key_files(key_file) {
        ids.push(seal::key_id_of(&seal::read_master_key(&p)?)?);
        std::fs::remove_file(&p).map_err(io(&p))?;
    }
    sync_dir(key_file)?;
    Ok(ids)
}

fn label<'a>(owner: Owner, row_key: &'a str, column: &'a str, case_id: i64) -> Label<'a> {
    match owner {
        Owner::Message => Label::Message(row_key),
        Owner::CaseField => Label::CaseField(row_key, column),
        Owner::CaseChild(table) => Label::CaseChild(case_id, table),
        Owner::Evidence => Label::Evidence(row_key),
        Owner::EvidenceField => Label::EvidenceField(row_key, column),
        Owner::Outbox => Label::Outbox(row_key, column),
        Owner::Meta(_, label) => label,
        Owner::TlsReport => Label::TlsReport(case_id),
    }
}

/// The SELECT for one inventory column: the row's key, what the label
/// needs, and the value, after `after` in key order.
fn select(c: &Column) -> String {
    let (ident, case) = match c.owner {
        Owner::Message => ("queue_id", "0"),
        Owner::CaseField => ("reference", "0"),
        Owner::CaseChild(_) => ("''", "case_id"),
        Owner::Evidence | Owner::EvidenceField => ("object_id", "0"),
        Owner::Outbox => ("message_id", "0"),
        Owner::Meta(..) => ("''", "0"),
        // (The label's number rides in `case_id`.)
        Owner::TlsReport => ("''", "message_id"),
    };
    let only = match c.owner {
        Owner::Meta(name, _) => format!(" AND name = '{name}'"),
        _ => String::new(),
    };
    let key_cast = if c.key == "name" { "name" } else { c.key };
    format!(
        "SELECT {key_cast} AS k, {ident} AS ident, {case} AS case_id, {col} AS v FROM {table}
         WHERE {col} IS NOT NULL{only} AND {key_cast} > $1 ORDER BY {key_cast} LIMIT $2",
        col = c.column,
        table = c.table
    )
}

/// One value, re-sealed under the current key, or None when it already is
/// (or is not sealed: an empty outbox subject, say).
fn reseal_value(
    sealer: &Sealer,
    c: &Column,
    current: &str,
    ident: &str,
    case_id: i64,
    stored: &[u8],
) -> Result<Option<Vec<u8>>, RotateError> {
    let v1 =
        stored.starts_with(seal::MAGIC_V1) || stored.starts_with(seal::TEXT_PREFIX_V1.as_bytes());
    let sealed =
        seal::is_sealed(stored) || std::str::from_utf8(stored).is_ok_and(seal::is_sealed_text);
    if !sealed || (!v1 && Sealer::sealed_key_id(stored).as_deref() == Some(current)) {
        return Ok(None);
    }
    let label = label(c.owner, ident, c.column, case_id);
    Ok(Some(if c.binary {
        sealer.seal(label, &sealer.open(label, stored)?)
    } else {
        let text = std::str::from_utf8(stored)
            .map_err(|_| RotateError::Refused(format!("{}.{}: not text", c.table, c.column)))?;
        sealer
            .seal_text(label, &sealer.open_text(label, text)?)
            .into_bytes()
    }))
}

/// Re-seals, `batch` values per committed transaction, everything not yet
/// under the current key; calls `progress` after each batch. Returns how
/// many values it re-sealed.
pub async fn reseal(
    store: &Store,
    batch: i64,
    mut progress: impl FnMut(u64),
) -> Result<u64, RotateError> {
    let sealer = store.sealer();
    let current = sealer.key_id();
    let mut total = 0u64;
    for c in SEALED {
        let mut after_int = i64::MIN;
        let mut after_text = String::new();
        loop {
            let q = sqlx::query(sqlx::AssertSqlSafe(select(c)));
            let q = if c.key == "name" {
                q.bind(after_text.clone())
            } else {
                q.bind(after_int)
            };
            let rows = q.bind(batch.max(1)).fetch_all(store.pool()).await?;
            if rows.is_empty() {
                break;
            }
            let mut tx = store.write().await?;
            let mut changed = 0u64;
            for r in &rows {
                let (key_int, key_text) = if c.key == "name" {
                    (0, r.try_get::<String, _>("k")?)
                } else {
                    (r.try_get::<i64, _>("k")?, String::new())
                };
                let ident: String = r.try_get("ident")?;
                let case_id: i64 = r.try_get("case_id")?;
                let stored: Vec<u8> = if c.binary {
                    r.try_get("v")?
                } else {
                    r.try_get::<String, _>("v")?.into_bytes()
                };
                after_int = key_int;
                after_text = key_text.clone();
                let Some(new) = reseal_value(sealer, c, &current, &ident, case_id, &stored)? else {
                    continue;
                };
                let update = format!(
                    "UPDATE {t} SET {col} = $1 WHERE {k} = $2 AND {col} = $3",
                    t = c.table,
                    col = c.column,
                    k = c.key
                );
                let q = sqlx::query(sqlx::AssertSqlSafe(update));
                let q = if c.binary {
                    q.bind(new)
                } else {
                    q.bind(String::from_utf8_lossy(&new).into_owned())
                };
                let q = if c.key == "name" {
                    q.bind(key_text)
                } else {
                    q.bind(key_int)
                };
                let q = if c.binary {
                    q.bind(stored)
                } else {
                    q.bind(String::from_utf8_lossy(&stored).into_owned())
                };
                changed += q.execute(tx.conn()).await?.rows_affected();
            }
            tx.commit().await?;
            total += changed;
            progress(total);
        }
    }
    Ok(total)
}

/// Every table and column holding a value sealed under a key other than
/// the current one (or in the older format): (table.column, count).
pub async fn stale(store: &Store) -> Result<Vec<(String, u64)>, RotateError> {
    let current = store.sealer().key_id();
    let columns: Vec<(String, String, String)> = match store.backend() {
        Backend::Sqlite => {
            sqlx::query_as(
                "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND p.type IN ('TEXT', 'BLOB', '')",
            )
            .fetch_all(store.pool())
            .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea')",
            )
            .fetch_all(store.pool())
            .await?
        }
    };
    let mut out = Vec::new();
    for (table, column, kind) in columns {
        let prefix = match (store.backend(), kind.as_str()) {
            (Backend::Sqlite, _) => format!("CAST(substr(\"{column}\", 1, 40) AS BLOB)"),
            (Backend::Postgres, "bytea") => format!("substring(\"{column}\" from 1 for 40)"),
            (Backend::Postgres, _) => {
                format!("convert_to(substring(\"{column}\" from 1 for 40), 'UTF8')")
            }
        };
        let sql =
            format!("SELECT {prefix} AS head FROM \"{table}\" WHERE \"{column}\" IS NOT NULL");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(store.pool())
            .await?;
        let mut n = 0u64;
        for r in rows {
            let head: Vec<u8> = r.try_get("head")?;
            let v1 = head.starts_with(seal::MAGIC_V1)
                || head.starts_with(seal::TEXT_PREFIX_V1.as_bytes());
            let other = Sealer::sealed_key_id(&head).is_some_and(|id| id != current);
            if v1 || other {
                n += 1;
            }
        }
        if n > 0 {
            out.push((format!("{table}.{column}"), n));
        }
    }
    Ok(out)
}
