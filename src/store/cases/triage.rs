//! What bulk triage and promotion read and change: the cases a set of
//! blind selector terms finds, a case's first stored mail, its kind.

use super::{case_field, read::kind_of, state_of};
use crate::model::case::{CaseKind, CaseState};
use crate::store::seal::Sealer;
use crate::store::{StoreError, WriteTx};
use sqlx::Row;

/// Terms per statement.
const CHUNK: usize = 400;

/// A case a selector found.
#[derive(Debug, Clone)]
pub struct Selected {
    pub id: i64,
    pub reference: String,
    pub org: String,
    pub state: CaseState,
}

/// The cases holding any of `terms`, oldest first.
pub async fn cases_with_terms(
    tx: &mut WriteTx<'_>,
    terms: &[i64],
) -> Result<Vec<Selected>, StoreError> {
    let mut out: Vec<Selected> = Vec::new();
    for chunk in terms.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT c.id, c.reference, c.org, c.state FROM cases c
             WHERE c.id IN (SELECT case_id FROM case_terms WHERE term IN ({})) ORDER BY c.id",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for t in chunk {
            q = q.bind(*t);
        }
        for r in q.fetch_all(tx.conn()).await? {
            let id: i64 = r.try_get("id")?;
            if out.iter().any(|s| s.id == id) {
                continue;
            }
            out.push(Selected {
                id,
                reference: r.try_get("reference")?,
                org: r.try_get("org")?,
                state: state_of(&r.try_get::<String, _>("state")?)?,
            });
        }
    }
    Ok(out)
}

/// The first mail a case was filed from, as the envelope and session say.
#[derive(Debug, Clone)]
pub struct FirstMail {
    pub id: i64,
    pub mail_from: String,
    /// The delivering client's address (and port).
    pub peer: String,
    pub tls_version: Option<String>,
    pub received_at: i64,
}

pub async fn first_mail(
    tx: &mut WriteTx<'_>,
    case_id: i64,
) -> Result<Option<FirstMail>, StoreError> {
    let row: Option<(i64, String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT id, mail_from, peer, tls_version, received_at FROM messages WHERE case_id = $1 ORDER BY id LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(
        |(id, mail_from, peer, tls_version, received_at)| FirstMail {
            id,
            mail_from,
            peer,
            tls_version,
            received_at,
        },
    ))
}

/// What promotion needs of a case: its kind, state, whether the reporter
/// is anonymous, and the report's language.
#[derive(Debug, Clone)]
pub struct Standing {
    pub kind: CaseKind,
    pub state: CaseState,
    pub anonymous: bool,
    pub language: Option<String>,
}

pub async fn standing(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    reference: &str,
) -> Result<Standing, StoreError> {
    let row = sqlx::query("SELECT kind, state, anonymous, language FROM cases WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    Ok(Standing {
        kind: kind_of(&row.try_get::<String, _>("kind")?)?,
        state: state_of(&row.try_get::<String, _>("state")?)?,
        anonymous: row.try_get::<i64, _>("anonymous")? != 0,
        language: sealer.open_opt(case_field(reference, "language"), row.try_get("language")?)?,
    })
}

pub async fn set_kind(tx: &mut WriteTx<'_>, id: i64, kind: CaseKind) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET kind = $1 WHERE id = $2")
        .bind(kind.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Records that feedback was given now, if it had not been: the feedback
/// clock stops at the first reply or status update.
pub async fn feedback_given(tx: &mut WriteTx<'_>, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET feedback_at = $1 WHERE id = $2 AND feedback_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Why case `id` was closed, if it was.
pub async fn close_reason(tx: &mut WriteTx<'_>, id: i64) -> Result<Option<String>, StoreError> {
    let (reason,): (Option<String>,) =
        sqlx::query_as("SELECT close_reason FROM cases WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    Ok(reason)
}
