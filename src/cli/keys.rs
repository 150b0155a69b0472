//! `keys`: the organisations' decryption keys. `status` and `unlock` talk
//! to the running service over its control socket (`control`): a
//! passphrase unlocks the key in the service's memory and goes nowhere
//! else. `public` prints a key to publish.

use super::CliError;
use crate::config::Config;
use crate::control::{self, Request};
use crate::policy::PolicySet;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Each organisation's OpenPGP key in the running service: its
    /// fingerprint, and whether it waits for its passphrase.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Unlock an organisation's passphrase-protected OpenPGP key in the
    /// running service; the reports that waited for it are then
    /// decrypted. Prompts without echo.
    Unlock {
        org: String,
        /// Read the passphrase from the first line of standard input.
        #[arg(long)]
        passphrase_stdin: bool,
        /// Who does it, for the audit trail (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Print an organisation's public OpenPGP key (armored), to publish
    /// where its security.txt `Encryption:` points.
    Public { org: String },
    /// Replace the master key: a new key, every sealed value re-sealed
    /// under it in small batches while the service runs, the audit chain
    /// re-signed, the search index rebuilt, then the old key deleted. Safe
    /// to kill at any point; run it again to resume.
    Rotate {
        /// Values re-sealed per committed transaction.
        #[arg(long, default_value_t = 200)]
        batch: i64,
        /// Who does it, for the audit trail (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Write the master key wrapped under a passphrase (PBKDF2, AES-GCM)
    /// to FILE, to keep apart from the backups it opens. Prompts twice
    /// without echo; at least 12 characters.
    Export {
        /// Where the wrapped key goes (mode 0600; never overwritten).
        #[arg(long = "wrap", value_name = "FILE")]
        wrap: std::path::PathBuf,
        /// Read the passphrase from the first line of standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

pub(super) async fn run(config: &Config, command: KeysCommand) -> Result<(), CliError> {
    let failed = |e: String| CliError::Usage(e);
    match command {
        KeysCommand::Status { json } => {
            let status = control::call(&config.data_dir, &Request::KeyStatus)
                .await
                .map_err(failed)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{:<14} {:<8} FINGERPRINT", "ORGANISATION", "STATE");
                for k in status.as_array().into_iter().flatten() {
                    let locked = k["locked"].as_bool().unwrap_or(false);
                    println!(
                        "{:<14} {:<8} {}",
                        k["org"].as_str().unwrap_or(""),
                        if locked { "locked" } else { "ready" },
                        k["fingerprint"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Unlock {
            org,
            passphrase_stdin,
            actor,
        } => {
            let passphrase = read_password(&format!("{org}'s OpenPGP key"), passphrase_stdin)?;
            let request = Request::UnlockKey {
                org,
                passphrase,
                actor: super::cases::actor(actor),
            };
            let done = control::call(&config.data_dir, &request)
                .await
                .map_err(failed)?;
            println!(
                "{} unlocked ({}); {} report(s) queued to decrypt",
                done["org"].as_str().unwrap_or(""),
                done["fingerprint"].as_str().unwrap_or(""),
                done["requeued"]
            );
            Ok(())
        }
        KeysCommand::Export {
            wrap,
            passphrase_stdin,
        } => {
            let key = crate::store::seal::read_master_key(&config.store.key_path(&config.data_dir))
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let passphrase = read_password("the wrapped key", passphrase_stdin)?;
            if !passphrase_stdin {
                let again = read_password("the wrapped key (again)", false)?;
                if *again != *passphrase {
                    return Err(CliError::Usage("the passphrases differ".into()));
                }
            }
            let text = crate::store::seal::wrap(&key, &passphrase)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            if wrap.exists() {
                return Err(CliError::Usage(format!(
                    "{} exists; not overwritten",
                    wrap.display()
                )));
            }
            crate::private_file::write(&wrap, text.as_bytes())
                .map_err(|e| CliError::Usage(format!("{}: {e}", wrap.display())))?;
            println!(
                "master key {} wrapped into {}",
                crate::store::seal::wrapped_key_id(&text).unwrap_or_default(),
                wrap.display()
            );
            Ok(())
        }
        KeysCommand::Rotate { batch, actor } => rotate(config, batch, actor).await,
        KeysCommand::Public { org } => {
            let policies = PolicySet::load_dir(&config.policies_dir)?;
            let keyring = crate::keyring::Keyring::load(&policies)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            match keyring.public_key(&org) {
                Some(key) => {
                    print!("{key}");
                    Ok(())
                }
                None => Err(CliError::Usage(format!(
                    "organisation {org:?} has no OpenPGP key"
                ))),
            }
        }
    }
}

/// The password, from a no-echo prompt or the first line of stdin, in a
/// buffer wiped on drop. It is never logged or stored.
pub(super) fn read_password(
    reference: &str,
    from_stdin: bool,
) -> Result<zeroize::Zeroizing<String>, CliError> {
    let mut line = zeroize::Zeroizing::new(String::new());
    if from_stdin {
        std::io::stdin()
            .read_line(&mut line)
            .map_err(CliError::Stdin)?;
    } else {
        *line = rpassword::prompt_password(format!("Password for {reference}: "))
            .map_err(CliError::Stdin)?;
    }
    let trimmed = zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if trimmed.is_empty() {
        return Err(CliError::Usage("empty password".into()));
    }
    Ok(trimmed)
}

/// Tells the running service, if any, to load the key files again, and
/// checks it now seals with `expect`.
async fn reload_service(config: &Config, expect: &str) -> Result<bool, CliError> {
    match control::call_if_running(&config.data_dir, &Request::ReloadMasterKey).await {
        Ok(None) => Ok(false),
        Ok(Some(answer)) if answer["key_id"] == expect => Ok(true),
        Ok(Some(answer)) => Err(CliError::Usage(format!(
            "the running service reloaded key {} instead of {expect}; nothing retired",
            answer["key_id"]
        ))),
        Err(e) => Err(CliError::Usage(format!(
            "the running service did not take the new key ({e}); nothing retired, run it again"
        ))),
    }
}

async fn rotate(config: &Config, batch: i64, actor: Option<String>) -> Result<(), CliError> {
    use crate::store::rotate;
    let failed = |e: rotate::RotateError| CliError::Usage(e.to_string());
    let key_file = config.store.key_path(&config.data_dir);
    let (old, new) = rotate::begin(&key_file).map_err(failed)?;
    println!("master key {} -> {new}", old.join(", "));
    let running = reload_service(config, &new).await?;
    if running {
        println!("the running service seals with {new} now");
    }
    let store = crate::store::Store::open(&config.store.url, &config.data_dir, &key_file).await?;
    let resealed = rotate::reseal(&store, batch, |_| {})
        .await
        .map_err(failed)?;
    println!("{resealed} values re-sealed");
    match crate::store::audit::rekey(&store).await? {
        Ok(n) => println!("audit chain: {n} entries verified and re-signed"),
        Err(verdict) => {
            store.close().await;
            return Err(CliError::Usage(format!(
                "audit chain does not verify ({verdict:?}): not re-signed; the old key is kept"
            )));
        }
    }
    let service = super::cases::service(&store, config)?;
    let indexed = service.reindex().await?;
    println!("search index rebuilt ({indexed} cases)");
    // What the service sealed under the old key before it reloaded.
    rotate::reseal(&store, batch, |_| {})
        .await
        .map_err(failed)?;
    let stale = rotate::stale(&store).await.map_err(failed)?;
    if !stale.is_empty() {
        store.close().await;
        return Err(CliError::Usage(format!(
            "values still sealed under another key ({stale:?}); the old key is kept: run keys rotate again"
        )));
    }
    let who = super::cases::actor(actor);
    crate::store::audit::record_now(
        &store,
        &crate::store::audit::Who {
            actor: &who,
            source: "cli",
        }
        .entry(
            crate::store::audit::AuditAction::KeyRotated,
            "store",
            &format!("master key {} replaced by {new}", old.join(", ")),
        ),
    )
    .await?;
    store.close().await;
    let retired = rotate::retire(&key_file).map_err(failed)?;
    if running {
        reload_service(config, &new).await?;
    }
    println!("retired and deleted: {}", retired.join(", "));
    Ok(())
}
