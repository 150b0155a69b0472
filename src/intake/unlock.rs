//! Unlocking a case's encrypted archives with the out-of-band password.
//!
//! The same function serves the CLI (`disclosure-mx unlock`) and, later, the
//! analyst web interface. The password is held in a `Zeroizing` buffer,
//! handed to the extractor off the async runtime, never stored and never
//! logged; attempts are recorded on the case (who, when; never the
//! password) and limited per case.
//!
//! With the right password every archive that opens is extracted under the
//! caps; report text found inside (txt, md, html, eml) fills the case fields
//! the mail left empty, exactly as for a report sent in the clear; images
//! become screenshots, anything else evidence. An archive that hits a cap or
//! is damaged is recorded with its reason and no longer blocks the case.

use super::extract::{self, ExtractError, ExtractLimits, Extracted};
use super::{archive, mime, report};
use crate::audit::{self, Who};
use crate::cases::CaseState;
use crate::cases::store::{self as case_store, NewEvidence, begin_write};
use crate::policy::PolicySet;
use crate::store::Store;
use crate::store::seal::Sealer;
use sqlx::{AnyConnection, Row};
use zeroize::Zeroizing;

/// Failed attempts allowed per case in `ATTEMPT_WINDOW` seconds. The
/// password is long and random in practice; five tries cover typos and stop
/// guessing through this door.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;
/// The window, in seconds, over which failed attempts count.
pub const ATTEMPT_WINDOW: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("no case {0}")]
    NotFound(String),
    #[error("case {0} holds no locked archive")]
    NothingLocked(String),
    #[error("too many failed attempts on this case; try again in {0} minutes")]
    TooManyAttempts(i64),
    #[error("wrong password: nothing was changed")]
    WrongPassword,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What an unlock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockOutcome {
    pub opened: usize,
    /// Archives refused by a cap or damage, with the reason.
    pub refused: Vec<String>,
    pub extracted_files: usize,
    /// Case fields filled from report text found inside.
    pub fields_filled: Vec<&'static str>,
}

struct Locked {
    id: i64,
    name: String,
    data: Vec<u8>,
}

/// Unlocks every locked archive of case `reference` that opens with
/// `password`.
pub async fn unlock(
    store: &Store,
    policies: &PolicySet,
    reference: &str,
    password: Zeroizing<String>,
    who: &Who<'_>,
    limits: &ExtractLimits,
) -> Result<UnlockOutcome, UnlockError> {
    let now = jiff::Timestamp::now().as_second();
    let mut conn = store.connection().await?;
    let row = sqlx::query("SELECT id, org, state FROM cases WHERE reference = $1")
        .bind(reference)
        .fetch_optional(&mut conn)
        .await?
        .ok_or_else(|| UnlockError::NotFound(reference.to_owned()))?;
    let case_id: i64 = row.try_get("id")?;
    let org: String = row.try_get("org")?;
    let state: String = row.try_get("state")?;

    let (failed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM case_events WHERE case_id = $1 AND kind = 'unlock-failed' AND at > $2")
            .bind(case_id)
            .bind(now - ATTEMPT_WINDOW)
            .fetch_one(&mut conn)
            .await?;
    if failed >= MAX_FAILED_ATTEMPTS {
        audit::record_now(
            &mut conn,
            store.sealer(),
            &who.entry("unlock-refused", reference, "too many failed attempts"),
        )
        .await?;
        return Err(UnlockError::TooManyAttempts(ATTEMPT_WINDOW / 60));
    }

    let sealer = store.sealer();
    let locked: Vec<Locked> = sqlx::query(
        "SELECT id, name, data, archive, object_id FROM case_evidence
         WHERE case_id = $1 AND archive IS NOT NULL AND opened_at IS NULL ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(&mut conn)
    .await?
    .iter()
    .filter(|r| {
        r.try_get::<String, _>("archive")
            .ok()
            .and_then(|a| serde_json::from_str::<archive::ArchiveInfo>(&a).ok())
            .is_some_and(|i| i.is_encrypted())
    })
    .map(|r| {
        let aad = format!(
            "evidence:{}",
            r.try_get::<Option<String>, _>("object_id")?
                .unwrap_or_default()
        );
        let sealed_name: Option<String> = r.try_get("name")?;
        let sealed: Vec<u8> = r.try_get("data")?;
        Ok(Locked {
            id: r.try_get("id")?,
            name: sealer
                .open_opt(&format!("{aad}:name"), sealed_name)
                .map_err(crate::store::StoreError::from)?
                .unwrap_or_else(|| "(unnamed)".into()),
            data: sealer
                .open(&aad, &sealed)
                .map_err(crate::store::StoreError::from)?,
        })
    })
    .collect::<Result<_, UnlockError>>()?;
    if locked.is_empty() {
        return Err(UnlockError::NothingLocked(reference.to_owned()));
    }

    // Extraction is CPU work on hostile input: off the runtime, panics
    // caught, the password copied into a buffer that is wiped on drop.
    let mut results = Vec::new();
    for l in &locked {
        let (data, pw, limits) = (
            l.data.clone(),
            Zeroizing::new(password.as_str().to_owned()),
            limits.clone(),
        );
        let result = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(|| extract::extract(&data, &pw, &limits))
                .unwrap_or_else(|_| Err(ExtractError::Damaged("the extractor panicked".into())))
        })
        .await
        .unwrap_or_else(|e| {
            Err(ExtractError::Damaged(format!(
                "extraction task failed: {e}"
            )))
        });
        results.push(result);
    }
    drop(password);

    if results
        .iter()
        .all(|r| matches!(r, Err(ExtractError::WrongPassword)))
    {
        case_store::add_event(
            &mut conn,
            store.sealer(),
            case_id,
            now,
            "unlock-failed",
            who.actor,
            "wrong password",
            None,
        )
        .await?;
        audit::record_now(
            &mut conn,
            store.sealer(),
            &who.entry("unlock-failed", reference, "wrong password"),
        )
        .await?;
        return Err(UnlockError::WrongPassword);
    }

    let policy = policies.get(&org);
    let begin = begin_write(&conn);
    let mut tx = sqlx::Connection::begin_with(&mut conn, begin).await?;
    let mut outcome = UnlockOutcome {
        opened: 0,
        refused: Vec::new(),
        extracted_files: 0,
        fields_filled: Vec::new(),
    };
    let mut report_text = String::new();
    for (l, result) in locked.iter().zip(results) {
        match result {
            Ok(extracted) => {
                outcome.opened += 1;
                outcome.extracted_files +=
                    store_extracted(&mut tx, sealer, case_id, l.id, &extracted, now).await?;
                for f in extracted.files() {
                    if let Some(text) = report_text_of(f) {
                        report_text.push_str(&text);
                        report_text.push_str("\n\n");
                    }
                }
                mark_opened(&mut tx, l.id, now, None).await?;
            }
            // Another archive of the case took this password; this one
            // stays locked for its own.
            Err(ExtractError::WrongPassword) => {}
            Err(e) => {
                let reason = format!("{}: {e}", l.name);
                mark_opened(&mut tx, l.id, now, Some(&e.to_string())).await?;
                outcome.refused.push(reason);
            }
        }
    }
    if !report_text.is_empty() {
        let fields = report::extract(&report_text, policy);
        outcome.fields_filled = fill_fields(&mut tx, sealer, case_id, reference, &fields).await?;
    }
    let (still_locked,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM case_evidence WHERE case_id = $1 AND archive IS NOT NULL AND opened_at IS NULL
         AND archive NOT LIKE '%\"encryption\":\"none\"%'",
    )
    .bind(case_id)
    .fetch_one(&mut *tx)
    .await?;
    let mut detail = format!(
        "opened {} archive(s), {} file(s) extracted",
        outcome.opened, outcome.extracted_files
    );
    for r in &outcome.refused {
        detail.push_str(&format!("; refused {r}"));
    }
    case_store::add_event(
        &mut tx,
        store.sealer(),
        case_id,
        now,
        "unlocked",
        who.actor,
        &detail,
        None,
    )
    .await?;
    let summary = format!(
        "opened {} archive(s), refused {}",
        outcome.opened,
        outcome.refused.len()
    );
    audit::record(
        &mut tx,
        store.sealer(),
        &who.entry("unlocked", reference, &summary),
    )
    .await?;
    if still_locked == 0 && state == CaseState::AwaitingPassword.as_str() {
        sqlx::query("UPDATE cases SET state = 'new' WHERE id = $1")
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        case_store::add_event(
            &mut tx,
            store.sealer(),
            case_id,
            now,
            "transition",
            who.actor,
            "awaiting-password -> new (all archives opened)",
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn mark_opened(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
    problem: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE case_evidence SET opened_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if let Some(problem) = problem {
        // Keep the inspection record and add why the archive was refused.
        let row: (Option<String>,) =
            sqlx::query_as("SELECT archive FROM case_evidence WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
        let mut info: serde_json::Value = row
            .0
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default();
        info["refused"] = serde_json::Value::String(problem.to_owned());
        sqlx::query("UPDATE case_evidence SET archive = $1 WHERE id = $2")
            .bind(info.to_string())
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Stores extracted files as evidence under their archive. Returns how many.
async fn store_extracted(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    parent: i64,
    extracted: &Extracted,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let mut n = 0;
    for f in extracted.files() {
        let sniffed = mime::sniff_image(&f.data);
        let nested = archive::inspect(&f.data).and_then(|i| serde_json::to_string(&i).ok());
        let evidence = NewEvidence {
            screenshot: sniffed.is_some(),
            // A nested archive was extracted in the same pass.
            opened: nested.is_some(),
            archive: nested,
            name: Some(f.name.clone()),
            declared_type: "application/octet-stream".into(),
            sniffed_type: sniffed.map(str::to_owned),
            forwarded: false,
            data: f.data.clone(),
        };
        let opened = evidence.opened.then_some(now);
        case_store::insert_evidence(conn, sealer, case_id, &evidence, Some(parent), opened).await?;
        n += 1;
    }
    for link in extracted.symlinks() {
        let evidence = NewEvidence {
            screenshot: false,
            opened: false,
            archive: None,
            name: Some(link.clone()),
            declared_type: "inode/symlink".into(),
            sniffed_type: None,
            forwarded: false,
            data: Vec::new(),
        };
        case_store::insert_evidence(conn, sealer, case_id, &evidence, Some(parent), None).await?;
    }
    Ok(n)
}

/// Report text in an extracted file, by name: txt, md, html, eml.
fn report_text_of(f: &extract::ExtractedFile) -> Option<String> {
    let name = f.name.to_ascii_lowercase();
    let ext = name.rsplit('.').next().unwrap_or("");
    match ext {
        "txt" | "md" => Some(String::from_utf8_lossy(&f.data).into_owned()),
        "html" | "htm" => Some(mime::html_to_text(&String::from_utf8_lossy(&f.data))),
        "eml" => mime::parse(&f.data, &mime::MimeLimits::default())
            .ok()
            .map(|m| m.text),
        _ => None,
    }
}

/// Fills the case fields that are still empty; returns which. Values are
/// sealed like those intake writes.
async fn fill_fields(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    f: &report::ReportFields,
) -> Result<Vec<&'static str>, UnlockError> {
    let row = sqlx::query(
        "SELECT description, steps, impact, mitigation, contact, channel, cvss_vector, cve_ids, cwe_ids FROM cases WHERE id = $1",
    )
    .bind(case_id)
    .fetch_one(&mut *conn)
    .await?;
    let mut filled = Vec::new();
    for (column, value) in [
        ("description", &f.description),
        ("steps", &f.steps),
        ("impact", &f.impact),
        ("mitigation", &f.mitigation),
        ("contact", &f.contact),
        ("channel", &f.channel),
    ] {
        let current: Option<String> = row.try_get(column)?;
        if current.is_none()
            && let Some(v) = value
        {
            let stored = if column == "channel" {
                v.clone()
            } else {
                sealer.seal_text(&case_store::case_field(reference, column), v)
            };
            // The column name comes from the fixed list above, never input.
            let sql = format!("UPDATE cases SET {column} = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(stored)
                .bind(case_id)
                .execute(&mut *conn)
                .await?;
            filled.push(column);
        }
    }
    if row.try_get::<Option<String>, _>("cvss_vector")?.is_none()
        && let Some(c) = &f.cvss
    {
        sqlx::query(
            "UPDATE cases SET cvss_vector = $1, cvss_score = $2, cvss_severity = $3 WHERE id = $4",
        )
        .bind(&c.vector)
        .bind(c.score)
        .bind(&c.severity)
        .bind(case_id)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
        filled.push("cvss");
    }
    for (column, found) in [("cve_ids", &f.cve_ids), ("cwe_ids", &f.cwe_ids)] {
        let mut ids: Vec<String> =
            serde_json::from_str(&row.try_get::<String, _>(column)?).unwrap_or_default();
        let before = ids.len();
        ids.extend(
            found
                .iter()
                .filter(|i| !ids.contains(i))
                .cloned()
                .collect::<Vec<_>>(),
        );
        if ids.len() > before {
            let sql = format!("UPDATE cases SET {column} = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
                .bind(case_id)
                .execute(&mut *conn)
                .await?;
            filled.push(column);
        }
    }
    let aad = case_store::case_child(case_id, "asset");
    let existing: Vec<(String,)> =
        sqlx::query_as("SELECT value FROM case_assets WHERE case_id = $1")
            .bind(case_id)
            .fetch_all(&mut *conn)
            .await?;
    let existing: Vec<String> = existing
        .into_iter()
        .map(|(v,)| sealer.open_text(&aad, &v))
        .collect::<Result<_, _>>()
        .map_err(crate::store::StoreError::from)?;
    let mut added = false;
    for a in &f.assets {
        if !existing.contains(&a.value) {
            sqlx::query("INSERT INTO case_assets (case_id, value, in_scope) VALUES ($1, $2, $3)")
                .bind(case_id)
                .bind(sealer.seal_text(&aad, &a.value))
                .bind(i64::from(a.in_scope))
                .execute(&mut *conn)
                .await?;
            added = true;
        }
    }
    if added {
        filled.push("assets");
    }
    Ok(filled)
}
