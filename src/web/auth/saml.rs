//! SAML 2.0 single sign-on, service-provider side, over samael (xmlsec).
//!
//! Strict by construction, closing the crate's known traps:
//! - the IdP metadata must carry a signing certificate, or `Sso::new`
//!   fails (samael would otherwise accept unsigned responses);
//! - only RSA/ECDSA with SHA-256 or stronger, for signature and digest;
//! - audience, destination, recipient, InResponseTo, NotBefore and
//!   NotOnOrAfter are all required and checked, with a small skew;
//! - the assertion is read from xmlsec's output, which holds only the
//!   signed content, and a response carrying more than one assertion (or an
//!   encrypted one, or a DOCTYPE) is refused before it is parsed, so an
//!   unsigned assertion placed beside a signed one cannot be used;
//! - replay: request ids carry their expiry and an HMAC under a key
//!   derived from the master key, so nothing is stored per sign-in attempt
//!   (`/login` cannot fill the database) and any receiver sharing the key
//!   can check them; once answered, the request id and the assertion id
//!   are kept until they expire, so neither can be used twice (`consume`).
//!
//! A `VerifiedAssertion` can only be made by `Sso::verify`: holding one
//! proves every check above ran.

use super::binding::{self, BindingError};
use super::sp::OurSide;
use crate::config::{RoleRule, SamlConfig};
use crate::store::{Store, StoreError, sessions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use samael::crypto::CertificateDer;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::schema::{Assertion, Response};
use samael::service_provider::{Error as SpError, ServiceProvider};
use samael::traits::ToXml;
use std::collections::BTreeSet;

/// Largest SAMLResponse form value accepted, base64 (256 KiB). Real
/// responses are a few KiB; more is an attack on the XML parser.
pub const MAX_RESPONSE_BYTES: usize = binding::MAX_MESSAGE_BYTES;
/// How long after its IssueInstant an assertion or logout message is
/// accepted (5 minutes): the IdP-to-browser-to-us hop takes seconds.
pub const MAX_ISSUE_DELAY_SECONDS: i64 = 300;

/// The transient NameID format: random at every sign-in.
pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error("cannot read IdP metadata {path}: {reason}")]
    Metadata { path: String, reason: String },
    #[error(
        "IdP metadata {0} has no signing certificate: refusing to start, since unsigned responses could not be refused"
    )]
    NoSigningCertificate(String),
    #[error("IdP metadata {0} has no SingleSignOnService with the HTTP-Redirect binding")]
    NoRedirectEndpoint(String),
    #[error("cannot build the request: {0}")]
    Request(String),
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("response refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Binding(#[from] BindingError),
    #[error("response answers no sign-in request of ours, or one already answered")]
    UnknownRequest,
    #[error("assertion already used")]
    Replayed,
    #[error("the sign-in did not start in this browser; start again here")]
    OtherBrowser,
    #[error(
        "the IdP sent no {0} attribute, which saml.identity_attribute names: release it to this service"
    )]
    NoIdentityAttribute(String),
    #[error("database error: {0}")]
    Database(#[from] StoreError),
}

/// The IdP's single logout endpoint.
#[derive(Debug, Clone)]
pub struct IdpLogout {
    pub binding: &'static str,
    pub location: String,
    /// Where our LogoutResponses go (ResponseLocation, else Location).
    pub response_location: String,
}

/// The service provider.
pub struct Sso {
    sp: ServiceProvider,
    pub(super) our: OurSide,
    /// Our signing keys, reloaded when the stored ones change.
    pub(super) keys: super::sp::KeyCache,
    idp_sso_url: String,
    pub acs_url: String,
    pub entity_id: String,
    pub(super) idp_entity_id: String,
    pub(super) idp_certs: Vec<CertificateDer>,
    pub(super) idp_logout: Option<IdpLogout>,
    request_lifetime: i64,
    /// Signs request ids.
    request_key: ring::hmac::Key,
    pub(super) roles: Vec<RoleRule>,
    pub(super) display_attribute: Option<String>,
    pub(super) identity_attribute: Option<String>,
    sign_requests: bool,
}

/// A response whose signature, algorithms, audience, destination,
/// recipient, request and validity window were all checked.
#[derive(Debug)]
pub struct VerifiedAssertion {
    id: String,
    pub(super) name_id: String,
    name_id_format: Option<String>,
    session_index: Option<String>,
    pub(super) attributes: Vec<(String, Vec<String>)>,
    expires_at: i64,
}

impl VerifiedAssertion {
    pub fn name_id(&self) -> &str {
        &self.name_id
    }
    pub fn name_id_format(&self) -> Option<&str> {
        self.name_id_format.as_deref()
    }
    pub fn session_index(&self) -> Option<&str> {
        self.session_index.as_deref()
    }
    /// Whether the NameID is transient: another at every sign-in.
    pub fn is_transient(&self) -> bool {
        self.name_id_format.as_deref() == Some(TRANSIENT)
    }
    pub(super) fn has_attribute(&self, name: &str) -> bool {
        self.attributes
            .iter()
            .any(|(n, v)| n == name && !v.is_empty())
    }
}

/// What a signed-in person may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Roles {
    pub admin: bool,
    /// Organisations (policy names) whose cases they work.
    pub orgs: BTreeSet<String>,
}

impl Roles {
    pub fn is_empty(&self) -> bool {
        !self.admin && self.orgs.is_empty()
    }
}

/// A response decoded and pre-checked, not yet verified.
pub struct Unverified {
    xml: String,
    /// The request it claims to answer (unsigned until verified).
    pub in_response_to: String,
    /// The audiences it names (unsigned: for refusal messages only).
    audiences: Vec<String>,
}

impl Sso {
    /// The SP for `public_url`, trusting the IdP described by the metadata
    /// XML read from `metadata_path`, signing with `key`.
    pub fn new(
        config: &SamlConfig,
        public_url: &str,
        metadata_path: &str,
        metadata_xml: &str,
        request_key: ring::hmac::Key,
        keys: super::sp::SpKeys,
    ) -> Result<Sso, SamlError> {
        let idp: EntityDescriptor = metadata_xml.parse().map_err(|e| SamlError::Metadata {
            path: metadata_path.to_owned(),
            reason: format!("{e}"),
        })?;
        let our = OurSide::new(config, public_url);
        let idp_entity_id = idp.entity_id.clone().unwrap_or_default();
        let idp_logout = idp_logout(&idp);
        let sp = ServiceProvider {
            entity_id: Some(our.entity_id.clone()),
            metadata_url: None,
            acs_url: Some(our.acs_url.clone()),
            slo_url: Some(our.slo_url.clone()),
            idp_metadata: idp,
            authn_name_id_format: Some(config.name_id_format.urn().to_owned()),
            allow_idp_initiated: false,
            max_issue_delay: chrono::Duration::seconds(MAX_ISSUE_DELAY_SECONDS),
            max_clock_skew: chrono::Duration::seconds(
                i64::try_from(config.clock_skew_seconds).unwrap_or(60),
            ),
            allowed_signature_algorithms: Some(binding::ALLOWED.to_vec()),
            ..ServiceProvider::default()
        };
        let idp_certs = match sp.idp_signing_certs() {
            Ok(Some(certs)) if !certs.is_empty() => certs,
            _ => return Err(SamlError::NoSigningCertificate(metadata_path.to_owned())),
        };
        let idp_sso_url = sp
            .sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or_else(|| SamlError::NoRedirectEndpoint(metadata_path.to_owned()))?;
        Ok(Sso {
            sp,
            acs_url: our.acs_url.clone(),
            entity_id: our.entity_id.clone(),
            our,
            keys: super::sp::KeyCache::new(keys),
            idp_sso_url,
            idp_entity_id,
            idp_certs,
            idp_logout,
            request_lifetime: i64::try_from(config.request_lifetime_seconds).unwrap_or(600),
            request_key,
            roles: config.roles.clone(),
            display_attribute: config.display_name_attribute.clone(),
            identity_attribute: config.identity_attribute.clone(),
            sign_requests: config.sign_requests,
        })
    }

    /// Seconds a sign-in request stays answerable.
    pub fn request_lifetime(&self) -> i64 {
        self.request_lifetime
    }

    /// Seconds of clock difference tolerated.
    pub fn skew(&self) -> i64 {
        self.sp.max_clock_skew.num_seconds()
    }

    /// Our metadata, for the IdP's administrator.
    pub fn metadata(&self) -> Result<String, SamlError> {
        self.our
            .metadata_xml(&self.keys.get().published())
            .map_err(|e| SamlError::Request(e.to_string()))
    }

    /// Picks up a key switched since the last request (by the CLI or
    /// another receiver); on a database error the keys held are kept.
    pub async fn refresh_keys(&self, store: &crate::store::Store) {
        if let Err(e) = self.keys.refresh(store).await {
            tracing::warn!("cannot reload the SAML signing keys: {e}");
        }
    }

    /// A new id `dmx-{expiry}-{nonce}-{hmac}` for a message of `kind`:
    /// valid only until its expiry, only for that kind, and only if we
    /// made it. Nothing is stored.
    pub(super) fn new_id(&self, kind: &str, now: i64) -> Result<String, SamlError> {
        // samael's ids carry 32 random bits; ours carry 128 and a MAC.
        let nonce = super::secrets::random_hex(16)
            .ok_or_else(|| SamlError::Request("no randomness".into()))?;
        let body = format!("{}-{nonce}", now + self.request_lifetime);
        let mac = ring::hmac::sign(&self.request_key, format!("{kind}:{body}").as_bytes());
        Ok(format!("dmx-{body}-{}", hex::encode(mac.as_ref())))
    }

    /// A new AuthnRequest: its id and the HTTP-Redirect URL that carries it
    /// to the IdP, asking for our NameID format; signed if configured.
    pub fn start(&self, now: i64) -> Result<(String, String), SamlError> {
        let mut request = self
            .sp
            .make_authentication_request(&self.idp_sso_url)
            .map_err(|e| SamlError::Request(e.to_string()))?;
        request.id = self.new_id("authn", now)?;
        let url = if self.sign_requests {
            let xml = request
                .to_string()
                .map_err(|e| SamlError::Request(e.to_string()))?;
            binding::redirect_url(
                &self.idp_sso_url,
                binding::Kind::Request,
                &xml,
                None,
                &self.keys.get().current,
            )
            .map_err(SamlError::Request)?
        } else {
            request
                .redirect("")
                .map_err(|e| SamlError::Request(e.to_string()))?
                .ok_or_else(|| SamlError::Request("no destination".into()))?
                .to_string()
        };
        Ok((request.id, url))
    }

    /// Decodes the form value and refuses what no honest IdP sends.
    pub fn precheck(&self, form_value: &str) -> Result<Unverified, SamlError> {
        if form_value.len() > MAX_RESPONSE_BYTES {
            return Err(SamlError::TooLarge);
        }
        let compact: String = form_value
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = B64
            .decode(compact)
            .map_err(|_| SamlError::Malformed("not base64"))?;
        let xml = String::from_utf8(bytes).map_err(|_| SamlError::Malformed("not UTF-8"))?;
        self.precheck_xml(xml)
    }

    /// As `precheck`, for the decoded XML.
    pub fn precheck_xml(&self, xml: String) -> Result<Unverified, SamlError> {
        if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
            return Err(SamlError::Malformed("DTDs are not allowed"));
        }
        let (assertions, encrypted) = count_assertions(&xml);
        if encrypted > 0 {
            return Err(SamlError::Malformed(
                "encrypted assertions are not accepted",
            ));
        }
        if assertions != 1 {
            return Err(SamlError::Malformed("exactly one assertion is required"));
        }
        let response: Response = xml
            .parse()
            .map_err(|_| SamlError::Malformed("not a SAML Response"))?;
        if response.destination.as_deref() != Some(self.acs_url.as_str()) {
            // Attacker-chosen text: bounded before it reaches a page or log.
            let shown: String = response
                .destination
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect();
            return Err(SamlError::Refused(format!(
                "destination {shown:?} is not our ACS"
            )));
        }
        let in_response_to = response
            .in_response_to
            .clone()
            .or_else(|| {
                response
                    .assertion
                    .as_ref()
                    .and_then(|a| a.subject.as_ref())
                    .and_then(|s| s.subject_confirmations.as_ref())
                    .and_then(|c| c.first())
                    .and_then(|c| c.subject_confirmation_data.as_ref())
                    .and_then(|d| d.in_response_to.clone())
            })
            .ok_or(SamlError::Malformed("no InResponseTo"))?;
        let audiences = response
            .assertion
            .as_ref()
            .and_then(|a| a.conditions.as_ref())
            .and_then(|c| c.audience_restrictions.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|r| r.audience.iter().cloned())
            .collect();
        Ok(Unverified {
            xml,
            in_response_to,
            audiences,
        })
    }

    /// Verifies the signature (only the signed part is read) and every
    /// condition. `request_id` is the outstanding request it must answer.
    /// Each refusal names its cause: the algorithm, the times and the skew,
    /// the audiences expected and received.
    pub fn verify(
        &self,
        unverified: &Unverified,
        request_id: &str,
        now: i64,
    ) -> Result<VerifiedAssertion, SamlError> {
        if !binding::has_signature(&unverified.xml) {
            return Err(SamlError::Refused(
                "neither the Response nor its assertion is signed; the IdP must sign one of them (SAML Response and all assertions must be signed)".into(),
            ));
        }
        binding::check_xml_algorithms(&unverified.xml)?;
        let skew = self.skew();
        let clock = |time: &str| {
            format!(
                "{time}; it is now {}, and {skew} s of clock skew is allowed: check the clocks of the IdP and this server",
                timestamp(now)
            )
        };
        let assertion: Assertion = self
            .sp
            .parse_xml_response(&unverified.xml, Some(&[request_id]))
            .map_err(|e| {
                SamlError::Refused(match e {
                    SpError::FailedToValidateSignature | SpError::CryptoXmlError(_) => format!(
                        "the signature does not verify against the {} signing certificate(s) in the IdP metadata, or the signed content was changed (SAML Response and all assertions must be signed)",
                        self.idp_certs.len()
                    ),
                    SpError::AssertionConditionAudienceRestrictionFailed { .. } => {
                        self.audience_refusal(unverified)
                    }
                    SpError::AssertionExpired { time } => {
                        format!("the assertion was issued too long ago: issued at {}", clock(&time))
                    }
                    SpError::AssertionConditionExpired { time }
                    | SpError::AssertionSubjectConfirmationExpired { time }
                    | SpError::ResponseExpired { time } => {
                        format!("the assertion expired at {}", clock(&time))
                    }
                    SpError::AssertionConditionExpiredBefore { time }
                    | SpError::AssertionSubjectConfirmationExpiredBefore { time } => {
                        format!("the assertion is not valid until {}", clock(&time))
                    }
                    SpError::AssertionIssuerMismatch { issuer, .. }
                    | SpError::ResponseIssuerMismatch { issuer, .. } => format!(
                        "issuer {:?} is not the IdP in our metadata ({})",
                        binding::shown(&issuer.unwrap_or_default(), 120),
                        self.idp_entity_id
                    ),
                    SpError::ResponseBadStatusCode { code } => format!(
                        "the IdP answered with status {}",
                        binding::shown(&code, 120)
                    ),
                    // samael's messages may quote the response: bounded.
                    other => binding::shown(&other.to_string(), 300),
                })
            })?;
        // samael checks these only when present; we require them.
        let conditions = assertion
            .conditions
            .as_ref()
            .ok_or_else(|| SamlError::Refused("no Conditions".into()))?;
        let audience_ok = conditions.audience_restrictions.as_ref().is_some_and(|r| {
            !r.is_empty() && r.iter().all(|r| r.audience.contains(&self.entity_id))
        });
        if !audience_ok {
            return Err(SamlError::Refused(self.audience_refusal(unverified)));
        }
        let not_on_or_after = conditions
            .not_on_or_after
            .ok_or_else(|| SamlError::Refused("no NotOnOrAfter".into()))?
            .timestamp();
        if now >= not_on_or_after + skew {
            return Err(SamlError::Refused(format!(
                "the assertion expired at {}",
                clock(&timestamp(not_on_or_after))
            )));
        }
        if let Some(nb) = conditions.not_before
            && now < nb.timestamp() - skew
        {
            return Err(SamlError::Refused(format!(
                "the assertion is not valid until {}",
                clock(&timestamp(nb.timestamp()))
            )));
        }
        let subject_name = assertion.subject.as_ref().and_then(|s| s.name_id.as_ref());
        let name_id = subject_name
            .map(|n| n.value.trim().to_owned())
            .filter(|n| !n.is_empty() && n.len() <= 256 && !n.chars().any(char::is_control))
            .ok_or_else(|| SamlError::Refused("no usable NameID".into()))?;
        let name_id_format = subject_name
            .and_then(|n| n.format.clone())
            .map(|f| binding::shown(&f, 200));
        let session_index = assertion
            .authn_statements
            .iter()
            .flatten()
            .find_map(|s| s.session_index.as_deref().map(str::trim))
            // An unusable index is not kept: such a session then ends at
            // any single logout of its NameID.
            .filter(|i| !i.is_empty() && i.len() <= 256 && !i.chars().any(char::is_control))
            .map(str::to_owned);
        let attributes = assertion
            .attribute_statements
            .iter()
            .flatten()
            .flat_map(|s| s.attributes.iter())
            .filter_map(|a| {
                Some((
                    a.name.clone()?,
                    a.values.iter().filter_map(|v| v.value.clone()).collect(),
                ))
            })
            .collect();
        Ok(VerifiedAssertion {
            id: assertion.id.clone(),
            name_id,
            name_id_format,
            session_index,
            attributes,
            expires_at: not_on_or_after + skew,
        })
    }

    /// "Wrong audience", with what we expected and what arrived.
    fn audience_refusal(&self, unverified: &Unverified) -> String {
        let arrived: Vec<String> = unverified
            .audiences
            .iter()
            .take(5)
            .map(|a| binding::shown(a, 120))
            .collect();
        format!(
            "wrong audience (AudienceRequirement): expected {}, the assertion names {}",
            self.entity_id,
            if arrived.is_empty() {
                "none".to_owned()
            } else {
                arrived.join(", ")
            }
        )
    }

    /// When request `id` expires, if we made it and it has not expired.
    pub fn request_expiry(&self, id: &str, now: i64) -> Option<i64> {
        self.id_expiry("authn", id, now)
    }

    /// When our message id `id` of `kind` expires, if we made it for that
    /// kind and it has not expired.
    pub(super) fn id_expiry(&self, kind: &str, id: &str, now: i64) -> Option<i64> {
        let rest = id.strip_prefix("dmx-")?;
        let (body, mac) = rest.rsplit_once('-')?;
        let mac = unhex(mac)?;
        ring::hmac::verify(&self.request_key, format!("{kind}:{body}").as_bytes(), &mac).ok()?;
        let expires: i64 = body.split_once('-')?.0.parse().ok()?;
        (now < expires).then_some(expires)
    }

    /// Records the answered request and the assertion: a second use of
    /// either is a replay. Both are recorded or neither.
    pub async fn consume(
        &self,
        store: &Store,
        request_id: &str,
        a: &VerifiedAssertion,
        now: i64,
    ) -> Result<(), SamlError> {
        let request_expires = self
            .request_expiry(request_id, now)
            .ok_or(SamlError::UnknownRequest)?;
        let used = [
            (format!("request:{request_id}"), request_expires),
            (format!("assertion:{}", a.id), a.expires_at.max(now + 1)),
        ];
        match sessions::mark_used(store, now, &used).await? {
            Ok(()) => Ok(()),
            Err(0) => Err(SamlError::UnknownRequest),
            Err(_) => Err(SamlError::Replayed),
        }
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

/// Unix seconds as RFC 3339 (UTC, whole seconds).
pub(super) fn timestamp(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// The IdP's single logout endpoint: HTTP-Redirect if it offers one,
/// else HTTP-POST.
fn idp_logout(idp: &EntityDescriptor) -> Option<IdpLogout> {
    let endpoints: Vec<&samael::metadata::Endpoint> = idp
        .idp_sso_descriptors
        .iter()
        .flatten()
        .flat_map(|d| d.single_logout_services.iter())
        .collect();
    [binding::REDIRECT, binding::POST]
        .into_iter()
        .find_map(|b| {
            endpoints
                .iter()
                .find(|e| e.binding == b)
                .map(|e| IdpLogout {
                    binding: b,
                    location: e.location.clone(),
                    response_location: e
                        .response_location
                        .clone()
                        .unwrap_or_else(|| e.location.clone()),
                })
        })
}

/// Counts `Assertion` and `EncryptedAssertion` start tags, whatever their
/// prefix. Deliberately namespace-blind: anything named so counts.
fn count_assertions(xml: &str) -> (usize, usize) {
    let (mut plain, mut encrypted) = (0, 0);
    for part in xml.split('<').skip(1) {
        let name: &str = part
            .split(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .next()
            .unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        match local {
            "Assertion" => plain += 1,
            "EncryptedAssertion" => encrypted += 1,
            _ => {}
        }
    }
    (plain, encrypted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso() -> Sso {
        let idp =
            super::super::devidp::DevIdp::generate("https://idp.test", "https://idp.test/sso")
                .unwrap();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]);
        Sso::new(
            &SamlConfig::default(),
            "http://127.0.0.1:1",
            "m.xml",
            &idp.metadata_xml(),
            key,
            super::super::sp::SpKeys::only(super::super::binding::test_key()),
        )
        .unwrap()
    }

    #[test]
    fn request_ids_are_ours_only_and_expire() {
        let sso = sso();
        let (id, url) = sso.start(1_000).unwrap();
        assert!(url.starts_with("https://idp.test/sso?SAMLRequest="));
        assert_eq!(sso.request_expiry(&id, 1_000), Some(1_600));
        assert_eq!(sso.request_expiry(&id, 1_600), None, "expired");
        // Any change to the expiry, nonce or MAC, or another key, fails.
        let forged = id.replacen("dmx-1600-", "dmx-9600-", 1);
        assert_eq!(sso.request_expiry(&forged, 1_000), None);
        let mut flipped = id.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(sso.request_expiry(&flipped, 1_000), None);
        assert_eq!(sso.request_expiry("dmx-1600-abc-", 1_000), None);
        let other = Sso::new(
            &SamlConfig::default(),
            "http://127.0.0.1:1",
            "m.xml",
            &super::super::devidp::DevIdp::generate("https://idp.test", "https://idp.test/sso")
                .unwrap()
                .metadata_xml(),
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[8u8; 32]),
            super::super::sp::SpKeys::only(super::super::binding::test_key()),
        )
        .unwrap();
        assert_eq!(other.request_expiry(&id, 1_000), None);
    }

    #[test]
    fn assertions_are_counted_whatever_their_prefix() {
        assert_eq!(
            count_assertions("<r><saml:Assertion ID='a'></saml:Assertion></r>"),
            (1, 0)
        );
        assert_eq!(count_assertions("<Assertion/><x:Assertion>"), (2, 0));
        assert_eq!(count_assertions("<saml2:EncryptedAssertion>"), (0, 1));
        assert_eq!(count_assertions("<AssertionConsumer/>"), (0, 0));
    }
}
