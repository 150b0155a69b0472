//! disclosure-mx: a hardened inbound mail processor for the security
//! address behind an organisation's responsible-disclosure policy.
//!
//! `smtp` receives mail over STARTTLS and hands complete messages to
//! `store`, which commits them durably before the 250 is sent. `server`
//! wires the two together; `policy` holds each organisation's published
//! disclosure policy (addresses, service levels, business calendar, scope);
//! `cli` is the command line over the same library.

pub mod cases;
pub mod cli;
pub mod config;
pub mod control;
pub mod intake;
pub mod keyring;
pub mod model;
pub mod outbound;
pub mod policy;
pub mod private_file;
pub mod publish;
pub mod sender_auth;
pub mod server;
pub mod smtp;
pub mod store;
pub mod telemetry;
pub mod web;
