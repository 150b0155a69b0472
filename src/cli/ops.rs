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
