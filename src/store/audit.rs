//! The tamper-evident audit trail: who did what, to which case, when and
//! from where.
//!
//! Entries are append-only and chained: each carries an HMAC-SHA-256 over
//! its own fields and the previous entry's MAC, keyed by a key derived from
//! the master key, which never sits in the database. The head of the chain
//! (count and last MAC) is kept MAC'd in `store_meta`. So editing, deleting,
//! reordering or truncating entries — even by someone who can write to the
//! database — is detected by `disclosure-mx audit verify`; forging a valid
//! chain needs the key.
//!
//! What it must never record: passwords or report content. Details are
//! short, fixed phrases chosen by the caller.

use super::seal::Sealer;
use super::{StoreError, WriteTx};
use serde::Serialize;
use sqlx::{AnyPool, Row};

/// Who acts, and from where (`cli`, or a client address for the web).
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub actor: &'a str,
    pub source: &'a str,
}

impl<'a> Who<'a> {
    pub fn entry(&self, action: AuditAction, target: &'a str, detail: &'a str) -> Entry<'a> {
        Entry {
            actor: self.actor,
            action,
            target,
            source: self.source,
            detail,
        }
    }
}

/// What an audit entry records. Stored by name; the names never change,
/// because the chain's MACs cover them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    SignIn,
    SignInRefused,
    SignOut,
    /// A SAML logout message refused (unsigned, foreign, replayed...).
    LogoutRefused,
    /// A case read whole (page, `cases show`, API).
    View,
    /// A case list through the API.
    List,
    Export,
    EvidenceDownload,
    RawDownload,
    /// A message's headers read.
    HeadersView,
    /// A report field written or corrected.
    EditField,
    /// One bulk triage action over many cases.
    Bulk,
    /// An unflagged case made a disclosure report.
    Promote,
    /// A status update queued to the reporter.
    Feedback,
    Retry,
    Requeue,
    Transition,
    Note,
    Reply,
    Breach,
    /// A case flagged (breach, exploited, incident) or its awareness moved.
    Flag,
    /// A regulatory mark or submission recorded.
    Clock,
    /// Retention or an erasure removed personal data.
    Erase,
    /// Everything stored about a reporter, exported on request.
    ReporterExport,
    /// A case given to an analyst, or taken back.
    Assign,
    Unlocked,
    UnlockFailed,
    UnlockRefused,
    AuditView,
    TokenCreate,
    TokenRevoke,
    /// An organisation's OpenPGP key unlocked for the running service.
    KeyUnlocked,
    /// A passphrase that did not unlock it.
    KeyUnlockFailed,
    /// A receipt held for an unauthenticated sender released.
    ReceiptRelease,
    /// An outgoing mail sent again, or not at all.
    OutboxRetry,
    OutboxCancel,
    /// The master key replaced (`keys rotate`).
    KeyRotated,
    /// The SAML signing key's rollover: a next key published, switched
    /// to, or withdrawn (`saml key`).
    SamlKeyNext,
    SamlKeySwitch,
    SamlKeyWithdraw,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign-in",
            AuditAction::SignInRefused => "sign-in-refused",
            AuditAction::SignOut => "sign-out",
            AuditAction::LogoutRefused => "logout-refused",
            AuditAction::View => "view",
            AuditAction::List => "list",
            AuditAction::Export => "export",
            AuditAction::EvidenceDownload => "evidence-download",
            AuditAction::RawDownload => "raw-download",
            AuditAction::HeadersView => "headers-view",
            AuditAction::EditField => "edit",
            AuditAction::Bulk => "bulk",
            AuditAction::Promote => "promote",
            AuditAction::Feedback => "feedback",
            AuditAction::Retry => "retry",
            AuditAction::Requeue => "requeue",
            AuditAction::Transition => "transition",
            AuditAction::Note => "note",
            AuditAction::Reply => "reply",
            AuditAction::Breach => "breach",
            AuditAction::Flag => "flag",
            AuditAction::Clock => "clock",
            AuditAction::Erase => "erase",
            AuditAction::ReporterExport => "reporter-export",
            AuditAction::Assign => "assign",
            AuditAction::Unlocked => "unlocked",
            AuditAction::UnlockFailed => "unlock-failed",
            AuditAction::UnlockRefused => "unlock-refused",
            AuditAction::AuditView => "audit-view",
            AuditAction::TokenCreate => "token-create",
            AuditAction::TokenRevoke => "token-revoke",
            AuditAction::KeyUnlocked => "key-unlocked",
            AuditAction::KeyUnlockFailed => "key-unlock-failed",
            AuditAction::ReceiptRelease => "receipt-release",
            AuditAction::OutboxRetry => "outbox-retry",
            AuditAction::OutboxCancel => "outbox-cancel",
            AuditAction::KeyRotated => "key-rotated",
            AuditAction::SamlKeyNext => "saml-key-next",
            AuditAction::SamlKeySwitch => "saml-key-switch",
            AuditAction::SamlKeyWithdraw => "saml-key-withdraw",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: AuditAction,
    /// The case reference or queue id concerned, or "" for none.
    pub target: &'a str,
    /// Where it came from: `cli`, or a client address for the web.
    pub source: &'a str,
    pub detail: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    pub detail: String,
}

/// The result of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact { entries: u64 },
    Broken { at_entry: i64, reason: String },
}

/// An entry's fields as the chain covers them: actor, action, target,
/// source, detail.
type Fields<'a> = [&'a str; 5];

impl Entry<'_> {
    fn fields(&self) -> Fields<'_> {
        [
            self.actor,
            self.action.as_str(),
            self.target,
            self.source,
            self.detail,
        ]
    }
}

/// What an entry's MAC covers: the previous MAC, the time and the fields,
/// length-prefixed, so no two entries can serialise alike.
fn message(prev: &str, at: i64, fields: Fields<'_>) -> Vec<u8> {
    let mut msg = Vec::new();
    let at = at.to_string();
    for part in [prev, at.as_str()].into_iter().chain(fields) {
        let part = part.as_bytes();
        msg.extend_from_slice(&(part.len() as u64).to_le_bytes());
        msg.extend_from_slice(part);
    }
    msg
}

fn mac(sealer: &Sealer, prev: &str, at: i64, fields: Fields<'_>) -> String {
    sealer.audit_mac(&message(prev, at, fields))
}

fn head_message(count: i64, last: &str) -> Vec<u8> {
    format!("head:{count}:{last}").into_bytes()
}

fn head_mac(sealer: &Sealer, count: i64, last: &str) -> String {
    sealer.audit_mac(&head_message(count, last))
}

/// Whether `stored` is the MAC of `msg`. Entries written by older releases
/// carry a MAC under the key those derived (no `v2:` prefix); they verify
/// as long as no current entry came before them, so the chain can move to
/// the current key once and never back.
fn mac_matches(sealer: &Sealer, stored: &str, msg: &[u8], current_seen: &mut bool) -> bool {
    if stored.starts_with("v2:") {
        *current_seen = true;
        sealer.audit_mac_verifies(msg, stored)
    } else {
        !*current_seen && sealer.legacy_audit_verifies(msg, stored)
    }
}

/// Appends an entry inside the caller's transaction (which must be a
/// writing one: `BEGIN IMMEDIATE` on SQLite; on PostgreSQL an advisory lock
/// taken here serialises writers of the chain).
pub async fn record(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    entry: &Entry<'_>,
) -> Result<(), StoreError> {
    if tx.backend() == super::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(super::SharedLock::AuditChain.id())
            .execute(tx.conn())
            .await?;
    }
    let last: Option<(String,)> =
        sqlx::query_as("SELECT mac FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(tx.conn())
            .await?;
    let prev = last.map(|l| l.0).unwrap_or_default();
    let at = jiff::Timestamp::now().as_second();
    let mac = mac(sealer, &prev, at, entry.fields());
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, source, detail, mac) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(at)
        .bind(entry.actor)
        .bind(entry.action.as_str())
        .bind(entry.target)
        .bind(entry.source)
        .bind(entry.detail)
        .bind(&mac)
        .execute(tx.conn())
        .await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log")
        .fetch_one(tx.conn())
        .await?;
    let head = head_mac(sealer, count, &mac);
    let value = format!("{count}:{mac}:{head}");
    let updated = sqlx::query("UPDATE store_meta SET value = $1 WHERE name = 'audit_head'")
        .bind(&value)
        .execute(tx.conn())
        .await?;
    if updated.rows_affected() == 0 {
        sqlx::query("INSERT INTO store_meta (name, value) VALUES ('audit_head', $1)")
            .bind(&value)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Appends an entry in a transaction of its own.
pub async fn record_now(store: &super::Store, entry: &Entry<'_>) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    record(&mut tx, store.sealer(), entry).await?;
    tx.commit().await
}

/// Every entry, oldest first.
pub async fn list(pool: &AnyPool) -> Result<Vec<StoredEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, source, detail FROM audit_log ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(stored).collect::<Result<_, _>>()?)
}

/// Which entries a page shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

/// Up to `limit` entries matching `filter`, newest first, skipping the
/// newest `offset`; and whether older ones remain.
pub async fn page(
    pool: &AnyPool,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<StoredEntry>, bool), StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, source, detail FROM audit_log
         WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) AND at >= $3 AND at < $4
         ORDER BY id DESC LIMIT $5 OFFSET $6",
    )
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(filter.since.unwrap_or(i64::MIN))
    .bind(filter.until.unwrap_or(i64::MAX))
    .bind(limit + 1)
    .bind(offset.max(0))
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let entries = rows
        .iter()
        .take(limit.max(0) as usize)
        .map(stored)
        .collect::<Result<_, _>>()?;
    Ok((entries, more))
}

fn stored(r: &sqlx::any::AnyRow) -> Result<StoredEntry, sqlx::Error> {
    Ok(StoredEntry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        source: r.try_get("source")?,
        detail: r.try_get("detail")?,
    })
}

/// Walks the chain and checks the head.
pub async fn verify(pool: &AnyPool, sealer: &Sealer) -> Result<Verdict, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, source, detail, mac FROM audit_log ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let mut prev = String::new();
    let mut last_id = 0;
    let mut current_seen = false;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let (actor, action, target, source, detail): (String, String, String, String, String) = (
            r.try_get("actor")?,
            r.try_get("action")?,
            r.try_get("target")?,
            r.try_get("source")?,
            r.try_get("detail")?,
        );
        let stored: String = r.try_get("mac")?;
        let msg = message(
            &prev,
            r.try_get("at")?,
            [&actor, &action, &target, &source, &detail],
        );
        if !mac_matches(sealer, &stored, &msg, &mut current_seen) {
            return Ok(Verdict::Broken {
                at_entry: id,
                reason: "entry edited, or an entry before it removed or reordered".into(),
            });
        }
        prev = stored;
        last_id = id;
    }
    let head: Option<(String,)> =
        sqlx::query_as("SELECT value FROM store_meta WHERE name = 'audit_head'")
            .fetch_optional(pool)
            .await?;
    let count = rows.len() as i64;
    let head_ok = |value: &str| {
        let Some(stored) = value.strip_prefix(&format!("{count}:{prev}:")) else {
            return false;
        };
        let mut seen = current_seen;
        mac_matches(sealer, stored, &head_message(count, &prev), &mut seen)
    };
    match head {
        None if count == 0 => Ok(Verdict::Intact { entries: 0 }),
        Some((value,)) if head_ok(&value) => Ok(Verdict::Intact {
            entries: count as u64,
        }),
        _ => Ok(Verdict::Broken {
            at_entry: last_id,
            reason: "the newest entries were removed or the head was altered".into(),
        }),
    }
}

/// Recomputes every MAC of the chain, and its head, under the current key,
/// after checking the whole chain under the keys the sealer holds (a
/// rotation's old and new): a chain that does not verify is never
/// re-signed. One transaction, holding the chain's write lock. Returns the
/// number of entries.
pub async fn rekey(store: &super::Store) -> Result<Result<u64, Verdict>, StoreError> {
    let sealer = store.sealer();
    let mut tx = store.write().await?;
    if tx.backend() == super::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(super::SharedLock::AuditChain.id())
            .execute(tx.conn())
            .await?;
    }
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, source, detail, mac FROM audit_log ORDER BY id",
    )
    .fetch_all(tx.conn())
    .await?;
    let (mut prev_old, mut prev_new) = (String::new(), String::new());
    let mut current_seen = false;
    let mut updates = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let at: i64 = r.try_get("at")?;
        let fields: [String; 5] = [
            r.try_get("actor")?,
            r.try_get("action")?,
            r.try_get("target")?,
            r.try_get("source")?,
            r.try_get("detail")?,
        ];
        let f = [
            fields[0].as_str(),
            fields[1].as_str(),
            fields[2].as_str(),
            fields[3].as_str(),
            fields[4].as_str(),
        ];
        let stored: String = r.try_get("mac")?;
        if !mac_matches(
            sealer,
            &stored,
            &message(&prev_old, at, f),
            &mut current_seen,
        ) {
            return Ok(Err(Verdict::Broken {
                at_entry: id,
                reason: "entry edited, or an entry before it removed or reordered".into(),
            }));
        }
        let new = mac(sealer, &prev_new, at, f);
        prev_old = stored;
        prev_new = new.clone();
        updates.push((id, new));
    }
    for (id, new) in &updates {
        sqlx::query("UPDATE audit_log SET mac = $1 WHERE id = $2")
            .bind(new)
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    let count = updates.len() as i64;
    if count > 0 {
        let value = format!("{count}:{prev_new}:{}", head_mac(sealer, count, &prev_new));
        sqlx::query("UPDATE store_meta SET value = $1 WHERE name = 'audit_head'")
            .bind(&value)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    Ok(Ok(count as u64))
}
