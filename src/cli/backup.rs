//! `backup`: an online copy of the store with its manifest, and its
//! restore into an empty store with the master key unwrapped from the file
//! `keys export --wrap` wrote.

use super::CliError;
use crate::config::Config;
use crate::store::backup::{self, Manifest};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Copy the store, as of one instant, while the service runs:
    /// `VACUUM INTO` (SQLite) or `pg_dump` (PostgreSQL), with a manifest
    /// naming the key by its id. The key is not in it.
    Create { file: PathBuf },
    /// Restore FILE into the configured store, which must be empty, with
    /// the master key from the wrapped-key file (prompts for its
    /// passphrase). The service must not be running on it.
    Restore {
        file: PathBuf,
        /// The file `keys export --wrap` wrote.
        #[arg(long = "key", value_name = "WRAPPED_KEY")]
        key: PathBuf,
        /// Read the passphrase from the first line of standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Check a backup whole and print its manifest.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn print(m: &Manifest) {
    println!(
        "{} backup of {}: schema {}, key {}",
        m.backend, m.created_at, m.schema_version, m.key_id
    );
    println!(
        "  {} messages, {} cases, {} evidence objects, {} audit entries",
        m.counts.messages, m.counts.cases, m.counts.evidence, m.counts.audit_entries
    );
    println!("  {} ({} bytes, sha256 {})", m.database, m.bytes, m.sha256);
}

fn refused(e: backup::BackupError) -> CliError {
    CliError::Usage(e.to_string())
}

/// `restore` and `inspect`, which must not open (and so create) a store.
pub(super) async fn run_without_store(
    config: &Config,
    command: BackupCommand,
) -> Result<(), CliError> {
    match command {
        BackupCommand::Restore {
            file,
            key,
            passphrase_stdin,
        } => {
            let wrapped = std::fs::read_to_string(&key)
                .map_err(|e| CliError::Usage(format!("{}: {e}", key.display())))?;
            let passphrase = super::keys::read_password("the wrapped key", passphrase_stdin)?;
            let key = crate::store::seal::unwrap(&wrapped, &passphrase)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let m = backup::restore(
                &file,
                &config.store.url,
                &config.data_dir,
                &config.store.key_path(&config.data_dir),
                &key,
            )
            .await
            .map_err(refused)?;
            println!("restored:");
            print(&m);
            Ok(())
        }
        BackupCommand::Inspect { file, json } => {
            let m = backup::inspect(&file).map_err(refused)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                print(&m);
            }
            Ok(())
        }
        BackupCommand::Create { .. } => Err(CliError::Usage("create needs the store".into())),
    }
}

pub(super) async fn create(store: &crate::store::Store, file: PathBuf) -> Result<(), CliError> {
    let m = backup::create(store, &file).await.map_err(refused)?;
    println!("written {}:", file.display());
    print(&m);
    Ok(())
}
