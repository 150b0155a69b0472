//! Delivery health: what other mail servers report (RFC 8460 aggregate TLS
//! reports) about delivering to us, by sending organisation and domain.
//! Operators only: it is about the MX, not about any organisation's cases.

use super::{CaseError, Cases, Principal, Scope};
use crate::model::delivery::Health;

impl Cases {
    /// Sessions reported over the last `days` days.
    pub async fn delivery_health(
        &self,
        principal: &Principal,
        days: u32,
    ) -> Result<Vec<Health>, CaseError> {
        if principal.scope != Scope::All {
            return Err(CaseError::OperatorOnly);
        }
        let since = self.now() - i64::from(days) * 86_400;
        Ok(crate::store::tlsrpt::health(&self.store, since).await?)
    }
}
