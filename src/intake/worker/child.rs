//! The worker process: limits itself, then answers requests until its
//! stdin closes.
//!
//! Limits are set before the first byte of a request is read:
//! - `RLIMIT_AS`: the address space it started with plus the memory
//!   budget. An allocation past it fails, and Rust aborts the process: the
//!   job fails, never the service.
//! - `RLIMIT_CPU`: raised before each job to the CPU time used so far plus
//!   the job's budget; past it the kernel sends SIGXCPU, which ends the
//!   process. The hard limit bounds a worker's whole life; it retires
//!   before reaching it.
//! - `RLIMIT_NOFILE` 3 (only the three pipes it was given, nothing new can
//!   be opened; set once the service's policies are read, before the first
//!   job), `RLIMIT_FSIZE` 0 (no file can be written), `RLIMIT_NPROC`
//!   0 (no process or thread can be started, for non-root users),
//!   `RLIMIT_CORE` 0 (a crash leaves no core dump holding report content).
//! - no new privileges, and death with the parent (`PR_SET_PDEATHSIG`).

use super::wire::{self, FrameLimits};
use super::{Answer, Budget, PROTOCOL, Request};
use crate::intake::{analysis, plaintext};
use crate::policy::PolicySet;
use rustix::process::{Resource, Rlimit, setrlimit};
use std::io::{BufReader, BufWriter};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// What a request may carry: a message (or a case's archives) at most a
/// few times the largest message, plus the policies.
const REQUEST_LIMITS: FrameLimits = FrameLimits {
    max_head: 16 << 20,
    max_blobs: 1 + 1000,
    max_total: 1 << 30,
};

/// CPU seconds a worker may use over its life before it retires and the
/// service starts a fresh one (also bounds any slow leak).
const LIFETIME_CPU_SECONDS: u64 = 3600;
/// Jobs a worker serves before it retires, for the same reason.
pub const MAX_JOBS: u64 = 10_000;

/// Runs a worker with `budget`; returns when stdin closes.
pub fn run(budget: Budget) -> ExitCode {
    close_inherited_descriptors();
    // Panics are caught per job and answered as `Refused`; printing them
    // could fill the stderr pipe, which nobody reads while we live.
    std::panic::set_hook(Box::new(|_| {}));
    if let Err(e) = confine(budget) {
        eprintln!("intake worker: cannot set limits: {e}");
        return ExitCode::FAILURE;
    }
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    // The first frame comes from the service, not a stranger: the policies
    // are read (time zones from the system's database) before the last
    // limit closes every way to open a file.
    let policies = match wire::read::<Request, _>(&mut input, REQUEST_LIMITS) {
        Ok(Some(wire::Frame {
            head: Request::Init { protocol, policies },
            ..
        })) if protocol == PROTOCOL => match PolicySet::from_sources(policies) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("intake worker: policies: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("intake worker: expected an init frame of protocol {PROTOCOL}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(3),
            maximum: Some(3),
        },
    ) {
        eprintln!("intake worker: cannot set limits: {e}");
        return ExitCode::FAILURE;
    }
    if wire::write(&mut output, &Answer::Ready, &[]).is_err() {
        return ExitCode::FAILURE;
    }
    for _ in 0..MAX_JOBS {
        let frame = match wire::read::<Request, _>(&mut input, REQUEST_LIMITS) {
            Ok(Some(f)) => f,
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::FAILURE,
        };
        match cpu_used() {
            Some(used) if used + budget.cpu_seconds < LIFETIME_CPU_SECONDS => {
                let _ = setrlimit(
                    Resource::Cpu,
                    Rlimit {
                        current: Some(used + budget.cpu_seconds),
                        maximum: Some(LIFETIME_CPU_SECONDS),
                    },
                );
            }
            // Too old to take another job safely: retire; the service
            // counts this one as not done and starts a fresh worker.
            _ => return ExitCode::SUCCESS,
        }
        let (head, blobs) = answer(frame, &policies);
        let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        if wire::write(&mut output, &head, &refs).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// One job, with its panics caught.
fn answer(frame: wire::Frame<Request>, policies: &PolicySet) -> (Answer, Vec<Vec<u8>>) {
    let wire::Frame { head, blobs } = frame;
    std::panic::catch_unwind(move || job(head, blobs, policies))
        .unwrap_or_else(|_| (Answer::Refused("the parser panicked".into()), Vec::new()))
}

fn job(request: Request, mut blobs: Vec<Vec<u8>>, policies: &PolicySet) -> (Answer, Vec<Vec<u8>>) {
    match request {
        Request::Init { .. } => (Answer::Refused("already initialised".into()), Vec::new()),
        Request::Analyse { policy, limits } => {
            let Some(raw) = blobs.pop() else {
                return (Answer::Refused("no message".into()), Vec::new());
            };
            let policy = policy.as_deref().and_then(|p| policies.get(p));
            match analysis::analyse(&raw, policy, &limits) {
                Ok(mut a) => {
                    drop(raw);
                    let data = a
                        .mail
                        .attachments
                        .iter_mut()
                        .map(|at| std::mem::take(&mut at.data))
                        .collect();
                    (Answer::Analysed(Box::new(a)), data)
                }
                Err(e) => (Answer::Unparseable(e.to_string()), Vec::new()),
            }
        }
        Request::CheckPlaintext { limits } => {
            let Some(raw) = blobs.pop() else {
                return (Answer::Refused("no message".into()), Vec::new());
            };
            (
                Answer::Plaintext(plaintext::check(&raw, &limits)),
                Vec::new(),
            )
        }
        Request::Open { policy, limits } => {
            if blobs.is_empty() {
                return (Answer::Refused("no password".into()), Vec::new());
            }
            let password = Zeroizing::new(blobs.remove(0));
            let password = Zeroizing::new(String::from_utf8_lossy(&password).into_owned());
            let archives: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
            let policy = policy.as_deref().and_then(|p| policies.get(p));
            let mut opened = analysis::open_archives(&archives, &password, policy, &limits);
            drop(password);
            let mut data = Vec::new();
            for outcome in &mut opened.archives {
                if let analysis::ArchiveOutcome::Opened { files, .. } = outcome {
                    data.extend(files.iter_mut().map(|f| std::mem::take(&mut f.data)));
                }
            }
            (Answer::Opened(Box::new(opened)), data)
        }
    }
}

/// Closes every descriptor but the three pipes. The service opens its own
/// files and sockets close-on-exec, but it may itself have inherited
/// descriptors without that flag (from whatever started it), and those
/// would pass on to a worker.
#[allow(unsafe_code)]
fn close_inherited_descriptors() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
        // The directory's own descriptor, closed when `dir` is dropped.
        .filter(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .is_ok_and(|target| !target.ends_with("fd") || !target.starts_with("/proc"))
        })
        .collect();
    for fd in inherited {
        // SAFETY: this runs first thing in a fresh process, on its only
        // thread, before any code of ours or of a library has opened or
        // taken ownership of a descriptor: every descriptor above 2 was
        // inherited across exec, is open, and is owned by nothing here.
        unsafe { rustix::io::close(fd) };
    }
}

/// CPU seconds this process has used, rounded up.
fn cpu_used() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    u64::try_from(t.tv_sec)
        .ok()
        .map(|s| s + u64::from(t.tv_nsec > 0))
}

/// Sets the process limits described in the module comment.
fn confine(budget: Budget) -> std::io::Result<()> {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let _ = rustix::thread::set_no_new_privs(true);
    let start = address_space_bytes().unwrap_or(0);
    let memory = start.saturating_add(budget.memory_mib.saturating_mul(1 << 20));
    let fixed = |n: u64| Rlimit {
        current: Some(n),
        maximum: Some(n),
    };
    setrlimit(Resource::As, fixed(memory))?;
    setrlimit(Resource::Core, fixed(0))?;
    setrlimit(Resource::Fsize, fixed(0))?;
    setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(budget.cpu_seconds),
            maximum: Some(LIFETIME_CPU_SECONDS),
        },
    )?;
    // Not enforced for root, and harmless to ask.
    let _ = setrlimit(Resource::Nproc, fixed(0));
    // RLIMIT_NOFILE (3) follows once the policies are read (`run`).
    Ok(())
}

/// The process's current address-space size (`VmSize`), in bytes.
fn address_space_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
