//! Extracting the fields the policies ask reporters for from free text:
//! description, attack chain / steps, impact, mitigation, contact and
//! preferred channel; CVE and CWE ids; a CVSS 3.x/4.0 vector, parsed and
//! scored; affected assets; the language (Danish or English).
//!
//! Section headings are recognised in English and Danish. What the reporter
//! did not give stays empty: nothing is guessed into a field. Every output
//! is bounded. Pure functions: no I/O.

use crate::policy::Policy;

/// Longest text kept per field; reports longer than this keep the whole
/// message as evidence anyway.
const MAX_FIELD: usize = 64 * 1024;
/// Assets, ids and suggestions kept per report.
const MAX_ITEMS: usize = 100;

pub use crate::model::report::{Asset, Cvss, Language, ReportFields, Suggestion};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Description,
    Steps,
    Impact,
    Mitigation,
    Contact,
}

/// Headings, lower-case, English and Danish. Longer ones first where one
/// is a prefix of another.
const HEADINGS: &[(&str, Section)] = &[
    ("steps to reproduce", Section::Steps),
    ("how to reproduce", Section::Steps),
    ("attack chain", Section::Steps),
    ("proof of concept", Section::Steps),
    ("reproduction", Section::Steps),
    ("steps", Section::Steps),
    ("trin til at genskabe", Section::Steps),
    ("sådan genskabes", Section::Steps),
    ("fremgangsmåde", Section::Steps),
    ("angrebskæde", Section::Steps),
    ("trin", Section::Steps),
    ("description", Section::Description),
    ("summary", Section::Description),
    ("details", Section::Description),
    ("beskrivelse", Section::Description),
    ("resumé", Section::Description),
    ("sårbarhed", Section::Description),
    ("impact", Section::Impact),
    ("consequences", Section::Impact),
    ("konsekvenser", Section::Impact),
    ("konsekvens", Section::Impact),
    ("påvirkning", Section::Impact),
    ("suggested mitigation", Section::Mitigation),
    ("mitigation", Section::Mitigation),
    ("remediation", Section::Mitigation),
    ("recommendation", Section::Mitigation),
    ("suggested fix", Section::Mitigation),
    ("forslag til løsning", Section::Mitigation),
    ("afhjælpning", Section::Mitigation),
    ("anbefaling", Section::Mitigation),
    ("contact details", Section::Contact),
    ("contact information", Section::Contact),
    ("preferred contact", Section::Contact),
    ("contact", Section::Contact),
    ("kontaktoplysninger", Section::Contact),
    ("kontaktinformation", Section::Contact),
    ("kontakt", Section::Contact),
];

/// If `line` is a heading, its section and any text after the colon.
fn heading(line: &str) -> Option<(Section, &str)> {
    let mut s = line
        .trim()
        .trim_start_matches(['#', '*', '-', '>', ' ', '\t']);
    // "1." / "2)" numbering
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && s[digits..].starts_with(['.', ')']) {
        s = s[digits + 1..].trim_start();
    }
    let lower = s.to_lowercase();
    for (word, section) in HEADINGS {
        if let Some(rest) = lower.strip_prefix(word) {
            let rest = rest.trim_start_matches(['*', ' ']);
            // "(optional)" qualifiers: "Impact (estimated):"
            let rest = match rest.strip_prefix('(') {
                Some(r) => r
                    .split_once(')')
                    .map_or(rest, |(_, after)| after.trim_start()),
                None => rest,
            };
            if rest.is_empty() {
                return Some((*section, ""));
            }
            if let Some(after) = rest.strip_prefix(':') {
                // Map the offset back into the original line.
                let taken = s.len() - after.len().min(s.len());
                let original_after = s.get(taken..).unwrap_or("");
                return Some((*section, original_after.trim_start_matches(['*', ' '])));
            }
            return None;
        }
    }
    None
}

fn cap(mut s: String) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if t.len() != s.len() {
        s = t.to_owned();
    }
    if s.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    Some(s)
}

/// Extracts the fields of one report. `policy` decides asset scope.
pub fn extract(text: &str, policy: Option<&Policy>) -> ReportFields {
    let mut sections: Vec<(Section, String)> = Vec::new();
    let mut current: Option<usize> = None;
    let mut preamble = String::new();
    for line in text.lines() {
        if let Some((section, rest)) = heading(line) {
            let idx = match sections.iter().position(|(s, _)| *s == section) {
                Some(i) => i,
                None => {
                    sections.push((section, String::new()));
                    sections.len() - 1
                }
            };
            current = Some(idx);
            if !rest.is_empty() {
                sections[idx].1.push_str(rest);
                sections[idx].1.push('\n');
            }
            continue;
        }
        match current {
            Some(i) => {
                sections[i].1.push_str(line);
                sections[i].1.push('\n');
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    let take = |which: Section| {
        sections
            .iter()
            .find(|(s, _)| *s == which)
            .and_then(|(_, t)| cap(t.clone()))
    };
    let mut fields = ReportFields {
        description: take(Section::Description),
        steps: take(Section::Steps),
        impact: take(Section::Impact),
        mitigation: take(Section::Mitigation),
        contact: take(Section::Contact),
        ..ReportFields::default()
    };
    if fields.description.is_none() {
        // No description heading: the text before the first heading (or
        // the whole text) is the description.
        fields.description = cap(strip_signature(&preamble));
    }
    fields.channel = channel(fields.contact.as_deref().unwrap_or(text));
    fields.cve_ids = ids(text, "CVE-", true);
    fields.cwe_ids = ids(text, "CWE-", false);
    fields.cvss = cvss(text);
    fields.assets = assets(text, policy);
    fields.language = language(text);
    fields
}

fn strip_signature(text: &str) -> String {
    match text.find("\n-- \n") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

/// The preferred follow-up channel, by the first one named.
fn channel(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let options: &[(&[&str], &str)] = &[
        (&["teams"], "teams"),
        (&["signal"], "signal"),
        (
            &[
                "phone",
                "telefon",
                "call me",
                "ring til",
                "sms",
                "text message",
            ],
            "phone",
        ),
        (&["e-mail", "email", "mail"], "email"),
    ];
    options
        .iter()
        .filter_map(|(words, name)| {
            words
                .iter()
                .filter_map(|w| find_word(&lower, w))
                .min()
                .map(|pos| (pos, *name))
        })
        .min()
        .map(|(_, name)| name.to_owned())
}

/// Position of `word` in `hay` at word boundaries.
fn find_word(hay: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(word) {
        let start = from + i;
        let end = start + word.len();
        let before = hay[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after = hay[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if before && after {
            return Some(start);
        }
        from = end;
    }
    None
}

/// `CVE-2024-12345` / `CWE-79` ids, upper-cased, unique, in order.
fn ids(text: &str, prefix: &str, with_year: bool) -> Vec<String> {
    let upper = text.to_ascii_uppercase();
    let mut out: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(i) = upper[from..].find(prefix) {
        let start = from + i + prefix.len();
        let rest = &upper[start..];
        let id = if with_year {
            let year: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let num: String = rest
                .get(year.len() + 1..)
                .unwrap_or("")
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (year.len() == 4 && rest[year.len()..].starts_with('-') && (4..=7).contains(&num.len()))
                .then(|| format!("{prefix}{year}-{num}"))
        } else {
            let num: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (1..=6)
                .contains(&num.len())
                .then(|| format!("{prefix}{num}"))
        };
        if let Some(id) = id
            && !out.contains(&id)
            && out.len() < MAX_ITEMS
        {
            out.push(id);
        }
        from = start;
    }
    out
}

/// The first CVSS 3.0/3.1/4.0 vector that parses, with its base score.
fn cvss(text: &str) -> Option<Cvss> {
    let mut from = 0;
    while let Some(i) = text[from..].find("CVSS:") {
        let start = from + i;
        let vector: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.'))
            .take(300)
            .collect();
        let vector = vector.trim_end_matches(['.', '/']).to_owned();
        if let Ok(parsed) = vector.parse::<cvss::Cvss>() {
            return Some(Cvss {
                score: parsed.score(),
                severity: format!("{:?}", parsed.severity()).to_lowercase(),
                vector,
            });
        }
        from = start + 5;
    }
    None
}

const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "txt", "md", "html", "htm", "pdf", "zip", "7z", "eml",
    "exe", "js", "php", "json", "xml", "csv", "doc", "docx", "log", "py", "sh",
];

/// URLs, host names and IP addresses named in the text, each with its
/// scope verdict against the policy.
fn assets(text: &str, policy: Option<&Policy>) -> Vec<Asset> {
    let mut out: Vec<Asset> = Vec::new();
    for raw in text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '"' | '\'' | '(' | ')' | '[' | ']' | ',' | ';'
            )
    }) {
        if out.len() >= MAX_ITEMS {
            break;
        }
        let token = raw.trim_end_matches(['.', ':', '!', '?']);
        let lower = token.to_ascii_lowercase();
        let host = if lower.starts_with("http://") || lower.starts_with("https://") {
            let after = &token[token.find("://").map_or(0, |i| i + 3)..];
            let host = after.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            let host = host.split(':').next().unwrap_or(host);
            if host.is_empty() {
                continue;
            }
            Some((token.to_owned(), host.to_ascii_lowercase()))
        } else if token.parse::<std::net::Ipv4Addr>().is_ok() {
            Some((token.to_owned(), token.to_owned()))
        } else if is_hostname(&lower) {
            Some((lower.clone(), lower))
        } else {
            None
        };
        if let Some((value, host)) = host
            && !out.iter().any(|a| a.value == value)
        {
            out.push(Asset {
                in_scope: policy.is_some_and(|p| in_scope(p, &host)),
                value,
            });
        }
    }
    out
}

fn is_hostname(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && !s.contains('@')
        && s.len() <= 253
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && !FILE_EXTENSIONS.contains(tld)
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Host matches a pattern: exact, or `*.domain` for any subdomain.
pub fn in_scope(policy: &Policy, host: &str) -> bool {
    policy.in_scope.iter().any(|p| match p.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len()
                && host.ends_with(domain)
                && host[..host.len() - domain.len()].ends_with('.')
        }
        None => host.eq_ignore_ascii_case(p),
    })
}

fn language(text: &str) -> Option<Language> {
    const DA: &[&str] = &[
        "og", "ikke", "jeg", "det", "er", "at", "på", "med", "til", "af", "som", "har", "kan",
        "vi", "der", "den", "en", "jeres", "hvis",
    ];
    const EN: &[&str] = &[
        "the", "and", "is", "to", "of", "with", "this", "that", "can", "we", "it", "in", "your",
        "if", "a",
    ];
    let (mut da, mut en) = (0usize, 0usize);
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5000)
    {
        let w = word.to_lowercase();
        if DA.contains(&w.as_str()) {
            da += 1;
        }
        if EN.contains(&w.as_str()) {
            en += 1;
        }
        if w.contains(['æ', 'ø', 'å']) {
            da += 1;
        }
    }
    match (da, en) {
        (0, 0) => None,
        (d, e) if d > e => Some(Language::Da),
        _ => Some(Language::En),
    }
}

/// Out-of-scope and routing suggestions from the policy's phrases. A
/// suggestion never decides anything; an analyst does.
pub fn suggestions(text: &str, policy: &Policy) -> Vec<Suggestion> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for o in &policy.out_of_scope {
        if let Some(m) = o
            .match_any
            .iter()
            .find(|m| find_word(&lower, &m.to_lowercase()).is_some())
        {
            out.push(Suggestion {
                kind: "out-of-scope".into(),
                name: o.class.clone(),
                label: o.label.clone(),
                matched: m.clone(),
            });
        }
    }
    for r in &policy.routing {
        if let Some(m) = r
            .match_any
            .iter()
            .find(|m| find_word(&lower, &m.to_lowercase()).is_some())
        {
            out.push(Suggestion {
                kind: "routing".into(),
                name: r.topic.clone(),
                label: r.pointer.clone(),
                matched: m.clone(),
            });
        }
    }
    out.extend(beg_bounty(&lower, policy, &out));
    out.truncate(MAX_ITEMS);
    out
}

/// Words of a request for payment (English and Danish).
const PAYMENT_WORDS: &[&str] = &[
    "bounty",
    "reward",
    "payment",
    "paypal",
    "bitcoin",
    "compensation",
    "honorarium",
    "pay me",
    "dusør",
    "belønning",
    "betaling",
    "kompensation",
];

/// The "beg bounty" pattern: a request for payment under a policy that
/// pays none, stronger still with a scanner-style finding the policy lists
/// as out of scope. A hint for the analyst; it never decides.
fn beg_bounty(lower: &str, policy: &Policy, found: &[Suggestion]) -> Vec<Suggestion> {
    if policy.rewards {
        return Vec::new();
    }
    let Some(asked) = PAYMENT_WORDS.iter().find(|w| find_word(lower, w).is_some()) else {
        return Vec::new();
    };
    let scanner = found.iter().find(|s| s.kind == "out-of-scope");
    vec![Suggestion {
        kind: "beg-bounty".into(),
        name: if scanner.is_some() {
            "payment-for-out-of-scope-finding".into()
        } else {
            "payment-request".into()
        },
        label: match scanner {
            Some(s) => format!(
                "Asks for payment, which this policy does not offer, for a finding it lists as out of scope ({}): the \"beg bounty\" pattern",
                s.name
            ),
            None => "Asks for payment, which this policy does not offer".into(),
        },
        matched: (*asked).to_owned(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_sections_ids_cvss_and_assets() {
        let text = "Hi team,\n\nDescription: Stored XSS in the ticket comments.\n\n## Steps to reproduce\n1. Log in at https://portal.netcompany.example/login\n2. Post <img src=x onerror=alert(1)>\n\nImpact: session theft (CWE-79), like CVE-2023-12345.\nCVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N\n\nMitigation: escape output.\n\nContact details: call me on +45 12345678 or e-mail.\nAlso seen on 192.0.2.10 and www.other.example.\n";
        let f = extract(text, None);
        assert_eq!(
            f.description.as_deref(),
            Some("Stored XSS in the ticket comments.")
        );
        assert!(
            f.steps
                .as_deref()
                .unwrap()
                .starts_with("1. Log in at https://portal.netcompany.example/login")
        );
        assert!(f.impact.as_deref().unwrap().starts_with("session theft"));
        assert_eq!(f.mitigation.as_deref(), Some("escape output."));
        assert_eq!(f.channel.as_deref(), Some("phone"));
        assert_eq!(f.cve_ids, vec!["CVE-2023-12345"]);
        assert_eq!(f.cwe_ids, vec!["CWE-79"]);
        let c = f.cvss.unwrap();
        assert_eq!(c.vector, "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N");
        assert_eq!(c.score, 5.4);
        assert_eq!(c.severity, "medium");
        let values: Vec<&str> = f.assets.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(
            values,
            vec![
                "https://portal.netcompany.example/login",
                "192.0.2.10",
                "www.other.example"
            ]
        );
        assert_eq!(f.language, Some(Language::En));
    }

    #[test]
    fn danish_headings_and_language() {
        let text = "**Beskrivelse:** Jeg kan se andre borgeres data på jeres side.\n\nTrin til at genskabe:\nSkift id=1 til id=2 i adressen.\n\nKonsekvens: Personoplysninger er tilgængelige for alle.\n\nForslag til løsning: Tjek adgang på serveren.\n\nKontakt: ring til mig på telefon 12 34 56 78.\n";
        let f = extract(text, None);
        assert_eq!(
            f.description.as_deref(),
            Some("Jeg kan se andre borgeres data på jeres side.")
        );
        assert_eq!(f.steps.as_deref(), Some("Skift id=1 til id=2 i adressen."));
        assert_eq!(
            f.impact.as_deref(),
            Some("Personoplysninger er tilgængelige for alle.")
        );
        assert_eq!(f.mitigation.as_deref(), Some("Tjek adgang på serveren."));
        assert_eq!(f.channel.as_deref(), Some("phone"));
        assert_eq!(f.language, Some(Language::Da));
    }

    #[test]
    fn cvss_4_is_scored_and_prose_is_not_a_heading() {
        let f = extract(
            "The impact of this is small.\nCVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            None,
        );
        assert!(
            f.impact.is_none(),
            "a sentence starting with 'The impact' is not a heading"
        );
        let c = f.cvss.unwrap();
        assert_eq!(c.score, 9.3);
        assert_eq!(c.severity, "critical");
        assert!(
            extract("no ids here: screenshot.png and report.pdf", None)
                .assets
                .is_empty()
        );
    }

    #[test]
    fn a_request_for_payment_is_a_beg_bounty_hint_only_where_no_reward_is_offered() {
        let set = crate::policy::PolicySet::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        )
        .unwrap();
        let nc = set.get("netcompany").unwrap();
        let hints = |text: &str, p: &Policy| -> Vec<(String, String)> {
            suggestions(text, p)
                .into_iter()
                .filter(|s| s.kind == "beg-bounty")
                .map(|s| (s.name, s.matched))
                .collect()
        };
        assert_eq!(
            hints(
                "My Nessus scan found a missing header. I expect a bounty.",
                nc
            ),
            [(
                "payment-for-out-of-scope-finding".to_owned(),
                "bounty".to_owned()
            )]
        );
        assert_eq!(
            hints("Jeg forventer en dusør for fundet.", nc),
            [("payment-request".to_owned(), "dusør".to_owned())]
        );
        assert!(hints("Stored XSS in the search page.", nc).is_empty());
        let mut paying = nc.clone();
        paying.rewards = true;
        assert!(hints("I expect a bounty.", &paying).is_empty());
    }
}
