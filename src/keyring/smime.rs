//! S/MIME enveloped data, decrypted with OpenSSL's CMS (the `openssl`
//! crate, which the SAML signatures already link): no second X.509 and
//! CMS stack in the binary, and OpenSSL's is the reference one.

use super::{Opened, Pending, closed};
use crate::model::crypto::{Decryption, Envelope};
use openssl::cms::CmsContentInfo;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
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
        Ok(plain) => Opened::Plain {
            mime: Zeroizing::new(plain),
            pending: Pending::none(),
            record: closed(Envelope::Smime, Decryption::Decrypted, None),
        },
        // OpenSSL cannot tell "not for this certificate" from damage.
        Err(_) => Opened::Closed(closed(Envelope::Smime, Decryption::OtherKey, None)),
    }
}
