//! `retention run` and `reporters erase|export`: personal data only as
//! long as needed, and a person's rights over it
//! (`crate::cases::retention`). Operator only: these cross organisations.

use super::CliError;
use super::cases::principal;
use crate::cases::Cases;
use crate::cases::retention::ErasedCase;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Erase the personal data of every case resolved, closed or junked
    /// for longer than its policy's personal_data_retention_days (the
    /// service also does it hourly). --dry-run lists them only.
    Run {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportersCommand {
    /// Erase a person from every case of every organisation (GDPR art.
    /// 17): their address, name, contact, envelopes, raw messages and
    /// mentions in the texts kept. The audit trail names a keyed hash of
    /// the address, not the address.
    Erase {
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// Print everything stored about a person as JSON (GDPR art. 15).
    Export { address: String },
}

fn print_erased(cases: &[ErasedCase], dry_run: bool, json: bool) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(cases)?);
        return Ok(());
    }
    for c in cases {
        if dry_run {
            println!("{} ({}): would be erased", c.reference, c.org);
        } else {
            println!(
                "{} ({}): erased {} raw message(s), {} conversation sender(s), {} outbox address(es), {} index entries; {} mention(s) redacted",
                c.reference,
                c.org,
                c.removed.raw_messages,
                c.removed.conversation_senders,
                c.removed.outbox_addresses,
                c.removed.index_entries,
                c.redacted
            );
        }
    }
    println!("{} case(s)", cases.len());
    Ok(())
}

pub(super) async fn retention_command(
    cases: &Cases,
    for_orgs: &[String],
    command: RetentionCommand,
) -> Result<(), CliError> {
    let RetentionCommand::Run { dry_run, json } = command;
    let erased = cases
        .run_retention(&principal(Some("retention".into()), for_orgs), dry_run)
        .await?;
    print_erased(&erased, dry_run, json)
}

pub(super) async fn reporters_command(
    cases: &Cases,
    for_orgs: &[String],
    command: ReportersCommand,
) -> Result<(), CliError> {
    let operator = principal(None, for_orgs);
    match command {
        ReportersCommand::Erase { address, json } => {
            let erased = cases.erase_reporter(&operator, &address).await?;
            print_erased(&erased, false, json)
        }
        ReportersCommand::Export { address } => {
            let export = cases.export_reporter(&operator, &address).await?;
            println!("{}", serde_json::to_string_pretty(&export)?);
            Ok(())
        }
    }
}
