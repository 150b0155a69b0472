//! Search over sealed cases: a blind index of words.
//!
//! Every text a case holds — subject, sender, report fields, the text of
//! each message, assets, CVE and CWE ids — is cut into words (`words`), and
//! each distinct word is stored as a keyed hash (HMAC-SHA-256 under a key
//! derived from the master key for the case's organisation, first 64
//! bits). A search hashes its words the same way, for each organisation
//! the searcher may see, and asks for the cases that have every one.
//!
//! What the index reveals to someone with the database and without the
//! key: which of an organisation's cases share a word, and how many cases
//! each word is in (its frequency) — never the word. Across organisations
//! the same word has unrelated hashes. A 64-bit hash can collide; the
//! chance that one of a case's few thousand words matches a searched word
//! it does not hold is about 2^-50.

use super::CaseError;
use crate::model::thread::ReportField;
use crate::store::cases::NewCase;
use crate::store::seal::Sealer;
use crate::store::{StoreError, WriteTx, search};
use ring::hmac;
use std::collections::BTreeSet;

/// Words indexed per text at most: more than any report has distinct
/// words (a long report has a few thousand), few enough that a hostile
/// mail of random words costs a bounded number of rows.
pub const MAX_WORDS_PER_TEXT: usize = 5_000;
/// Characters a word may have to be indexed (shorter: too common to help;
/// longer: a token, key or blob, not a word anyone types).
pub const WORD_CHARS: std::ops::RangeInclusive<usize> = 2..=64;
/// Words a search may have: each is one index look-up.
pub const MAX_QUERY_WORDS: usize = 16;

/// The distinct normalised words of `text`: lower-cased runs of letters
/// and digits, and CVE and CWE ids whole (`cve-2026-1234`, `cwe-79`).
pub fn words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let lower = text.to_lowercase();
    for token in lower.split(|c: char| !c.is_alphanumeric() && c != '-') {
        let token = token.trim_matches('-');
        if (token.starts_with("cve-") || token.starts_with("cwe-"))
            && token[4..]
                .split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            out.insert(token.to_owned());
        }
        for word in token.split('-') {
            if WORD_CHARS.contains(&word.chars().count()) {
                out.insert(word.to_owned());
            }
        }
    }
    out
}

fn key(sealer: &Sealer, org: &str) -> hmac::Key {
    sealer.purpose_key(&format!("search index v1: {org}"))
}

fn term(key: &hmac::Key, word: &str) -> i64 {
    let tag = hmac::sign(key, word.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&tag.as_ref()[..8]);
    i64::from_le_bytes(b)
}

/// Indexes `texts` for case `case_id` of `org`, inside the caller's
/// transaction (each text up to `MAX_WORDS_PER_TEXT` words).
pub async fn index(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    org: &str,
    case_id: i64,
    texts: &[&str],
) -> Result<(), StoreError> {
    let key = key(sealer, org);
    let mut terms = BTreeSet::new();
    for text in texts {
        for w in words(text).iter().take(MAX_WORDS_PER_TEXT) {
            terms.insert(term(&key, w));
        }
    }
    let terms: Vec<i64> = terms.into_iter().collect();
    search::add_terms(tx, case_id, &terms).await
}

/// Indexes a new (or re-parsed) case: its subject, whole text, fields,
/// assets and ids, and what bulk triage selects it by (`Selector`) for
/// mail that came from `client_ip`.
pub async fn index_case(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    c: &NewCase,
    client_ip: &str,
) -> Result<(), StoreError> {
    let f = &c.fields;
    let mut texts: Vec<&str> = vec![&c.subject, &c.sender];
    texts.extend(c.text.as_deref());
    texts.extend(ReportField::ALL.iter().filter_map(|k| k.of(f)));
    texts.extend(f.assets.iter().map(|a| a.value.as_str()));
    texts.extend(f.cve_ids.iter().chain(&f.cwe_ids).map(String::as_str));
    index(tx, sealer, &c.org, case_id, &texts).await?;
    let key = key(sealer, &c.org);
    let mut terms: Vec<i64> = selectors(&c.sender, client_ip, c.text.as_deref().unwrap_or(""))
        .iter()
        .map(|(s, v)| selector_term(&key, *s, v))
        .collect();
    terms.extend(
        hosts(f.assets.iter().map(|a| a.value.as_str()))
            .iter()
            .map(|h| host_term(&key, h)),
    );
    search::add_terms(tx, case_id, &terms).await
}

/// The hosts of `assets` (a URL's host, or the asset itself), lower case.
pub fn hosts<'a>(assets: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    assets
        .filter_map(|a| {
            let host = url::Url::parse(a)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| a.to_owned());
            let host = host.trim().to_lowercase();
            (!host.is_empty() && host.len() <= 253).then_some(host)
        })
        .collect()
}

/// Indexes the hosts of `assets` for case `case_id` of `org` (an
/// archive's report can name more).
pub async fn index_hosts(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    org: &str,
    case_id: i64,
    assets: &[&str],
) -> Result<(), StoreError> {
    let key = key(sealer, org);
    let terms: Vec<i64> = hosts(assets.iter().copied())
        .iter()
        .map(|h| host_term(&key, h))
        .collect();
    search::add_terms(tx, case_id, &terms).await
}

/// An asset host's blind term (U+0002: no search word makes it).
fn host_term(key: &hmac::Key, host: &str) -> i64 {
    term(key, &format!("\u{2}host:{host}"))
}

/// The blind term of one word (as `words` makes them) in `org`.
pub fn word_term(sealer: &Sealer, org: &str, word: &str) -> i64 {
    term(&key(sealer, org), word)
}

/// The blind term of an asset host in `org`.
pub fn asset_host_term(sealer: &Sealer, org: &str, host: &str) -> i64 {
    host_term(&key(sealer, org), host)
}

/// What bulk triage selects cases by: all mail from one sender, from one
/// domain, from one client (the delivering MTA's address), or with the
/// same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    Sender,
    Domain,
    Client,
    Content,
}

impl Selector {
    pub const ALL: [Selector; 4] = [
        Selector::Sender,
        Selector::Domain,
        Selector::Client,
        Selector::Content,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Selector::Sender => "sender",
            Selector::Domain => "domain",
            Selector::Client => "client",
            Selector::Content => "content",
        }
    }

    pub fn parse(s: &str) -> Option<Selector> {
        Selector::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A report's selector values: its sender (lower case), the sender's
/// domain, the client address, and a SHA-256 of its text with white space
/// collapsed (identical content, however it was wrapped).
pub fn selectors(sender: &str, client_ip: &str, text: &str) -> Vec<(Selector, String)> {
    let sender = sender.trim().to_lowercase();
    let mut out = Vec::new();
    if let Some((_, domain)) = sender.rsplit_once('@')
        && !domain.is_empty()
    {
        out.push((Selector::Domain, domain.to_owned()));
    }
    if !sender.is_empty() {
        out.push((Selector::Sender, sender));
    }
    if !client_ip.is_empty() {
        out.push((Selector::Client, client_ip.to_owned()));
    }
    // No text is no content to match: empty mails are not "the same".
    let collapsed: Vec<&str> = text.split_whitespace().collect();
    if !collapsed.is_empty() {
        let digest = ring::digest::digest(&ring::digest::SHA256, collapsed.join(" ").as_bytes());
        out.push((Selector::Content, hex::encode(digest.as_ref())));
    }
    out
}

/// A selector's blind term: a word `words` can never make (it begins
/// with U+0001), so no search reaches it.
fn selector_term(key: &hmac::Key, s: Selector, value: &str) -> i64 {
    term(key, &format!("\u{1}{}:{value}", s.as_str()))
}

/// The blind terms of `(selector, value)` for cases of `orgs`.
pub fn selector_terms(sealer: &Sealer, orgs: &[String], s: Selector, value: &str) -> Vec<i64> {
    orgs.iter()
        .map(|o| selector_term(&key(sealer, o), s, value))
        .collect()
}

/// The index version this code writes; a store marked with another (or
/// none) is indexed again at start-up.
pub const INDEX_VERSION: &str = "v1";

/// The texts of a case as read back, for indexing it again.
pub fn texts_of(d: &crate::store::cases::CaseDetail) -> Vec<&str> {
    let mut texts: Vec<&str> = vec![&d.summary.subject];
    for m in &d.messages {
        texts.push(&m.sender);
        texts.push(&m.subject);
        texts.push(&m.text);
    }
    texts.extend(
        [
            &d.description,
            &d.steps,
            &d.impact,
            &d.mitigation,
            &d.contact,
            &d.channel,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref()),
    );
    texts.extend(d.assets.iter().map(|a| a.value.as_str()));
    texts.extend(d.cve_ids.iter().chain(&d.cwe_ids).map(String::as_str));
    texts
}

/// The blind terms of `query` for cases of `orgs`: one set per word, each
/// with the word's term in every organisation.
pub fn query_terms(
    sealer: &Sealer,
    orgs: &[String],
    query: &str,
) -> Result<Vec<Vec<i64>>, CaseError> {
    let words = words(query);
    if words.is_empty() {
        return Err(CaseError::Search(format!(
            "{query:?} has no word to search for (words are {}-{} letters or digits)",
            WORD_CHARS.start(),
            WORD_CHARS.end()
        )));
    }
    if words.len() > MAX_QUERY_WORDS {
        return Err(CaseError::Search(format!(
            "a search may have {MAX_QUERY_WORDS} words at most ({})",
            words.len()
        )));
    }
    let keys: Vec<hmac::Key> = orgs.iter().map(|o| key(sealer, o)).collect();
    Ok(words
        .iter()
        .map(|w| keys.iter().map(|k| term(k, w)).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_runs_with_ids_whole() {
        let w = words(
            "Stored XSS (CVE-2026-12345, CWE-79) in ÆBLE-shop's search; x a1 -- see https://a.example/q?x=1",
        );
        for expected in [
            "stored",
            "xss",
            "cve-2026-12345",
            "cve",
            "2026",
            "12345",
            "cwe-79",
            "cwe",
            "79",
            "æble",
            "shop",
            "search",
            "a1",
            "see",
            "https",
            "example",
        ] {
            assert!(w.contains(expected), "{expected} in {w:?}");
        }
        assert!(!w.contains("x"), "one letter is not indexed");
        assert!(!w.contains("cve-"), "{w:?}");
        let long = "a".repeat(65);
        assert!(words(&long).is_empty());
    }

    #[test]
    fn selectors_exist_only_for_values_a_mail_has() {
        let all = selectors("Alice@Example.ORG", "192.0.2.1", "Buy  followers\nnow");
        let kinds: Vec<Selector> = all.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            kinds,
            [
                Selector::Domain,
                Selector::Sender,
                Selector::Client,
                Selector::Content
            ]
        );
        assert_eq!(all[0].1, "example.org");
        assert_eq!(
            all[3].1,
            selectors("", "", "Buy followers now")[0].1,
            "white space does not make content differ"
        );
        assert!(
            selectors("", "", " \n ").is_empty(),
            "no sender, no client, no text"
        );
    }

    #[test]
    fn a_words_term_differs_per_organisation_and_a_query_needs_words() {
        let (sealer, _) =
            Sealer::load(&tempfile::tempdir().unwrap().path().join("k"), true).unwrap();
        let orgs = ["netcompany".to_owned(), "magenta".to_owned()];
        let t = query_terms(&sealer, &orgs, "XSS xss").unwrap();
        assert_eq!(t.len(), 1, "one word");
        assert_ne!(t[0][0], t[0][1], "unrelated across organisations");
        assert_eq!(
            t[0][0],
            query_terms(&sealer, &orgs[..1], "xss").unwrap()[0][0]
        );
        assert!(query_terms(&sealer, &orgs, " - ! ").is_err());
        let many: String = (0..17).map(|i| format!("w{i} ")).collect();
        assert!(query_terms(&sealer, &orgs, &many).is_err());
    }
}
