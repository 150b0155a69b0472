//! `saml`: what the identity provider's administrator needs (our
//! metadata), and the rollover of our signing key. The key signs our
//! logout messages and, if configured, our AuthnRequests, so the IdP must
//! know a new key before we sign with it:
//! 1. `saml key next` makes a key and publishes it beside the current one
//!    (our metadata lists both); the admin loads the metadata into the IdP;
//! 2. `saml key switch` signs with the new key from the next request on,
//!    in every receiver sharing the database, and forgets the old one;
//!    the metadata lists the new key alone.
//!
//! `saml key withdraw` drops a next key unused.

use super::CliError;
use crate::config::Config;
use crate::store::Store;
use crate::store::audit::{self, AuditAction, Who};
use crate::web::auth::sp::{self, Rollover};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SamlCommand {
    /// Print our SAML metadata (the same document `/saml/metadata`
    /// serves), so it can be handed to the IdP before the service is
    /// reachable. Needs `web.public_url`, or `web.listen` with a port.
    Metadata,
    /// Our signing key and its rollover.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// The key in use and, during a rollover, the next one: their
    /// SHA-256 fingerprints and last day of validity.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Make the next key and publish it in our metadata beside the current
    /// one. Load the metadata into the IdP, then run `saml key switch`.
    Next {
        /// Who does it, for the audit trail (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Sign with the next key from now on (running receivers pick it up at
    /// their next SAML request) and forget the old one.
    Switch {
        #[arg(long)]
        actor: Option<String>,
    },
    /// Drop the next key unused.
    Withdraw {
        #[arg(long)]
        actor: Option<String>,
    },
}

fn failed(e: sp::SpError) -> CliError {
    CliError::Usage(e.to_string())
}

pub(super) async fn run(
    store: &Store,
    config: &Config,
    command: SamlCommand,
) -> Result<(), CliError> {
    match command {
        SamlCommand::Metadata => {
            let local = match config.web.listen {
                Some(l) if config.web.public_url.is_some() || l.port() != 0 => l,
                _ if config.web.public_url.is_some() => ([127, 0, 0, 1], 0).into(),
                _ => {
                    return Err(CliError::Usage(
                        "set web.public_url (or web.listen with a port): the metadata names our URLs"
                            .into(),
                    ));
                }
            };
            let keys = sp::keys(store).await.map_err(failed)?;
            let our = sp::OurSide::new(&config.saml, &crate::web::public_url(config, local));
            let xml = our.metadata_xml(&keys.published()).map_err(failed)?;
            println!("{xml}");
            Ok(())
        }
        SamlCommand::Key { command } => key(store, command).await,
    }
}

async fn key(store: &Store, command: KeyCommand) -> Result<(), CliError> {
    let (rollover, actor) = match command {
        KeyCommand::Status { json } => return status(store, json).await,
        KeyCommand::Next { actor } => (sp::begin_rollover(store).await, actor),
        KeyCommand::Switch { actor } => (sp::switch(store).await, actor),
        KeyCommand::Withdraw { actor } => (sp::withdraw(store).await, actor),
    };
    let (action, detail) = match rollover.map_err(failed)? {
        Rollover::Begun(next) => {
            println!(
                "next key published: {}\nour metadata now lists it beside the current key: load it into the IdP, then run `disclosure-mx saml key switch`",
                sp::fingerprint(&next)
            );
            (
                AuditAction::SamlKeyNext,
                format!("next SAML signing key {} published", sp::fingerprint(&next)),
            )
        }
        Rollover::AlreadyBegun(next) => {
            return Err(CliError::Usage(format!(
                "a next key is published already ({}): switch to it, or withdraw it first",
                sp::fingerprint(&next)
            )));
        }
        Rollover::Switched { old, new } => {
            println!(
                "now signing with {}; {} is forgotten and no longer in our metadata",
                sp::fingerprint(&new),
                sp::fingerprint(&old)
            );
            (
                AuditAction::SamlKeySwitch,
                format!(
                    "SAML signing key {} replaced by {}",
                    sp::fingerprint(&old),
                    sp::fingerprint(&new)
                ),
            )
        }
        Rollover::Withdrawn(next) => {
            println!("next key {} withdrawn", sp::fingerprint(&next));
            (
                AuditAction::SamlKeyWithdraw,
                format!("next SAML signing key {} withdrawn", sp::fingerprint(&next)),
            )
        }
        Rollover::NotBegun => {
            return Err(CliError::Usage(
                "no next key is published: run `disclosure-mx saml key next` first".into(),
            ));
        }
    };
    let who = super::cases::actor(actor);
    audit::record_now(
        store,
        &Who {
            actor: &who,
            source: "cli",
        }
        .entry(action, "saml", &detail),
    )
    .await?;
    Ok(())
}

async fn status(store: &Store, json: bool) -> Result<(), CliError> {
    let keys = sp::keys(store).await.map_err(failed)?;
    let describe = |cert: &samael::crypto::CertificateDer| {
        serde_json::json!({
            "fingerprint": sp::fingerprint(cert),
            "not_after": sp::not_after(cert),
        })
    };
    if json {
        let out = serde_json::json!({
            "current": describe(&keys.current.cert),
            "next": keys.next.as_ref().map(describe),
        });
        println!("{out:#}");
        return Ok(());
    }
    let line = |what: &str, cert: &samael::crypto::CertificateDer| {
        println!(
            "{what:<8} {}  valid until {}",
            sp::fingerprint(cert),
            sp::not_after(cert).unwrap_or_else(|| "?".into())
        );
    };
    line("current", &keys.current.cert);
    match &keys.next {
        Some(next) => line("next", next),
        None => println!("next     none (no rollover under way)"),
    }
    Ok(())
}
