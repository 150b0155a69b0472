//! Aggregate TLS reports (RFC 8460) mailed to the TLS-RPT address:
//! parsed by mail-auth from the mail (gzip or plain JSON, a zip too),
//! under a bound on what decompression may produce and `catch_unwind`, so
//! a hostile report costs one quarantined message, never the service.

use crate::model::delivery::{Failure, PolicyResult, TlsReport};

/// Largest decompressed report read: a big sender's daily report is some
/// kilobytes; 8 MiB is far beyond and bounds a gzip bomb.
pub const MAX_REPORT: usize = 8 * 1024 * 1024;

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "other".into())
}

/// The report `raw` (a whole mail) carries, or why not.
pub fn parse(raw: &[u8]) -> Result<TlsReport, String> {
    let parsed = std::panic::catch_unwind(|| {
        mail_auth::report::tlsrpt::TlsReport::parse_rfc5322(raw, MAX_REPORT)
    })
    .map_err(|_| "the TLS report parser failed on this message".to_owned())?
    // The variant's name only: a parser's message may quote the input.
    .map_err(|e| {
        let kind = format!("{e:?}");
        let kind = kind.split(['(', ' ', '{']).next().unwrap_or("invalid");
        format!("not a TLS report ({kind})")
    })?;
    Ok(TlsReport {
        organization: parsed
            .organization_name
            .clone()
            .unwrap_or_else(|| "(unnamed)".into()),
        report_id: parsed.report_id.clone(),
        date_start: parsed.date_range.start_datetime.to_timestamp(),
        date_end: parsed.date_range.end_datetime.to_timestamp(),
        policies: parsed
            .policies
            .iter()
            .map(|p| PolicyResult {
                policy_domain: p.policy.policy_domain.to_ascii_lowercase(),
                policy_type: name(&p.policy.policy_type),
                successful: u64::from(p.summary.total_success),
                failed: u64::from(p.summary.total_failure),
                failures: p
                    .failure_details
                    .iter()
                    .map(|f| Failure {
                        result_type: name(&f.result_type),
                        sending_mta_ip: f.sending_mta_ip.map(|ip| ip.to_string()),
                        receiving_mx: f.receiving_mx_hostname.clone(),
                        sessions: u64::from(f.failed_session_count),
                        reason_code: f.failure_reason_code.clone(),
                    })
                    .collect(),
            })
            .collect(),
    })
}
