//! A case's report-derived fields, sealed, with where each came from:
//! written at filing, replaced from a report found inside an archive,
//! written by an analyst; and the archive records that unlocking updates.

use super::read::open_fields;
use super::{case_child, case_field, evidence_field, insert_asset};
use crate::model::report::ReportFields;
use crate::model::thread::{FieldSource, FieldSources, ReportField};
use crate::store::seal::Sealer;
use crate::store::{StoreError, WriteTx};
use sqlx::Row;

/// The report-derived fields of a case, sealed: the text fields, channel,
/// language, CVE and CWE ids and the CVSS score.
pub(super) struct SealedFields {
    pub(super) channel: Option<String>,
    pub(super) contact: Option<String>,
    pub(super) description: Option<String>,
    pub(super) steps: Option<String>,
    pub(super) impact: Option<String>,
    pub(super) mitigation: Option<String>,
    pub(super) language: Option<String>,
    pub(super) cve_ids: String,
    pub(super) cwe_ids: String,
    pub(super) cvss: Option<String>,
}

impl SealedFields {
    pub(super) fn new(sealer: &Sealer, reference: &str, f: &ReportFields) -> SealedFields {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let seal =
            |column: &str, v: Option<&str>| sealer.seal_opt(case_field(reference, column), v);
        let cvss = f.cvss.as_ref().and_then(|c| serde_json::to_string(c).ok());
        SealedFields {
            channel: seal("channel", f.channel.as_deref()),
            contact: seal("contact", f.contact.as_deref()),
            description: seal("description", f.description.as_deref()),
            steps: seal("steps", f.steps.as_deref()),
            impact: seal("impact", f.impact.as_deref()),
            mitigation: seal("mitigation", f.mitigation.as_deref()),
            language: seal("language", f.language.map(|l| l.as_str())),
            cve_ids: sealer.seal_text(case_field(reference, "cve_ids"), &json(&f.cve_ids)),
            cwe_ids: sealer.seal_text(case_field(reference, "cwe_ids"), &json(&f.cwe_ids)),
            cvss: seal("cvss", cvss.as_deref()),
        }
    }
}

/// Writes the report-derived fields of case `id`, sealed, and its assets.
pub(crate) async fn write_fields(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    reference: &str,
    f: &ReportFields,
) -> Result<(), StoreError> {
    let v = SealedFields::new(sealer, reference, f);
    sqlx::query(
        "UPDATE cases SET channel = $1, contact = $2, description = $3, steps = $4, impact = $5,
             mitigation = $6, language = $7, cve_ids = $8, cwe_ids = $9, cvss = $10,
             cvss_vector = NULL, cvss_score = NULL, cvss_severity = NULL
         WHERE id = $11",
    )
    .bind(v.channel)
    .bind(v.contact)
    .bind(v.description)
    .bind(v.steps)
    .bind(v.impact)
    .bind(v.mitigation)
    .bind(v.language)
    .bind(v.cve_ids)
    .bind(v.cwe_ids)
    .bind(v.cvss)
    .bind(id)
    .execute(tx.conn())
    .await?;
    for a in &f.assets {
        insert_asset(tx, sealer, id, &a.value, a.in_scope).await?;
    }
    Ok(())
}

/// Marks an archive opened (or refused with `problem`, kept beside its
/// inspection record): it no longer holds the case.
pub async fn mark_opened(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    object: &str,
    now: i64,
    problem: Option<&str>,
) -> Result<(), StoreError> {
    let aad = evidence_field(object, "archive");
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT archive FROM case_evidence WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    let mut info: serde_json::Value = sealer
        .open_opt(aad, stored)?
        .and_then(|a| serde_json::from_str(&a).ok())
        .unwrap_or_default();
    if let Some(problem) = problem {
        info["refused"] = serde_json::Value::String(problem.to_owned());
    }
    sqlx::query(
        "UPDATE case_evidence SET opened_at = $1, archive_locked = 0, archive = $2 WHERE id = $3",
    )
    .bind(now)
    .bind(sealer.seal_text(aad, &info.to_string()))
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A case's report fields and where each came from, opened.
pub async fn fields_of(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
) -> Result<(ReportFields, FieldSources), StoreError> {
    let row = sqlx::query(
        "SELECT description, steps, impact, mitigation, contact, channel, language, cvss, cve_ids, cwe_ids,
             field_sources
         FROM cases WHERE id = $1",
    )
    .bind(case_id)
    .fetch_one(tx.conn())
    .await?;
    Ok((
        open_fields(&row, sealer, reference)?,
        FieldSources::from_json(&row.try_get::<String, _>("field_sources")?),
    ))
}

/// Writes the text fields of a case (sealed) and their sources.
pub async fn write_text_fields(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    f: &ReportFields,
    sources: &FieldSources,
) -> Result<(), StoreError> {
    let v = SealedFields::new(sealer, reference, f);
    sqlx::query(
        "UPDATE cases SET channel = $1, contact = $2, description = $3, steps = $4, impact = $5,
             mitigation = $6, field_sources = $7
         WHERE id = $8",
    )
    .bind(v.channel)
    .bind(v.contact)
    .bind(v.description)
    .bind(v.steps)
    .bind(v.impact)
    .bind(v.mitigation)
    .bind(sources.to_json())
    .bind(case_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Takes the fields of a report found inside an archive (`found`): each
/// field it gives replaces what the mail gave, unless an analyst wrote
/// that field; ids and assets not yet known are added. Returns what
/// changed.
pub async fn merge_archive_fields(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    found: &ReportFields,
) -> Result<Vec<&'static str>, StoreError> {
    let (mut merged, mut sources) = fields_of(tx, sealer, case_id, reference).await?;
    let mut changed = Vec::new();
    for field in ReportField::ALL {
        if sources.get(field) == Some(FieldSource::Analyst) {
            continue;
        }
        if let Some(v) = field.of(found).map(str::to_owned) {
            if field.of(&merged) != Some(v.as_str()) {
                changed.push(field.as_str());
            }
            *field.slot(&mut merged) = Some(v);
            sources.set(field, Some(FieldSource::Archive));
        }
    }
    if let Some(cvss) = &found.cvss
        && merged.cvss.as_ref().is_none_or(|c| c.vector != cvss.vector)
    {
        merged.cvss = Some(cvss.clone());
        changed.push("cvss");
    }
    if found.language.is_some() {
        merged.language = found.language;
    }
    for (name, list, more) in [
        ("cve_ids", &mut merged.cve_ids, &found.cve_ids),
        ("cwe_ids", &mut merged.cwe_ids, &found.cwe_ids),
    ] {
        let before = list.len();
        for id in more {
            if !list.contains(id) {
                list.push(id.clone());
            }
        }
        if list.len() > before {
            changed.push(name);
        }
    }
    let aad = case_child(case_id, "asset");
    let existing: Vec<(String,)> =
        sqlx::query_as("SELECT value FROM case_assets WHERE case_id = $1")
            .bind(case_id)
            .fetch_all(tx.conn())
            .await?;
    let existing: Vec<String> = existing
        .into_iter()
        .map(|(v,)| sealer.open_text(aad, &v))
        .collect::<Result<_, _>>()?;
    merged.assets = found
        .assets
        .iter()
        .filter(|a| !existing.contains(&a.value))
        .cloned()
        .collect();
    if !merged.assets.is_empty() {
        changed.push("assets");
    }
    write_fields(tx, sealer, case_id, reference, &merged).await?;
    super::set_field_sources(tx, case_id, &sources).await?;
    Ok(changed)
}
