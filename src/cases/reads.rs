//! Reading cases: the list and search, one case whole, its evidence and
//! stored mails, the service-level figures, and the search index's
//! rebuild. Each read that shows report content writes its audit entry.

use super::CaseError;
use super::principal::{Authorized, Case, Principal, Scope};
use super::service::{Cases, EvidenceUse, MAX_PAGE, Page};
use crate::store::analysts;
use crate::store::audit::AuditAction;
use crate::store::cases::{self as repo, CaseDetail, Cursor, EvidenceInfo, Filter, Listing};

impl Cases {
    /// One page of the cases the principal may see that match `filter`
    /// (and, with `search`, hold every word of it), oldest first, with how
    /// many match in all. The principal's organisations are part of the
    /// query, so neither rows nor counts of others are ever read.
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &Filter,
        search: Option<&str>,
        page: &Page,
    ) -> Result<Listing, CaseError> {
        let mut filter = filter.clone();
        let orgs: Vec<String> = match &principal.scope {
            Scope::All => {
                filter.scope = None;
                self.policies.iter().map(|p| p.id.clone()).collect()
            }
            Scope::Orgs(orgs) => {
                filter.scope = Some(orgs.iter().cloned().collect());
                orgs.iter().cloned().collect()
            }
        };
        filter.terms = match search.map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => {
                let searched: Vec<String> = orgs
                    .into_iter()
                    .filter(|o| filter.org.as_ref().is_none_or(|only| only == o))
                    .collect();
                super::search::query_terms(self.store.sealer(), &searched, q)?
            }
            None => Vec::new(),
        };
        let after = page
            .after
            .as_deref()
            .map(|c| {
                Cursor::parse(c).ok_or_else(|| {
                    CaseError::BadCursor(c.chars().filter(|c| !c.is_control()).take(80).collect())
                })
            })
            .transpose()?;
        let limit = page.limit.map(|l| l.clamp(1, MAX_PAGE));
        Ok(repo::list(
            self.store.pool(),
            self.store.sealer(),
            &filter,
            after.as_ref(),
            limit,
            self.now(),
        )
        .await?)
    }

    /// Everything about a case, for reading; audited as a view.
    pub async fn view(&self, case: &Authorized<Case>) -> Result<CaseDetail, CaseError> {
        let detail = self.read(case).await?;
        self.audit_read(
            case.principal(),
            AuditAction::View,
            &case.reference,
            "case viewed",
        )
        .await?;
        Ok(detail)
    }

    pub(super) async fn read(&self, case: &Case) -> Result<CaseDetail, CaseError> {
        let mut d = repo::show(self.store.pool(), self.store.sealer(), case.id, self.now())
            .await?
            .ok_or_else(|| CaseError::NotFound(case.reference.clone()))?;
        d.thread = super::thread::assemble(&d);
        d.encryption = crate::store::crypto::of_case(self.store.pool(), case.id)
            .await?
            .into_iter()
            .map(|(message, e)| crate::model::crypto::MessageEncryption::new(message, e))
            .collect();
        d.sender_auth =
            crate::store::auth::of_case(self.store.pool(), self.store.sealer(), case.id).await?;
        d.duplicates = self.duplicate_hints(case, &d).await?;
        if let Some(policy) = self.policies.get(&case.org) {
            let facts = crate::store::clocks::facts_of(self.store.pool(), case.id).await?;
            d.clocks = super::clocks::compute(policy, &facts, self.now());
            d.summary.clock_due = d
                .clocks
                .iter()
                .filter(|c| c.met_at.is_none())
                .filter_map(|c| c.due)
                .min();
            d.summary.clock_overdue = d.summary.clock_due.is_some_and(|t| t < self.now());
            d.flags = facts.flags;
        }
        Ok(d)
    }

    /// Every case the principal may see, whole; audited as one export.
    pub async fn export(&self, principal: &Principal) -> Result<Vec<CaseDetail>, CaseError> {
        let list = self
            .list(principal, &Filter::default(), None, &Page::default())
            .await?
            .cases;
        let mut all = Vec::with_capacity(list.len());
        for c in &list {
            let case = self.open(principal, &c.reference).await?;
            all.push(self.read(&case).await?);
        }
        self.audit_read(principal, AuditAction::Export, "", "cases exported")
            .await?;
        Ok(all)
    }

    /// The people who may take cases of `org`.
    pub async fn analysts_for(&self, org: &str) -> Result<Vec<analysts::Analyst>, CaseError> {
        Ok(analysts::working(&self.store, org).await?)
    }

    /// One evidence object of the case and its content.
    pub async fn evidence(
        &self,
        case: &Authorized<Case>,
        object: &str,
        purpose: EvidenceUse,
    ) -> Result<(EvidenceInfo, Vec<u8>), CaseError> {
        let found = repo::evidence(self.store.pool(), self.store.sealer(), case.id, object)
            .await?
            .ok_or_else(|| CaseError::NoEvidence(case.reference.clone()))?;
        if purpose == EvidenceUse::Download {
            self.audit_read(
                case.principal(),
                AuditAction::EvidenceDownload,
                &case.reference,
                "evidence downloaded",
            )
            .await?;
        }
        Ok(found)
    }

    /// The service-level figures of each organisation the principal may
    /// see (or only `org`): counts and times, never report content.
    pub async fn sla(
        &self,
        principal: &Principal,
        org: Option<&str>,
    ) -> Result<Vec<super::sla::OrgSla>, CaseError> {
        let now = self.now();
        let since = now - (super::sla::WINDOW_DAYS + 7) * 86_400;
        let mut out = Vec::new();
        for policy in self.policies.iter() {
            if !principal.may_see(&policy.id) || org.is_some_and(|o| o != policy.id) {
                continue;
            }
            let clocks = crate::store::sla::clocks(self.store.pool(), &policy.id, since).await?;
            out.push(super::sla::figures(policy, &clocks, now));
        }
        match org {
            Some(o) if out.is_empty() => Err(CaseError::UnknownOrg(
                o.chars().filter(|c| !c.is_control()).take(64).collect(),
            )),
            _ => Ok(out),
        }
    }

    /// Indexes every case for search again (cases filed before the index
    /// existed, or under another version of it), one transaction per case,
    /// and marks the store indexed. Returns how many cases were indexed.
    /// Only an operator (`Scope::All`) may; the store's own start-up does
    /// it when the mark is missing (`reindex_if_needed`).
    pub async fn reindex(&self) -> Result<usize, CaseError> {
        let all = crate::store::search::all_cases(self.store.pool()).await?;
        for (id, _, org) in &all {
            let Some(d) =
                repo::show(self.store.pool(), self.store.sealer(), *id, self.now()).await?
            else {
                continue;
            };
            let mut tx = self.store.write().await?;
            super::search::index(
                &mut tx,
                self.store.sealer(),
                org,
                *id,
                &super::search::texts_of(&d),
            )
            .await?;
            let assets: Vec<&str> = d.assets.iter().map(|a| a.value.as_str()).collect();
            super::search::index_hosts(&mut tx, self.store.sealer(), org, *id, &assets).await?;
            tx.commit().await?;
        }
        let mut tx = self.store.write().await?;
        crate::store::search::mark_indexed(&mut tx, super::search::INDEX_VERSION).await?;
        tx.commit().await?;
        Ok(all.len())
    }

    /// `reindex`, when the store is not marked indexed for this version.
    pub async fn reindex_if_needed(&self) -> Result<Option<usize>, CaseError> {
        let version = crate::store::search::indexed_version(self.store.pool()).await?;
        if version.as_deref() == Some(super::search::INDEX_VERSION) {
            return Ok(None);
        }
        Ok(Some(self.reindex().await?))
    }

    /// Stored mail `message` of the case, as it arrived (with our
    /// Received: header on top); audited as a download.
    pub async fn raw_message(
        &self,
        case: &Authorized<Case>,
        message: i64,
    ) -> Result<Vec<u8>, CaseError> {
        let raw = self.mail(case, message).await?;
        self.audit_read(
            case.principal(),
            AuditAction::RawDownload,
            &case.reference,
            &format!("original message {message} downloaded"),
        )
        .await?;
        Ok(raw)
    }

    /// The header section of stored mail `message`, as it arrived (at most
    /// `thread::MAX_HEADER_BYTES`); audited as a read.
    pub async fn headers(
        &self,
        case: &Authorized<Case>,
        message: i64,
    ) -> Result<super::thread::Headers, CaseError> {
        let raw = self.mail(case, message).await?;
        self.audit_read(
            case.principal(),
            AuditAction::HeadersView,
            &case.reference,
            &format!("headers of message {message} read"),
        )
        .await?;
        Ok(super::thread::headers_of(&raw))
    }

    async fn mail(&self, case: &Authorized<Case>, message: i64) -> Result<Vec<u8>, CaseError> {
        let raw = repo::raw_mail(self.store.pool(), self.store.sealer(), case.id, message)
            .await?
            .ok_or_else(|| CaseError::NoMessage(case.reference.clone()))?;
        if raw.is_empty() {
            return Err(CaseError::Erased(case.reference.clone()));
        }
        Ok(raw)
    }

    /// The message the case was opened from, as it arrived; audited.
    pub async fn raw(&self, case: &Authorized<Case>) -> Result<Vec<u8>, CaseError> {
        let raw = self.store.raw_of_case(&case.reference).await?;
        if raw.is_empty() {
            return Err(CaseError::Erased(case.reference.clone()));
        }
        self.audit_read(
            case.principal(),
            AuditAction::RawDownload,
            &case.reference,
            "raw message downloaded",
        )
        .await?;
        Ok(raw)
    }
}
