//! Parse workers: privilege separation for a stranger's bytes.
//!
//! Every parse of untrusted content — MIME and HTML at intake, the
//! plaintext rule during an SMTP session, archive extraction at unlock —
//! runs in a separate process: the same binary started as the hidden
//! subcommand `intake-worker`, talking framed requests and answers
//! (`wire`) over its stdin and stdout. Each worker limits itself with
//! `setrlimit` before it reads a byte (`child`): address space, CPU time
//! per job, no new files or processes, no core dumps. A worker that
//! crashes, runs out of memory or time fails that one job; the service
//! sees a `Failure` naming why, replaces the worker, and carries on. This
//! is the Postfix and OpenSSH privilege-separation model.
//!
//! A worker holds no secrets: it starts with an empty environment and
//! only its three pipes, and it never receives a database handle, the
//! master key or a socket. What it must never do: write anywhere but its
//! stdout, or outlive the service (it dies with its parent).

pub mod child;
pub mod pool;
pub mod wire;

use super::analysis::{Analysis, Opened};
use super::extract::ExtractLimits;
use super::mime::MimeLimits;
use super::plaintext::PlaintextRefusal;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use pool::{JobStats, Worker, WorkerPool};

/// The hidden subcommand that runs a worker.
pub const SUBCOMMAND: &str = "intake-worker";

/// Bumped when requests or answers change shape, so a service never talks
/// to a worker binary of another version (e.g. during an upgrade).
pub const PROTOCOL: u32 = 1;

/// What one worker may spend on one job. Past it the job fails and the
/// worker is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Address space the worker may add to what it had at start, in MiB.
    pub memory_mib: u64,
    /// CPU seconds per job (`RLIMIT_CPU`, raised before each job).
    pub cpu_seconds: u64,
    /// Wall-clock time per job, after which the service kills the worker:
    /// catches a job that waits rather than computes.
    pub wall: Duration,
}

impl Budget {
    /// This budget times `factor` (for "retry with a larger budget").
    pub fn scaled(self, factor: u32) -> Budget {
        let f = u64::from(factor.max(1));
        Budget {
            memory_mib: self.memory_mib.saturating_mul(f),
            cpu_seconds: self.cpu_seconds.saturating_mul(f),
            wall: self.wall.saturating_mul(factor.max(1)),
        }
    }
}

/// A request to a worker. Content travels as blobs after the head.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// The first frame: the protocol version and the policies (their TOML
    /// text, with the file name for messages).
    Init {
        protocol: u32,
        policies: Vec<(String, String)>,
    },
    /// Blob 0: the raw message. `policy`: the organisation it is for.
    Analyse {
        policy: Option<String>,
        limits: MimeLimits,
    },
    /// Blob 0: a message that arrived without TLS.
    CheckPlaintext { limits: MimeLimits },
    /// Blob 0: the password; then one blob per archive.
    Open {
        policy: Option<String>,
        limits: ExtractLimits,
    },
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    Ready,
    /// Blobs: each attachment's bytes, in order.
    Analysed(Box<Analysis>),
    /// The message could not be parsed within the MIME limits: a reason,
    /// not a failure of the worker.
    Unparseable(String),
    Plaintext(Result<(), PlaintextRefusal>),
    /// Blobs: each opened file's bytes, archive by archive, in order.
    Opened(Box<Opened>),
    /// The job panicked or the request made no sense.
    Refused(String),
}

/// Why a job did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The worker died or was killed during the job: memory, CPU or time
    /// limit, or a crash.
    #[error("intake worker killed: {0}")]
    Killed(String),
    /// No worker could be started (our fault, not the message's).
    #[error("intake worker could not start: {0}")]
    Spawn(String),
    /// The worker answered something unexpected.
    #[error("intake worker protocol error: {0}")]
    Protocol(String),
}

impl Failure {
    /// Whether the message itself is the likely cause (so it counts as a
    /// failed attempt on that message).
    pub fn blames_message(&self) -> bool {
        matches!(self, Failure::Killed(_))
    }
}
