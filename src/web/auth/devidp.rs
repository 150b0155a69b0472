//! The development identity provider: lets a newcomer sign in after
//! `make run` without an IdP of their own. Enabled only by `serve
//! --dev-idp`, which also labels every page.
//!
//! It is an IdP like any other to the service provider: it publishes
//! metadata with a freshly generated signing certificate, which the SP loads
//! from a file exactly as it loads a production IdP's, and it answers the
//! SP's HTTP-Redirect AuthnRequest with a signed Response over HTTP-POST.
//! The same builder serves the tests, which vary one thing at a time
//! (`ResponseSpec`) to prove each refusal.
//!
//! samael's `sign_authn_response` leaves out NotOnOrAfter and digests with
//! SHA-1; this builds from `build_response_template`, sets the validity
//! window and SHA-256, and signs with `Crypto::sign_xml`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::idp::response_builder::{ResponseAttribute, build_response_template};
use samael::idp::sp_extractor::RequiredAttribute;
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use samael::schema::AuthnRequest;
use samael::signature::{DigestAlgorithm, Signature};
use samael::traits::ToXml;
use std::io::Read as _;

/// Largest deflated SAMLRequest the dev IdP inflates (64 KiB out).
const MAX_REQUEST_XML: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error("cannot generate the dev IdP key: {0}")]
    Key(String),
    #[error("bad SAMLRequest: {0}")]
    Request(&'static str),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// Which element carries the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    Response,
    Assertion,
    Unsigned,
}

/// One response, described field by field.
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    pub request_id: String,
    pub name_id: String,
    pub audience: String,
    /// Destination of the Response and Recipient of the confirmation.
    pub acs_url: String,
    /// (name, value) pairs; a name may repeat.
    pub attributes: Vec<(String, String)>,
    /// NotOnOrAfter is now + this many seconds (negative: expired).
    pub lifetime_seconds: i64,
    pub signed: Signed,
    /// Digest with SHA-1 instead of SHA-256 (to prove it is refused).
    pub sha1_digest: bool,
    /// The NameID's Format (default: unspecified).
    pub name_id_format: Option<String>,
    /// The AuthnStatement's SessionIndex (none: no AuthnStatement).
    pub session_index: Option<String>,
}

/// One LogoutRequest from the IdP, described field by field.
#[derive(Debug, Clone)]
pub struct LogoutSpec {
    pub id: String,
    /// Our SLO endpoint (Destination).
    pub destination: String,
    pub name_id: String,
    pub session_index: Option<String>,
    /// The Issuer (default: the IdP's entity id).
    pub issuer: Option<String>,
    /// Seconds since issue (negative: in the future).
    pub age_seconds: i64,
    pub signed: bool,
    /// Sign with RSA-SHA1 and a SHA-1 digest (to prove it is refused).
    pub sha1: bool,
}

pub struct DevIdp {
    key_der: Vec<u8>,
    cert: CertificateDer,
    pub entity_id: String,
    pub sso_url: String,
    /// A single logout endpoint to publish (HTTP-POST), if any.
    pub slo_url: Option<String>,
}

impl DevIdp {
    /// A new RSA-2048 key and self-signed certificate.
    pub fn generate(entity_id: &str, sso_url: &str) -> Result<DevIdp, DevIdpError> {
        let key = |e: samael::idp::error::Error| DevIdpError::Key(e.to_string());
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).map_err(key)?;
        let cert = idp
            .create_certificate(&CertificateParams {
                common_name: "disclosure-mx dev IdP (not for production)",
                issuer_name: "disclosure-mx dev IdP (not for production)",
                days_until_expiration: 30,
            })
            .map_err(key)?;
        Ok(DevIdp {
            key_der: idp.export_private_key_der().map_err(key)?,
            cert,
            entity_id: entity_id.to_owned(),
            sso_url: sso_url.to_owned(),
            slo_url: None,
        })
    }

    /// IdP metadata: entity id, signing certificate, SSO endpoint, and
    /// the SLO endpoint when set.
    pub fn metadata_xml(&self) -> String {
        self.metadata_xml_with(&[])
    }

    /// As `metadata_xml`, listing the signing certificates of `others` as
    /// well (an IdP rolling its key over publishes both).
    pub fn metadata_xml_with(&self, others: &[&DevIdp]) -> String {
        let keys: String = std::iter::once(self)
            .chain(others.iter().copied())
            .map(|i| {
                format!(
                    r#"
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>"#,
                    B64.encode(i.cert.der_data())
                )
            })
            .collect();
        let slo = self
            .slo_url
            .as_ref()
            .map(|u| {
                format!(
                    r#"
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{}"/>"#,
                    xml_attr(u)
                )
            })
            .unwrap_or_default();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">{keys}{slo}
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"#,
            entity = xml_attr(&self.entity_id),
            sso = xml_attr(&self.sso_url),
        )
    }

    /// A LogoutRequest for `spec`, signed (HTTP-POST binding) unless
    /// `spec.signed` is false.
    pub fn logout_request(&self, spec: &LogoutSpec) -> Result<String, DevIdpError> {
        let at = chrono::Utc::now() - chrono::Duration::seconds(spec.age_seconds);
        let index = spec
            .session_index
            .as_ref()
            .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", xml_attr(i)))
            .unwrap_or_default();
        let signature = if spec.signed {
            let mut sig = Signature::template(&spec.id, &self.cert);
            if spec.sha1 {
                sig.signed_info.signature_method.algorithm =
                    samael::signature::SignatureAlgorithm::Unsupported(
                        "http://www.w3.org/2000/09/xmldsig#rsa-sha1".into(),
                    );
            }
            for r in &mut sig.signed_info.reference {
                r.digest_method.algorithm = if spec.sha1 {
                    DigestAlgorithm::Sha1
                } else {
                    DigestAlgorithm::Sha256
                };
            }
            sig.to_string()
                .map_err(|e| DevIdpError::Sign(e.to_string()))?
        } else {
            String::new()
        };
        let xml = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer>{signature}<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{name}</saml:NameID>{index}</samlp:LogoutRequest>"#,
            id = xml_attr(&spec.id),
            at = at.format("%Y-%m-%dT%H:%M:%SZ"),
            dest = xml_attr(&spec.destination),
            issuer = xml_attr(spec.issuer.as_deref().unwrap_or(&self.entity_id)),
            name = xml_attr(&spec.name_id),
        );
        if !spec.signed {
            return Ok(xml);
        }
        Crypto::sign_xml(xml.as_str(), &self.key_der).map_err(|e| DevIdpError::Sign(e.to_string()))
    }

    /// A signed LogoutResponse answering our LogoutRequest
    /// `in_response_to`, sent to `destination` (our SLO endpoint).
    pub fn logout_response(
        &self,
        id: &str,
        in_response_to: &str,
        destination: &str,
        success: bool,
    ) -> Result<String, DevIdpError> {
        let mut sig = Signature::template(id, &self.cert);
        for r in &mut sig.signed_info.reference {
            r.digest_method.algorithm = DigestAlgorithm::Sha256;
        }
        let signature = sig
            .to_string()
            .map_err(|e| DevIdpError::Sign(e.to_string()))?;
        let status = if success { "Success" } else { "Responder" };
        let xml = format!(
            r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer>{signature}<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:{status}"/></samlp:Status></samlp:LogoutResponse>"#,
            id = xml_attr(id),
            at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            dest = xml_attr(destination),
            irt = xml_attr(in_response_to),
            issuer = xml_attr(&self.entity_id),
        );
        Crypto::sign_xml(xml.as_str(), &self.key_der).map_err(|e| DevIdpError::Sign(e.to_string()))
    }

    /// The signed Response XML for `spec`.
    pub fn response(&self, spec: &ResponseSpec) -> Result<String, DevIdpError> {
        let attributes: Vec<ResponseAttribute> = spec
            .attributes
            .iter()
            .map(|(name, value)| ResponseAttribute {
                required_attribute: RequiredAttribute {
                    name: name.clone(),
                    format: Some("urn:oasis:names:tc:SAML:2.0:attrname-format:basic".into()),
                },
                value: value.as_str(),
            })
            .collect();
        let mut response = build_response_template(
            &self.cert,
            &spec.name_id,
            &spec.audience,
            &self.entity_id,
            &spec.acs_url,
            &spec.request_id,
            &attributes,
        );
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(spec.lifetime_seconds);
        let digest = if spec.sha1_digest {
            DigestAlgorithm::Sha1
        } else {
            DigestAlgorithm::Sha256
        };
        let with_digest = |mut s: Signature| {
            for r in &mut s.signed_info.reference {
                r.digest_method.algorithm = digest.clone();
            }
            s
        };
        response.signature = match spec.signed {
            Signed::Response => response.signature.take().map(with_digest),
            _ => None,
        };
        if let Some(a) = response.assertion.as_mut() {
            if let Some(n) = a.subject.as_mut().and_then(|s| s.name_id.as_mut())
                && let Some(f) = &spec.name_id_format
            {
                n.format = Some(f.clone());
            }
            if let Some(index) = &spec.session_index {
                a.authn_statements = Some(vec![samael::schema::AuthnStatement {
                    authn_instant: Some(now),
                    session_index: Some(index.clone()),
                    session_not_on_or_after: None,
                    subject_locality: None,
                    authn_context: None,
                }]);
            }
            if let Some(c) = a.conditions.as_mut() {
                c.not_before = Some(now - chrono::Duration::seconds(5));
                c.not_on_or_after = Some(until);
            }
            for c in a
                .subject
                .iter_mut()
                .flat_map(|s| s.subject_confirmations.iter_mut().flatten())
            {
                if let Some(d) = c.subject_confirmation_data.as_mut() {
                    d.not_on_or_after = Some(until);
                }
            }
            if spec.signed == Signed::Assertion {
                a.signature = Some(with_digest(Signature::template(&a.id, &self.cert)));
            }
        }
        let xml = response
            .to_string()
            .map_err(|e| DevIdpError::Sign(e.to_string()))?;
        if spec.signed == Signed::Unsigned {
            return Ok(xml);
        }
        Crypto::sign_xml(xml.as_str(), &self.key_der).map_err(|e| DevIdpError::Sign(e.to_string()))
    }
}

/// The request id and ACS URL of an HTTP-Redirect SAMLRequest (base64 of
/// raw DEFLATE).
pub fn read_redirect_request(saml_request: &str) -> Result<(String, String), DevIdpError> {
    let deflated = B64
        .decode(saml_request.trim())
        .map_err(|_| DevIdpError::Request("not base64"))?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .take(MAX_REQUEST_XML)
        .read_to_string(&mut xml)
        .map_err(|_| DevIdpError::Request("not DEFLATE of UTF-8"))?;
    let request: AuthnRequest = xml
        .parse()
        .map_err(|_| DevIdpError::Request("not an AuthnRequest"))?;
    let acs = request
        .assertion_consumer_service_url
        .ok_or(DevIdpError::Request("no AssertionConsumerServiceURL"))?;
    Ok((request.id, acs))
}

fn xml_attr(s: &str) -> String {
    super::binding::escape(s)
}
