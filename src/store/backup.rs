//! Online backups and their restore. A backup is one tar file (mode 0600):
//! `manifest.json` and the database as of one instant — SQLite's
//! `VACUUM INTO` (one read transaction), or `pg_dump` run inside a
//! repeatable-read snapshot that the manifest's counts are read in too —
//! taken while the service runs and writes.
//!
//! It holds report content only sealed, and names the master key by its
//! id, never the key: a backup without its key (`keys export --wrap`, kept
//! apart) is worthless to whoever takes it, and to us.

use super::seal;
use super::{Backend, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Row};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FORMAT: &str = "disclosure-mx backup 1";
const MANIFEST: &str = "manifest.json";
/// A manifest is a few hundred bytes; anything near this is not ours.
const MAX_MANIFEST: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn sql(e: sqlx::Error) -> BackupError {
    BackupError::Store(e.into())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub messages: i64,
    pub cases: i64,
    pub evidence: i64,
    pub audit_entries: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: String,
    /// `sqlite` or `postgres`: a backup restores into the same kind.
    pub backend: String,
    pub schema_version: i64,
    /// The master key that opens it, by id (`keys export` names the same).
    pub key_id: String,
    pub counts: Counts,
    /// The database entry: its name in the tar, size and SHA-256.
    pub database: String,
    pub bytes: u64,
    pub sha256: String,
}

const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM messages) AS messages,
        (SELECT COUNT(*) FROM cases) AS cases,
        (SELECT COUNT(*) FROM case_evidence) AS evidence,
        (SELECT COUNT(*) FROM audit_log) AS audit,
        (SELECT MAX(version) FROM schema_migrations) AS version";

async fn counts(conn: &mut sqlx::AnyConnection) -> Result<(Counts, i64), BackupError> {
    let r = sqlx::query(COUNTS).fetch_one(conn).await.map_err(sql)?;
    Ok((
        Counts {
            messages: r.try_get("messages").map_err(sql)?,
            cases: r.try_get("cases").map_err(sql)?,
            evidence: r.try_get("evidence").map_err(sql)?,
            audit_entries: r.try_get("audit").map_err(sql)?,
        },
        r.try_get("version").map_err(sql)?,
    ))
}

/// The SQLite file a `sqlite:` URL names.
fn sqlite_path(url: &str) -> PathBuf {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// A PostgreSQL URL without its password, and the password (for
/// `PGPASSWORD`), so no secret appears in a process list.
fn pg_target(url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| BackupError::Refused(format!("store URL: {e}")))?;
    let password = parsed.password().map(|p| {
        url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map_or_else(|| p.to_owned(), |(_, v)| v.into_owned())
    });
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), password))
}

fn run_pg_tool(program: &str, args: &[&str], url: &str) -> Result<(), BackupError> {
    let (target, password) = pg_target(url)?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).args(["--dbname", &target]);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().map_err(io(format!("running {program}")))?;
    if !out.status.success() {
        return Err(BackupError::Refused(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = std::fs::File::open(path).map_err(io(path.display().to_string()))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io("reading the database copy"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        ctx.update(&buf[..n]);
    }
    Ok((total, hex::encode(ctx.finish())))
}

/// Writes a backup of `store` to `file` (replaced only once complete).
pub async fn create(store: &Store, file: &Path) -> Result<Manifest, BackupError> {
    let partial = file.with_extension("partial");
    let copy = file.with_extension("db-copy");
    let _ = std::fs::remove_file(&copy);
    let (backend, name, (counts, version)) = match store.backend() {
        Backend::Sqlite => {
            // One read transaction: the copy is the database at one instant.
            sqlx::query("VACUUM INTO $1")
                .bind(copy.to_string_lossy().into_owned())
                .execute(store.pool())
                .await
                .map_err(sql)?;
            let mut conn =
                sqlx::AnyConnection::connect(&format!("sqlite:{}?mode=ro", copy.to_string_lossy()))
                    .await
                    .map_err(sql)?;
            let counted = counts(&mut conn).await?;
            let _ = conn.close().await;
            ("sqlite", "disclosure-mx.db", counted)
        }
        Backend::Postgres => {
            // The counts and the dump read the same snapshot.
            let mut conn = store.connection().await?;
            sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut conn)
                .await
                .map_err(sql)?;
            let (snapshot,): (String,) = sqlx::query_as("SELECT pg_export_snapshot()")
                .fetch_one(&mut conn)
                .await
                .map_err(sql)?;
            let counted = counts(&mut conn).await?;
            let copy_arg = copy.to_string_lossy().into_owned();
            let url = store.url.clone();
            tokio::task::spawn_blocking(move || {
                run_pg_tool(
                    "pg_dump",
                    &[
                        "--format=custom",
                        "--no-owner",
                        "--snapshot",
                        &snapshot,
                        "--file",
                        &copy_arg,
                    ],
                    &url,
                )
            })
            .await
            .map_err(|e| BackupError::Refused(format!("pg_dump: {e}")))??;
            sqlx::raw_sql("COMMIT")
                .execute(&mut conn)
                .await
                .map_err(sql)?;
            ("postgres", "disclosure-mx.pgdump", counted)
        }
    };
    let (bytes, sha256) = sha256_file(&copy)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: jiff::Timestamp::now().to_string(),
        backend: backend.into(),
        schema_version: version,
        key_id: store.sealer().key_id(),
        counts,
        database: name.into(),
        bytes,
        sha256,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Refused(format!("manifest: {e}")))?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io(partial.display().to_string()))?;
    let mut tar = tar::Builder::new(out);
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, &json[..])
        .map_err(io("writing the backup"))?;
    let mut db = std::fs::File::open(&copy).map_err(io("reading the database copy"))?;
    tar.append_file(name, &mut db)
        .map_err(io("writing the backup"))?;
    let out = tar.into_inner().map_err(io("writing the backup"))?;
    out.sync_all().map_err(io("syncing the backup"))?;
    drop(out);
    let _ = std::fs::remove_file(&copy);
    std::fs::rename(&partial, file).map_err(io(file.display().to_string()))?;
    Ok(manifest)
}

/// The manifest of a backup file, and its database entry extracted next to
/// `scratch` (checked against the manifest's size and SHA-256).
fn unpack(file: &Path, scratch: &Path) -> Result<Manifest, BackupError> {
    let f = std::fs::File::open(file).map_err(io(file.display().to_string()))?;
    let mut archive = tar::Archive::new(f);
    let mut manifest: Option<Manifest> = None;
    for entry in archive.entries().map_err(io("reading the backup"))? {
        let mut entry = entry.map_err(io("reading the backup"))?;
        let path = entry.path().map_err(io("reading the backup"))?.into_owned();
        if path == Path::new(MANIFEST) {
            let mut json = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST)
                .read_to_end(&mut json)
                .map_err(io("reading the manifest"))?;
            let m: Manifest = serde_json::from_slice(&json)
                .map_err(|e| BackupError::Refused(format!("not a disclosure-mx backup: {e}")))?;
            if m.format != FORMAT {
                return Err(BackupError::Refused(format!(
                    "unknown backup format {:?}",
                    m.format
                )));
            }
            manifest = Some(m);
        } else if let Some(m) = &manifest
            && path == Path::new(&m.database)
        {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(scratch)
                .map_err(io(scratch.display().to_string()))?;
            std::io::copy(&mut entry, &mut out).map_err(io("extracting the database"))?;
            out.flush().map_err(io("extracting the database"))?;
            out.sync_all().map_err(io("extracting the database"))?;
        }
    }
    let m = manifest.ok_or_else(|| BackupError::Refused("the backup has no manifest".into()))?;
    let (bytes, sha256) = sha256_file(scratch)
        .map_err(|_| BackupError::Refused("the backup has no database".into()))?;
    if (bytes, sha256.as_str()) != (m.bytes, m.sha256.as_str()) {
        return Err(BackupError::Refused(
            "the database in the backup does not match its manifest (damaged?)".into(),
        ));
    }
    Ok(m)
}

/// The manifest of a backup, checked whole, without restoring it.
pub fn inspect(file: &Path) -> Result<Manifest, BackupError> {
    let scratch = file.with_extension("inspect");
    let result = unpack(file, &scratch);
    let _ = std::fs::remove_file(&scratch);
    result
}

/// Restores `file` into the empty store at `url`, with the master key
/// `key` written to `key_file` (unless the key comes from the
/// environment), then opens it and checks the counts against the manifest.
pub async fn restore(
    file: &Path,
    url: &str,
    data_dir: &Path,
    key_file: &Path,
    key: &[u8],
) -> Result<Manifest, BackupError> {
    let url = url.replace("{data_dir}", &data_dir.to_string_lossy());
    let is_sqlite = url.starts_with("sqlite:");
    let target = if is_sqlite {
        let path = sqlite_path(&url);
        if path.exists() {
            return Err(BackupError::Refused(format!(
                "{} exists: restore only into an empty store (move it away first)",
                path.display()
            )));
        }
        Some(path)
    } else {
        None
    };
    let key_id = seal::key_id_of(key)?;
    let from_env = std::env::var(seal::KEY_ENV).is_ok();
    if !from_env && key_file.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: restore only into an empty store",
            key_file.display()
        )));
    }
    std::fs::create_dir_all(data_dir).map_err(io(data_dir.display().to_string()))?;
    let scratch = match &target {
        Some(path) => path.with_extension("restoring"),
        None => data_dir.join("restore.pgdump"),
    };
    let manifest = unpack(file, &scratch);
    let manifest = match manifest {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&scratch);
            return Err(e);
        }
    };
    let refuse = |why: String| {
        let _ = std::fs::remove_file(&scratch);
        Err(BackupError::Refused(why))
    };
    if manifest.key_id != key_id {
        return refuse(format!(
            "this key (id {key_id}) is not the backup's (id {})",
            manifest.key_id
        ));
    }
    if (manifest.backend == "sqlite") != is_sqlite {
        return refuse(format!(
            "a {} backup cannot be restored into this store",
            manifest.backend
        ));
    }
    match &target {
        Some(path) => {
            std::fs::rename(&scratch, path).map_err(io(path.display().to_string()))?;
        }
        None => {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.map_err(sql)?;
            let (tables,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'",
            )
            .fetch_one(&mut conn)
            .await
            .map_err(sql)?;
            let _ = conn.close().await;
            if tables > 0 {
                return refuse(
                    "the database is not empty: restore only into an empty store".into(),
                );
            }
            let dump = scratch.to_string_lossy().into_owned();
            let pg_url = url.clone();
            let restored = tokio::task::spawn_blocking(move || {
                run_pg_tool(
                    "pg_restore",
                    &["--no-owner", "--exit-on-error", &dump],
                    &pg_url,
                )
            })
            .await
            .map_err(|e| BackupError::Refused(format!("pg_restore: {e}")));
            let _ = std::fs::remove_file(&scratch);
            restored??;
        }
    }
    if !from_env {
        seal::write_master_key(key_file, key)?;
    }
    let store = Store::open(&url, data_dir, key_file).await?;
    let mut conn = store.connection().await?;
    let (restored, _) = counts(&mut conn).await?;
    let _ = conn.close().await;
    store.close().await;
    if restored != manifest.counts {
        return Err(BackupError::Refused(format!(
            "restored counts {restored:?} differ from the manifest's {:?}",
            manifest.counts
        )));
    }
    Ok(manifest)
}
