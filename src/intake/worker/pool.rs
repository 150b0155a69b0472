//! The service's side: starting workers, sending them jobs under a
//! deadline, telling why one died, and a small pool of long-lived ones.

use super::wire::{self, FrameLimits};
use super::{Answer, Budget, Failure, PROTOCOL, Request, SUBCOMMAND};
use crate::intake::analysis::{Analysis, ArchiveOutcome, Opened};
use crate::intake::extract::ExtractLimits;
use crate::intake::mime::MimeLimits;
use crate::intake::plaintext::PlaintextRefusal;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

/// What an answer may carry: a message's text and attachments, or an
/// unlock's files, which the extraction caps already bound.
const ANSWER_LIMITS: FrameLimits = FrameLimits {
    max_head: 512 << 20,
    max_blobs: 100_000,
    max_total: 1 << 30,
};

/// How long a new worker may take to start and read the policies.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stderr of a dead worker is read for, at most.
const MAX_STDERR: usize = 4096;

/// The kernel's unit for CPU times in `/proc/<pid>/stat` (USER_HZ, 100
/// on every Linux architecture we run on).
const TICKS_PER_SECOND: u64 = 100;

/// What one job cost, read from `/proc` (0 where it could not be read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    pub cpu_ms: u64,
    /// Peak resident memory during the job.
    pub peak_rss_kib: u64,
}

/// One running worker process.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
    pid: u32,
    budget: Budget,
    jobs: u64,
}

impl Worker {
    /// Starts a worker with `budget` and hands it the policies.
    pub async fn spawn(budget: Budget, policies: &[(String, String)]) -> Result<Worker, Failure> {
        // The binary we run as, even if its file was replaced since.
        let mut child = Command::new("/proc/self/exe")
            .arg(SUBCOMMAND)
            .arg("--memory-mib")
            .arg(budget.memory_mib.to_string())
            .arg("--cpu-seconds")
            .arg(budget.cpu_seconds.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::Spawn(e.to_string()))?;
        let (Some(stdin), Some(stdout), Some(stderr), Some(pid)) = (
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
            child.id(),
        ) else {
            return Err(Failure::Spawn("pipes not set up".into()));
        };
        let mut worker = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            pid,
            budget,
            jobs: 0,
        };
        let init = Request::Init {
            protocol: PROTOCOL,
            policies: policies.to_vec(),
        };
        match worker.exchange(&init, &[], START_TIMEOUT).await? {
            (Answer::Ready, _) => Ok(worker),
            _ => Err(Failure::Protocol("no ready answer".into())),
        }
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends one job and waits for its answer within the wall budget.
    pub async fn call(
        &mut self,
        request: &Request,
        blobs: &[&[u8]],
    ) -> Result<(Answer, Vec<Vec<u8>>, JobStats), Failure> {
        self.jobs += 1;
        // Peak RSS is per process; writing 5 to clear_refs resets it, so
        // the peak read afterwards is this job's.
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
        let cpu_before = self.cpu_ticks();
        let (answer, blobs) = self.exchange(request, blobs, self.budget.wall).await?;
        let stats = JobStats {
            cpu_ms: self.cpu_ticks().saturating_sub(cpu_before) * 1000 / TICKS_PER_SECOND,
            peak_rss_kib: self.peak_rss_kib(),
        };
        Ok((answer, blobs, stats))
    }

    async fn exchange(
        &mut self,
        request: &Request,
        blobs: &[&[u8]],
        wall: Duration,
    ) -> Result<(Answer, Vec<Vec<u8>>), Failure> {
        let frame = wire::encode(request, blobs).map_err(|e| Failure::Protocol(e.to_string()))?;
        let exchange = async {
            self.stdin.write_all(&frame).await?;
            self.stdin.flush().await?;
            drop(frame);
            wire::read_async::<Answer, _>(&mut self.stdout, ANSWER_LIMITS).await
        };
        match tokio::time::timeout(wall, exchange).await {
            Ok(Ok(f)) => Ok((f.head, f.blobs)),
            Ok(Err(wire::WireError::Json(e))) => Err(Failure::Protocol(e.to_string())),
            Ok(Err(_)) => Err(self.death().await),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Err(Failure::Killed(format!(
                    "time limit ({} s wall clock)",
                    wall.as_secs()
                )))
            }
        }
    }

    /// Why the worker ended: from its exit status and its last words.
    async fn death(&mut self) -> Failure {
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(s)) => s,
            _ => {
                let _ = self.child.start_kill();
                return Failure::Killed("stopped answering".into());
            }
        };
        let mut said = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            (&mut self.stderr)
                .take(MAX_STDERR as u64)
                .read_to_end(&mut said),
        )
        .await;
        let said = String::from_utf8_lossy(&said);
        use std::os::unix::process::ExitStatusExt;
        let reason = match status.signal() {
            Some(24) => format!("CPU limit ({} s)", self.budget.cpu_seconds),
            _ if said.contains("memory allocation of") => {
                format!("memory limit ({} MiB)", self.budget.memory_mib)
            }
            Some(6) => "aborted (SIGABRT)".to_owned(),
            Some(9) => "killed (SIGKILL)".to_owned(),
            Some(11) if said.contains("overflowed its stack") => "stack overflow".to_owned(),
            Some(11) => "crashed (SIGSEGV)".to_owned(),
            Some(sig) => format!("signal {sig}"),
            None => {
                let last = said.lines().last().unwrap_or("").chars().take(200);
                format!(
                    "exited ({}): {}",
                    status.code().unwrap_or(-1),
                    last.collect::<String>()
                )
            }
        };
        Failure::Killed(reason)
    }

    fn cpu_ticks(&self) -> u64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return 0;
        };
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14 and stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        tick(11) + tick(12)
    }

    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Whether it should serve no more jobs.
    fn retiring(&self) -> bool {
        self.jobs + 1 >= super::child::MAX_JOBS
    }

    // ------------------------------------------------------------ jobs

    /// Opens a case's archives with `password` (one unlock).
    pub async fn open_archives(
        &mut self,
        password: &[u8],
        archives: &[&[u8]],
        policy: Option<&str>,
        limits: &ExtractLimits,
    ) -> Result<(Opened, JobStats), Failure> {
        let mut blobs = vec![password];
        blobs.extend_from_slice(archives);
        let request = Request::Open {
            policy: policy.map(str::to_owned),
            limits: limits.clone(),
        };
        match self.call(&request, &blobs).await? {
            (Answer::Opened(mut opened), data, stats) => {
                let mut data = data.into_iter();
                for outcome in &mut opened.archives {
                    if let ArchiveOutcome::Opened { files, .. } = outcome {
                        for f in files {
                            f.data = data.next().ok_or_else(missing)?;
                        }
                    }
                }
                Ok((*opened, stats))
            }
            (Answer::Refused(why), _, _) => Err(Failure::Killed(why)),
            _ => Err(Failure::Protocol("unexpected answer".into())),
        }
    }
}

fn missing() -> Failure {
    Failure::Protocol("fewer blobs than files".into())
}

/// A few long-lived workers with one budget, shared by callers; a worker
/// that fails is dropped (killed) and a new one started for the next job.
pub struct WorkerPool {
    budget: Budget,
    policies: Arc<Vec<(String, String)>>,
    idle: Mutex<Vec<Worker>>,
    slots: Semaphore,
}

impl WorkerPool {
    /// Starts `size` workers at once, so the first message waits for none.
    pub async fn start(
        size: usize,
        budget: Budget,
        policies: Vec<(String, String)>,
    ) -> Result<Arc<WorkerPool>, Failure> {
        let size = size.max(1);
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            idle.push(Worker::spawn(budget, &policies).await?);
        }
        Ok(Arc::new(WorkerPool {
            budget,
            policies: Arc::new(policies),
            idle: Mutex::new(idle),
            slots: Semaphore::new(size),
        }))
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The policies workers get (for one-off workers with another budget).
    pub fn policies(&self) -> &[(String, String)] {
        &self.policies
    }

    /// Process ids of the idle workers (for diagnostics and tests).
    pub fn idle_pids(&self) -> Vec<u32> {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(Worker::pid)
            .collect()
    }

    async fn call(
        &self,
        request: &Request,
        blobs: &[&[u8]],
    ) -> Result<(Answer, Vec<Vec<u8>>, JobStats), Failure> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Failure::Spawn("pool closed".into()))?;
        let ready = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut worker = match ready {
            Some(w) => w,
            None => Worker::spawn(self.budget, &self.policies).await?,
        };
        let result = worker.call(request, blobs).await;
        if result.is_ok() && !worker.retiring() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(worker);
        }
        result
    }

    /// Parses and analyses one message. The inner error is a reason the
    /// message cannot be parsed within the MIME limits.
    pub async fn analyse(
        &self,
        raw: &[u8],
        policy: Option<&str>,
        limits: &MimeLimits,
    ) -> Result<(Result<Analysis, String>, JobStats), Failure> {
        let request = Request::Analyse {
            policy: policy.map(str::to_owned),
            limits: limits.clone(),
        };
        analysed(self.call(&request, &[raw]).await?)
    }

    /// The plaintext rule for a message that arrived without TLS.
    pub async fn check_plaintext(
        &self,
        raw: &[u8],
        limits: &MimeLimits,
    ) -> Result<Result<(), PlaintextRefusal>, Failure> {
        let request = Request::CheckPlaintext {
            limits: limits.clone(),
        };
        match self.call(&request, &[raw]).await? {
            (Answer::Plaintext(verdict), _, _) => Ok(verdict),
            (Answer::Refused(why), _, _) => Ok(Err(PlaintextRefusal::NotChecked(why))),
            _ => Err(Failure::Protocol("unexpected answer".into())),
        }
    }
}

/// Analyses one message in a worker of its own with `budget` (a retry
/// with a larger budget than the pool's).
pub async fn analyse_once(
    budget: Budget,
    policies: &[(String, String)],
    raw: &[u8],
    policy: Option<&str>,
    limits: &MimeLimits,
) -> Result<(Result<Analysis, String>, JobStats), Failure> {
    let mut worker = Worker::spawn(budget, policies).await?;
    let request = Request::Analyse {
        policy: policy.map(str::to_owned),
        limits: limits.clone(),
    };
    analysed(worker.call(&request, &[raw]).await?)
}

fn analysed(
    (answer, data, stats): (Answer, Vec<Vec<u8>>, JobStats),
) -> Result<(Result<Analysis, String>, JobStats), Failure> {
    match answer {
        Answer::Analysed(mut a) => {
            if data.len() != a.mail.attachments.len() || a.facts.len() != data.len() {
                return Err(missing());
            }
            for (at, bytes) in a.mail.attachments.iter_mut().zip(data) {
                at.data = bytes;
            }
            Ok((Ok(*a), stats))
        }
        Answer::Unparseable(why) | Answer::Refused(why) => Ok((Err(why), stats)),
        _ => Err(Failure::Protocol("unexpected answer".into())),
    }
}
