//! Where the receiver hands a message it has checked and stamped.
//!
//! The protocol core proves the checks ran (`Delivery`); the driver stamps
//! it (queue id, time, session, our `Received:` header) and gives both to a
//! `MessageSink`, which `server.rs` wires to the store's group-commit
//! writer. The SMTP layer imports nothing above it: the store takes the
//! `Delivery` itself, so nothing unchecked can reach it.

use super::session::Delivery;
use std::future::Future;
use std::pin::Pin;

/// How the receiver stamped one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub queue_id: String,
    /// Unix seconds.
    pub received_at: i64,
    pub session_id: String,
    /// Our `Received:` trace header, prepended to what is stored.
    pub trace_header: String,
}

/// Stores deliveries durably for the receiver.
pub trait MessageSink: Send + Sync {
    /// Ok only once the message is committed: the 250 that follows is a
    /// promise the disk keeps. Err says why (for the log; the client gets
    /// 451).
    fn commit<'a>(
        &'a self,
        delivery: Delivery,
        stamp: Stamp,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}
