//! Aggregate TLS reports: one row per policy a report covers, counts in
//! clear for the delivery-health view, failure details sealed.

use super::seal::Label;
use super::{Store, StoreError, WriteTx};
use crate::model::delivery::{Failure, Health, TlsReport};
use sqlx::Row;

/// Records `report` (from message `message`) and marks the message filed,
/// with no case: a report about delivery is not a vulnerability report.
pub async fn record(
    tx: &mut WriteTx<'_>,
    sealer: &super::seal::Sealer,
    message: i64,
    received_at: i64,
    report: &TlsReport,
) -> Result<(), StoreError> {
    for p in &report.policies {
        let details = serde_json::to_string(&p.failures).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO tls_reports (message_id, received_at, organization, report_id, date_start,
                 date_end, policy_domain, policy_type, successful, failed, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message)
        .bind(received_at)
        .bind(&report.organization)
        .bind(&report.report_id)
        .bind(report.date_start)
        .bind(report.date_end)
        .bind(&p.policy_domain)
        .bind(&p.policy_type)
        .bind(p.successful as i64)
        .bind(p.failed as i64)
        .bind(sealer.seal_text(Label::TlsReport(message), &details))
        .execute(tx.conn())
        .await?;
    }
    sqlx::query(
        "UPDATE messages SET state = 'filed', claimed_until = NULL, intake_failure = NULL
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Sessions by sending organisation and our domain, for reports that
/// ended at or after `since`; most failures first.
pub async fn health(store: &Store, since: i64) -> Result<Vec<Health>, StoreError> {
    let rows = sqlx::query(
        "SELECT message_id, organization, policy_domain, successful, failed, date_end, details
         FROM tls_reports WHERE date_end >= $1 ORDER BY organization, policy_domain, id",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await?;
    let sealer = store.sealer();
    let mut out: Vec<Health> = Vec::new();
    for r in rows {
        let (org, domain): (String, String) =
            (r.try_get("organization")?, r.try_get("policy_domain")?);
        let message: i64 = r.try_get("message_id")?;
        let details = sealer.open_text(
            Label::TlsReport(message),
            &r.try_get::<String, _>("details")?,
        )?;
        let failures: Vec<Failure> = serde_json::from_str(&details).unwrap_or_default();
        let at = out
            .iter()
            .position(|h| h.organization == org && h.policy_domain == domain)
            .unwrap_or_else(|| {
                out.push(Health {
                    organization: org.clone(),
                    policy_domain: domain.clone(),
                    reports: 0,
                    successful: 0,
                    failed: 0,
                    failures: Vec::new(),
                    last_report_end: 0,
                });
                out.len() - 1
            });
        let h = &mut out[at];
        h.reports += 1;
        h.successful += r.try_get::<i64, _>("successful")?.max(0) as u64;
        h.failed += r.try_get::<i64, _>("failed")?.max(0) as u64;
        h.last_report_end = h.last_report_end.max(r.try_get("date_end")?);
        for f in failures {
            match h.failures.iter_mut().find(|(t, _)| *t == f.result_type) {
                Some((_, n)) => *n += f.sessions,
                None => h.failures.push((f.result_type, f.sessions)),
            }
        }
    }
    for h in &mut out {
        h.failures.sort_by_key(|f| std::cmp::Reverse(f.1));
    }
    out.sort_by_key(|h| std::cmp::Reverse(h.failed));
    Ok(out)
}
