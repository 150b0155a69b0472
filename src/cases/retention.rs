//! Personal data only as long as needed (both policies promise it):
//! retention erases what identifies a reporter once a case has been
//! resolved, closed or junked for the policy's
//! `personal_data_retention_days`; a reporter's request erases them from
//! every case of every organisation (GDPR art. 17) or exports what is
//! stored about them (art. 15).
//!
//! Erased: reporter name and address, contact and channel, the envelope
//! (sender, peer address, HELO) and raw messages, conversation senders,
//! the outbox's addresses, and the search index's entries (the rest is
//! indexed again); mentions of the address or name in the texts kept are
//! redacted. Kept: the technical record — fields, assets, CVE/CWE/CVSS,
//! evidence, timeline, audit.
//!
//! What it must never do: write an address it erases to the log, the
//! timeline or the audit trail (the audit names a keyed hash), or erase
//! a case that is still open by retention.

use super::principal::{Principal, Scope};
use super::service::Cases;
use super::{CaseError, EventKind};
use crate::model::thread::ReportField;
use crate::store::audit::{self, AuditAction, Who};
use crate::store::cases as repo;
use crate::store::retention::{self as store, Held, Removed};
use serde::Serialize;

/// One case whose personal data went (or would go, in a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct ErasedCase {
    pub reference: String,
    pub org: String,
    pub removed: Removed,
    /// Mentions of the address or name replaced in the texts kept.
    pub redacted: usize,
}

/// Everything stored about one address (art. 15).
#[derive(Debug, Clone, Serialize)]
pub struct ReporterExport {
    pub address: String,
    pub generated_at: i64,
    pub cases: Vec<crate::store::cases::CaseDetail>,
}

/// `needle` replaced by `[erased]` in `text`, ignoring case; how many.
fn redact(text: &str, needle: &str) -> (String, usize) {
    if needle.chars().count() < 3 {
        return (text.to_owned(), 0);
    }
    let lower = text.to_lowercase();
    let n = needle.to_lowercase();
    if lower.len() != text.len() {
        // Case folding changed byte offsets: exact matches only.
        let count = text.matches(needle).count();
        return (text.replace(needle, "[erased]"), count);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut count = 0;
    while let Some(i) = lower[at..].find(&n) {
        out.push_str(&text[at..at + i]);
        out.push_str("[erased]");
        at += i + n.len();
        count += 1;
    }
    out.push_str(&text[at..]);
    (out, count)
}

fn redact_all(text: &str, needles: &[String]) -> (String, usize) {
    let mut total = 0;
    let mut text = text.to_owned();
    for n in needles {
        let (t, c) = redact(&text, n);
        text = t;
        total += c;
    }
    (text, total)
}

impl Cases {
    /// The keyed hash the audit trail names an address by.
    fn address_key(&self, address: &str) -> String {
        let key = self.store.sealer().purpose_key("reporter address v1");
        let tag = ring::hmac::sign(&key, address.trim().to_lowercase().as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }

    fn operator_only(principal: &Principal) -> Result<(), CaseError> {
        match principal.scope {
            Scope::All => Ok(()),
            Scope::Orgs(_) => Err(CaseError::OperatorOnly),
        }
    }

    /// Applies every policy's retention: erases (or, with `dry_run`,
    /// lists) the cases due.
    pub async fn run_retention(
        &self,
        principal: &Principal,
        dry_run: bool,
    ) -> Result<Vec<ErasedCase>, CaseError> {
        Self::operator_only(principal)?;
        let now = self.now();
        let mut out = Vec::new();
        for policy in self.policies.iter() {
            let days = i64::from(policy.personal_data_retention_days);
            let due = store::due(self.store.pool(), &policy.id, now - days * 86_400).await?;
            for held in due {
                if dry_run {
                    out.push(ErasedCase {
                        reference: held.reference,
                        org: held.org,
                        removed: Removed::default(),
                        redacted: 0,
                    });
                    continue;
                }
                let why = format!("retention: resolved or closed for {days} days");
                out.push(
                    self.erase_case(&held, &principal.who(), &why, &[], None)
                        .await?,
                );
            }
        }
        if !dry_run && !out.is_empty() {
            store::compact(&self.store).await?;
        }
        Ok(out)
    }

    /// Erases `address` from every case of every organisation.
    pub async fn erase_reporter(
        &self,
        principal: &Principal,
        address: &str,
    ) -> Result<Vec<ErasedCase>, CaseError> {
        Self::operator_only(principal)?;
        let address = valid_address(address)?;
        let key = self.address_key(&address);
        let mut out = Vec::new();
        for held in self.holding(&address).await? {
            let why = format!("erasure on the person's request (GDPR art. 17), address key {key}");
            out.push(
                self.erase_case(
                    &held,
                    &principal.who(),
                    &why,
                    std::slice::from_ref(&address),
                    Some(&key),
                )
                .await?,
            );
        }
        if !out.is_empty() {
            store::compact(&self.store).await?;
        }
        Ok(out)
    }

    /// Everything stored about `address`, whole; audited by keyed hash.
    pub async fn export_reporter(
        &self,
        principal: &Principal,
        address: &str,
    ) -> Result<ReporterExport, CaseError> {
        Self::operator_only(principal)?;
        let address = valid_address(address)?;
        let mut cases = Vec::new();
        for held in self.holding(&address).await? {
            if let Some(mut d) =
                repo::show(self.store.pool(), self.store.sealer(), held.id, self.now()).await?
            {
                d.thread = super::thread::assemble(&d);
                cases.push(d);
            }
        }
        let detail = format!(
            "personal data exported on the person's request (GDPR art. 15), address key {}, {} case(s)",
            self.address_key(&address),
            cases.len()
        );
        let mut tx = self.store.write().await?;
        audit::record(
            &mut tx,
            self.store.sealer(),
            &principal
                .who()
                .entry(AuditAction::ReporterExport, "", &detail),
        )
        .await?;
        tx.commit().await?;
        Ok(ReporterExport {
            address,
            generated_at: self.now(),
            cases,
        })
    }

    async fn holding(&self, address: &str) -> Result<Vec<Held>, CaseError> {
        let orgs: Vec<String> = self.policies.iter().map(|p| p.id.clone()).collect();
        let terms = super::search::selector_terms(
            self.store.sealer(),
            &orgs,
            super::search::Selector::Sender,
            address,
        );
        Ok(store::holding(self.store.pool(), address, &terms).await?)
    }

    /// Erases one case's personal data in one transaction: the clear
    /// columns and raw mail (`store::retention::erase`), the sealed
    /// reporter fields, mentions in the texts kept, and the index entries
    /// (what remains is indexed again).
    async fn erase_case(
        &self,
        held: &Held,
        who: &Who<'_>,
        why: &str,
        also: &[String],
        key: Option<&str>,
    ) -> Result<ErasedCase, CaseError> {
        let sealer = self.store.sealer();
        let now = self.now();
        let Some(d) = repo::show(self.store.pool(), sealer, held.id, now).await? else {
            return Err(CaseError::NotFound(held.reference.clone()));
        };
        let mut needles: Vec<String> = also.to_vec();
        needles.extend(d.reporter_address.iter().cloned());
        needles.extend(d.reporter_name.iter().cloned());
        needles.extend(
            d.mails
                .iter()
                .map(|m| m.2.clone())
                .filter(|s| !s.is_empty()),
        );
        needles.extend(
            d.messages
                .iter()
                .filter(|m| {
                    m.from_reporter || m.kind != crate::model::thread::MessageKind::FollowUp
                })
                .map(|m| m.sender.clone())
                .filter(|s| !s.is_empty()),
        );
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let mut tx = self.store.write().await?;
        let mut redacted = 0;
        let (subject, n) = redact_all(&d.summary.subject, &needles);
        if n > 0 {
            store::rewrite_subject(&mut tx, sealer, held.id, &held.reference, &subject).await?;
            redacted += n;
        }
        for m in &d.messages {
            let (s, a) = redact_all(&m.subject, &needles);
            let (t, b) = redact_all(&m.text, &needles);
            if a + b > 0 {
                store::rewrite_message(&mut tx, sealer, held.id, m.id, &s, &t).await?;
                redacted += a + b;
            }
        }
        let (mut fields, sources) =
            repo::fields_of(&mut tx, sealer, held.id, &held.reference).await?;
        for f in [
            ReportField::Description,
            ReportField::Steps,
            ReportField::Impact,
            ReportField::Mitigation,
        ] {
            if let Some(text) = f.of(&fields) {
                let (t, n) = redact_all(text, &needles);
                if n > 0 {
                    *f.slot(&mut fields) = Some(t);
                    redacted += n;
                }
            }
        }
        fields.contact = None;
        fields.channel = None;
        repo::write_text_fields(&mut tx, sealer, held.id, &held.reference, &fields, &sources)
            .await?;
        let removed = store::erase(&mut tx, sealer, held.id, now).await?;
        // What remains is found again; nothing erased is.
        let mut texts: Vec<String> = vec![subject];
        texts.extend(d.messages.iter().map(|m| redact_all(&m.text, &needles).0));
        texts.extend(
            ReportField::ALL
                .iter()
                .filter_map(|f| f.of(&fields))
                .map(str::to_owned),
        );
        texts.extend(d.assets.iter().map(|a| a.value.clone()));
        texts.extend(d.cve_ids.iter().chain(&d.cwe_ids).cloned());
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        super::search::index(&mut tx, sealer, &held.org, held.id, &refs).await?;
        let assets: Vec<&str> = d.assets.iter().map(|a| a.value.as_str()).collect();
        super::search::index_hosts(&mut tx, sealer, &held.org, held.id, &assets).await?;
        let detail = format!(
            "personal data erased ({why}): reporter name and address, contact and channel; \
             {} envelope(s) (sender, peer address, HELO) and raw message(s); {} conversation sender(s); \
             {} outbox address(es); {} search index entries; {redacted} mention(s) redacted in the texts kept",
            removed.envelopes,
            removed.conversation_senders,
            removed.outbox_addresses,
            removed.index_entries
        );
        repo::add_event(
            &mut tx,
            sealer,
            held.id,
            now,
            EventKind::Erased,
            who.actor,
            &detail,
            None,
        )
        .await?;
        let audit_detail = match key {
            Some(k) => format!("reporter erasure (GDPR art. 17), address key {k}"),
            None => why.to_owned(),
        };
        audit::record(
            &mut tx,
            sealer,
            &who.entry(AuditAction::Erase, &held.reference, &audit_detail),
        )
        .await?;
        tx.commit().await?;
        Ok(ErasedCase {
            reference: held.reference.clone(),
            org: held.org.clone(),
            removed,
            redacted,
        })
    }
}

fn valid_address(address: &str) -> Result<String, CaseError> {
    let a = address.trim().to_lowercase();
    let ok = a.len() <= 254
        && a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !a.contains(char::is_whitespace)
        });
    if ok {
        Ok(a)
    } else {
        Err(CaseError::NotAnAddress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_ignores_case_and_counts() {
        let (t, n) = redact(
            "Contact: Alice@Researcher.example or alice@researcher.example.",
            "alice@researcher.example",
        );
        assert_eq!(t, "Contact: [erased] or [erased].");
        assert_eq!(n, 2);
        assert_eq!(redact("Al", "al").1, 0, "too short to redact safely");
        assert!(valid_address("not an address").is_err());
        assert_eq!(valid_address(" A@B.example ").unwrap(), "a@b.example");
    }
}
