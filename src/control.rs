//! The control socket: how the operator's CLI reaches the running service
//! for what only the running service can do — today, unlocking an
//! organisation's OpenPGP key, whose passphrase must stay in the service's
//! memory and never touch the disk.
//!
//! A Unix socket in `data_dir` (`control.sock`, mode 0600: only the
//! service's user, or root, can connect). One request per connection: a
//! JSON line in, a JSON line out, the request bounded by `MAX_REQUEST`.
//! The peer's uid (SO_PEERCRED) is named in the audit trail beside the
//! login name the CLI gives.

use crate::cases::{Cases, Door, Principal, Scope};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;
use zeroize::Zeroizing;

/// The socket's file name in `data_dir`.
pub const SOCKET: &str = "control.sock";

/// A request line is at most this long: a passphrase and two names.
const MAX_REQUEST: u64 = 16 * 1024;

/// A client that sends nothing for this long is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// No `Debug`: a request can hold a passphrase, which must never reach a
/// log line.
#[derive(Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Unlock `org`'s OpenPGP key with `passphrase`.
    UnlockKey {
        org: String,
        passphrase: Zeroizing<String>,
        /// The operator's login name, for the audit trail.
        actor: String,
    },
    /// Every organisation's OpenPGP key: fingerprint, locked or not.
    KeyStatus,
    /// Re-read the master key files (a rotation switched them).
    ReloadMasterKey,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub result: serde_json::Value,
}

/// The socket's path for `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Binds the socket (replacing a stale one), mode 0600.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves requests until `stop` fires.
pub async fn serve(
    listener: UnixListener,
    cases: Arc<Cases>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            s = listener.accept() => s,
            _ = stop.changed() => return,
        };
        match stream {
            Ok((stream, _)) => {
                let cases = Arc::clone(&cases);
                tokio::spawn(async move {
                    if let Err(e) = one(stream, &cases).await {
                        warn!(error = %e, "control request failed");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn one(stream: UnixStream, cases: &Cases) -> std::io::Result<()> {
    let uid = stream.peer_cred().map(|c| c.uid()).ok();
    let (read, mut write) = stream.into_split();
    let mut line = Zeroizing::new(String::new());
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    let answer = match read {
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => handle(request, uid, cases).await,
            Err(e) => refused(format!("bad request: {e}")),
        },
        Ok(Err(e)) => refused(format!("reading the request: {e}")),
        Err(_) => refused("no request within 10 seconds".into()),
    };
    let mut out = serde_json::to_vec(&answer).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await
}

fn refused(error: String) -> Answer {
    Answer {
        ok: false,
        error: Some(error),
        result: serde_json::Value::Null,
    }
}

async fn handle(request: Request, uid: Option<u32>, cases: &Cases) -> Answer {
    let operator = |actor: &str| Principal {
        id: actor.to_owned(),
        door: Door::Cli,
        source: match uid {
            Some(uid) => format!("cli (uid {uid})"),
            None => "cli".into(),
        },
        scope: Scope::All,
    };
    match request {
        Request::UnlockKey {
            org,
            passphrase,
            actor,
        } => match cases.unlock_key(&operator(&actor), &org, passphrase).await {
            Ok(done) => Answer {
                ok: true,
                error: None,
                result: serde_json::to_value(done).unwrap_or_default(),
            },
            Err(e) => refused(e.to_string()),
        },
        Request::KeyStatus => Answer {
            ok: true,
            error: None,
            result: serde_json::to_value(cases.key_status(&operator("cli"))).unwrap_or_default(),
        },
        Request::ReloadMasterKey => match cases.reload_master_key() {
            Ok((current, retired)) => Answer {
                ok: true,
                error: None,
                result: serde_json::json!({ "key_id": current, "retired_kept": retired }),
            },
            Err(e) => refused(e.to_string()),
        },
    }
}

/// Like `call`, but Ok(None) when no service runs on `data_dir` (no
/// socket, or a stale one nobody listens on).
pub async fn call_if_running(
    data_dir: &Path,
    request: &Request,
) -> Result<Option<serde_json::Value>, String> {
    match UnixStream::connect(path(data_dir)).await {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        _ => call(data_dir, request).await.map(Some),
    }
}

/// The CLI's side: sends `request` to the service running on `data_dir`.
pub async fn call(data_dir: &Path, request: &Request) -> Result<serde_json::Value, String> {
    let path = path(data_dir);
    let mut stream = UnixStream::connect(&path).await.map_err(|e| {
        format!(
            "cannot reach the running service at {}: {e} (is `disclosure-mx serve` running with this config?)",
            path.display()
        )
    })?;
    let mut line = Zeroizing::new(serde_json::to_vec(request).map_err(|e| e.to_string())?);
    line.push(b'\n');
    stream.write_all(&line).await.map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(stream.take(1 << 20))
        .read_line(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let answer: Answer =
        serde_json::from_str(&answer).map_err(|e| format!("bad answer from the service: {e}"))?;
    if answer.ok {
        Ok(answer.result)
    } else {
        Err(answer.error.unwrap_or_else(|| "refused".into()))
    }
}
