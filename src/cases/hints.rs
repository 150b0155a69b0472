//! Triage help that never decides: the cases a case may duplicate, each
//! with its reason, found through the blind index within the case's
//! organisation — the same CVE id, the same asset host with the same CWE,
//! or many of the same distinctive words. They are shown, never acted on.

use super::CaseError;
use super::principal::Case;
use super::search;
use super::service::Cases;
pub use crate::model::thread::Hint;
use crate::store::cases::CaseDetail;
use crate::store::search::{frequencies, holding_both, related};
use std::collections::BTreeSet;

/// Suggestions of each kind at most.
pub const MAX_PER_KIND: i64 = 5;
/// A word in more cases than this says little about duplication.
pub const DISTINCTIVE_CASES: i64 = 50;
/// A host or CWE in more cases than this is read from the other one.
pub const PAIR_CASES: i64 = 500;
/// Words of a case weighed at most: the longest, which are the likeliest
/// to be distinctive; one statement counts them all.
pub const MAX_WORDS: usize = 64;
/// A likely duplicate shares at least this many distinctive words...
pub const MIN_SHARED: i64 = 5;
/// ...and at least this share of the case's.
pub const MIN_SHARE: f64 = 0.5;

impl Cases {
    /// The likely duplicates of `case` (read as `d`), strongest reason
    /// first, each case once.
    pub(super) async fn duplicate_hints(
        &self,
        case: &Case,
        d: &CaseDetail,
    ) -> Result<Vec<Hint>, CaseError> {
        let pool = self.store.pool();
        let sealer = self.store.sealer();
        let org = &case.org;
        let mut out: Vec<Hint> = Vec::new();
        let push = |out: &mut Vec<Hint>, reference: String, reason: String| {
            if !out.iter().any(|h| h.reference == reference) {
                out.push(Hint { reference, reason });
            }
        };
        for cve in &d.cve_ids {
            let t = search::word_term(sealer, org, &cve.to_lowercase());
            for r in related(pool, &[t], case.id, 1, MAX_PER_KIND).await? {
                push(&mut out, r.reference, format!("the same {cve}"));
            }
        }
        let hosts = search::hosts(d.assets.iter().map(|a| a.value.as_str()));
        let pairs: Vec<(&String, &String, i64, i64)> = hosts
            .iter()
            .flat_map(|h| d.cwe_ids.iter().map(move |c| (h, c)))
            .map(|(h, c)| {
                (
                    h,
                    c,
                    search::asset_host_term(sealer, org, h),
                    search::word_term(sealer, org, &c.to_lowercase()),
                )
            })
            .take(MAX_PER_KIND as usize)
            .collect();
        let counted: Vec<i64> = pairs.iter().flat_map(|p| [p.2, p.3]).collect();
        let counts = frequencies(pool, &counted, PAIR_CASES + 1).await?;
        let count = |t: i64| counts.iter().find(|(x, _)| *x == t).map_or(0, |(_, n)| *n);
        for (host, cwe, h, c) in pairs {
            // Read from the rarer of the two; a pair both in more than
            // `PAIR_CASES` cases says little.
            let (rarer, other) = if count(h) <= count(c) { (h, c) } else { (c, h) };
            if count(rarer) > PAIR_CASES {
                continue;
            }
            for r in holding_both(pool, rarer, other, case.id, MAX_PER_KIND).await? {
                push(&mut out, r, format!("the same asset host {host} and {cwe}"));
            }
        }
        let mut texts: Vec<&str> = vec![&d.summary.subject];
        texts.extend(
            [&d.description, &d.steps, &d.impact]
                .into_iter()
                .filter_map(|v| v.as_deref()),
        );
        let words: BTreeSet<String> = texts.iter().flat_map(|t| search::words(t)).collect();
        let mut longest: Vec<&String> = words.iter().collect();
        longest.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        let terms: Vec<i64> = longest
            .iter()
            .take(MAX_WORDS)
            .map(|w| search::word_term(sealer, org, w))
            .collect();
        // The case itself holds each: 2 or more is a word shared at all.
        let distinctive: Vec<i64> = frequencies(pool, &terms, DISTINCTIVE_CASES + 1)
            .await?
            .into_iter()
            .filter(|(_, n)| (2..=DISTINCTIVE_CASES).contains(n))
            .map(|(t, _)| t)
            .collect();
        let need = ((distinctive.len() as f64) * MIN_SHARE).ceil() as i64;
        if distinctive.len() as i64 >= MIN_SHARED {
            for r in related(
                pool,
                &distinctive,
                case.id,
                need.max(MIN_SHARED),
                MAX_PER_KIND,
            )
            .await?
            {
                push(
                    &mut out,
                    r.reference,
                    format!(
                        "{} of its {} distinctive words in common",
                        r.shared,
                        distinctive.len()
                    ),
                );
            }
        }
        Ok(out)
    }
}
