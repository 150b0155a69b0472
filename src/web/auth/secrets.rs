//! Random secrets — session cookies, CSRF tokens, API tokens, SAML nonces —
//! and the hash the database keeps instead of them.

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// SHA-256 of a bearer secret, hex: what the database keeps instead of it.
/// The secrets are 256 random bits, so a fast hash is enough.
pub fn hash(secret: &str) -> String {
    hex::encode(digest(&SHA256, secret.as_bytes()))
}

/// `n` random bytes from the OS, hex; None if the OS gives none.
pub fn random_hex(n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}
