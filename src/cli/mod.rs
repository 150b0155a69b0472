//! The command line: `serve` and `messages list`, over the same library
//! functions the server uses. Every subcommand reads the same configuration.

use crate::config::{Config, ConfigError};
use crate::policy::{PolicyError, PolicySet};
use crate::server::{self, ServeError};
use crate::store::{Store, StoreError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "disclosure-mx",
    version,
    about = "Hardened inbound MX for responsible-disclosure reports"
)]
pub struct Cli {
    /// Configuration file (TOML). Without it, the embedded defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log one JSON object per line.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SMTP receiver until SIGTERM.
    Serve,
    /// Stored messages, without their content.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Organisation policies in `policies_dir`.
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Validate every policy and show what it promises, with the deadlines
    /// a report received now would get.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List stored messages (envelopes only).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only messages in this state: pending, filed, quarantined.
        #[arg(long)]
        state: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot encode output: {0}")]
    Output(#[from] serde_json::Error),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let mut config = Config::load(cli.config.as_deref())?;
    config.log.json |= cli.log_json;
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    if let Command::Policies {
        command: PoliciesCommand::Check,
    } = cli.command
    {
        return policies_check(&config);
    }
    runtime.block_on(async {
        match cli.command {
            Command::Policies { .. } => Ok(()),
            Command::Serve => Ok(server::serve(config).await?),
            Command::Messages {
                command: MessagesCommand::List { json, state },
            } => {
                let store = Store::open(&config.store.url, &config.data_dir).await?;
                let messages = store.list(state.as_deref()).await?;
                store.close().await;
                if json {
                    println!("{}", serde_json::to_string_pretty(&messages)?);
                } else {
                    println!(
                        "{:<24} {:>10} {:<11} {:<8} {:<22} RCPT",
                        "QUEUE ID", "SIZE", "STATE", "TLS", "PEER"
                    );
                    for m in &messages {
                        println!(
                            "{:<24} {:>10} {:<11} {:<8} {:<22} {}",
                            m.envelope.queue_id,
                            m.size,
                            m.state,
                            m.envelope.tls_version.as_deref().unwrap_or("none"),
                            m.envelope.peer,
                            m.envelope.rcpt_to.join(",")
                        );
                    }
                }
                Ok(())
            }
        }
    })
}

fn init_logging(config: &Config) {
    let level = config.log.level.parse().unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn policies_check(config: &Config) -> Result<(), CliError> {
    let set = PolicySet::load_dir(&config.policies_dir)?;
    let now = jiff::Timestamp::now();
    for p in set.iter() {
        let d = p.deadlines(now);
        let local = |t: jiff::Timestamp| {
            t.to_zoned(p.timezone.clone())
                .strftime("%a %Y-%m-%d %H:%M %Z")
                .to_string()
        };
        println!("{} ({}) — {}", p.name, p.id, p.file.display());
        println!("  addresses:       {}", p.addresses.join(", "));
        let flags = if p.subject_flags.is_empty() {
            "(none: all mail is a report)".to_owned()
        } else {
            p.subject_flags.join(", ")
        };
        println!("  subject flags:   {flags}");
        println!(
            "  receipt within:  {}; feedback within: {}{}",
            p.receipt_within,
            p.feedback_within,
            if p.feedback_preferred {
                " (preferred)"
            } else {
                ""
            }
        );
        println!(
            "  received now ->  acknowledge by {}, feedback by {}",
            local(d.acknowledge_by),
            local(d.feedback_by)
        );
        println!(
            "  scope:           {} in-scope patterns, {} out-of-scope classes, {} routes",
            p.in_scope.len(),
            p.out_of_scope.len(),
            p.routing.len()
        );
        println!(
            "  plaintext:       {:?}; anonymous reports: {}; retention: {} days",
            p.plaintext, p.anonymous_reports, p.personal_data_retention_days
        );
    }
    Ok(())
}
