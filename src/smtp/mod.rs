//! The SMTP receiver: a sans-I/O protocol core (`session`, `command`,
//! `reply`, `trace`), its limits, TLS, and the tokio `driver` that runs it.
//!
//! Layering runs one way: `driver` uses the core; the core uses nothing
//! above it and never does I/O. Content is judged by whoever implements
//! `content::ContentCheck` (intake's parse workers), and messages are
//! stored by whoever implements `sink::MessageSink` (the store's writer),
//! both wired in `server.rs`: the SMTP layer imports neither.

mod accept;
pub mod command;
pub mod content;
pub mod driver;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod reply;
pub mod session;
pub mod sink;
pub mod tls;
pub mod trace;
mod wire;
