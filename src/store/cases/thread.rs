//! Reading a case's messages back: every stored message of its
//! conversation (the report's text, covering note, archive report,
//! follow-ups), what we sent, and the stored mails' raw bytes.

use super::case_child;
use super::read::ConversationEntry;
use crate::model::thread::MessageKind;
use crate::store::seal::{Label, Sealer};
use crate::store::{StoreError, WriteTx};
use serde::Serialize;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyRow;

/// One stored message of a case, opened.
#[derive(Debug, Clone, Serialize)]
pub struct CaseMessage {
    pub id: i64,
    pub kind: MessageKind,
    /// The stored mail it came from, for its headers and raw bytes.
    pub message_row: Option<i64>,
    pub at: i64,
    pub from_reporter: bool,
    pub token: bool,
    pub sender: String,
    pub subject: String,
    pub text: String,
    pub tls_version: Option<String>,
}

impl CaseMessage {
    pub fn conversation_entry(&self) -> ConversationEntry {
        ConversationEntry {
            id: self.id,
            at: self.at,
            from_reporter: self.from_reporter,
            token: self.token,
            sender: self.sender.clone(),
            subject: self.subject.clone(),
            text: self.text.clone(),
            tls_version: self.tls_version.clone(),
        }
    }
}

/// The first message of `kind` of a case, inside a write transaction.
pub async fn message_of_kind(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    kind: MessageKind,
) -> Result<Option<CaseMessage>, StoreError> {
    let row = sqlx::query(
        "SELECT id, kind, message_row, at, from_reporter, token, sender, subject, body, tls_version
         FROM case_messages WHERE case_id = $1 AND kind = $2 ORDER BY id LIMIT 1",
    )
    .bind(id)
    .bind(kind.as_str())
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| message(&r, sealer, id)).transpose()
}

pub(super) async fn messages(
    pool: &AnyPool,
    sealer: &Sealer,
    id: i64,
) -> Result<Vec<CaseMessage>, StoreError> {
    sqlx::query(
        "SELECT id, kind, message_row, at, from_reporter, token, sender, subject, body, tls_version
         FROM case_messages WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| message(r, sealer, id))
    .collect()
}

fn message(r: &AnyRow, sealer: &Sealer, case_id: i64) -> Result<CaseMessage, StoreError> {
    let label = case_child(case_id, "conversation");
    let open = |c: &str| -> Result<String, StoreError> {
        Ok(sealer.open_text(label, &r.try_get::<String, _>(c)?)?)
    };
    let kind: String = r.try_get("kind")?;
    Ok(CaseMessage {
        id: r.try_get("id")?,
        kind: MessageKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown message kind {kind:?}")))?,
        message_row: r.try_get("message_row")?,
        at: r.try_get("at")?,
        from_reporter: r.try_get::<i64, _>("from_reporter")? != 0,
        token: r.try_get::<i64, _>("token")? != 0,
        sender: open("sender")?,
        subject: open("subject")?,
        text: open("body")?,
        tls_version: r.try_get("tls_version")?,
    })
}

/// A message we sent (or hold, or refused to send) for a case.
#[derive(Debug, Clone, Serialize)]
pub struct Outbound {
    pub id: i64,
    /// `receipt` or `reply`.
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    /// `pending`, `sent`, `failed` or `suppressed`.
    pub state: String,
    /// Why it was suppressed or failed.
    pub reason: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub(super) async fn outbound(
    pool: &AnyPool,
    sealer: &Sealer,
    id: i64,
) -> Result<Vec<Outbound>, StoreError> {
    sqlx::query(
        "SELECT id, kind, to_address, subject, body, message_id, state, reason, created_at, sent_at
         FROM outbox WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let message_id: String = r.try_get("message_id")?;
        // A suppressed receipt has no subject or body: nothing to open.
        let open = |c: &str| -> Result<String, StoreError> {
            match r.try_get::<String, _>(c)? {
                empty if empty.is_empty() => Ok(empty),
                sealed => Ok(sealer.open_text(Label::Outbox(&message_id, c), &sealed)?),
            }
        };
        Ok(Outbound {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            to: r.try_get("to_address")?,
            subject: open("subject")?,
            text: open("body")?,
            state: r.try_get("state")?,
            reason: r.try_get("reason")?,
            created_at: r.try_get("created_at")?,
            sent_at: r.try_get("sent_at")?,
        })
    })
    .collect()
}

/// The stored mails of a case, oldest first: (id, received_at, envelope
/// sender, TLS version).
pub(super) async fn mails(
    pool: &AnyPool,
    id: i64,
) -> Result<Vec<(i64, i64, String, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, received_at, mail_from, tls_version FROM messages WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// The raw bytes of stored mail `message` of case `case_id`, opened; none
/// when that mail is not the case's.
pub async fn raw_mail(
    pool: &AnyPool,
    sealer: &Sealer,
    case_id: i64,
    message: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let row: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT queue_id, raw FROM messages WHERE id = $1 AND case_id = $2")
            .bind(message)
            .bind(case_id)
            .fetch_optional(pool)
            .await?;
    row.map(|(queue_id, sealed)| {
        if sealed.is_empty() {
            // Erased (`retention`): nothing to open.
            return Ok(Vec::new());
        }
        Ok(sealer.open(Label::Message(&queue_id), &sealed)?)
    })
    .transpose()
}
