//! The receiver's metric names (counters kept by the driver through the
//! `metrics` facade; exported by `telemetry`). Labels never carry client
//! input: outcomes, reply names, negotiated TLS parameters.

/// Connections by how they ended (`outcome`).
pub const CONNECTIONS: &str = "dmx_smtp_connections_total";
pub const SESSIONS_OPEN: &str = "dmx_smtp_sessions_open";
/// TLS sessions by `version` and `cipher`.
pub const TLS: &str = "dmx_smtp_tls_sessions_total";
/// Replies by `class` (2xx...) and `reason` (`Reply::reason`).
pub const REPLIES: &str = "dmx_smtp_replies_total";
pub const BYTES: &str = "dmx_smtp_received_bytes_total";
pub const MESSAGES: &str = "dmx_smtp_messages_stored_total";
