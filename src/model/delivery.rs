//! Delivery health: what other mail servers report about delivering to us
//! (RFC 8460 aggregate TLS reports), one entry per policy a report covers.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsReport {
    /// The sending organisation that reports.
    pub organization: String,
    pub report_id: String,
    /// Unix seconds.
    pub date_start: i64,
    pub date_end: i64,
    pub policies: Vec<PolicyResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyResult {
    /// Our domain the sessions were for.
    pub policy_domain: String,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    pub successful: u64,
    pub failed: u64,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Failure {
    /// RFC 8460 §4.3's result type, e.g. `certificate-expired`.
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx: Option<String>,
    pub sessions: u64,
    pub reason_code: Option<String>,
}

/// One row of the delivery-health view: a sending organisation's sessions
/// to one of our domains over the period asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub organization: String,
    pub policy_domain: String,
    pub reports: u64,
    pub successful: u64,
    pub failed: u64,
    /// Failed sessions by result type, most first.
    pub failures: Vec<(String, u64)>,
    /// Unix seconds: the newest report's end.
    pub last_report_end: i64,
}
