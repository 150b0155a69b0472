//! Our side of SAML: the service provider's addresses, its signing key,
//! and the metadata an IdP's administrator loads. Nothing here needs the
//! IdP, so `disclosure-mx saml metadata` can print it before the service
//! is reachable.

use super::binding::{POST, REDIRECT, SigningKey};
use crate::config::{RoleKind, SamlConfig};
use crate::store::{Store, StoreError, sessions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use samael::metadata::{
    AttributeConsumingService, ContactPerson, Endpoint, EntityDescriptor, IndexedEndpoint,
    KeyDescriptor, LocalizedName, LocalizedUri, Organization, RequestedAttribute, SpSsoDescriptor,
};
use samael::traits::ToXml as _;

/// Years our generated signing certificate is valid (10): metadata pins
/// the certificate itself, so its dates matter only to IdPs that check
/// them, and a short one would break sign-in when it lapses.
pub const CERT_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum SpError {
    #[error("cannot make the service provider's signing key: {0}")]
    Key(String),
    #[error("cannot write our metadata: {0}")]
    Metadata(String),
    #[error("database error: {0}")]
    Store(#[from] StoreError),
}

/// The service provider's key: made once, stored sealed, shared by every
/// receiver of the database.
pub async fn signing_key(store: &Store) -> Result<SigningKey, SpError> {
    let make = || {
        let key = SigningKey::generate(CERT_DAYS).ok()?;
        Some((key.cert.der_data().to_vec(), key.der.to_vec()))
    };
    let (cert, der) = sessions::saml_key(store, make)
        .await?
        .ok_or_else(|| SpError::Key("key generation failed".into()))?;
    SigningKey::from_der(cert.into(), der.to_vec()).map_err(SpError::Key)
}

/// Where we are and what we ask for.
#[derive(Debug, Clone)]
pub struct OurSide {
    pub entity_id: String,
    pub acs_url: String,
    pub slo_url: String,
    config: SamlConfig,
}

impl OurSide {
    /// Our addresses under `public_url`.
    pub fn new(config: &SamlConfig, public_url: &str) -> OurSide {
        let base = public_url.trim_end_matches('/');
        let metadata_url = format!("{base}/saml/metadata");
        OurSide {
            entity_id: config.entity_id.clone().unwrap_or(metadata_url),
            acs_url: format!("{base}/saml/acs"),
            slo_url: format!("{base}/saml/slo"),
            config: config.clone(),
        }
    }

    /// The attributes our rules read: (name, required).
    pub fn requested_attributes(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = Vec::new();
        let mut add = |name: &str, required: bool| {
            if let Some(seen) = out.iter_mut().find(|(n, _)| n == name) {
                seen.1 |= required;
            } else {
                out.push((name.to_owned(), required));
            }
        };
        if let Some(a) = &self.config.identity_attribute {
            add(a, true);
        }
        for r in &self.config.roles {
            // Role attributes are required for anyone to get a role.
            add(
                &r.attribute,
                matches!(r.role, RoleKind::Analyst | RoleKind::Admin),
            );
        }
        if let Some(a) = &self.config.display_name_attribute {
            add(a, false);
        }
        out
    }

    /// Our metadata. `validUntil` only when configured; the signing key is
    /// published because our logout messages (and, if configured, our
    /// AuthnRequests) are signed with it.
    pub fn metadata_xml(&self, cert: &samael::crypto::CertificateDer) -> Result<String, SpError> {
        let c = &self.config;
        let valid_until = c.metadata_valid_days.map(|d| {
            chrono::Utc::now()
                + chrono::Duration::days(i64::try_from(d.min(36_500)).unwrap_or(36_500))
        });
        let en = |v: &str| LocalizedName {
            lang: Some("en".into()),
            value: v.to_owned(),
        };
        let requested: Vec<RequestedAttribute> = self
            .requested_attributes()
            .into_iter()
            .map(|(name, required)| RequestedAttribute {
                friendly_name: None,
                name,
                name_format: None,
                values: None,
                is_required: Some(required),
            })
            .collect();
        let attribute_services = (!requested.is_empty()).then(|| {
            vec![AttributeConsumingService {
                index: 0,
                is_default: Some(true),
                service_names: vec![en("disclosure-mx analyst interface")],
                service_descriptions: None,
                request_attributes: requested,
            }]
        });
        let slo = |binding: &str| Endpoint {
            binding: binding.to_owned(),
            location: self.slo_url.clone(),
            response_location: None,
        };
        let sp = SpSsoDescriptor {
            protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
            key_descriptors: Some(vec![KeyDescriptor {
                key_use: Some("signing".into()),
                key_info: samael::key_info::KeyInfo {
                    id: None,
                    x509_data: Some(samael::key_info::X509Data {
                        certificates: vec![B64.encode(cert.der_data())],
                    }),
                },
                encryption_methods: None,
            }]),
            single_logout_services: Some(vec![slo(REDIRECT), slo(POST)]),
            name_id_formats: Some(vec![c.name_id_format.urn().to_owned()]),
            authn_requests_signed: Some(c.sign_requests),
            want_assertions_signed: Some(true),
            assertion_consumer_services: vec![IndexedEndpoint {
                binding: POST.to_owned(),
                location: self.acs_url.clone(),
                response_location: None,
                index: 0,
                is_default: Some(true),
            }],
            attribute_consuming_services: attribute_services,
            ..SpSsoDescriptor::default()
        };
        let organization = c.organization.as_ref().map(|o| Organization {
            organization_names: Some(vec![en(&o.name)]),
            organization_display_names: Some(vec![en(o
                .display_name
                .as_deref()
                .unwrap_or(&o.name))]),
            organization_urls: Some(vec![LocalizedUri {
                lang: Some("en".into()),
                value: o.url.clone(),
            }]),
        });
        let contacts: Vec<ContactPerson> = c
            .contacts
            .iter()
            .map(|p| ContactPerson {
                contact_type: Some(p.kind.as_str().to_owned()),
                given_name: p.name.clone(),
                email_addresses: Some(vec![format!("mailto:{}", p.email)]),
                ..ContactPerson::default()
            })
            .collect();
        let entity = EntityDescriptor {
            entity_id: Some(self.entity_id.clone()),
            valid_until,
            sp_sso_descriptors: Some(vec![sp]),
            organization,
            contact_person: (!contacts.is_empty()).then_some(contacts),
            ..EntityDescriptor::default()
        };
        entity
            .to_string()
            .map_err(|e| SpError::Metadata(e.to_string()))
    }
}
