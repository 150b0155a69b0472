//! S/MIME enveloped data, decrypted with OpenSSL's CMS (the `openssl`
//! crate, which the SAML signatures already link): no second X.509 and
//! CMS stack in the binary, and OpenSSL's is the reference one.

use super::{Opened, Pending, closed};
use crate::model::crypto::{Decryption, Envelope};
use crate::model::crypto::{Signature, SignatureStatus};
use openssl::cms::CmsContentInfo;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use zeroize::Zeroizing;

pub(super) struct OrgCert {
    cert: X509,
    key: PKey<Private>,
}

impl OrgCert {
    pub(super) fn from_pem(cert: &[u8], key: &[u8]) -> Result<OrgCert, String> {
        let cert = X509::from_pem(cert).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let key = PKey::private_key_from_pem(key)
            .map_err(|e| format!("not an unencrypted PEM private key: {e}"))?;
        let matches = cert
            .public_key()
            .map(|p| p.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err("the private key is not the certificate's".into());
        }
        Ok(OrgCert { cert, key })
    }
}

/// Decrypts CMS enveloped data (DER) to the MIME entity inside.
pub(super) fn open(org: Option<&OrgCert>, der: &[u8], max_plain: usize) -> Opened {
    let Some(org) = org else {
        return Opened::Closed(closed(Envelope::Smime, Decryption::NoKey, None));
    };
    let fail =
        |reason: String| Opened::Closed(closed(Envelope::Smime, Decryption::Failed, Some(reason)));
    let cms = match CmsContentInfo::from_der(der) {
        Ok(c) => c,
        Err(e) => return fail(format!("not CMS data: {e}")),
    };
    match cms.decrypt(&org.key, &org.cert) {
        Ok(plain) if plain.len() > max_plain => fail(format!(
            "the plaintext is over the message size limit ({max_plain} bytes)"
        )),
        Ok(plain) => {
            let plain = Zeroizing::new(plain);
            let mut record = closed(Envelope::Smime, Decryption::Decrypted, None);
            let (mime, signature) = match signed(&plain) {
                Some((content, signature)) => (content, Some(signature)),
                None => (plain, None),
            };
            record.signature = signature;
            Opened::Plain {
                mime,
                pending: Pending::none(),
                record,
            }
        }
        // OpenSSL cannot tell "not for this certificate" from damage.
        Err(_) => Opened::Closed(closed(Envelope::Smime, Decryption::OtherKey, None)),
    }
}

/// The content of an S/MIME signed message (RFC 8551: `multipart/signed`,
/// or `application/pkcs7-mime; smime-type=signed-data`) and what its
/// signature proved; None when `mime` is not signed. The signature is
/// checked against the certificate it carries; whose certificate that is,
/// no CA here vouches: the case names its subject and fingerprint.
pub(super) fn signed(mime: &[u8]) -> Option<(Zeroizing<Vec<u8>>, Signature)> {
    // OpenSSL quotes header values in its errors, and the `openssl` crate
    // panics on an error text that is not UTF-8 (found by the `encrypted`
    // fuzz target): MIME headers are ASCII (RFC 2045), so anything else
    // is no S/MIME structure OpenSSL needs to see.
    if !headers_are_ascii(mime) {
        return None;
    }
    let (p7, detached) = Pkcs7::from_smime(mime).ok()?;
    let none = Stack::new().ok()?;
    let store = X509StoreBuilder::new().ok()?.build();
    let signer = p7
        .signers(&none, Pkcs7Flags::empty())
        .ok()
        .and_then(|s| s.iter().next().map(describe));
    let mut content = Vec::new();
    let verified = p7.verify(
        &none,
        &store,
        detached.as_deref(),
        Some(&mut content),
        Pkcs7Flags::NOVERIFY,
    );
    let status = match (&signer, verified) {
        (None, _) => SignatureStatus::UnknownKey,
        (Some(_), Ok(())) => SignatureStatus::Valid,
        (Some(_), Err(_)) => SignatureStatus::Invalid,
    };
    let content = match detached {
        Some(d) => d,
        None if !content.is_empty() => content,
        None => return None,
    };
    Some((
        Zeroizing::new(content),
        Signature {
            signer: signer.unwrap_or_else(|| "an unnamed certificate".into()),
            status,
        },
    ))
}

/// Every header line — of the entity, and of each part after a boundary
/// line — is ASCII.
fn headers_are_ascii(mime: &[u8]) -> bool {
    let mut in_headers = true;
    for line in mime.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"--") {
            in_headers = true;
        } else if line.is_empty() {
            in_headers = false;
        } else if in_headers && !line.is_ascii() {
            return false;
        }
    }
    true
}

/// "security@example.org (SHA-256 AB:CD…)": the certificate's e-mail
/// address or common name, and its fingerprint.
fn describe(cert: &openssl::x509::X509Ref) -> String {
    let name = cert
        .subject_alt_names()
        .and_then(|names| names.iter().find_map(|n| n.email().map(str::to_owned)))
        .or_else(|| {
            [Nid::PKCS9_EMAILADDRESS, Nid::COMMONNAME]
                .into_iter()
                .find_map(|nid| {
                    cert.subject_name()
                        .entries_by_nid(nid)
                        .next()
                        .and_then(|e| e.data().to_string().ok())
                })
        })
        .unwrap_or_else(|| "an unnamed certificate".into());
    let fingerprint = cert
        .digest(MessageDigest::sha256())
        .map(hex::encode_upper)
        .unwrap_or_default();
    format!("{name} (SHA-256 {fingerprint})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_header_that_is_not_ascii_never_reaches_openssl() {
        // The shape the fuzzer found: OpenSSL's error quotes the content
        // type, and the `openssl` crate panicked on its bytes.
        let hostile =
            b"Content-Type: multipart/\x84\x5e\x03\xda; boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n";
        assert!(super::signed(hostile).is_none());
        assert!(super::headers_are_ascii(
            b"Content-Type: text/plain\r\n\r\nbody in UTF-8: \xc3\xa6\r\n"
        ));
    }
}
