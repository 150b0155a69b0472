//! Who a verified assertion names, and what the role rules grant them:
//! the stable identity sessions and the audit trail record, the display
//! name, the roles, and the attributes the rules needed but did not get.

use super::saml::{Roles, SamlError, Sso, VerifiedAssertion};
use crate::config::RoleKind;

impl Sso {
    /// Who this is, for sessions and the audit trail: the configured
    /// identity attribute, else the NameID.
    pub fn identity(&self, a: &VerifiedAssertion) -> Result<String, SamlError> {
        let Some(want) = &self.identity_attribute else {
            return Ok(a.name_id.clone());
        };
        let value = a
            .attributes
            .iter()
            .find(|(n, _)| n == want)
            .and_then(|(_, v)| v.first())
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SamlError::NoIdentityAttribute(want.clone()))?;
        // Refused rather than rewritten: two values cut or cleaned to the
        // same text would be one actor.
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(SamlError::Refused(format!(
                "the {want} attribute is longer than 256 bytes or holds control characters, so it cannot name a person"
            )));
        }
        Ok(value.to_owned())
    }

    /// The attributes the role rules read that the IdP did not send.
    pub fn missing_role_attributes(&self, a: &VerifiedAssertion) -> Vec<String> {
        let mut missing: Vec<String> = self
            .roles
            .iter()
            .map(|r| r.attribute.clone())
            .filter(|name| !a.has_attribute(name))
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// The roles the configured rules grant this person.
    pub fn roles(&self, a: &VerifiedAssertion) -> Roles {
        let mut roles = Roles::default();
        for rule in &self.roles {
            let has = a
                .attributes
                .iter()
                .any(|(name, values)| *name == rule.attribute && values.contains(&rule.value));
            if !has {
                continue;
            }
            match (rule.role, &rule.organisation) {
                (RoleKind::Admin, _) => roles.admin = true,
                (RoleKind::Analyst, Some(org)) => {
                    roles.orgs.insert(org.clone());
                }
                (RoleKind::Analyst, None) => {}
            }
        }
        roles
    }

    /// The name to show: the configured attribute, else the NameID.
    pub fn display_name(&self, a: &VerifiedAssertion) -> String {
        self.display_attribute
            .as_ref()
            .and_then(|want| a.attributes.iter().find(|(n, _)| n == want))
            .and_then(|(_, v)| v.first().cloned())
            .map(|v| v.chars().filter(|c| !c.is_control()).take(120).collect())
            .unwrap_or_else(|| a.name_id.clone())
    }
}
