//! Our side of SAML: the service provider's addresses, its signing key,
//! and the metadata an IdP's administrator loads. Nothing here needs the
//! IdP, so `disclosure-mx saml metadata` can print it before the service
//! is reachable.

use super::binding::{POST, REDIRECT, SigningKey};
use crate::config::{RoleKind, SamlConfig};
use crate::store::{Store, StoreError, saml_key};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use samael::crypto::CertificateDer;
use samael::metadata::{
    AttributeConsumingService, ContactPerson, Endpoint, EntityDescriptor, IndexedEndpoint,
    KeyDescriptor, LocalizedName, LocalizedUri, Organization, RequestedAttribute, SpSsoDescriptor,
};
use samael::traits::ToXml as _;
use std::sync::Arc;

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

/// Our signing keys: the one we sign with, and the next one while a
/// rollover is under way (published in our metadata, not yet used).
pub struct SpKeys {
    pub current: SigningKey,
    pub next: Option<CertificateDer>,
    stamp: saml_key::Stamp,
}

impl SpKeys {
    /// Just `current`, as if freshly stored (unit tests, the dev IdP).
    pub fn only(current: SigningKey) -> SpKeys {
        SpKeys {
            current,
            next: None,
            stamp: saml_key::Stamp::default(),
        }
    }

    /// The certificates our metadata publishes: the current one first.
    pub fn published(&self) -> Vec<&CertificateDer> {
        std::iter::once(&self.current.cert)
            .chain(self.next.as_ref())
            .collect()
    }
}

/// A new key pair with its self-signed certificate.
fn generate() -> Option<saml_key::KeyPair> {
    let key = SigningKey::generate(CERT_DAYS).ok()?;
    Some(saml_key::KeyPair {
        cert: key.cert.der_data().to_vec(),
        key: zeroize::Zeroizing::new(key.der.to_vec()),
    })
}

/// The keys as stored: the current one is made and stored on first use,
/// and shared by every receiver of the database.
pub async fn keys(store: &Store) -> Result<SpKeys, SpError> {
    let stamp = saml_key::stamp(store).await?;
    let pair = saml_key::current(store, generate)
        .await?
        .ok_or_else(|| SpError::Key("key generation failed".into()))?;
    let current =
        SigningKey::from_der(pair.cert.into(), pair.key.to_vec()).map_err(SpError::Key)?;
    let next = saml_key::next(store)
        .await?
        .map(|p| CertificateDer::from(p.cert));
    // Made just now: the stamp read before it is stale, which only costs
    // one reload.
    Ok(SpKeys {
        current,
        next,
        stamp,
    })
}

/// The keys a running service signs with, reloaded when the stored ones
/// change (`saml key switch` from the CLI, or another receiver).
pub struct KeyCache(std::sync::RwLock<Arc<SpKeys>>);

impl KeyCache {
    pub fn new(keys: SpKeys) -> KeyCache {
        KeyCache(std::sync::RwLock::new(Arc::new(keys)))
    }

    pub fn get(&self) -> Arc<SpKeys> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Reads the stored certificates (one small query) and reloads the
    /// keys if they changed.
    pub async fn refresh(&self, store: &Store) -> Result<Arc<SpKeys>, SpError> {
        let held = self.get();
        if saml_key::stamp(store).await? == held.stamp {
            return Ok(held);
        }
        let fresh = Arc::new(keys(store).await?);
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

/// Where a rollover stands, for `saml key` and the audit.
pub enum Rollover {
    /// A next key was made and published: its certificate.
    Begun(CertificateDer),
    /// One is published already: its certificate.
    AlreadyBegun(CertificateDer),
    /// The next key is now the one in use: the old certificate, the new.
    Switched {
        old: CertificateDer,
        new: CertificateDer,
    },
    /// No rollover is under way.
    NotBegun,
    /// The next key was dropped unused: its certificate.
    Withdrawn(CertificateDer),
}

/// Makes a next key and publishes it beside the current one.
pub async fn begin_rollover(store: &Store) -> Result<Rollover, SpError> {
    keys(store).await?;
    let pair = generate().ok_or_else(|| SpError::Key("key generation failed".into()))?;
    if saml_key::begin(store, &pair).await? {
        return Ok(Rollover::Begun(pair.cert.into()));
    }
    match saml_key::next(store).await? {
        Some(p) => Ok(Rollover::AlreadyBegun(p.cert.into())),
        None => Err(SpError::Key(
            "the next key vanished while it was made".into(),
        )),
    }
}

/// Signs with the next key from now on; the old one is forgotten.
pub async fn switch(store: &Store) -> Result<Rollover, SpError> {
    Ok(match saml_key::switch(store).await? {
        Some((old, new)) => Rollover::Switched {
            old: old.into(),
            new: new.into(),
        },
        None => Rollover::NotBegun,
    })
}

/// Drops the next key unused.
pub async fn withdraw(store: &Store) -> Result<Rollover, SpError> {
    Ok(match saml_key::withdraw(store).await? {
        Some(cert) => Rollover::Withdrawn(cert.into()),
        None => Rollover::NotBegun,
    })
}

/// `SHA256:` and the certificate's SHA-256 in colon-separated hex, as
/// `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint(cert: &CertificateDer) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.der_data());
    let hex = hex::encode_upper(digest.as_ref());
    let pairs: Vec<&str> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| hex.get(i..i + 2))
        .collect();
    format!("SHA256:{}", pairs.join(":"))
}

/// The certificate's last day of validity (`notAfter`, as openssl prints
/// it).
pub fn not_after(cert: &CertificateDer) -> Option<String> {
    openssl::x509::X509::from_der(cert.der_data())
        .ok()
        .map(|x| x.not_after().to_string())
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

    /// Our metadata. `validUntil` only when configured; the signing keys
    /// are published because our logout messages (and, if configured, our
    /// AuthnRequests) are signed with them: during a rollover the next
    /// one too, so the IdP knows it before we switch.
    pub fn metadata_xml(&self, certs: &[&CertificateDer]) -> Result<String, SpError> {
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
            key_descriptors: Some(
                certs
                    .iter()
                    .map(|cert| KeyDescriptor {
                        key_use: Some("signing".into()),
                        key_info: samael::key_info::KeyInfo {
                            id: None,
                            x509_data: Some(samael::key_info::X509Data {
                                certificates: vec![B64.encode(cert.der_data())],
                            }),
                        },
                        encryption_methods: None,
                    })
                    .collect(),
            ),
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
