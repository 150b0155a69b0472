//! Who acts on cases, and the proof that they may.
//!
//! A `Principal` is built by a door (the CLI from the operator's login,
//! the API from a bearer token, the web from a signed-in session). An
//! `Authorized<Case>` is built only by `Cases::open`, after the one access
//! check; every case operation takes it, so no operation can be reached
//! with a bare reference string, and none can leak across organisations.

use crate::store::audit::Who;
use std::collections::BTreeSet;

/// The door a principal came through. It names the source in the audit
/// trail and nothing else: every door gets the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Cli,
    Api,
    Web,
}

/// Which organisations' cases a principal may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The operator at the machine: they hold the master key and the
    /// database, so every organisation (unless they narrow it with
    /// `--for-org`).
    All,
    /// Only these organisations (policy ids).
    Orgs(BTreeSet<String>),
}

/// Someone acting on cases.
#[derive(Debug, Clone)]
pub struct Principal {
    /// A stable identity: the same person gets the same string every time
    /// (an operator's login name, `token:NAME` for an API account, the
    /// identity provider's persistent name for an analyst). The audit trail
    /// and the timeline record it; assignment will key on it.
    pub id: String,
    pub door: Door,
    /// Where the request came from: `cli`, or the client's address.
    pub source: String,
    pub scope: Scope,
}

impl Principal {
    pub fn may_see(&self, org: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Orgs(orgs) => orgs.contains(org),
        }
    }

    /// The one organisation this principal is limited to, if exactly one:
    /// a list can then ask the database for it alone.
    pub fn only_org(&self) -> Option<&str> {
        match &self.scope {
            Scope::Orgs(orgs) if orgs.len() == 1 => orgs.iter().next().map(String::as_str),
            _ => None,
        }
    }

    pub fn who(&self) -> Who<'_> {
        Who {
            actor: &self.id,
            source: &self.source,
        }
    }
}

/// A case a principal may work: what `Cases::open` found.
#[derive(Debug, Clone)]
pub struct Case {
    pub(crate) id: i64,
    pub reference: String,
    pub org: String,
}

/// Proof that an access check ran: `T`, and the principal it was checked
/// for. Only `cases` builds one.
#[derive(Debug)]
pub struct Authorized<T> {
    value: T,
    principal: Principal,
}

impl<T> Authorized<T> {
    pub(super) fn new(value: T, principal: &Principal) -> Authorized<T> {
        Authorized {
            value,
            principal: principal.clone(),
        }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl<T> std::ops::Deref for Authorized<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let p = |scope| Principal {
            id: "a".into(),
            door: Door::Web,
            source: "127.0.0.1".into(),
            scope,
        };
        let one = p(Scope::Orgs(["netcompany".to_owned()].into()));
        assert!(one.may_see("netcompany"));
        assert!(!one.may_see("magenta"));
        assert_eq!(one.only_org(), Some("netcompany"));
        let all = p(Scope::All);
        assert!(all.may_see("magenta"));
        assert_eq!(all.only_org(), None);
        assert!(!p(Scope::Orgs(BTreeSet::new())).may_see("netcompany"));
    }
}
