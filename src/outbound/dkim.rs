//! DKIM signatures on what we send (receipts, replies, digests), so the
//! reporters' servers can tell our mail from a forgery and do not file it
//! as spam. One RSA key (`[outbound] dkim_key_file`, PEM, 0600, at least
//! 2048 bits) signs for the domain of each message's `From:` under
//! `dkim_selector`; `dns records` prints the TXT record to publish for each
//! domain. Signing is mail-auth's; the key is parsed by OpenSSL (already
//! linked), so PKCS#1 and PKCS#8 PEM both work.

use super::OutboundError;
use base64::Engine as _;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::DkimSigner;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zeroize::Zeroizing;

/// RSA keys shorter than this are refused: RFC 8301 requires verifiers to
/// reject signatures by keys under 1024 bits and recommends 2048.
const MIN_RSA_BITS: u32 = 2048;

/// The headers signed, where present: what a reader trusts of a receipt.
const SIGNED: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
];

pub struct Dkim {
    selector: String,
    /// The private key, PKCS#8 DER.
    key: Zeroizing<Vec<u8>>,
    /// SubjectPublicKeyInfo DER, base64: the record's `p=`.
    public: String,
}

impl Dkim {
    pub fn load(path: &Path, selector: &str) -> Result<Dkim, OutboundError> {
        let err = |reason: String| OutboundError::Dkim {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "readable by others (mode {mode:o}); chmod 600 it"
            )));
        }
        let pem = Zeroizing::new(std::fs::read(path).map_err(|e| err(e.to_string()))?);
        let key = openssl::pkey::PKey::private_key_from_pem(&pem)
            .map_err(|e| err(format!("not a PEM private key: {e}")))?;
        let rsa = key
            .rsa()
            .map_err(|_| err("not an RSA key (ed25519 is not yet widely verified)".into()))?;
        if rsa.size() * 8 < MIN_RSA_BITS {
            return Err(err(format!(
                "{} bits; at least {MIN_RSA_BITS}",
                rsa.size() * 8
            )));
        }
        let der = Zeroizing::new(key.private_key_to_pkcs8().map_err(|e| err(e.to_string()))?);
        let public = key.public_key_to_der().map_err(|e| err(e.to_string()))?;
        Ok(Dkim {
            selector: selector.to_owned(),
            key: der,
            public: base64::engine::general_purpose::STANDARD.encode(public),
        })
    }

    /// `message` with a DKIM-Signature for `domain` on top.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        let key = RsaKey::<Sha256>::from_key_der(rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(self.key.to_vec()),
        ))
        .map_err(|e| format!("DKIM key: {e}"))?;
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector(&self.selector)
            .headers(SIGNED.iter().copied())
            .sign(message)
            .map_err(|e| format!("DKIM signing: {e}"))?;
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }

    /// The record to publish at `<selector>._domainkey.<domain>`, as zone
    /// file strings of at most 255 characters each.
    pub fn record(&self) -> (String, String) {
        let value = format!("v=DKIM1; k=rsa; p={}", self.public);
        let quoted = value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect::<Vec<_>>()
            .join(" ");
        (format!("{}._domainkey", self.selector), quoted)
    }
}
