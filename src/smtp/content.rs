//! What the receiver asks about a message's content before it stores it.
//!
//! The receiver never parses content itself: a message that arrived
//! without TLS is put to a `ContentCheck`, which `server.rs` wires to the
//! plaintext rule running in a parse worker. So the SMTP layer imports
//! nothing above it, and a check that blows up costs that one message.

use std::future::Future;
use std::pin::Pin;

/// The answer about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Refused for good (550 5.7.10); the reason is for the log only.
    Refuse(String),
    /// Could not be checked now (451 4.3.0); the sender retries.
    Unavailable(String),
}

/// Checks content for the receiver.
pub trait ContentCheck: Send + Sync {
    /// May a message that arrived without TLS be stored?
    fn plaintext<'a>(
        &'a self,
        body: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;
}
