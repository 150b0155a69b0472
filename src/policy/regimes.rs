//! `[regimes]`: the laws an organisation is under, and whom each of their
//! notifications goes to. The steps and articles are in
//! `model::clock::STEPS`; this says which of them apply and to whom.
//!
//! ```toml
//! [regimes.gdpr-controller]
//! authority = "Datatilsynet"
//! recipient = "https://www.datatilsynet.dk/"
//! [regimes.nis2]
//! entity = "important"
//! authority = "CFCS, the Danish national CSIRT"
//! recipient = "ENISA single reporting platform"
//! ```
//!
//! A policy without `[regimes]` is a GDPR controller (every organisation
//! that handles reporters' personal data is one), with the authority
//! unnamed: the breach clock it always had.

use super::Within;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegimesFile {
    #[serde(rename = "gdpr-controller")]
    gdpr_controller: Option<AuthorityFile>,
    #[serde(rename = "gdpr-processor")]
    gdpr_processor: Option<ProcessorFile>,
    nis2: Option<Nis2File>,
    #[serde(rename = "cra-manufacturer")]
    cra_manufacturer: Option<AuthorityFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityFile {
    authority: String,
    recipient: String,
    /// GDPR controller: the target for telling the people affected
    /// "without undue delay" (art. 34(1)).
    data_subjects_within: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessorFile {
    /// The controller, by name.
    controller: String,
    /// How to reach the controller's contact for breaches.
    controller_contact: String,
    /// The target for "without undue delay" (art. 33(2)).
    #[serde(default = "default_controller_within")]
    controller_within: String,
}

fn default_controller_within() -> String {
    "24 hours".into()
}

/// NIS2 art. 3: essential or important entity. The reporting duties of
/// art. 23 are the same for both; supervision differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Nis2Entity {
    Essential,
    Important,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nis2File {
    entity: Nis2Entity,
    authority: String,
    recipient: String,
}

/// One regime that applies, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegimeConfig {
    /// Who receives its notifications.
    pub authority: String,
    /// Where or how they are submitted.
    pub recipient: String,
    /// The policy's target where the law says "without undue delay".
    pub target: Option<Within>,
    pub entity: Option<Nis2Entity>,
}

/// The regimes of one organisation, by name (the clock vocabulary's
/// `model::clock::Regime`; this layer imports nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regimes {
    pub gdpr_controller: Option<RegimeConfig>,
    pub gdpr_processor: Option<RegimeConfig>,
    pub nis2: Option<RegimeConfig>,
    pub cra_manufacturer: Option<RegimeConfig>,
}

impl Regimes {
    /// A policy without `[regimes]`: a controller, authority unnamed.
    pub(super) fn implied() -> Regimes {
        Regimes {
            gdpr_controller: Some(RegimeConfig {
                authority: "the supervisory authority".into(),
                recipient: String::new(),
                target: Some(Within::Hours(72)),
                entity: None,
            }),
            ..Regimes::default()
        }
    }

    /// Each regime that applies, with its key in the policy.
    pub fn named(&self) -> Vec<(&'static str, &RegimeConfig)> {
        [
            ("gdpr-controller", &self.gdpr_controller),
            ("gdpr-processor", &self.gdpr_processor),
            ("nis2", &self.nis2),
            ("cra-manufacturer", &self.cra_manufacturer),
        ]
        .into_iter()
        .filter_map(|(n, r)| r.as_ref().map(|r| (n, r)))
        .collect()
    }

    /// Validates `[regimes]`; `Err((key, reason))`.
    pub(super) fn from_file(f: RegimesFile) -> Result<Regimes, (String, String)> {
        let text = |key: String, v: String| {
            let v = v.trim().to_owned();
            if v.is_empty() || v.len() > 300 || v.contains(char::is_control) {
                Err((key, "must be 1 to 300 characters on one line".to_owned()))
            } else {
                Ok(v)
            }
        };
        let within = |key: String, v: &str| v.parse::<Within>().map_err(|e| (key, e));
        let mut out = Regimes::default();
        if let Some(g) = f.gdpr_controller {
            let k = |f: &str| format!("regimes.gdpr-controller.{f}");
            out.gdpr_controller = Some(RegimeConfig {
                authority: text(k("authority"), g.authority)?,
                recipient: text(k("recipient"), g.recipient)?,
                target: Some(within(
                    k("data_subjects_within"),
                    g.data_subjects_within.as_deref().unwrap_or("72 hours"),
                )?),
                entity: None,
            });
        }
        if let Some(p) = f.gdpr_processor {
            let k = |f: &str| format!("regimes.gdpr-processor.{f}");
            out.gdpr_processor = Some(RegimeConfig {
                authority: text(k("controller"), p.controller)?,
                recipient: text(k("controller_contact"), p.controller_contact)?,
                target: Some(within(k("controller_within"), &p.controller_within)?),
                entity: None,
            });
        }
        if let Some(n) = f.nis2 {
            let k = |f: &str| format!("regimes.nis2.{f}");
            out.nis2 = Some(RegimeConfig {
                authority: text(k("authority"), n.authority)?,
                recipient: text(k("recipient"), n.recipient)?,
                target: None,
                entity: Some(n.entity),
            });
        }
        if let Some(c) = f.cra_manufacturer {
            let k = |f: &str| format!("regimes.cra-manufacturer.{f}");
            if c.data_subjects_within.is_some() {
                return Err((
                    k("data_subjects_within"),
                    "only a GDPR controller tells data subjects".into(),
                ));
            }
            out.cra_manufacturer = Some(RegimeConfig {
                authority: text(k("authority"), c.authority)?,
                recipient: text(k("recipient"), c.recipient)?,
                target: None,
                entity: None,
            });
        }
        if out.named().is_empty() {
            return Err((
                "regimes".into(),
                "name at least one of gdpr-controller, gdpr-processor, nis2, cra-manufacturer"
                    .into(),
            ));
        }
        Ok(out)
    }
}
