//! What a report says, as extracted: the fields the policies ask for, the
//! assets it names, and the triage suggestions. Plain data; the extractor
//! in `intake::report` fills it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Da,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Da => "da",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        [Language::Da, Language::En]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    pub vector: String,
    pub score: f64,
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub value: String,
    pub in_scope: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// `out-of-scope` or `routing`.
    pub kind: String,
    /// The class or topic.
    pub name: String,
    pub label: String,
    /// The phrase that matched.
    pub matched: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportFields {
    pub description: Option<String>,
    pub steps: Option<String>,
    pub impact: Option<String>,
    pub mitigation: Option<String>,
    pub contact: Option<String>,
    pub channel: Option<String>,
    pub cve_ids: Vec<String>,
    pub cwe_ids: Vec<String>,
    pub cvss: Option<Cvss>,
    pub assets: Vec<Asset>,
    pub language: Option<Language>,
}
