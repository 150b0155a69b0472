//! The SAML bindings our messages travel over: HTTP-Redirect (DEFLATE,
//! base64, and a signature over the query as sent) and HTTP-POST (an
//! XML signature inside the message, verified by xmlsec).
//!
//! What it must never do: inflate without a bound, accept a signature by
//! an algorithm weaker than SHA-256, verify a re-encoded query instead of
//! the bytes the IdP signed, or hand on XML that no signature covers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use samael::crypto::{
    AllowedSignatureAlgorithm as Alg, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use std::io::Read as _;

/// Largest message accepted on either binding, encoded (256 KiB): real
/// logout messages are a few KiB; more is an attack on the parser.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Largest XML a Redirect message may inflate to (64 KiB).
pub const MAX_INFLATED_BYTES: u64 = 64 * 1024;

pub const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// Signature algorithms accepted in XML signatures: SHA-256 or stronger.
pub const ALLOWED: &[Alg] = &[
    Alg::RsaSha256,
    Alg::RsaSha384,
    Alg::RsaSha512,
    Alg::EcdsaSha256,
    Alg::EcdsaSha384,
    Alg::EcdsaSha512,
];

/// Why a message was refused, named so an IdP's administrator can find
/// the fault. Texts quoting the message are bounded by `shown`.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error(
        "the message is not signed; configure the IdP to sign its logout messages (SimpleSAMLphp: sign.logout)"
    )]
    Unsigned,
    #[error(
        "signature algorithm {0} is refused: SHA-1 and weaker are broken; configure the IdP to sign with RSA-SHA256 or stronger"
    )]
    WeakAlgorithm(String),
    #[error(
        "signature algorithm {0} is not supported on the HTTP-Redirect binding: configure the IdP to sign with RSA-SHA256, or to use HTTP-POST"
    )]
    UnsupportedAlgorithm(String),
    #[error(
        "the signature does not verify against the {0} signing certificate(s) in the IdP metadata, or the signed content was changed"
    )]
    BadSignature(usize),
    #[error("the signature does not cover the whole message")]
    NotCovered,
}

/// The readable name of a signature or digest algorithm URI.
pub fn algorithm_name(uri: &str) -> String {
    let short = uri.rsplit('#').next().unwrap_or(uri);
    shown(&short.to_ascii_uppercase(), 60)
}

/// `s` cut to `max` characters with control characters removed: for
/// attacker-chosen text bound for a page, a log line or the audit trail.
pub fn shown(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Refuses every `SignatureMethod` and `DigestMethod` algorithm below
/// SHA-256, by name, before xmlsec is asked (which would only say "not
/// signed").
pub fn check_xml_algorithms(xml: &str) -> Result<(), BindingError> {
    for (element, allowed) in [
        (
            "SignatureMethod",
            ALLOWED
                .iter()
                .map(|a| a.signature_uri())
                .collect::<Vec<_>>(),
        ),
        (
            "DigestMethod",
            ALLOWED.iter().map(|a| a.digest_uri()).collect::<Vec<_>>(),
        ),
    ] {
        for uri in attribute_values(xml, element, "Algorithm") {
            if !allowed.contains(&uri.as_str()) {
                return Err(BindingError::WeakAlgorithm(algorithm_name(&uri)));
            }
        }
    }
    Ok(())
}

/// Whether `xml` has a `Signature` element, whatever its prefix.
pub fn has_signature(xml: &str) -> bool {
    start_tags(xml).any(|(local, _)| local == "Signature")
}

/// Start tags of `xml`: (local name, the rest of the tag).
fn start_tags(xml: &str) -> impl Iterator<Item = (&str, &str)> {
    xml.split('<').skip(1).filter_map(|part| {
        let tag = part.split('>').next()?;
        let name = tag
            .split(|c: char| c.is_ascii_whitespace() || c == '/')
            .next()?;
        let local = name.rsplit(':').next().unwrap_or(name);
        Some((local, tag))
    })
}

/// Values of `attribute` on every `element` (any prefix).
fn attribute_values(xml: &str, element: &str, attribute: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (local, tag) in start_tags(xml) {
        if local != element {
            continue;
        }
        for quote in ['"', '\''] {
            let needle = format!("{attribute}={quote}");
            if let Some(at) = tag.find(&needle) {
                let rest = &tag[at + needle.len()..];
                if let Some(end) = rest.find(quote) {
                    out.push(rest[..end].to_owned());
                }
            }
        }
    }
    out
}

/// Refuses DTDs: no honest IdP sends one, and entities are an attack.
pub fn check_no_dtd(xml: &str) -> Result<(), BindingError> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(BindingError::Malformed("DTDs are not allowed"));
    }
    Ok(())
}

/// Decodes an HTTP-POST form value to XML.
pub fn decode_post(value: &str) -> Result<String, BindingError> {
    if value.len() > MAX_MESSAGE_BYTES {
        return Err(BindingError::TooLarge);
    }
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = B64
        .decode(compact)
        .map_err(|_| BindingError::Malformed("not base64"))?;
    let xml = String::from_utf8(bytes).map_err(|_| BindingError::Malformed("not UTF-8"))?;
    check_no_dtd(&xml)?;
    Ok(xml)
}

/// Verifies an HTTP-POST message's enveloped signature against the IdP's
/// certificates and returns only the signed XML, whose root must be the
/// message itself (`root`, a local name).
pub fn verify_post(
    xml: &str,
    certs: &[CertificateDer],
    root: &str,
) -> Result<String, BindingError> {
    if !has_signature(xml) {
        return Err(BindingError::Unsigned);
    }
    check_xml_algorithms(xml)?;
    let signed = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(ALLOWED),
    )
    .map_err(|_| BindingError::BadSignature(certs.len()))?;
    check_root(&signed, root).map_err(|_| BindingError::NotCovered)?;
    Ok(signed)
}

/// The SAML protocol namespace.
const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// Refuses XML whose root element is not `{protocol}root`: the local name,
/// and the namespace its prefix (or the default) is bound to on that tag.
pub fn check_root(xml: &str, root: &str) -> Result<(), BindingError> {
    let (local, tag) = start_tags(xml)
        .find(|(local, _)| !local.starts_with('?') && !local.starts_with('!'))
        .ok_or(BindingError::Malformed("no root element"))?;
    let name = tag
        .split(|c: char| c.is_ascii_whitespace() || c == '/')
        .next()
        .unwrap_or("");
    let declaration = match name.split_once(':') {
        Some((prefix, _)) => format!("xmlns:{prefix}="),
        None => "xmlns=".to_owned(),
    };
    let bound_to_protocol = ['"', '\'']
        .iter()
        .any(|q| tag.contains(&format!("{declaration}{q}{PROTOCOL_NS}{q}")));
    if local != root || !bound_to_protocol {
        return Err(BindingError::Malformed(
            "not the expected SAML protocol message",
        ));
    }
    Ok(())
}

/// A message received over HTTP-Redirect, its signature checked.
pub struct RedirectMessage {
    pub xml: String,
    pub relay_state: Option<String>,
}

/// Which message a Redirect query carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

impl Kind {
    fn param(self) -> &'static str {
        match self {
            Kind::Request => "SAMLRequest",
            Kind::Response => "SAMLResponse",
        }
    }
}

/// Which message a raw query carries, if any.
pub fn redirect_kind(raw_query: &str) -> Option<Kind> {
    raw_query.split('&').find_map(|p| {
        if p.starts_with("SAMLRequest=") {
            Some(Kind::Request)
        } else if p.starts_with("SAMLResponse=") {
            Some(Kind::Response)
        } else {
            None
        }
    })
}

/// Checks the signature of an HTTP-Redirect query over the bytes as sent
/// (SAML bindings §3.4.4.1) and inflates the message, bounded.
pub fn verify_redirect(
    raw_query: &str,
    kind: Kind,
    certs: &[CertificateDer],
) -> Result<RedirectMessage, BindingError> {
    if raw_query.len() > MAX_MESSAGE_BYTES {
        return Err(BindingError::TooLarge);
    }
    let mut raw: [Option<&str>; 4] = [None; 4];
    const NAMES: [&str; 4] = ["", "RelayState", "SigAlg", "Signature"];
    for pair in raw_query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = if name == kind.param() {
            0
        } else if let Some(i) = NAMES.iter().position(|n| !n.is_empty() && *n == name) {
            i
        } else {
            continue;
        };
        if raw[slot].replace(value).is_some() {
            return Err(BindingError::Malformed("a parameter appears twice"));
        }
    }
    let message = raw[0].ok_or(BindingError::Malformed("no message"))?;
    let (Some(sig_alg), Some(signature)) = (raw[2], raw[3]) else {
        return Err(BindingError::Unsigned);
    };
    let decode = |v: &str| -> String {
        url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let alg = decode(sig_alg);
    let digest = match alg.as_str() {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => MessageDigest::sha256(),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => MessageDigest::sha384(),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => MessageDigest::sha512(),
        other if ALLOWED.iter().any(|a| a.signature_uri() == other) => {
            return Err(BindingError::UnsupportedAlgorithm(algorithm_name(other)));
        }
        other => return Err(BindingError::WeakAlgorithm(algorithm_name(other))),
    };
    let mut signed = format!("{}={message}", kind.param());
    if let Some(relay) = raw[1] {
        signed.push_str(&format!("&RelayState={relay}"));
    }
    signed.push_str(&format!("&SigAlg={sig_alg}"));
    let signature = B64
        .decode(decode(signature).trim())
        .map_err(|_| BindingError::Malformed("signature is not base64"))?;
    let verified = certs.iter().any(|cert| {
        let Ok(x509) = openssl::x509::X509::from_der(cert.der_data()) else {
            return false;
        };
        let Ok(key) = x509.public_key() else {
            return false;
        };
        openssl::sign::Verifier::new(digest, &key)
            .and_then(|mut v| {
                v.update(signed.as_bytes())?;
                v.verify(&signature)
            })
            .unwrap_or(false)
    });
    if !verified {
        return Err(BindingError::BadSignature(certs.len()));
    }
    let deflated = B64
        .decode(decode(message).trim())
        .map_err(|_| BindingError::Malformed("message is not base64"))?;
    let mut xml = String::new();
    let mut reader =
        flate2::read::DeflateDecoder::new(deflated.as_slice()).take(MAX_INFLATED_BYTES);
    reader
        .read_to_string(&mut xml)
        .map_err(|_| BindingError::Malformed("message is not DEFLATE of UTF-8"))?;
    if xml.len() as u64 >= MAX_INFLATED_BYTES {
        return Err(BindingError::TooLarge);
    }
    check_no_dtd(&xml)?;
    Ok(RedirectMessage {
        xml,
        relay_state: raw[1].map(decode),
    })
}

/// Our signing key.
pub struct SigningKey {
    pub pkey: PKey<Private>,
    /// The private key, DER, for xmlsec.
    pub der: zeroize::Zeroizing<Vec<u8>>,
    pub cert: CertificateDer,
}

impl SigningKey {
    /// A new RSA-3072 key with a self-signed certificate valid for `days`.
    pub fn generate(days: u32) -> Result<SigningKey, String> {
        use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
        let e = |e: samael::idp::error::Error| e.to_string();
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa3072)).map_err(e)?;
        let cert = idp
            .create_certificate(&CertificateParams {
                common_name: "disclosure-mx SAML signing",
                issuer_name: "disclosure-mx SAML signing",
                days_until_expiration: days,
            })
            .map_err(e)?;
        SigningKey::from_der(cert, idp.export_private_key_der().map_err(e)?)
    }

    /// The key in `der` (PKCS#1 or PKCS#8) with its certificate.
    pub fn from_der(cert: CertificateDer, der: Vec<u8>) -> Result<SigningKey, String> {
        let der = zeroize::Zeroizing::new(der);
        let pkey = PKey::private_key_from_der(&der).map_err(|e| e.to_string())?;
        Ok(SigningKey { pkey, der, cert })
    }
}

/// The URL that carries `xml` to `destination` over HTTP-Redirect,
/// signed with RSA-SHA256 over the query as sent.
pub fn redirect_url(
    destination: &str,
    kind: Kind,
    xml: &str,
    relay_state: Option<&str>,
    key: &SigningKey,
) -> Result<String, String> {
    use std::io::Write as _;
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater
        .write_all(xml.as_bytes())
        .map_err(|e| e.to_string())?;
    let deflated = deflater.finish().map_err(|e| e.to_string())?;
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut query = format!("{}={}", kind.param(), enc(&B64.encode(deflated)));
    if let Some(relay) = relay_state {
        query.push_str(&format!("&RelayState={}", enc(relay)));
    }
    query.push_str(&format!(
        "&SigAlg={}",
        enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    ));
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key.pkey)
        .map_err(|e| e.to_string())?;
    signer.update(query.as_bytes()).map_err(|e| e.to_string())?;
    let signature = signer.sign_to_vec().map_err(|e| e.to_string())?;
    query.push_str(&format!("&Signature={}", enc(&B64.encode(signature))));
    let sep = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{sep}{query}"))
}

/// Signs `xml` (whose root carries `ID="{id}"` and an empty
/// `<!--signature-->` marker after its Issuer) with RSA-SHA256 for the
/// HTTP-POST binding.
pub fn sign_xml(xml: &str, id: &str, key: &SigningKey) -> Result<String, String> {
    use samael::signature::{DigestAlgorithm, Signature};
    use samael::traits::ToXml as _;
    let mut template = Signature::template(id, &key.cert);
    for r in &mut template.signed_info.reference {
        r.digest_method.algorithm = DigestAlgorithm::Sha256;
    }
    let template = template.to_string().map_err(|e| e.to_string())?;
    let with_template = xml.replacen("<!--signature-->", &template, 1);
    Crypto::sign_xml(with_template.as_str(), &key.der).map_err(|e| e.to_string())
}

/// The page that posts `xml` to `destination` (HTTP-POST binding): a form
/// the browser submits at once. Its one script is allowed by hash
/// (`POST_PAGE_CSP`); without script, the button does the same.
pub fn post_page(destination: &str, kind: Kind, xml: &str, relay_state: Option<&str>) -> String {
    let relay = relay_state
        .map(|r| {
            format!(
                r#"<input type="hidden" name="RelayState" value="{}">"#,
                escape(r)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Continuing to your identity provider</title></head><body><form method="post" action="{action}"><input type="hidden" name="{param}" value="{value}">{relay}<noscript><p>Press Continue to finish signing out at your identity provider.</p></noscript><button type="submit">Continue</button></form><script>{POST_SCRIPT}</script></body></html>"#,
        action = escape(destination),
        param = kind.param(),
        value = B64.encode(xml),
    )
}

/// The auto-submit script of `post_page`.
pub const POST_SCRIPT: &str = "document.forms[0].submit()";
/// The CSP of `post_page`: only that script runs. No `form-action`: the
/// form's target is ours to fix, and browsers would hold the IdP's own
/// redirects after it (on to other services it signs out) to that list.
pub fn post_page_csp() -> String {
    let hash = B64.encode(ring::digest::digest(
        &ring::digest::SHA256,
        POST_SCRIPT.as_bytes(),
    ));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A page that sends the browser on to `url` (a signed HTTP-Redirect
/// message) by `meta refresh`, with a link as well. Used where a form
/// submission of ours would otherwise redirect to the IdP: browsers hold a
/// form's whole redirect chain to the page's `form-action`, and an IdP's
/// logout goes on through other services.
pub fn redirect_page(url: &str) -> String {
    let url = escape(url);
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={url}"><title>Continuing to your identity provider</title></head><body><p><a href="{url}">Continue to your identity provider</a> to finish signing out.</p></body></html>"#
    )
}

/// Escapes text for an HTML attribute or XML text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A fresh key pair, for unit tests.
#[cfg(test)]
pub(crate) fn test_key() -> SigningKey {
    SigningKey::generate(1).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_refused_by_name() {
        let sha1 =
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>"#;
        match check_xml_algorithms(sha1) {
            Err(BindingError::WeakAlgorithm(name)) => assert_eq!(name, "RSA-SHA1"),
            other => panic!("{other:?}"),
        }
        let digest = r#"<DigestMethod Algorithm='http://www.w3.org/2000/09/xmldsig#sha1'/>"#;
        assert!(matches!(
            check_xml_algorithms(digest),
            Err(BindingError::WeakAlgorithm(n)) if n == "SHA1"
        ));
        let good = r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#;
        assert!(check_xml_algorithms(good).is_ok());
        assert!(has_signature("<a><ds:Signature>"));
        assert!(!has_signature("<a><SignatureValue>"));
    }

    #[test]
    fn the_root_must_be_the_protocol_message() {
        let ns = "urn:oasis:names:tc:SAML:2.0:protocol";
        let ok = format!(r#"<?xml version="1.0"?><samlp:LogoutRequest xmlns:samlp="{ns}" ID="a">"#);
        assert!(check_root(&ok, "LogoutRequest").is_ok());
        let default = format!(r#"<LogoutResponse xmlns='{ns}'>"#);
        assert!(check_root(&default, "LogoutResponse").is_ok());
        assert!(
            check_root(&ok, "LogoutResponse").is_err(),
            "another message"
        );
        let foreign = r#"<samlp:LogoutRequest xmlns:samlp="urn:example:not-saml">"#;
        assert!(
            check_root(foreign, "LogoutRequest").is_err(),
            "another namespace"
        );
        let other_prefix = format!(r#"<x:LogoutRequest xmlns:samlp="{ns}">"#);
        assert!(check_root(&other_prefix, "LogoutRequest").is_err());
    }

    #[test]
    fn redirect_messages_round_trip_and_any_change_fails() {
        let key = test_key();
        let cert = key.cert.clone();
        let url = redirect_url(
            "https://idp.test/slo?x=1",
            Kind::Request,
            "<LogoutRequest ID=\"a\"/>",
            Some("back to /cases"),
            &key,
        )
        .unwrap();
        let query = url.split_once("?x=1&").unwrap().1;
        assert_eq!(redirect_kind(query), Some(Kind::Request));
        let m = verify_redirect(query, Kind::Request, std::slice::from_ref(&cert)).unwrap();
        assert_eq!(m.xml, "<LogoutRequest ID=\"a\"/>");
        assert_eq!(m.relay_state.as_deref(), Some("back to /cases"));
        // Another relay state, another key, no signature, SHA-1: refused.
        let moved = query.replace("RelayState=back", "RelayState=elsewhere");
        assert!(matches!(
            verify_redirect(&moved, Kind::Request, std::slice::from_ref(&cert)),
            Err(BindingError::BadSignature(1))
        ));
        let unsigned = query.split("&SigAlg").next().unwrap();
        assert!(matches!(
            verify_redirect(unsigned, Kind::Request, std::slice::from_ref(&cert)),
            Err(BindingError::Unsigned)
        ));
        let sha1 = query.replace("rsa-sha256", "rsa-sha1");
        let sha1 = sha1.replace("xmldsig-more%23rsa-sha1", "xmldsig%23rsa-sha1");
        assert!(matches!(
            verify_redirect(&sha1, Kind::Request, std::slice::from_ref(&cert)),
            Err(BindingError::WeakAlgorithm(n)) if n == "RSA-SHA1"
        ));
        let twice = format!("{query}&SigAlg=x");
        assert!(matches!(
            verify_redirect(&twice, Kind::Request, &[cert]),
            Err(BindingError::Malformed(_))
        ));
    }
}
