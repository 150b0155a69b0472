//! SAML single logout, both ways, over HTTP-Redirect and HTTP-POST.
//!
//! - **IdP-initiated:** the IdP's LogoutRequest, signed by a certificate
//!   in its metadata, issued by it, addressed to us, fresh and not seen
//!   before, ends the sessions of its NameID (and SessionIndex); we answer
//!   with a signed LogoutResponse.
//! - **SP-initiated:** our sign-out ends the session here, then sends a
//!   signed LogoutRequest to the IdP when it offers single logout; its
//!   LogoutResponse must answer a request we made and be signed by it.
//!
//! Our own ids carry their expiry and a MAC (as sign-in requests do), so
//! nothing is stored per logout we start. The IdP's request ids are kept
//! until they expire, so a captured request cannot be replayed.

use super::binding::{self, BindingError, Kind};
use super::saml::{MAX_ISSUE_DELAY_SECONDS, SamlError, Sso, timestamp};
use serde::Deserialize;

/// Why a logout message was refused. Each names its cause.
#[derive(Debug, thiserror::Error)]
pub enum SloError {
    #[error("{0}")]
    Binding(#[from] BindingError),
    #[error("malformed logout message: {0}")]
    Malformed(&'static str),
    #[error("issuer {found:?} is not the IdP in our metadata ({expected})")]
    ForeignIssuer { found: String, expected: String },
    #[error("the message is addressed to {found:?}, not to our logout endpoint {expected}")]
    WrongDestination { found: String, expected: String },
    #[error("{0}")]
    Stale(String),
    #[error("the logout response answers no logout request of ours, or one already answered")]
    UnknownRequest,
    #[error("this logout request was already used")]
    Replayed,
    #[error("an encrypted NameID is not supported: configure the IdP to send it in clear")]
    EncryptedNameId,
    #[error("this identity provider offers no single logout")]
    NoIdpLogout,
    #[error("cannot build the logout message: {0}")]
    Build(String),
    #[error("database error: {0}")]
    Database(#[from] crate::store::StoreError),
}

impl SloError {
    /// The kind of refusal, for the audit trail's tally.
    pub fn kind(&self) -> &'static str {
        match self {
            SloError::Binding(BindingError::Unsigned) => "unsigned logout message",
            SloError::Binding(BindingError::WeakAlgorithm(_)) => {
                "logout signed with a weak algorithm"
            }
            SloError::Binding(BindingError::BadSignature(_) | BindingError::NotCovered) => {
                "logout signature did not verify"
            }
            SloError::ForeignIssuer { .. } => "logout from a foreign issuer",
            SloError::WrongDestination { .. } => "logout addressed elsewhere",
            SloError::Stale(_) => "stale logout message",
            SloError::Replayed => "replayed logout request",
            SloError::UnknownRequest => "unknown logout response",
            _ => "malformed logout message",
        }
    }
}

impl From<SamlError> for SloError {
    fn from(e: SamlError) -> Self {
        SloError::Build(e.to_string())
    }
}

/// A verified LogoutRequest from the IdP.
#[derive(Debug)]
pub struct LogoutRequest {
    pub id: String,
    pub name_id: String,
    pub session_indexes: Vec<String>,
    /// Until when its id must be remembered to refuse a replay.
    pub remember_until: i64,
}

/// A verified LogoutResponse from the IdP, answering one of ours.
#[derive(Debug)]
pub struct LogoutResponse {
    pub in_response_to: String,
    /// The top-level status code, shortened (e.g. `Success`).
    pub status: String,
    pub remember_until: i64,
}

impl LogoutResponse {
    pub fn success(&self) -> bool {
        self.status == "Success"
    }
}

/// A verified logout message.
#[derive(Debug)]
pub enum Incoming {
    Request(LogoutRequest),
    Response(LogoutResponse),
}

/// How a message of ours leaves: a redirect, or a page that posts it.
#[derive(Debug)]
pub enum Outgoing {
    Redirect(String),
    Post { destination: String, page: String },
}

#[derive(Deserialize)]
struct Text {
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Deserialize)]
struct NameIdXml {
    #[serde(rename = "$text", default)]
    value: String,
    #[serde(rename = "@SPNameQualifier")]
    sp_name_qualifier: Option<String>,
}

/// Most SessionIndex elements one LogoutRequest may name.
pub const MAX_SESSION_INDEXES: usize = 16;
/// Longest RelayState echoed back (1,024 bytes). SAML says 80; IdPs send
/// more, and a bound keeps it out of oversized headers.
pub const MAX_RELAY_STATE: usize = 1024;

#[derive(Deserialize)]
struct RequestXml {
    #[serde(rename = "@ID")]
    id: String,
    #[serde(rename = "@IssueInstant")]
    issue_instant: String,
    #[serde(rename = "@Destination")]
    destination: Option<String>,
    #[serde(rename = "@NotOnOrAfter")]
    not_on_or_after: Option<String>,
    #[serde(rename = "Issuer")]
    issuer: Option<Text>,
    #[serde(rename = "NameID")]
    name_id: Option<NameIdXml>,
    #[serde(rename = "EncryptedID")]
    encrypted_id: Option<serde::de::IgnoredAny>,
    #[serde(rename = "SessionIndex", default)]
    session_indexes: Vec<Text>,
}

#[derive(Deserialize)]
struct StatusCodeXml {
    #[serde(rename = "@Value")]
    value: String,
}

#[derive(Deserialize)]
struct StatusXml {
    #[serde(rename = "StatusCode")]
    code: StatusCodeXml,
}

#[derive(Deserialize)]
struct ResponseXml {
    #[serde(rename = "@InResponseTo")]
    in_response_to: Option<String>,
    #[serde(rename = "@IssueInstant")]
    issue_instant: String,
    #[serde(rename = "@Destination")]
    destination: Option<String>,
    #[serde(rename = "Issuer")]
    issuer: Option<Text>,
    #[serde(rename = "Status")]
    status: StatusXml,
}

/// The root element a message of `kind` must have.
fn root_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Request => "LogoutRequest",
        Kind::Response => "LogoutResponse",
    }
}

/// Unix seconds of an xs:dateTime.
fn seconds(s: &str) -> Option<i64> {
    s.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

impl Sso {
    /// A logout message that arrived over HTTP-Redirect (the raw query).
    pub fn receive_redirect(
        &self,
        raw_query: &str,
        now: i64,
    ) -> Result<(Incoming, Option<String>), SloError> {
        let kind = binding::redirect_kind(raw_query)
            .ok_or(SloError::Malformed("neither SAMLRequest nor SAMLResponse"))?;
        let m = binding::verify_redirect(raw_query, kind, &self.idp_certs)?;
        binding::check_root(&m.xml, root_of(kind))?;
        if m.relay_state
            .as_ref()
            .is_some_and(|r| r.len() > MAX_RELAY_STATE)
        {
            return Err(SloError::Malformed("RelayState longer than 1,024 bytes"));
        }
        let incoming = match kind {
            Kind::Request => Incoming::Request(self.check_request(&m.xml, now)?),
            Kind::Response => Incoming::Response(self.check_response(&m.xml, now)?),
        };
        Ok((incoming, m.relay_state))
    }

    /// A logout message that arrived over HTTP-POST.
    pub fn receive_post(&self, value: &str, kind: Kind, now: i64) -> Result<Incoming, SloError> {
        let xml = binding::decode_post(value)?;
        let signed = binding::verify_post(&xml, &self.idp_certs, root_of(kind))?;
        Ok(match kind {
            Kind::Request => Incoming::Request(self.check_request(&signed, now)?),
            Kind::Response => Incoming::Response(self.check_response(&signed, now)?),
        })
    }

    /// Issuer, destination and freshness, common to both messages.
    fn check_envelope(
        &self,
        issuer: Option<Text>,
        destination: Option<String>,
        issue_instant: &str,
        now: i64,
    ) -> Result<i64, SloError> {
        let issuer = issuer
            .map(|t| t.value.trim().to_owned())
            .unwrap_or_default();
        if issuer != self.idp_entity_id {
            return Err(SloError::ForeignIssuer {
                found: binding::shown(&issuer, 120),
                expected: self.idp_entity_id.clone(),
            });
        }
        // Required on signed messages (SAML bindings §3.4.5.2, §3.5.5.2):
        // a message the IdP signed for another party is not for us.
        let destination = destination.unwrap_or_default();
        if destination != self.our.slo_url {
            return Err(SloError::WrongDestination {
                found: binding::shown(&destination, 120),
                expected: self.our.slo_url.clone(),
            });
        }
        let issued =
            seconds(issue_instant).ok_or(SloError::Malformed("IssueInstant is not a time"))?;
        let skew = self.skew();
        if issued > now + skew || issued < now - MAX_ISSUE_DELAY_SECONDS - skew {
            return Err(SloError::Stale(format!(
                "the logout message was issued at {}; it is now {}, and it is accepted for {MAX_ISSUE_DELAY_SECONDS} s with {skew} s of clock skew: check the clocks of the IdP and this server",
                timestamp(issued),
                timestamp(now)
            )));
        }
        Ok(issued + MAX_ISSUE_DELAY_SECONDS + skew + 1)
    }

    fn check_request(&self, xml: &str, now: i64) -> Result<LogoutRequest, SloError> {
        let r: RequestXml =
            quick_xml::de::from_str(xml).map_err(|_| SloError::Malformed("not a LogoutRequest"))?;
        let remember_until = self.check_envelope(r.issuer, r.destination, &r.issue_instant, now)?;
        if let Some(until) = r.not_on_or_after.as_deref().map(seconds) {
            let until = until.ok_or(SloError::Malformed("bad NotOnOrAfter"))?;
            if now >= until + self.skew() {
                return Err(SloError::Stale(format!(
                    "the logout request expired at {}; it is now {}",
                    timestamp(until),
                    timestamp(now)
                )));
            }
        }
        if r.encrypted_id.is_some() {
            return Err(SloError::EncryptedNameId);
        }
        let name = r.name_id.ok_or(SloError::Malformed("no NameID"))?;
        if let Some(q) = &name.sp_name_qualifier
            && *q != self.entity_id
        {
            return Err(SloError::Malformed(
                "the NameID is qualified for another service provider",
            ));
        }
        let name_id = Some(name.value.trim().to_owned())
            .filter(|n| !n.is_empty() && n.len() <= 256 && !n.chars().any(char::is_control))
            .ok_or(SloError::Malformed("no usable NameID"))?;
        if r.id.is_empty() || r.id.len() > 256 {
            return Err(SloError::Malformed("no usable ID"));
        }
        if r.session_indexes.len() > MAX_SESSION_INDEXES {
            return Err(SloError::Malformed("more than 16 SessionIndex elements"));
        }
        Ok(LogoutRequest {
            id: r.id,
            name_id,
            session_indexes: r
                .session_indexes
                .into_iter()
                .map(|t| t.value.trim().to_owned())
                .collect(),
            remember_until,
        })
    }

    fn check_response(&self, xml: &str, now: i64) -> Result<LogoutResponse, SloError> {
        let r: ResponseXml = quick_xml::de::from_str(xml)
            .map_err(|_| SloError::Malformed("not a LogoutResponse"))?;
        let remember_until = self.check_envelope(r.issuer, r.destination, &r.issue_instant, now)?;
        let in_response_to = r.in_response_to.unwrap_or_default();
        let Some(expires) = self.id_expiry("logout", &in_response_to, now) else {
            return Err(SloError::UnknownRequest);
        };
        let status = r
            .status
            .code
            .value
            .rsplit(':')
            .next()
            .map(|s| binding::shown(s, 60))
            .unwrap_or_default();
        Ok(LogoutResponse {
            in_response_to,
            status,
            remember_until: remember_until.max(expires),
        })
    }

    /// Our signed LogoutResponse to the IdP's request `in_response_to`.
    pub fn logout_response(
        &self,
        in_response_to: &str,
        relay_state: Option<&str>,
        now: i64,
    ) -> Result<Outgoing, SloError> {
        let idp = self.idp_logout.as_ref().ok_or(SloError::NoIdpLogout)?;
        let id = self.new_id("logout-response", now)?;
        let xml = format!(
            r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer><!--signature--><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
            at = timestamp(now),
            dest = binding::escape(&idp.response_location),
            irt = binding::escape(in_response_to),
            issuer = binding::escape(&self.entity_id),
        );
        self.send(
            &idp.response_location,
            idp.binding,
            Kind::Response,
            &xml,
            &id,
            relay_state,
        )
    }

    /// Our signed LogoutRequest for a session's NameID, if the IdP offers
    /// single logout.
    pub fn logout_request(
        &self,
        name_id: &str,
        name_id_format: Option<&str>,
        session_index: Option<&str>,
        now: i64,
    ) -> Result<Option<Outgoing>, SloError> {
        let Some(idp) = self.idp_logout.as_ref() else {
            return Ok(None);
        };
        let id = self.new_id("logout", now)?;
        let format = name_id_format
            .map(|f| format!(r#" Format="{}""#, binding::escape(f)))
            .unwrap_or_default();
        let index = session_index
            .map(|i| {
                format!(
                    "<samlp:SessionIndex>{}</samlp:SessionIndex>",
                    binding::escape(i)
                )
            })
            .unwrap_or_default();
        let xml = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" NotOnOrAfter="{until}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer><!--signature--><saml:NameID{format}>{name}</saml:NameID>{index}</samlp:LogoutRequest>"#,
            at = timestamp(now),
            until = timestamp(now + self.request_lifetime()),
            dest = binding::escape(&idp.location),
            issuer = binding::escape(&self.entity_id),
            name = binding::escape(name_id),
        );
        self.send(&idp.location, idp.binding, Kind::Request, &xml, &id, None)
            .map(Some)
    }

    /// Signs `xml` for its binding and says how it leaves.
    fn send(
        &self,
        destination: &str,
        binding_uri: &str,
        kind: Kind,
        xml: &str,
        id: &str,
        relay_state: Option<&str>,
    ) -> Result<Outgoing, SloError> {
        if binding_uri == binding::REDIRECT {
            let xml = xml.replacen("<!--signature-->", "", 1);
            binding::redirect_url(
                destination,
                kind,
                &xml,
                relay_state,
                &self.keys.get().current,
            )
            .map(Outgoing::Redirect)
            .map_err(SloError::Build)
        } else {
            let signed =
                binding::sign_xml(xml, id, &self.keys.get().current).map_err(SloError::Build)?;
            Ok(Outgoing::Post {
                destination: destination.to_owned(),
                page: binding::post_page(destination, kind, &signed, relay_state),
            })
        }
    }
}
