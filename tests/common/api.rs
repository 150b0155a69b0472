//! The JSON API through curl, as a service account's script would call it.
#![allow(dead_code)]

use super::sh;
use serde_json::Value;
use std::process::Command;

/// `method path` with the bearer token and an optional JSON body: the
/// status and the JSON answer (`Value::Null` for an empty one).
pub fn call(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let (ok, out) = sh(cmd.arg(format!("{base}{path}")));
    assert!(ok, "{out}");
    let (text, status) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status.parse().unwrap(), value)
}
