//! Drafts of the notifications the regulatory clocks require: pre-filled
//! from the case's technical record, with a section for every item the
//! step's article asks for, each citing it, in English or Danish.
//!
//! What it must never do: put the reporter's identity (name, address,
//! contact, channel) in a draft. An analyst who wants it there adds it.

use super::CaseError;
use super::principal::{Authorized, Case};
use super::service::Cases;
use crate::model::clock::{Clock, Step, StepRule};
use crate::model::report::Language;
use crate::store::audit::AuditAction;
use crate::store::cases::CaseDetail;
use serde::Serialize;

/// One item a notification must hold.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub heading: String,
    /// The provision that asks for it.
    pub cites: &'static str,
    /// Filled from the case, or a marker to complete.
    pub text: String,
    /// Filled from the case (`false`: the analyst must complete it).
    pub filled: bool,
}

/// A notification draft.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub reference: String,
    pub clock: String,
    pub article: &'static str,
    pub law: &'static str,
    pub language: Language,
    pub to: String,
    pub due: Option<i64>,
    pub subject: String,
    pub sections: Vec<Section>,
}

/// An item of a step: what the article asks, in both languages.
struct Ask {
    cites: &'static str,
    en: &'static str,
    da: &'static str,
    fill: Fill,
}

#[derive(Clone, Copy)]
enum Fill {
    Known,
    Assets,
    Vulnerability,
    Awareness,
    Impact,
    Measures,
    Contact,
    /// Only the analyst knows.
    Analyst,
}

const fn ask(cites: &'static str, en: &'static str, da: &'static str, fill: Fill) -> Ask {
    Ask {
        cites,
        en,
        da,
        fill,
    }
}

/// What every notification starts with.
const COMMON: &[Ask] = &[
    ask("", "Awareness", "Kendskab", Fill::Awareness),
    ask("", "What is known", "Hvad vi ved", Fill::Known),
    ask("", "Affected assets", "Berørte aktiver", Fill::Assets),
    ask(
        "",
        "CVE, CWE and CVSS",
        "CVE, CWE og CVSS",
        Fill::Vulnerability,
    ),
];

fn asks(step: Step, article: &'static str) -> Vec<Ask> {
    use Fill::*;
    let a = |c, en, da, f| ask(c, en, da, f);
    match (step, article) {
        (Step::AuthorityNotification, _) => vec![
            a(
                "GDPR art. 33(3)(a)",
                "Nature of the breach: categories and approximate number of data subjects and of records concerned",
                "Bruddets karakter: kategorier og omtrentligt antal berørte registrerede og registreringer",
                Analyst,
            ),
            a(
                "GDPR art. 33(3)(b)",
                "Data protection officer or other contact point",
                "Databeskyttelsesrådgiver eller andet kontaktpunkt",
                Contact,
            ),
            a(
                "GDPR art. 33(3)(c)",
                "Likely consequences of the breach",
                "Sandsynlige konsekvenser af bruddet",
                Impact,
            ),
            a(
                "GDPR art. 33(3)(d)",
                "Measures taken or proposed, including to mitigate its possible adverse effects",
                "Foranstaltninger, der er truffet eller foreslås, herunder for at begrænse mulige skadevirkninger",
                Measures,
            ),
            a(
                "GDPR art. 33(1)",
                "If later than 72 hours: the reasons for the delay",
                "Hvis senere end 72 timer: begrundelsen for forsinkelsen",
                Analyst,
            ),
        ],
        (Step::DataSubjects, _) => vec![
            a(
                "GDPR art. 34(2)",
                "In clear and plain language: the nature of the breach",
                "I et klart og enkelt sprog: bruddets karakter",
                Analyst,
            ),
            a(
                "GDPR art. 34(2), 33(3)(b)",
                "Contact point for more information",
                "Kontaktpunkt for yderligere oplysninger",
                Contact,
            ),
            a(
                "GDPR art. 34(2), 33(3)(c)",
                "Likely consequences",
                "Sandsynlige konsekvenser",
                Impact,
            ),
            a(
                "GDPR art. 34(2), 33(3)(d)",
                "Measures taken or proposed",
                "Foranstaltninger, der er truffet eller foreslås",
                Measures,
            ),
        ],
        (Step::ControllerNotification, _) => vec![
            a(
                "GDPR art. 33(2)",
                "Description of the breach, as far as known",
                "Beskrivelse af bruddet, så vidt kendt",
                Analyst,
            ),
            a(
                "GDPR art. 33(3)(b)",
                "Our contact point",
                "Vores kontaktpunkt",
                Contact,
            ),
            a(
                "GDPR art. 33(3)(c)",
                "Likely consequences",
                "Sandsynlige konsekvenser",
                Impact,
            ),
            a(
                "GDPR art. 33(3)(d)",
                "Measures taken or proposed",
                "Foranstaltninger, der er truffet eller foreslås",
                Measures,
            ),
        ],
        (Step::EarlyWarning, a_) if a_.starts_with("NIS2") => vec![
            a(
                "NIS2 art. 23(4)(a)",
                "Whether the incident is suspected of being caused by unlawful or malicious acts",
                "Om hændelsen mistænkes at være forårsaget af ulovlige eller ondsindede handlinger",
                Analyst,
            ),
            a(
                "NIS2 art. 23(4)(a)",
                "Whether it could have a cross-border impact",
                "Om den kan have grænseoverskridende virkninger",
                Analyst,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::IncidentNotification, _) => vec![
            a(
                "NIS2 art. 23(4)(b)",
                "Update of the early warning",
                "Opdatering af den tidlige varsling",
                Analyst,
            ),
            a(
                "NIS2 art. 23(4)(b)",
                "Initial assessment: severity and impact",
                "Indledende vurdering: alvor og virkning",
                Impact,
            ),
            a(
                "NIS2 art. 23(4)(b)",
                "Indicators of compromise, where available",
                "Kompromitteringsindikatorer, hvor de findes",
                Analyst,
            ),
            a("", "Measures taken", "Foranstaltninger truffet", Measures),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::FinalReport, a_) if a_.starts_with("NIS2") => vec![
            a(
                "NIS2 art. 23(4)(d)(i)",
                "Detailed description: severity and impact",
                "Detaljeret beskrivelse: alvor og virkning",
                Impact,
            ),
            a(
                "NIS2 art. 23(4)(d)(ii)",
                "Type of threat or root cause",
                "Trusselstype eller grundlæggende årsag",
                Analyst,
            ),
            a(
                "NIS2 art. 23(4)(d)(iii)",
                "Applied and ongoing mitigation measures",
                "Gennemførte og igangværende afbødende foranstaltninger",
                Measures,
            ),
            a(
                "NIS2 art. 23(4)(d)(iv)",
                "Cross-border impact, where applicable",
                "Grænseoverskridende virkninger, hvor relevant",
                Analyst,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::EarlyWarning, _) => vec![
            a(
                "CRA art. 14(2)(a)",
                "Member States on whose territory the product has been made available",
                "Medlemsstater, hvor produktet er gjort tilgængeligt",
                Analyst,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::VulnerabilityNotification, _) => vec![
            a(
                "CRA art. 14(2)(b)",
                "General information about the product concerned",
                "Generelle oplysninger om det berørte produkt",
                Analyst,
            ),
            a(
                "CRA art. 14(2)(b)",
                "General nature of the exploit and of the vulnerability",
                "Udnyttelsens og sårbarhedens generelle karakter",
                Analyst,
            ),
            a(
                "CRA art. 14(2)(b)",
                "Corrective or mitigating measures taken",
                "Korrigerende eller afbødende foranstaltninger truffet",
                Measures,
            ),
            a(
                "CRA art. 14(2)(b)",
                "Corrective or mitigating measures users can take",
                "Korrigerende eller afbødende foranstaltninger, brugerne kan træffe",
                Analyst,
            ),
            a(
                "CRA art. 14(2)(b)",
                "How sensitive we consider the notified information",
                "Hvor følsomme vi anser de anmeldte oplysninger for at være",
                Analyst,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::FinalReport, _) => vec![
            a(
                "CRA art. 14(2)(c)(i)",
                "Description of the vulnerability: severity and impact",
                "Beskrivelse af sårbarheden: alvor og virkning",
                Impact,
            ),
            a(
                "CRA art. 14(2)(c)(ii)",
                "Information on any malicious actor that exploited it, where available",
                "Oplysninger om en eventuel ondsindet aktør, der udnyttede den, hvor de findes",
                Analyst,
            ),
            a(
                "CRA art. 14(2)(c)(iii)",
                "The security update or other corrective measures made available",
                "Sikkerhedsopdateringen eller andre korrigerende foranstaltninger",
                Measures,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::IncidentEarlyWarning, _) => vec![
            a(
                "CRA art. 14(4)(a)",
                "Whether the incident is suspected of being caused by unlawful or malicious acts",
                "Om hændelsen mistænkes at være forårsaget af ulovlige eller ondsindede handlinger",
                Analyst,
            ),
            a(
                "CRA art. 14(4)(a)",
                "Member States on whose territory the product has been made available",
                "Medlemsstater, hvor produktet er gjort tilgængeligt",
                Analyst,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::SevereIncidentNotification, _) => vec![
            a(
                "CRA art. 14(4)(b)",
                "Nature of the incident and initial assessment",
                "Hændelsens karakter og indledende vurdering",
                Impact,
            ),
            a(
                "CRA art. 14(4)(b)",
                "Corrective or mitigating measures taken",
                "Korrigerende eller afbødende foranstaltninger truffet",
                Measures,
            ),
            a(
                "CRA art. 14(4)(b)",
                "Corrective or mitigating measures users can take",
                "Korrigerende eller afbødende foranstaltninger, brugerne kan træffe",
                Analyst,
            ),
            a(
                "CRA art. 14(4)(b)",
                "How sensitive we consider the notified information",
                "Hvor følsomme vi anser de anmeldte oplysninger for at være",
                Analyst,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
        (Step::IncidentFinalReport, _) => vec![
            a(
                "CRA art. 14(4)(c)(i)",
                "Detailed description: severity and impact",
                "Detaljeret beskrivelse: alvor og virkning",
                Impact,
            ),
            a(
                "CRA art. 14(4)(c)(ii)",
                "Type of threat or root cause",
                "Trusselstype eller grundlæggende årsag",
                Analyst,
            ),
            a(
                "CRA art. 14(4)(c)(iii)",
                "Applied and ongoing mitigation measures",
                "Gennemførte og igangværende afbødende foranstaltninger",
                Measures,
            ),
            a("", "Contact", "Kontakt", Contact),
        ],
    }
}

fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The draft of `clock` from the case `d`, in `language`.
pub fn build(d: &CaseDetail, clock: &Clock, org: &str, contact: &str, language: Language) -> Draft {
    let da = language == Language::Da;
    let todo = if da {
        "[udfyldes]"
    } else {
        "[to be completed]"
    };
    let aware = d
        .flags
        .iter()
        .find(|f| f.flag == clock.flag)
        .map(|f| f.aware_at);
    let fill = |f: Fill| -> Option<String> {
        let some = |s: &Option<String>| s.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        match f {
            Fill::Known => some(&d.description),
            Fill::Impact => some(&d.impact),
            Fill::Measures => some(&d.mitigation),
            Fill::Assets => (!d.assets.is_empty()).then(|| {
                d.assets
                    .iter()
                    .map(|a| a.value.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            Fill::Vulnerability => {
                let mut parts = Vec::new();
                if !d.cve_ids.is_empty() {
                    parts.push(d.cve_ids.join(", "));
                }
                if !d.cwe_ids.is_empty() {
                    parts.push(d.cwe_ids.join(", "));
                }
                if let (Some(v), Some(s)) = (&d.cvss_vector, d.cvss_score) {
                    parts.push(format!("CVSS {s:.1} {v}"));
                }
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            Fill::Awareness => aware.map(|t| {
                if da {
                    format!("{} blev opmærksom på det {}", org, utc(t))
                } else {
                    format!("{} became aware on {}", org, utc(t))
                }
            }),
            Fill::Contact => Some(format!("{org}, {contact}")),
            Fill::Analyst => None,
        }
    };
    let mut sections = Vec::new();
    for a in COMMON.iter().chain(asks(clock.step, clock.article).iter()) {
        let value = fill(a.fill);
        sections.push(Section {
            heading: if da { a.da } else { a.en }.to_owned(),
            cites: a.cites,
            filled: value.is_some(),
            text: value.unwrap_or_else(|| todo.to_owned()),
        });
    }
    let rule = StepRule::named(&clock.clock);
    let subject = format!(
        "{} ({}) – {} {}",
        rule.map_or(clock.what, |r| r.what),
        clock.article,
        if da { "sag" } else { "case" },
        d.summary.reference
    );
    Draft {
        reference: d.summary.reference.clone(),
        clock: clock.clock.clone(),
        article: clock.article,
        law: clock.regime.law(),
        language,
        to: clock.authority.clone(),
        due: clock.due,
        subject,
        sections,
    }
}

impl Draft {
    /// The draft as text, to paste into the authority's form or a mail.
    pub fn text(&self) -> String {
        let da = self.language == Language::Da;
        let mut out = format!("{}\n", self.subject);
        out.push_str(&format!(
            "{}: {}\n{}: {}\n",
            if da { "Til" } else { "To" },
            self.to,
            if da { "Hjemmel" } else { "Required by" },
            self.article
        ));
        if let Some(due) = self.due {
            out.push_str(&format!(
                "{}: {}\n",
                if da { "Frist" } else { "Due" },
                utc(due)
            ));
        }
        for s in &self.sections {
            out.push('\n');
            if s.cites.is_empty() {
                out.push_str(&format!("{}\n", s.heading));
            } else {
                out.push_str(&format!("{} [{}]\n", s.heading, s.cites));
            }
            out.push_str(&s.text);
            out.push('\n');
        }
        out
    }
}

impl Cases {
    /// The draft of one of the case's clocks; reading the case's content,
    /// it is audited as a view.
    pub async fn draft(
        &self,
        case: &Authorized<Case>,
        clock: &str,
        language: Option<Language>,
    ) -> Result<Draft, CaseError> {
        let policy = self
            .policies
            .get(&case.org)
            .ok_or_else(|| CaseError::NoPolicy(case.org.clone()))?;
        let d = self.read(case).await?;
        let Some(c) = d.clocks.iter().find(|c| c.clock == clock) else {
            return Err(CaseError::NoClock(clock.chars().take(80).collect()));
        };
        let language = language
            .or_else(|| d.language.as_deref().and_then(Language::parse))
            .unwrap_or(Language::En);
        let contact = policy.addresses.first().map_or("", String::as_str);
        let draft = build(&d, c, &policy.name, contact, language);
        self.audit_read(
            case.principal(),
            AuditAction::View,
            &case.reference,
            "notification draft viewed",
        )
        .await?;
        Ok(draft)
    }
}
