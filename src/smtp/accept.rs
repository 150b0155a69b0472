//! Which recipients this receiver takes mail for.

/// The recipients this receiver accepts mail for: whole mailboxes
/// (`security@example.org`) or whole domains (`@example.org` or
/// `example.org`). Matching is ASCII case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct AcceptFor {
    mailboxes: Vec<String>,
    domains: Vec<String>,
}

impl AcceptFor {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(entries: I) -> Self {
        let mut accept = AcceptFor::default();
        for entry in entries {
            let entry = entry.as_ref().trim().to_ascii_lowercase();
            match entry.rsplit_once('@') {
                Some(("", domain)) => accept.domains.push(domain.to_owned()),
                Some(_) => accept.mailboxes.push(entry),
                None => accept.domains.push(entry),
            }
        }
        accept
    }

    pub fn is_empty(&self) -> bool {
        self.mailboxes.is_empty() && self.domains.is_empty()
    }

    pub fn accepts(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        if self.mailboxes.contains(&address) {
            return true;
        }
        address
            .rsplit_once('@')
            .is_some_and(|(_, domain)| self.domains.iter().any(|d| d == domain))
    }
}
