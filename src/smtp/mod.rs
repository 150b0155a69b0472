//! The SMTP receiver: a sans-I/O protocol core (`session`, `command`,
//! `reply`, `trace`), its limits, TLS, and the tokio `driver` that runs it.
//!
//! Layering runs one way: `driver` uses the core and the store; the core
//! uses nothing above it and never does I/O. Content is judged by whoever
//! implements `content::ContentCheck` (intake's parse workers, wired in
//! `server.rs`), never here.

pub mod command;
pub mod content;
pub mod driver;
pub mod limits;
pub mod reply;
pub mod session;
pub mod tls;
pub mod trace;
