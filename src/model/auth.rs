//! Sender authentication as we computed it (SPF, DKIM, DMARC, ARC): what
//! each check said, in the words of RFC 8601 and in plain language, and
//! whether the sender is authenticated enough for an automatic receipt.
//! Signals for the analyst, never a reason to refuse a report.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Spf,
    Dkim,
    Dmarc,
    Arc,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::Spf => "SPF",
            Method::Dkim => "DKIM",
            Method::Dmarc => "DMARC",
            Method::Arc => "ARC",
        }
    }
}

/// A check's result, as RFC 8601 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    /// A look-up failed or timed out: never a pass.
    TempError,
    PermError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::SoftFail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub method: Method,
    pub result: Outcome,
    /// For people: "DKIM: signed by reporters.example, valid".
    pub line: String,
}

/// Everything we computed about one message's sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// Our `Authentication-Results` header's value (authserv-id first).
    pub header: String,
    pub checks: Vec<Check>,
    /// SPF passed for the envelope sender, or a DKIM signature aligned
    /// with `From:` verified: an automatic receipt may go to it.
    pub authenticated: bool,
}

impl Assessment {
    /// The lines, one per check.
    pub fn lines(&self) -> Vec<String> {
        self.checks.iter().map(|c| c.line.clone()).collect()
    }
}
