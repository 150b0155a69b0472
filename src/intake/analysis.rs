//! What a parse worker computes from untrusted bytes: everything intake
//! needs from one message (`analyse`), and everything an unlock needs from
//! a case's archives (`open_archives`).
//!
//! These functions run only inside a worker process (`worker`), under its
//! memory and CPU limits, so a parser bug or a bomb costs that one job.
//! They are pure: no I/O, no database, no key. The service files what they
//! return.

use super::archive::{self, ArchiveInfo};
use super::extract::{self, ExtractError, ExtractLimits};
use super::mime::{self, Mail, MimeError, MimeLimits};
use super::report::{self, ReportFields, Suggestion};
use crate::policy::Policy;
use serde::{Deserialize, Serialize};

/// One attachment, typed by content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentFacts {
    /// The image type read from the bytes (never SVG), if it is one.
    pub sniffed: Option<String>,
    /// What inspection found, for zip and 7z attachments.
    pub archive: Option<ArchiveInfo>,
}

/// Everything intake needs from one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    /// Headers, text and attachments (attachment bytes travel as blobs).
    pub mail: Mail,
    /// One entry per `mail.attachments`, in order.
    pub facts: Vec<AttachmentFacts>,
    /// Fields from the text and forwarded messages, scoped by the policy.
    pub fields: ReportFields,
    pub suggestions: Vec<Suggestion>,
    /// The subject carries the policy's flag (or the policy needs none).
    pub flagged: bool,
    /// This organisation's case references named in the subject,
    /// In-Reply-To or References, in that order.
    pub references: Vec<String>,
    /// For an encrypted message, what became of its decryption: set by
    /// the service (`cases::decrypt`), which holds the keys; a worker
    /// never does.
    #[serde(skip)]
    pub encryption: Option<crate::model::crypto::Encryption>,
}

/// Parses and analyses one message for `policy`.
pub fn analyse(
    raw: &[u8],
    policy: Option<&Policy>,
    limits: &MimeLimits,
) -> Result<Analysis, MimeError> {
    let mail = mime::parse(raw, limits)?;
    let mut text = mail.text.clone();
    for f in &mail.forwarded_text {
        text.push_str("\n\n");
        text.push_str(f);
    }
    let fields = report::extract(&text, policy);
    let mut suggestions = policy.map_or_else(Vec::new, |p| report::suggestions(&text, p));
    drop(text);
    let facts: Vec<AttachmentFacts> = mail
        .attachments
        .iter()
        .map(|a| AttachmentFacts {
            sniffed: mime::sniff_image(&a.data).map(str::to_owned),
            archive: archive::inspect(&a.data),
        })
        .collect();
    for (a, f) in mail.attachments.iter().zip(&facts) {
        if f.archive.as_ref().is_some_and(ArchiveInfo::uses_zipcrypto) {
            suggestions.push(Suggestion {
                kind: "warning".into(),
                name: "zipcrypto".into(),
                label: "Legacy ZipCrypto encryption is weak: ask the reporter to use AES-256 (7z or zip) next time".into(),
                matched: a.name.clone().unwrap_or_else(|| "(unnamed attachment)".into()),
            });
        }
    }
    let (flagged, references) = match policy {
        Some(p) => {
            let mut refs = super::references_in(p, &mail.subject);
            for id in &mail.refers_to {
                for r in super::references_in(p, id) {
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
            }
            (super::is_flagged(p, &mail.subject), refs)
        }
        None => (false, Vec::new()),
    };
    Ok(Analysis {
        mail,
        facts,
        fields,
        suggestions,
        flagged,
        references,
        encryption: None,
    })
}

/// One file taken out of an archive, typed by content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenedFile {
    /// Sanitised, for display only.
    pub name: String,
    pub depth: usize,
    pub sniffed: Option<String>,
    /// For an archive inside the archive (opened in the same pass).
    pub archive: Option<ArchiveInfo>,
    /// Bytes travel as blobs.
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// What became of one archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ArchiveOutcome {
    Opened {
        files: Vec<OpenedFile>,
        /// Symlink entries: recorded by name, never followed.
        symlinks: Vec<String>,
    },
    Failed(ExtractError),
}

/// What an unlock learns from a case's archives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Opened {
    /// One per archive given, in order.
    pub archives: Vec<ArchiveOutcome>,
    /// Fields from report text found inside (txt, md, html, eml), if any.
    pub fields: Option<ReportFields>,
    /// That text, whole: the case's report from now on.
    pub report_text: Option<String>,
}

/// Opens `archives` with `password` under one budget for all of them
/// (`extract::extract_all`), and reads the report text found inside.
pub fn open_archives(
    archives: &[&[u8]],
    password: &str,
    policy: Option<&Policy>,
    limits: &ExtractLimits,
) -> Opened {
    let results = extract::extract_all(archives, password, limits);
    let mut report_text = String::new();
    let mut outcomes = Vec::with_capacity(results.len());
    for result in results {
        outcomes.push(match result {
            Ok(extracted) => {
                let (files, symlinks) = extracted.into_parts();
                let files = files
                    .into_iter()
                    .map(|f| {
                        if let Some(text) = report_text_of(&f.name, &f.data) {
                            report_text.push_str(&text);
                            report_text.push_str("\n\n");
                        }
                        OpenedFile {
                            sniffed: mime::sniff_image(&f.data).map(str::to_owned),
                            archive: archive::inspect(&f.data),
                            name: f.name,
                            depth: f.depth,
                            data: f.data,
                        }
                    })
                    .collect();
                ArchiveOutcome::Opened { files, symlinks }
            }
            Err(e) => ArchiveOutcome::Failed(e),
        });
    }
    let report_text = report_text.trim_end().to_owned();
    let found = !report_text.trim().is_empty();
    Opened {
        archives: outcomes,
        fields: found.then(|| report::extract(&report_text, policy)),
        report_text: found.then_some(report_text),
    }
}

/// Report text in an extracted file, by name: txt, md, html, eml.
fn report_text_of(name: &str, data: &[u8]) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let limits = MimeLimits::default();
    match name.rsplit('.').next().unwrap_or("") {
        "txt" | "md" => Some(String::from_utf8_lossy(data).into_owned()),
        "html" | "htm" => Some(mime::html_to_text(
            &String::from_utf8_lossy(data),
            limits.max_html_bytes,
        )),
        "eml" => mime::parse(data, &limits).ok().map(|m| m.text),
        _ => None,
    }
}
