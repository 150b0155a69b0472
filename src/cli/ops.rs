//! Commands for the people who run the service rather than its cases:
//! shell completions and the man page, generated from the same clap
//! definition the parser uses, so they cannot drift from it.

use super::{Cli, CliError};
use crate::config::Config;
use clap::{CommandFactory, Subcommand};

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// The zone lines to publish for every domain this MX receives for:
    /// MX, `_mta-sts` (its id follows the policy text), `_smtp._tls` when
    /// `mta_sts.tls_rpt` is set, and a DANE TLSA record for the
    /// certificate in use.
    Records,
}

#[derive(Debug, Subcommand)]
pub enum DeliveryCommand {
    /// What other mail servers report about delivering to us (RFC 8460
    /// TLS reports mailed to `mta_sts.tls_rpt`): sessions and failures by
    /// sending organisation and domain, most failures first.
    Health {
        /// Reports that ended within this many days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn delivery(
    service: &crate::cases::Cases,
    who: &crate::cases::Principal,
    command: DeliveryCommand,
) -> Result<(), CliError> {
    let DeliveryCommand::Health { days, json } = command;
    let rows = service.delivery_health(who, days).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<28} {:<22} {:>7} {:>10} {:>8}  FAILURES",
        "ORGANISATION", "DOMAIN", "REPORTS", "SUCCESSFUL", "FAILED"
    );
    for h in rows {
        let failures: Vec<String> = h.failures.iter().map(|(t, n)| format!("{t} {n}")).collect();
        println!(
            "{:<28} {:<22} {:>7} {:>10} {:>8}  {}",
            h.organization,
            h.policy_domain,
            h.reports,
            h.successful,
            h.failed,
            failures.join(", ")
        );
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration: every default, with the file and the
    /// environment on top, secrets masked (like `postconf -n` and more).
    Show,
    /// Every key with its default and why (like `postconf -d`): the
    /// documented example. Each key can also be set by the environment:
    /// DISCLOSURE_MX_ and its path in capitals (`[limits] max_errors` is
    /// DISCLOSURE_MX_LIMITS_MAX_ERRORS), or NAME_FILE to read it from a file.
    Defaults,
}

pub fn config(path: Option<&std::path::Path>, command: ConfigCommand) -> Result<(), CliError> {
    match command {
        ConfigCommand::Defaults => print!("{}", crate::config::env::EXAMPLE),
        ConfigCommand::Show => {
            // Checked whole first: an invalid configuration is an error
            // here as at start-up.
            Config::load(path)?;
            print!("{}", Config::effective(path)?);
        }
    }
    Ok(())
}

pub fn dns(config: &Config, command: DnsCommand) -> Result<(), CliError> {
    let DnsCommand::Records = command;
    let policies = crate::server::load_policies(config)?;
    let mut addresses = config.smtp.accept_for.clone();
    addresses.extend(policies.addresses());
    let domains = crate::publish::domains(addresses.iter().map(String::as_str));
    let cert = config
        .tls
        .cert_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("tls/dev-cert.pem"));
    let tlsa = std::fs::read(&cert)
        .ok()
        .and_then(|pem| crate::publish::tlsa_3_1_1(&pem).ok());
    for line in crate::publish::records(
        &config.mta_sts,
        &config.smtp.hostname,
        &domains,
        tlsa.as_deref(),
    ) {
        println!("{line}");
    }
    // What we send: DKIM for each domain, and where SPF must point.
    if let Some(dkim) = crate::outbound::relay::load_dkim(&config.outbound)? {
        let (name, value) = dkim.record();
        for d in &domains {
            println!("{name}.{d}. TXT {value}");
        }
    }
    if let Some(relay) = &config.outbound.relay {
        let host = relay.rsplit_once(':').map_or(relay.as_str(), |(h, _)| h);
        println!(
            "; SPF: each domain's TXT \"v=spf1 ...\" must allow the relay our mail leaves through ({host}), e.g. \"v=spf1 a:{host} -all\""
        );
    }
    Ok(())
}

pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "disclosure-mx", &mut std::io::stdout());
    Ok(())
}

pub fn manpage() -> Result<(), CliError> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| CliError::Usage(format!("cannot write the man page: {e}")))
}

/// `outbox`: what we send, and an operator's hands on it.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Every entry, without bodies.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Send a pending or failed message now, with a fresh count of
    /// attempts (after fixing the relay, say).
    Retry {
        id: i64,
        /// Who does it, for the case timeline (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Never send a pending or failed message (it stays listed as
    /// suppressed, "cancelled by an operator").
    Cancel {
        id: i64,
        /// Who does it, for the case timeline (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
}
