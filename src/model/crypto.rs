//! Encrypted and signed reports: how a message was wrapped, what became
//! of its decryption, and what its signature proved. Plain types; the
//! parsing is `intake::encrypted`, the keys and the cryptography are
//! `keyring`, the record is `store::crypto`.

use serde::{Deserialize, Serialize};

/// How a report was encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Envelope {
    /// RFC 3156 `multipart/encrypted; protocol="application/pgp-encrypted"`.
    PgpMime,
    /// One `-----BEGIN PGP MESSAGE-----` block in a text body.
    PgpInline,
    /// RFC 8551 `application/pkcs7-mime` enveloped data.
    Smime,
}

impl Envelope {
    pub const ALL: [Envelope; 3] = [Envelope::PgpMime, Envelope::PgpInline, Envelope::Smime];

    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::PgpMime => "pgp-mime",
            Envelope::PgpInline => "pgp-inline",
            Envelope::Smime => "smime",
        }
    }

    pub fn parse(s: &str) -> Option<Envelope> {
        Envelope::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// For people: "OpenPGP (PGP/MIME)".
    pub fn label(self) -> &'static str {
        match self {
            Envelope::PgpMime => "OpenPGP (PGP/MIME)",
            Envelope::PgpInline => "OpenPGP (inline)",
            Envelope::Smime => "S/MIME",
        }
    }

    pub fn is_openpgp(self) -> bool {
        matches!(self, Envelope::PgpMime | Envelope::PgpInline)
    }
}

/// What became of an encrypted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decryption {
    /// Decrypted with the organisation's key; the case holds the content.
    Decrypted,
    /// Encrypted to keys the organisation does not hold (named in
    /// `key_ids`): filed as it came, never lost.
    OtherKey,
    /// Encrypted to the organisation's key, which is passphrase-protected
    /// and not unlocked: the case waits until an admin unlocks it.
    AwaitingKey,
    /// Encrypted with a password only (`gpg -c`): held like a password
    /// archive.
    Password,
    /// The organisation has no key for this kind of encryption.
    NoKey,
    /// Addressed to our key, but the ciphertext is damaged or over the
    /// size limit (the reason is recorded).
    Failed,
}

impl Decryption {
    pub const ALL: [Decryption; 6] = [
        Decryption::Decrypted,
        Decryption::OtherKey,
        Decryption::AwaitingKey,
        Decryption::Password,
        Decryption::NoKey,
        Decryption::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decryption::Decrypted => "decrypted",
            Decryption::OtherKey => "other-key",
            Decryption::AwaitingKey => "awaiting-key",
            Decryption::Password => "password",
            Decryption::NoKey => "no-key",
            Decryption::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Decryption> {
        Decryption::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// What a signature proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// Verified with the key named, which came with the message.
    Valid,
    /// The key named came with the message, and the signature does not
    /// verify with it: the content was changed, or the key is not the
    /// signer's.
    Invalid,
    /// No key that came with the message made it: nothing is proved.
    UnknownKey,
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Invalid => "invalid",
            SignatureStatus::UnknownKey => "unknown-key",
        }
    }

    pub fn parse(s: &str) -> Option<SignatureStatus> {
        [
            SignatureStatus::Valid,
            SignatureStatus::Invalid,
            SignatureStatus::UnknownKey,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A signature on a message and what it proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's fingerprint (upper-case hex), or the issuer key id
    /// when the signature names no fingerprint and no key matched.
    pub signer: String,
    pub status: SignatureStatus,
}

impl Signature {
    /// "signed by F, valid".
    pub fn line(&self) -> String {
        let status = match self.status {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Invalid => "INVALID",
            SignatureStatus::UnknownKey => "unknown key",
        };
        format!("signed by {}, {status}", self.signer)
    }
}

/// The record of one encrypted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub envelope: Envelope,
    pub decryption: Decryption,
    /// The recipients' key ids (OpenPGP) the message names, upper-case hex.
    pub key_ids: Vec<String>,
    pub signature: Option<Signature>,
    /// Why decryption failed, for `Failed`.
    pub reason: Option<String>,
    /// The reporter's public key (armored) when the message carried one:
    /// replies are encrypted to it. Sealed at rest.
    #[serde(skip)]
    pub reporter_key: Option<String>,
    /// That key's fingerprint.
    pub reporter_key_fingerprint: Option<String>,
}

impl Encryption {
    /// A plain-language line: "OpenPGP (PGP/MIME), decrypted; signed by F,
    /// valid".
    pub fn line(&self) -> String {
        let what = match self.decryption {
            Decryption::Decrypted => "decrypted with our key".to_owned(),
            Decryption::OtherKey => format!(
                "encrypted to another key ({}): not decryptable here",
                self.key_ids.join(", ")
            ),
            Decryption::AwaitingKey => "waiting for our key to be unlocked".to_owned(),
            Decryption::Password => "encrypted with a password: enter it to open".to_owned(),
            Decryption::NoKey => "no key of ours is configured for it".to_owned(),
            Decryption::Failed => format!(
                "decryption failed: {}",
                self.reason.as_deref().unwrap_or("unknown reason")
            ),
        };
        match &self.signature {
            Some(s) => format!("{}, {what}; {}", self.envelope.label(), s.line()),
            None => format!("{}, {what}", self.envelope.label()),
        }
    }
}

/// An encrypted mail of a case, as a case shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageEncryption {
    /// The stored mail's id (as in `messages list`).
    pub message: i64,
    #[serde(flatten)]
    pub encryption: Encryption,
    /// `Encryption::line`, for people.
    pub summary: String,
}

impl MessageEncryption {
    pub fn new(message: i64, encryption: Encryption) -> MessageEncryption {
        MessageEncryption {
            message,
            summary: encryption.line(),
            encryption,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lines_read_plainly() {
        for e in Envelope::ALL {
            assert_eq!(Envelope::parse(e.as_str()), Some(e));
        }
        for d in Decryption::ALL {
            assert_eq!(Decryption::parse(d.as_str()), Some(d));
        }
        let e = Encryption {
            envelope: Envelope::PgpMime,
            decryption: Decryption::Decrypted,
            key_ids: vec!["0123456789ABCDEF".into()],
            signature: Some(Signature {
                signer: "AB12".into(),
                status: SignatureStatus::Valid,
            }),
            reason: None,
            reporter_key: None,
            reporter_key_fingerprint: None,
        };
        assert_eq!(
            e.line(),
            "OpenPGP (PGP/MIME), decrypted with our key; signed by AB12, valid"
        );
        let other = Encryption {
            decryption: Decryption::OtherKey,
            signature: None,
            ..e
        };
        assert!(other.line().contains("another key (0123456789ABCDEF)"));
    }
}
