//! A new, empty database on a PostgreSQL server, for the tests (through
//! `common::fresh_database`) and the bench alike.

use std::process::{Command, Stdio};

/// Creates `<prefix>_<pid>_<nanos>` on the server `admin` names (an admin
/// URL ending in a database name); returns the new database's URL.
pub fn create_database(admin: &str, prefix: &str) -> Result<String, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    let name = format!("{prefix}_{}_{nanos}", std::process::id());
    let out = Command::new("psql")
        .args([admin, "-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("admin URL without a database")?;
    Ok(format!("{base}/{name}"))
}
