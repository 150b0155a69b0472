//! Start-up sealing of what older releases kept in clear: raw messages,
//! case text, timeline details, assets, outbox text, evidence, and the
//! values derived from report content. It reads clear values by SQL and
//! seals them; nothing here opens anything.

use super::StoreError;
use super::seal::{self, Label, Sealer};
use sqlx::{AnyPool, Row};

/// Seals whatever an older version stored in clear (raw messages first of
/// all), so the store never holds report content unsealed after start-up.
/// Returns whether anything was sealed.
pub(super) async fn migrate_legacy(pool: &AnyPool, sealer: &Sealer) -> Result<bool, StoreError> {
    let mut sealed = false;
    let rows: Vec<(i64, String, Vec<u8>)> =
        // Only what is not sealed yet: reading every message at every
        // start would cost the size of the whole store.
        sqlx::query_as("SELECT id, queue_id, raw FROM messages WHERE substr(raw, 1, 3) <> $1 ORDER BY id")
            .bind(b"DMX".to_vec())
            .fetch_all(pool)
            .await?;
    for (id, queue_id, raw) in rows {
        if !seal::is_sealed(&raw) {
            sqlx::query("UPDATE messages SET raw = $1 WHERE id = $2")
                .bind(sealer.seal(Label::Message(&queue_id), &raw))
                .bind(id)
                .execute(pool)
                .await?;
            sealed = true;
        }
    }
    // Case text written in clear by an older version.
    const CASE_COLUMNS: &[&str] = &[
        "subject",
        "reporter_name",
        "reporter_address",
        "contact",
        "description",
        "steps",
        "impact",
        "mitigation",
        "authentication_results",
        "message_id",
        "channel",
        "language",
    ];
    for column in CASE_COLUMNS {
        // Column names come from the fixed list above.
        let select = format!(
            "SELECT id, reference, {column} FROM cases WHERE {column} IS NOT NULL AND {column} NOT LIKE 'sealed:%'"
        );
        let rows: Vec<(i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await?;
        for (id, reference, value) in rows {
            let update = format!("UPDATE cases SET {column} = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(sealer.seal_text(Label::CaseField(&reference, column), &value))
                .bind(id)
                .execute(pool)
                .await?;
            sealed = true;
        }
    }
    for (table, column, child) in [
        ("case_events", "detail", "event"),
        ("case_assets", "value", "asset"),
    ] {
        let select =
            format!("SELECT id, case_id, {column} FROM {table} WHERE {column} NOT LIKE 'sealed:%'");
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await?;
        for (id, case_id, value) in rows {
            let update = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(sealer.seal_text(Label::CaseChild(case_id, child), &value))
                .bind(id)
                .execute(pool)
                .await?;
            sealed = true;
        }
    }
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT id, message_id, subject, body FROM outbox WHERE subject != '' AND subject NOT LIKE 'sealed:%'",
    )
    .fetch_all(pool)
    .await?;
    for (id, message_id, subject, body) in rows {
        sqlx::query("UPDATE outbox SET subject = $1, body = $2 WHERE id = $3")
            .bind(sealer.seal_text(Label::Outbox(&message_id, "subject"), &subject))
            .bind(sealer.seal_text(Label::Outbox(&message_id, "body"), &body))
            .bind(id)
            .execute(pool)
            .await?;
        sealed = true;
    }
    let rows: Vec<(i64, Option<String>, Vec<u8>)> =
        sqlx::query_as("SELECT id, name, data FROM case_evidence WHERE object_id IS NULL")
            .fetch_all(pool)
            .await?;
    for (id, name, data) in rows {
        let object = crate::store::cases::object_id();
        sqlx::query("UPDATE case_evidence SET object_id = $1, name = $2, data = $3 WHERE id = $4")
            .bind(&object)
            .bind(sealer.seal_opt(Label::EvidenceField(&object, "name"), name.as_deref()))
            .bind(sealer.seal(Label::Evidence(&object), &data))
            .bind(id)
            .persistent(false)
            .execute(pool)
            .await?;
        sealed = true;
    }
    sealed |= seal_report_derived(pool, sealer).await?;
    Ok(sealed)
}

/// Seals the values an older version kept in clear although report
/// content gave them: CVE and CWE ids, the CVSS score, archive inspection
/// (entry names), declared and detected types, and suggestions.
async fn seal_report_derived(pool: &AnyPool, sealer: &Sealer) -> Result<bool, StoreError> {
    let mut sealed = false;
    let clear = "NOT LIKE 'sealed:%'";
    for column in ["cve_ids", "cwe_ids"] {
        let select = format!("SELECT id, reference, {column} FROM cases WHERE {column} {clear}");
        let rows: Vec<(i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await?;
        for (id, reference, value) in rows {
            let update = format!("UPDATE cases SET {column} = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(sealer.seal_text(Label::CaseField(&reference, column), &value))
                .bind(id)
                .execute(pool)
                .await?;
            sealed = true;
        }
    }
    let rows = sqlx::query(
        "SELECT id, reference, cvss_vector, cvss_score, cvss_severity FROM cases WHERE cvss_vector IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        let reference: String = r.try_get("reference")?;
        let cvss = serde_json::json!({
            "vector": r.try_get::<String, _>("cvss_vector")?,
            "score": r.try_get::<Option<f64>, _>("cvss_score")?.unwrap_or(0.0),
            "severity": r.try_get::<Option<String>, _>("cvss_severity")?.unwrap_or_default(),
        });
        sqlx::query(
            "UPDATE cases SET cvss = $1, cvss_vector = NULL, cvss_score = NULL, cvss_severity = NULL WHERE id = $2",
        )
        .bind(sealer.seal_text(Label::CaseField(&reference, "cvss"), &cvss.to_string()))
        .bind(r.try_get::<i64, _>("id")?)
        .execute(pool)
        .await?;
        sealed = true;
    }
    let select = format!(
        "SELECT id, object_id, archive, declared_type, sniffed_type, opened_at FROM case_evidence
         WHERE declared_type {clear}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .fetch_all(pool)
        .await?;
    for r in rows {
        let object: String = r
            .try_get::<Option<String>, _>("object_id")?
            .unwrap_or_default();
        let archive: Option<String> = r.try_get("archive")?;
        let locked = r.try_get::<Option<i64>, _>("opened_at")?.is_none()
            && archive
                .as_deref()
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                .is_some_and(|a| a["encryption"].as_str().is_some_and(|e| e != "none"));
        let aad = |c| Label::EvidenceField(&object, c);
        sqlx::query(
            "UPDATE case_evidence SET archive = $1, declared_type = $2, sniffed_type = $3, archive_locked = $4
             WHERE id = $5",
        )
        .persistent(false)
        .bind(sealer.seal_opt(aad("archive"), archive.as_deref()))
        .bind(sealer.seal_text(aad("declared_type"), &r.try_get::<String, _>("declared_type")?))
        .bind(sealer.seal_opt(
            aad("sniffed_type"),
            r.try_get::<Option<String>, _>("sniffed_type")?.as_deref(),
        ))
        .bind(i64::from(locked))
        .bind(r.try_get::<i64, _>("id")?)
        .execute(pool)
        .await?;
        sealed = true;
    }
    let select = format!(
        "SELECT id, case_id, kind, name, label, matched FROM case_suggestions WHERE kind {clear}"
    );
    let rows: Vec<(i64, i64, String, String, String, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await?;
    for (id, case_id, kind, name, label, matched) in rows {
        let aad = Label::CaseChild(case_id, "suggestion");
        sqlx::query(
            "UPDATE case_suggestions SET kind = $1, name = $2, label = $3, matched = $4 WHERE id = $5",
        )
        .bind(sealer.seal_text(aad, &kind))
        .bind(sealer.seal_text(aad, &name))
        .bind(sealer.seal_text(aad, &label))
        .bind(sealer.seal_text(aad, &matched))
        .bind(id)
        .execute(pool)
        .await?;
        sealed = true;
    }
    Ok(sealed)
}
