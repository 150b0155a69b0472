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
use crate::store::search::{frequency, related};
use std::collections::BTreeSet;

/// Suggestions of each kind at most.
pub const MAX_PER_KIND: i64 = 5;
/// A word in more cases than this says little about duplication.
pub const DISTINCTIVE_CASES: i64 = 50;
/// Distinctive words of a case weighed at most (the first, in order).
pub const MAX_WORDS: usize = 300;
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
        for host in &hosts {
            for cwe in &d.cwe_ids {
                let terms = [
                    search::asset_host_term(sealer, org, host),
                    search::word_term(sealer, org, &cwe.to_lowercase()),
                ];
                for r in related(pool, &terms, case.id, 2, MAX_PER_KIND).await? {
                    push(
                        &mut out,
                        r.reference,
                        format!("the same asset host {host} and {cwe}"),
                    );
                }
            }
        }
        let mut texts: Vec<&str> = vec![&d.summary.subject];
        texts.extend(
            [&d.description, &d.steps, &d.impact]
                .into_iter()
                .filter_map(|v| v.as_deref()),
        );
        let words: BTreeSet<String> = texts.iter().flat_map(|t| search::words(t)).collect();
        let mut distinctive = Vec::new();
        for w in words.iter().take(MAX_WORDS) {
            let t = search::word_term(sealer, org, w);
            // The case itself holds it: 2 or more is a word shared at all.
            let n = frequency(pool, t, DISTINCTIVE_CASES + 1).await?;
            if (2..=DISTINCTIVE_CASES).contains(&n) {
                distinctive.push(t);
            }
        }
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
