//! Organisation policies: one TOML file per organisation in `policies_dir`,
//! encoding its published responsible-disclosure policy — the addresses it
//! owns, the subject flag it asks for, its service levels in business days,
//! its calendar, scope, routing of non-security matters, anonymity,
//! retention and plaintext rule.
//!
//! Policies are validated on load; a bad one stops start-up with an error
//! that names the file, the key and the reason. Nothing here does I/O beyond
//! reading the directory, and nothing here knows about SMTP sessions.

pub mod calendar;
pub mod feedback;
pub mod keys;
pub mod regimes;
pub mod security_txt;

use calendar::{BusinessCalendar, HolidayRules};
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policies directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("policy {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("policy {file}: {source}")]
    Parse {
        file: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("policy {file}: key `{key}`: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
    #[error("no policy files (*.toml) in {0}")]
    Empty(PathBuf),
}

/// How long a promise gives: "2 business days", "2 weeks", "72 hours".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    BusinessDays(u32),
    Days(u32),
    Hours(u32),
}

impl std::str::FromStr for Within {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let n: u32 = words
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{s:?}: expected a number first, as in \"2 business days\""))?;
        if n == 0 || n > 366 {
            return Err(format!("{s:?}: the number must be 1 to 366"));
        }
        let unit: Vec<&str> = words.collect();
        match unit.as_slice() {
            ["business", "day" | "days"] => Ok(Within::BusinessDays(n)),
            ["day" | "days"] => Ok(Within::Days(n)),
            ["week" | "weeks"] => Ok(Within::Days(n * 7)),
            ["hour" | "hours"] => Ok(Within::Hours(n)),
            _ => Err(format!(
                "{s:?}: unit must be business days, days, weeks or hours"
            )),
        }
    }
}

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, unit) = match *self {
            Within::BusinessDays(n) => (n, "business day"),
            Within::Days(n) if n % 7 == 0 => (n / 7, "week"),
            Within::Days(n) => (n, "day"),
            Within::Hours(n) => (n, "hour"),
        };
        write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

impl Within {
    /// The same span in Danish, for Danish receipts.
    pub fn danish(&self) -> String {
        match *self {
            Within::BusinessDays(1) => "1 arbejdsdag".into(),
            Within::BusinessDays(n) => format!("{n} arbejdsdage"),
            Within::Days(n) if n % 7 == 0 => match n / 7 {
                1 => "1 uge".into(),
                w => format!("{w} uger"),
            },
            Within::Days(1) => "1 dag".into(),
            Within::Days(n) => format!("{n} dage"),
            Within::Hours(1) => "1 time".into(),
            Within::Hours(n) => format!("{n} timer"),
        }
    }
}

/// What a plaintext (non-TLS) session may deliver for this organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlaintextRule {
    /// MAIL before STARTTLS is refused.
    Reject,
    /// Only encrypted zip/7z archives with a short covering note.
    EncryptedArchiveOnly,
}

/// One out-of-scope class and the phrases that suggest it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfScope {
    pub class: String,
    pub label: String,
    /// Case-insensitive phrases; any one in a report suggests this class.
    pub match_any: Vec<String>,
}

/// Where non-security matters go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub topic: String,
    pub pointer: String,
    pub match_any: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceLevelsFile {
    receipt_within: String,
    receipt_at_least: Option<String>,
    feedback_within: String,
    #[serde(default)]
    feedback_preferred: bool,
    #[serde(default = "default_breach")]
    breach_notification_within: String,
}

fn default_breach() -> String {
    // GDPR art. 33: notify the supervisory authority within 72 hours.
    "72 hours".into()
}

/// The receipt sent to a reporter, in English and Danish. Placeholders:
/// `{reference}`, `{organisation}`, `{feedback_within}`. Nothing of the
/// report is used; the time of delivery and its TLS version are added.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTemplates {
    pub subject_en: String,
    pub body_en: String,
    pub subject_da: String,
    pub body_da: String,
    /// Added when the report came in an encrypted archive: how to deliver
    /// the password by another channel (a phone number, or how to ask for
    /// a call or meeting).
    pub password_en: Option<String>,
    pub password_da: Option<String>,
}

impl ReceiptTemplates {
    /// The out-of-band password instructions, in the receipt's language.
    pub fn password_text(&self, danish: bool) -> &str {
        let given = if danish {
            self.password_da.as_deref()
        } else {
            self.password_en.as_deref()
        };
        given.unwrap_or(if danish {
            "Rapporten kom i et krypteret arkiv. Send ikke adgangskoden i en e-mail: \
             skriv til os (uden adgangskoden) med {reference} i emnefeltet, så aftaler vi \
             en anden kanal til den."
        } else {
            "Your report came in an encrypted archive. Do not send the password by e-mail: \
             write to us (without the password) with {reference} in the subject, and we \
             will agree on another channel for it."
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFile {
    #[serde(default)]
    in_scope: Vec<String>,
    #[serde(default)]
    out_of_scope: Vec<OutOfScope>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    id: String,
    name: String,
    reference_prefix: String,
    addresses: Vec<String>,
    #[serde(default)]
    subject_flags: Vec<String>,
    timezone: String,
    holidays: HolidayRules,
    #[serde(default)]
    closed_days: Vec<String>,
    service_levels: ServiceLevelsFile,
    scope: ScopeFile,
    #[serde(default)]
    routing: Vec<Routing>,
    anonymous_reports: bool,
    /// The policy pays rewards (a bug bounty); neither seed policy does.
    #[serde(default)]
    rewards: bool,
    personal_data_retention_days: u32,
    plaintext: PlaintextRule,
    source: String,
    receipt: ReceiptTemplates,
    #[serde(default)]
    feedback: feedback::FeedbackTemplates,
    #[serde(default)]
    digest: Option<DigestConfig>,
    /// The laws the organisation is under (`regimes`).
    #[serde(default)]
    regimes: Option<regimes::RegimesFile>,
    #[serde(default)]
    security_txt: Option<security_txt::SecurityTxtFile>,
    #[serde(default)]
    openpgp: Option<keys::OpenPgpFile>,
    #[serde(default)]
    smime: Option<keys::SmimeFile>,
}

/// `[digest]`: a daily summary mail to the team.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// The team's address.
    pub to: String,
    /// The local hour (0-23, the policy's time zone) from which the day's
    /// digest goes out.
    #[serde(default = "default_digest_hour")]
    pub hour: u8,
}

fn default_digest_hour() -> u8 {
    8
}

/// A validated organisation policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub name: String,
    /// Case references look like `NC-2026-0007`.
    pub reference_prefix: String,
    /// Lower-cased recipient addresses this organisation owns.
    pub addresses: Vec<String>,
    pub subject_flags: Vec<String>,
    pub timezone: TimeZone,
    pub calendar: BusinessCalendar,
    pub receipt_within: Within,
    pub receipt_at_least: Option<Within>,
    pub feedback_within: Within,
    /// "preferably within": a target, not a promise.
    pub feedback_preferred: bool,
    pub breach_notification_within: Within,
    pub in_scope: Vec<String>,
    pub out_of_scope: Vec<OutOfScope>,
    pub routing: Vec<Routing>,
    pub anonymous_reports: bool,
    /// It pays rewards: a request for payment is then no warning sign.
    pub rewards: bool,
    pub personal_data_retention_days: u32,
    pub plaintext: PlaintextRule,
    /// Where the policy was published, for analysts.
    pub source: String,
    pub receipt: ReceiptTemplates,
    /// Status updates to the reporter (`feedback::FeedbackTemplates`).
    pub feedback: feedback::FeedbackTemplates,
    /// A daily digest to the team, if configured.
    pub digest: Option<DigestConfig>,
    /// The regulatory regimes whose clocks a flag starts.
    pub regimes: regimes::Regimes,
    /// Its RFC 9116 file, if it publishes one through us.
    pub security_txt: Option<security_txt::SecurityTxt>,
    /// Its decryption keys (`[openpgp]`, `[smime]`), as paths.
    pub keys: keys::KeyFiles,
    pub file: PathBuf,
}

/// Deadlines that run from the moment a report was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub acknowledge_by: Timestamp,
    pub feedback_by: Timestamp,
}

impl Policy {
    /// When `within` runs out for something received at `from`. Business
    /// days end at midnight local time at the end of the last one.
    pub fn due(&self, from: Timestamp, within: Within) -> Timestamp {
        match within {
            Within::Hours(h) => from.checked_add(i64::from(h).hours()).unwrap_or(from),
            Within::Days(d) => from
                .to_zoned(self.timezone.clone())
                .checked_add(i64::from(d).days())
                .map_or(from, |z| z.timestamp()),
            Within::BusinessDays(n) => {
                let local = from.to_zoned(self.timezone.clone()).date();
                let last = self.calendar.add_business_days(local, n);
                last.tomorrow()
                    .ok()
                    .and_then(|d| d.to_zoned(self.timezone.clone()).ok())
                    .map_or(from, |z| z.timestamp())
            }
        }
    }

    /// The time from `from` to `to` that fell on business days (local
    /// time, the policy's calendar), in days: a report received on Friday
    /// at 16:00 and answered on Monday at 10:00 took 8/24 + 10/24 days.
    /// At most `MAX_SPAN_DAYS` calendar days are counted.
    pub fn business_days_between(&self, from: Timestamp, to: Timestamp) -> f64 {
        const MAX_SPAN_DAYS: usize = 800;
        if to <= from {
            return 0.0;
        }
        let tz = &self.timezone;
        let mut at = from.to_zoned(tz.clone());
        let mut total = 0.0;
        for _ in 0..MAX_SPAN_DAYS {
            let Some(next) = at
                .date()
                .tomorrow()
                .ok()
                .and_then(|d| d.to_zoned(tz.clone()).ok())
            else {
                break;
            };
            let end = if next.timestamp() < to {
                next.timestamp()
            } else {
                to
            };
            if self.calendar.is_business_day(at.date()) {
                total += (end.as_second() - at.timestamp().as_second()) as f64 / 86_400.0;
            }
            if end >= to {
                break;
            }
            at = next;
        }
        total
    }

    pub fn deadlines(&self, received: Timestamp) -> Deadlines {
        Deadlines {
            acknowledge_by: self.due(received, self.receipt_within),
            feedback_by: self.due(received, self.feedback_within),
        }
    }

    fn from_file(file: &Path, f: PolicyFile) -> Result<Policy, PolicyError> {
        let invalid = |key: &str, reason: String| PolicyError::Invalid {
            file: file.to_path_buf(),
            key: key.to_owned(),
            reason,
        };
        let slug = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if let Some(d) = &f.digest {
            if d.hour > 23 {
                return Err(invalid(
                    "digest.hour",
                    format!("{} is not an hour of the day (0-23)", d.hour),
                ));
            }
            if d.to.parse::<lettre::Address>().is_err() {
                return Err(invalid(
                    "digest.to",
                    format!("{:?} is not a mail address", d.to),
                ));
            }
        }
        if !slug(&f.id) {
            return Err(invalid(
                "id",
                "use lower-case letters, digits and '-'".into(),
            ));
        }
        if f.reference_prefix.is_empty()
            || f.reference_prefix.len() > 8
            || !f
                .reference_prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(invalid(
                "reference_prefix",
                "1 to 8 upper-case letters or digits".into(),
            ));
        }
        if f.addresses.is_empty() {
            return Err(invalid(
                "addresses",
                "an organisation needs at least one address".into(),
            ));
        }
        let mut addresses = Vec::new();
        for a in &f.addresses {
            let ok = a.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !a.contains(char::is_whitespace)
            });
            if !ok {
                return Err(invalid("addresses", format!("{a:?} is not a mailbox")));
            }
            addresses.push(a.to_ascii_lowercase());
        }
        if f.subject_flags.iter().any(|s| s.trim().is_empty()) {
            return Err(invalid(
                "subject_flags",
                "an empty flag would match every subject".into(),
            ));
        }
        let timezone =
            TimeZone::get(&f.timezone).map_err(|e| invalid("timezone", e.to_string()))?;
        let mut closed = Vec::new();
        for c in &f.closed_days {
            let parsed = c
                .split_once('-')
                .and_then(|(m, d)| Some((m.parse::<i8>().ok()?, d.parse::<i8>().ok()?)));
            match parsed {
                Some((m, d)) if jiff::civil::Date::new(2024, m, d).is_ok() => closed.push((m, d)),
                _ => return Err(invalid("closed_days", format!("{c:?}: expected \"MM-DD\""))),
            }
        }
        let sl = &f.service_levels;
        let within = |key: &str, s: &str| s.parse::<Within>().map_err(|e| invalid(key, e));
        let receipt_within = within("service_levels.receipt_within", &sl.receipt_within)?;
        let receipt_at_least = sl
            .receipt_at_least
            .as_deref()
            .map(|s| within("service_levels.receipt_at_least", s))
            .transpose()?;
        let feedback_within = within("service_levels.feedback_within", &sl.feedback_within)?;
        let breach = within(
            "service_levels.breach_notification_within",
            &sl.breach_notification_within,
        )?;
        let mut classes = HashMap::new();
        for (i, o) in f.scope.out_of_scope.iter().enumerate() {
            if !slug(&o.class) {
                return Err(invalid(
                    &format!("scope.out_of_scope[{i}].class"),
                    "use lower-case letters, digits and '-'".into(),
                ));
            }
            if classes.insert(o.class.clone(), i).is_some() {
                return Err(invalid(
                    &format!("scope.out_of_scope[{i}].class"),
                    format!("{:?} is listed twice", o.class),
                ));
            }
            if o.match_any.is_empty() || o.match_any.iter().any(|m| m.trim().len() < 3) {
                return Err(invalid(
                    &format!("scope.out_of_scope[{i}].match_any"),
                    "needs phrases of 3 or more characters".into(),
                ));
            }
        }
        for (i, p) in f.scope.in_scope.iter().enumerate() {
            let host = p.strip_prefix("*.").unwrap_or(p);
            if host.is_empty() || host.contains('*') || host.contains(char::is_whitespace) {
                return Err(invalid(
                    &format!("scope.in_scope[{i}]"),
                    format!("{p:?}: a host, or *.domain"),
                ));
            }
        }
        for (i, r) in f.routing.iter().enumerate() {
            if r.match_any.is_empty() || r.pointer.trim().is_empty() {
                return Err(invalid(
                    &format!("routing[{i}]"),
                    "needs a pointer and match_any phrases".into(),
                ));
            }
        }
        for (key, text) in [
            ("receipt.password_en", &f.receipt.password_en),
            ("receipt.password_da", &f.receipt.password_da),
        ] {
            if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(invalid(key, "must not be empty when given".into()));
            }
        }
        for (key, text) in [
            ("receipt.subject_en", &f.receipt.subject_en),
            ("receipt.subject_da", &f.receipt.subject_da),
            ("receipt.body_en", &f.receipt.body_en),
            ("receipt.body_da", &f.receipt.body_da),
        ] {
            if text.trim().is_empty() {
                return Err(invalid(key, "must not be empty".into()));
            }
            if key.contains("body") && !text.contains("{reference}") {
                return Err(invalid(
                    key,
                    "must name the case: include {reference}".into(),
                ));
            }
        }
        if f.personal_data_retention_days == 0 {
            return Err(invalid(
                "personal_data_retention_days",
                "must be at least 1".into(),
            ));
        }
        let regimes = match f.regimes {
            Some(r) => regimes::Regimes::from_file(r).map_err(|(k, why)| invalid(&k, why))?,
            None => regimes::Regimes::implied(),
        };
        let security_txt = f
            .security_txt
            .map(|s| security_txt::SecurityTxt::from_file(s, &addresses))
            .transpose()
            .map_err(|(k, why)| invalid(&k, why))?;
        let keys = keys::KeyFiles::resolve(file, f.openpgp, f.smime)
            .map_err(|(k, why)| invalid(&k, why))?;
        Ok(Policy {
            id: f.id,
            name: f.name,
            reference_prefix: f.reference_prefix,
            addresses,
            subject_flags: f.subject_flags,
            timezone,
            calendar: BusinessCalendar::new(f.holidays, closed),
            receipt_within,
            receipt_at_least,
            feedback_within,
            feedback_preferred: sl.feedback_preferred,
            breach_notification_within: breach,
            in_scope: f.scope.in_scope,
            out_of_scope: f.scope.out_of_scope,
            routing: f.routing,
            anonymous_reports: f.anonymous_reports,
            rewards: f.rewards,
            personal_data_retention_days: f.personal_data_retention_days,
            plaintext: f.plaintext,
            source: f.source,
            receipt: f.receipt,
            feedback: f.feedback,
            digest: f.digest,
            regimes,
            security_txt,
            keys,
            file: file.to_path_buf(),
        })
    }
}

/// Every organisation one instance serves.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    sources: Vec<(String, String)>,
}

impl PolicySet {
    /// Loads and validates every `*.toml` in `dir`, in name order. Ids,
    /// reference prefixes and addresses must be unique across files.
    pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyError> {
        let entries = std::fs::read_dir(dir).map_err(|source| PolicyError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PolicyError::Empty(dir.to_path_buf()));
        }
        let mut sources = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| PolicyError::Read {
                file: file.clone(),
                source,
            })?;
            sources.push((file.to_string_lossy().into_owned(), text));
        }
        PolicySet::from_sources(sources)
    }

    /// Validates policies given as `(file name, TOML text)`, in order: what
    /// `load_dir` read, or what a parse worker was handed.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<PolicySet, PolicyError> {
        let mut set = PolicySet::default();
        for (name, text) in &sources {
            let file = PathBuf::from(name);
            let parsed: PolicyFile = toml::from_str(text).map_err(|source| PolicyError::Parse {
                file: file.clone(),
                source: Box::new(source),
            })?;
            let policy = Policy::from_file(&file, parsed)?;
            let clash = |key: &str, what: &str, other: &Policy| PolicyError::Invalid {
                file: file.clone(),
                key: key.to_owned(),
                reason: format!("{what} is already used by {}", other.file.display()),
            };
            for other in &set.policies {
                if other.id == policy.id {
                    return Err(clash("id", &policy.id, other));
                }
                if other.reference_prefix == policy.reference_prefix {
                    return Err(clash("reference_prefix", &policy.reference_prefix, other));
                }
                if let Some(a) = policy
                    .addresses
                    .iter()
                    .find(|a| other.addresses.contains(a))
                {
                    return Err(clash("addresses", a, other));
                }
            }
            set.policies.push(policy);
        }
        set.sources = sources;
        Ok(set)
    }

    /// The `(file name, TOML text)` this set was built from.
    pub fn sources(&self) -> &[(String, String)] {
        &self.sources
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter()
    }

    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The organisation that owns `address`, if any.
    pub fn for_address(&self, address: &str) -> Option<&Policy> {
        let address = address.to_ascii_lowercase();
        self.policies
            .iter()
            .find(|p| p.addresses.contains(&address))
    }

    /// Every address of every organisation, for the receiver's RCPT check.
    pub fn addresses(&self) -> Vec<String> {
        self.policies
            .iter()
            .flat_map(|p| p.addresses.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests;
