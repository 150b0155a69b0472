//! The command line: `serve` and `messages list`, over the same library
//! functions the server uses. Every subcommand reads the same configuration.

mod backup;
mod cases;
mod cases_args;
mod clocks;
mod keys;
mod ops;
mod privacy;
mod report;
mod saml;

use crate::cases::CaseError;
use crate::config::{Config, ConfigError};
use crate::policy::{PolicyError, PolicySet};
use crate::server::{self, ServeError};
use crate::store::audit::{AuditAction, Who};
use crate::store::{Store, StoreError};
use cases::{actor, local};
pub use cases_args::{CasesCommand, ExportFormat};
use clap::{Parser, Subcommand};
pub use ops::OutboxCommand;
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
    /// Act for this organisation only (repeatable): cases of others are
    /// answered like missing ones, as in the web interface and the API.
    /// Without it, the operator at the machine acts for every one.
    #[arg(long = "for-org", global = true, value_name = "ORG")]
    pub for_orgs: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SMTP receiver (and, with `[web]`, the analyst interface and
    /// JSON API) until SIGTERM.
    Serve {
        /// Development only: a built-in identity provider that signs anyone
        /// in, labelled on every page; loopback only.
        #[arg(long)]
        dev_idp: bool,
    },
    /// Stored messages, without their content.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Disclosure cases filed by intake.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Open a case's encrypted archives with the password the reporter sent
    /// by another channel. Prompts without echo.
    Unlock {
        reference: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Who does it, for the case timeline (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// API service accounts (bearer tokens scoped to organisations).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Mail we send (receipts): what is queued, sent, failed or suppressed.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Organisation policies in `policies_dir`.
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Whether the organisations keep their policies' promises.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Personal data past its policy's retention period.
    Retention {
        #[command(subcommand)]
        command: privacy::RetentionCommand,
    },
    /// A person's rights over what is stored about them: erasure and
    /// access, across every organisation.
    Reporters {
        #[command(subcommand)]
        command: privacy::ReportersCommand,
    },
    /// The organisations' decryption keys: status, unlocking, publishing.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Single sign-on: what the identity provider's administrator needs.
    Saml {
        #[command(subcommand)]
        command: saml::SamlCommand,
    },
    /// The configuration: effective (secrets masked), or the defaults.
    Config {
        #[command(subcommand)]
        command: ops::ConfigCommand,
    },
    /// How other mail servers fare delivering to us (TLS reports).
    Delivery {
        #[command(subcommand)]
        command: ops::DeliveryCommand,
    },
    /// What to publish in DNS for this MX.
    Dns {
        #[command(subcommand)]
        command: ops::DnsCommand,
    },
    /// Online backups of the store, and their restore.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Shell completions for bash, zsh, fish, elvish or PowerShell, on
    /// standard output (the package installs them).
    Completions { shell: clap_complete::Shell },
    /// The man page, disclosure-mx(1), as roff on standard output.
    Manpage,
    /// Internal: a parse worker, started by the service itself with an
    /// empty environment and only its pipes (`intake::worker`).
    #[command(name = "intake-worker", hide = true)]
    IntakeWorker {
        #[arg(long)]
        memory_mib: u64,
        #[arg(long)]
        cpu_seconds: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Service levels per organisation: open cases by state, overdue and
    /// due within one business day; for the last 90 days the share of
    /// receipts and of feedback sent on time, and the median business
    /// days to acknowledge and to first feedback; 12 weeks of reports.
    Sla {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create {
        name: String,
        /// An organisation the token may see (repeatable).
        #[arg(long = "org", required = true)]
        orgs: Vec<String>,
    },
    List,
    Revoke {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the chain: exits non-zero, naming the entry, if any entry was
    /// edited, removed, reordered, or the newest ones truncated.
    Verify,
    /// Every entry, oldest first.
    List {
        #[arg(long)]
        json: bool,
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
    /// Put a quarantined message back in the intake queue.
    Requeue { queue_id: String },
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
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read standard input: {0}")]
    Stdin(std::io::Error),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error(transparent)]
    Token(#[from] crate::web::api::tokens::TokenError),
    #[error("audit trail broken at entry {at_entry}: {reason}")]
    AuditBroken { at_entry: i64, reason: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot encode output: {0}")]
    Output(#[from] serde_json::Error),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::IntakeWorker {
        memory_mib,
        cpu_seconds,
    } = cli.command
    {
        // Before anything else: no configuration, no logging, no runtime.
        let budget = crate::intake::worker::Budget {
            memory_mib,
            cpu_seconds,
            wall: std::time::Duration::ZERO,
        };
        return match crate::intake::worker::child::run(budget) {
            code if code == std::process::ExitCode::SUCCESS => Ok(()),
            _ => Err(CliError::Usage("intake worker stopped".into())),
        };
    }
    match cli.command {
        Command::Completions { shell } => return ops::completions(shell),
        Command::Manpage => return ops::manpage(),
        Command::Config { command } => return ops::config(cli.config.as_deref(), command),
        _ => {}
    }
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
    if let Command::Dns { command } = cli.command {
        return ops::dns(&config, command);
    }
    runtime.block_on(async {
        if let Command::Serve { dev_idp } = cli.command {
            return Ok(server::serve(config, dev_idp).await?);
        }
        if let Command::Keys { command } = cli.command {
            return keys::run(&config, command).await;
        }
        let command = match cli.command {
            Command::Backup {
                command: backup::BackupCommand::Create { file },
            } => {
                let store = Store::open(
                    &config.store.url,
                    &config.data_dir,
                    &config.store.key_path(&config.data_dir),
                )
                .await?;
                let result = backup::create(&store, file).await;
                store.close().await;
                return result;
            }
            Command::Backup { command } => {
                return backup::run_without_store(&config, command).await;
            }
            other => other,
        };
        let store = Store::open(
            &config.store.url,
            &config.data_dir,
            &config.store.key_path(&config.data_dir),
        )
        .await?;
        let result = run_command(&store, &config, &cli.for_orgs, command).await;
        store.close().await;
        result
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
    let mut expired = Vec::new();
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
        for (name, r) in p.regimes.named() {
            let law = crate::model::clock::Regime::parse(name).map_or("", |r| r.law());
            println!(
                "  regime:          {} ({}): {}{}",
                name,
                law,
                r.authority,
                r.target
                    .map(|t| format!("; \"without undue delay\" target {t}"))
                    .unwrap_or_default()
            );
        }
        match &p.security_txt {
            None => println!("  security.txt:    none"),
            Some(s) => {
                println!(
                    "  security.txt:    for {}; expires {}",
                    s.hosts.join(", "),
                    s.expires
                );
                match s.expiry(now) {
                    Ok(None) => {}
                    Ok(Some(warning)) => println!("  warning:         {warning}"),
                    Err(e) => {
                        println!("  error:           {e}");
                        expired.push(format!("{}: {e}", p.file.display()));
                    }
                }
            }
        }
    }
    if !expired.is_empty() {
        return Err(CliError::Usage(expired.join("; ")));
    }
    Ok(())
}

async fn audit_command(store: &Store, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Verify => {
            match crate::store::audit::verify(store.pool(), store.sealer()).await? {
                crate::store::audit::Verdict::Intact { entries } => {
                    println!("audit trail intact: {entries} entries");
                    Ok(())
                }
                crate::store::audit::Verdict::Broken { at_entry, reason } => {
                    Err(CliError::AuditBroken { at_entry, reason })
                }
            }
        }
        AuditCommand::List { json } => {
            let entries = crate::store::audit::list(store.pool()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in &entries {
                    println!(
                        "{:>5} {}  {:<12} {:<15} {:<16} {:<6} {}",
                        e.id,
                        local(e.at),
                        e.actor,
                        e.action,
                        e.target,
                        e.source,
                        e.detail
                    );
                }
            }
            Ok(())
        }
    }
}

/// Records a read (a view or an export) made through the CLI.
async fn audit_read(
    store: &Store,
    action: AuditAction,
    target: &str,
    detail: &str,
) -> Result<(), CliError> {
    let who = actor(None);
    crate::store::audit::record_now(
        store,
        &Who {
            actor: &who,
            source: "cli",
        }
        .entry(action, target, detail),
    )
    .await?;
    Ok(())
}

async fn tokens_command(
    store: &Store,
    config: &Config,
    command: TokensCommand,
) -> Result<(), CliError> {
    use crate::web::api::tokens;
    match command {
        TokensCommand::Create { name, orgs } => {
            let policies = PolicySet::load_dir(&config.policies_dir)?;
            if let Some(unknown) = orgs.iter().find(|o| policies.get(o).is_none()) {
                return Err(CliError::Usage(format!(
                    "no organisation {unknown:?} in {}",
                    config.policies_dir.display()
                )));
            }
            let token = tokens::create(store, &name, &orgs).await?;
            audit_read(store, AuditAction::TokenCreate, &name, "api token created").await?;
            println!("{token}");
            eprintln!("Store it now: only its hash is kept.");
        }
        TokensCommand::List => {
            for t in tokens::list(store).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{:<20} {:<8} {}", t.name, state, t.orgs.join(","));
            }
        }
        TokensCommand::Revoke { name } => {
            tokens::revoke(store, &name).await?;
            audit_read(store, AuditAction::TokenRevoke, &name, "api token revoked").await?;
            println!("{name}: revoked");
        }
    }
    Ok(())
}

/// Every subcommand but `serve`, on an open store.
async fn run_command(
    store: &Store,
    config: &Config,
    for_orgs: &[String],
    command: Command,
) -> Result<(), CliError> {
    match command {
        Command::Policies { .. } | Command::Keys { .. } => Ok(()),
        Command::Saml { command } => saml::run(store, config, command).await,
        Command::Tokens { command } => tokens_command(store, config, command).await,
        Command::Audit { command } => audit_command(store, command).await,
        Command::Unlock {
            reference,
            password_stdin,
            actor: who,
        } => {
            let service = cases::service(store, config)?;
            cases::unlock(&service, for_orgs, &reference, password_stdin, who).await
        }
        Command::Outbox {
            command: OutboxCommand::List { json },
        } => {
            let entries = crate::store::outbox::list(store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!(
                    "{:<5} {:<11} {:<9} {:<30} REASON",
                    "ID", "STATE", "ATTEMPTS", "TO"
                );
                for e in &entries {
                    println!(
                        "{:<5} {:<11} {:<9} {:<30} {}",
                        e.id,
                        e.state,
                        e.attempts,
                        e.to_address,
                        e.reason.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        Command::Outbox {
            command: OutboxCommand::Retry { id, actor },
        } => {
            let service = cases::service(store, config)?;
            let who = cases::principal(actor, for_orgs);
            service
                .outbox_change(&who, id, crate::cases::outbox::OutboxAction::Retry)
                .await?;
            println!("outbox {id}: queued to be sent now");
            Ok(())
        }
        Command::Outbox {
            command: OutboxCommand::Cancel { id, actor },
        } => {
            let service = cases::service(store, config)?;
            let who = cases::principal(actor, for_orgs);
            service
                .outbox_change(&who, id, crate::cases::outbox::OutboxAction::Cancel)
                .await?;
            println!("outbox {id}: cancelled");
            Ok(())
        }
        Command::Delivery { command } => {
            let service = cases::service(store, config)?;
            ops::delivery(&service, &cases::principal(None, for_orgs), command).await
        }
        Command::Cases { command } => {
            let service = cases::service(store, config)?;
            cases::cases_command(&service, for_orgs, command).await
        }
        Command::Report { command } => {
            let service = cases::service(store, config)?;
            report::report_command(&service, for_orgs, command).await
        }
        Command::Retention { command } => {
            let service = cases::service(store, config)?;
            privacy::retention_command(&service, for_orgs, command).await
        }
        Command::Reporters { command } => {
            let service = cases::service(store, config)?;
            privacy::reporters_command(&service, for_orgs, command).await
        }
        Command::Serve { .. }
        | Command::IntakeWorker { .. }
        | Command::Completions { .. }
        | Command::Backup { .. }
        | Command::Dns { .. }
        | Command::Config { .. }
        | Command::Manpage => Ok(()),
        Command::Messages {
            command: MessagesCommand::Requeue { queue_id },
        } => {
            let done = store.requeue(&queue_id).await?;
            if done {
                audit_read(
                    store,
                    AuditAction::Requeue,
                    &queue_id,
                    "quarantined message put back in the queue",
                )
                .await?;
            }
            if !done {
                return Err(CliError::Usage(format!(
                    "no quarantined message {queue_id}"
                )));
            }
            println!("{queue_id}: pending again");
            Ok(())
        }
        Command::Messages {
            command: MessagesCommand::List { json, state },
        } => {
            let messages = store.list(state.as_deref()).await?;
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
}
