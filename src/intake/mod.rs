//! Intake's pure half: what a stranger's message says, extracted under
//! bounds — MIME, HTML, the report's fields, archives and what is inside
//! them — and the parse workers that run those parsers where a crash or an
//! allocation failure costs one message, not the service.
//!
//! Nothing here touches the store or a case: `cases::inbox` claims stored
//! messages, hands them to these workers and files what they find. Intake
//! knows nothing of SMTP sessions either.

pub mod analysis;
pub mod archive;
pub mod encrypted;
pub mod evidence;
pub mod extract;
pub mod html;
pub mod mime;
pub mod plaintext;
pub mod report;
pub mod tlsrpt;
pub mod worker;

use crate::policy::Policy;
use serde::Deserialize;
use std::time::Duration;
use worker::Budget;

/// `[intake]`: the parse workers and their budgets. Every limit here
/// says why; `README.md` lists them with their defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    /// File stored messages into cases inside `serve`.
    pub enabled: bool,
    /// Seconds between passes when no new message wakes the worker; a
    /// safety net, since every commit wakes it at once.
    pub poll_interval: u64,
    /// Parse workers for intake and unlocks (2): one busy with a slow
    /// message leaves another for the rest.
    pub workers: usize,
    /// Parse workers for the plaintext rule during SMTP sessions (2), apart
    /// from intake's, so a flood of plaintext mail cannot stall filing.
    pub check_workers: usize,
    /// Memory a parse may add to its worker, in MiB (256): a 25 MiB message
    /// parses in well under 100 MiB; a bomb stops here.
    pub parse_memory_mib: u64,
    /// CPU seconds a parse may use (2): the largest real report takes a
    /// fraction of a second.
    pub parse_cpu_seconds: u64,
    /// Wall seconds a parse may take (10), for a worker that waits rather
    /// than computes; then it is killed.
    pub parse_wall_seconds: u64,
    /// Memory an unlock may add to its worker, in MiB (768): the 7z decoder
    /// cap (256 MiB) plus the extraction total (100 MiB) plus the archives.
    pub unlock_memory_mib: u64,
    /// CPU seconds one unlock may use, all archives together (30).
    pub unlock_cpu_seconds: u64,
    /// Attempts at a message that never complete (worker killed, service
    /// killed) before it is quarantined (3): rides out a crash elsewhere,
    /// and a poison message costs at most three budgets.
    pub max_attempts: u32,
    /// How much larger the budget of `cases retry` is (4).
    pub retry_budget_factor: u32,
    /// Seconds between retention passes (3600): each erases the personal
    /// data of cases past their policy's retention period. The first pass
    /// is one interval after start.
    pub retention_interval: u64,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            enabled: true,
            poll_interval: 5,
            workers: 2,
            check_workers: 2,
            parse_memory_mib: 256,
            parse_cpu_seconds: 2,
            parse_wall_seconds: 10,
            unlock_memory_mib: 768,
            unlock_cpu_seconds: 30,
            retention_interval: 3600,
            max_attempts: 3,
            retry_budget_factor: 4,
        }
    }
}

impl IntakeSettings {
    pub fn parse_budget(&self) -> Budget {
        Budget {
            memory_mib: self.parse_memory_mib,
            cpu_seconds: self.parse_cpu_seconds,
            wall: Duration::from_secs(self.parse_wall_seconds),
        }
    }

    /// The unlock budget; its wall time follows the extraction limit.
    pub fn unlock_budget(&self, max_time: Duration) -> Budget {
        Budget {
            memory_mib: self.unlock_memory_mib,
            cpu_seconds: self.unlock_cpu_seconds,
            wall: max_time + Duration::from_secs(5),
        }
    }
}

/// Whether `subject` carries one of the policy's flags: case-insensitive,
/// after RFC 2047 decoding (done by the MIME parser), with runs of spaces
/// and brackets ignored, so "[Responsible  Disclosure]" and
/// "Fwd: RE: responsible disclosure - XSS" both count. A policy without
/// flags treats all mail to its addresses as reports.
pub fn is_flagged(policy: &Policy, subject: &str) -> bool {
    if policy.subject_flags.is_empty() {
        return true;
    }
    let normal = |s: &str| {
        s.to_lowercase()
            .replace(['[', ']', '(', ')', '_'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let subject = normal(subject);
    policy
        .subject_flags
        .iter()
        .any(|f| subject.contains(&normal(f)))
}

/// Case references of this organisation named in `text`
/// (`PREFIX-YYYY-NNNN`).
pub fn references_in(policy: &Policy, text: &str) -> Vec<String> {
    let prefix = format!("{}-", policy.reference_prefix);
    let upper = text.to_ascii_uppercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = upper[from..].find(&prefix) {
        let start = from + i;
        let candidate = upper.get(start..start + prefix.len() + 9).unwrap_or("");
        let tail = &candidate[prefix.len().min(candidate.len())..];
        let shaped = tail.len() == 9
            && tail.as_bytes()[4] == b'-'
            && tail
                .bytes()
                .enumerate()
                .all(|(k, b)| k == 4 || b.is_ascii_digit());
        let boundary = upper[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if shaped && boundary && !out.contains(&candidate.to_owned()) {
            out.push(candidate.to_owned());
        }
        from = start + prefix.len();
    }
    out
}
