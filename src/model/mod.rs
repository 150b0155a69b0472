//! The case domain's vocabulary: plain types with their invariants and no
//! I/O — case states and the lifecycle rules, case and timeline kinds, the
//! fields a report gives, what an archive attachment is.
//!
//! Every layer may import it; it imports nothing of ours, so the store can
//! persist these types and the cases service can reason with them without
//! the two importing each other.

pub mod archive;
pub mod auth;
pub mod case;
pub mod clock;
pub mod crypto;
pub mod delivery;
pub mod report;
pub mod thread;
