//! The command line: `serve` and `messages list`, over the same library
//! functions the server uses. Every subcommand reads the same configuration.

use crate::audit::Who;
use crate::cases::CaseState;
use crate::cases::store::{self as cases, CaseError, Filter};
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
pub enum CasesCommand {
    /// Cases, oldest first.
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        state: Option<String>,
        /// Only open cases past a deadline.
        #[arg(long)]
        overdue: bool,
        #[arg(long)]
        json: bool,
    },
    /// One case: fields, assets, suggestions, evidence, timeline, clocks.
    Show {
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// Move a case to another state. Closing needs --reason: out-of-scope,
    /// duplicate:REFERENCE, not-reproducible, informative or spam.
    Transition {
        reference: String,
        state: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who does it, for the timeline (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Flag a personal-data breach: starts the authority-notification clock
    /// (72 hours by default, per the organisation's policy).
    Breach {
        reference: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Add an internal note, read from standard input.
    Note {
        reference: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The message a case was opened from, as it arrived (with our
    /// Received: header on top), to standard output: e.g. to read an
    /// `unparsed` case. Recorded in the audit trail.
    Raw { reference: String },
    /// Parse an `unparsed` case's message again, with a budget
    /// `intake.retry_budget_factor` times larger; intake fills the case.
    Retry { reference: String },
    /// Every case, for reporting.
    Export {
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormat,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
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
pub enum OutboxCommand {
    /// Every entry, without bodies.
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
    Unlock(#[from] crate::intake::unlock::UnlockError),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Token(#[from] crate::web::tokens::TokenError),
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
        if let Command::Serve { dev_idp } = cli.command {
            return Ok(server::serve(config, dev_idp).await?);
        }
        let store = Store::open(
            &config.store.url,
            &config.data_dir,
            &config.store.key_path(&config.data_dir),
        )
        .await?;
        let result = run_command(&store, &config, cli.command).await;
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

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn local(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(
        |_| t.to_string(),
        |ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// "2d 4h left" or "overdue 3h".
fn clock(due: i64, now: i64) -> String {
    let d = due - now;
    let (sign, d) = if d < 0 { ("overdue ", -d) } else { ("", d) };
    let text = if d >= 86_400 {
        format!("{}d {}h", d / 86_400, d % 86_400 / 3600)
    } else {
        format!("{}h {}m", d / 3600, d % 3600 / 60)
    };
    if sign.is_empty() {
        format!("{text} left")
    } else {
        format!("{sign}{text}")
    }
}

fn actor(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into())
}

async fn cases_command(
    store: &Store,
    config: &Config,
    command: CasesCommand,
) -> Result<(), CliError> {
    let now = now();
    match command {
        CasesCommand::List {
            org,
            state,
            overdue,
            json,
        } => {
            if let Some(s) = &state
                && CaseState::parse(s).is_none()
            {
                return Err(CliError::Usage(format!("unknown state {s:?}")));
            }
            let list = cases::list(
                store.pool(),
                store.sealer(),
                &Filter {
                    org,
                    state,
                    overdue,
                },
                now,
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<14} {:<11} {:<18} {:<11} {:<22} SUBJECT",
                    "REFERENCE", "ORG", "STATE", "KIND", "FEEDBACK"
                );
                for c in &list {
                    println!(
                        "{:<14} {:<11} {:<18} {:<11} {:<22} {}",
                        c.reference,
                        c.org,
                        c.state,
                        c.kind,
                        clock(c.feedback_by, now),
                        shown(&c.subject.chars().take(60).collect::<String>())
                    );
                }
            }
        }
        CasesCommand::Show { reference, json } => {
            let c = cases::show(store.pool(), store.sealer(), &reference, now).await?;
            audit_read(store, "view", &reference, "cases show").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            let s = &c.summary;
            println!("{}  [{}]  {} ({})", s.reference, s.org, s.state, s.kind);
            println!("subject:        {}", shown(&s.subject));
            println!("received:       {}", local(s.received_at));
            println!(
                "acknowledge by: {}  ({})",
                local(s.acknowledge_by),
                clock(s.acknowledge_by, now)
            );
            let paused = if c.feedback_paused {
                "  [paused: needs information]"
            } else {
                ""
            };
            println!(
                "feedback by:    {}  ({}){paused}",
                local(s.feedback_by),
                clock(s.feedback_by, now)
            );
            if let Some(b) = c.breach_notify_by {
                println!("breach notify:  {}  ({})", local(b), clock(b, now));
            }
            if let Some(r) = &c.close_reason {
                println!("closed:         {r}");
            }
            let reporter = match (&c.reporter_name, &c.reporter_address, c.anonymous) {
                (_, _, true) => "anonymous".to_owned(),
                (Some(n), Some(a), _) => format!("{n} <{a}>"),
                (None, Some(a), _) => a.clone(),
                _ => "anonymous".to_owned(),
            };
            println!("reporter:       {reporter}");
            println!("channel:        {}", c.channel.as_deref().unwrap_or("-"));
            println!("language:       {}", c.language.as_deref().unwrap_or("-"));
            println!(
                "tls:            {} {}",
                c.tls_version.as_deref().unwrap_or("none"),
                c.tls_cipher.as_deref().unwrap_or("")
            );
            if let Some(v) = &c.cvss_vector {
                println!(
                    "cvss:           {v}  score {:.1} ({})",
                    c.cvss_score.unwrap_or(0.0),
                    c.cvss_severity.as_deref().unwrap_or("-")
                );
            }
            if !c.cve_ids.is_empty() || !c.cwe_ids.is_empty() {
                println!(
                    "ids:            {}",
                    [c.cve_ids.clone(), c.cwe_ids.clone()].concat().join(", ")
                );
            }
            for (label, value) in [
                ("description", &c.description),
                ("steps / attack chain", &c.steps),
                ("impact", &c.impact),
                ("mitigation", &c.mitigation),
                ("contact", &c.contact),
            ] {
                if let Some(v) = value {
                    println!(
                        "\n{label}:\n{}",
                        v.lines()
                            .map(|l| format!("  {}", shown(l)))
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
            }
            if !c.assets.is_empty() {
                println!("\nassets:");
                for a in &c.assets {
                    println!(
                        "  {} {}",
                        if a.in_scope {
                            "[in scope]    "
                        } else {
                            "[not in scope]"
                        },
                        a.value
                    );
                }
            }
            if !c.suggestions.is_empty() {
                println!("\nsuggestions (an analyst decides):");
                for s in &c.suggestions {
                    println!(
                        "  {} {}: {} (matched {:?})",
                        s.kind, s.name, s.label, s.matched
                    );
                }
            }
            if !c.evidence.is_empty() {
                println!("\nevidence:");
                for e in &c.evidence {
                    println!(
                        "  #{} {} {} {} bytes, declared {}, detected {}{}",
                        e.id,
                        e.kind,
                        e.name.as_deref().unwrap_or("(unnamed)"),
                        e.size,
                        e.declared_type,
                        e.sniffed_type.as_deref().unwrap_or("-"),
                        if e.forwarded {
                            ", from a forwarded message"
                        } else {
                            ""
                        }
                    );
                }
            }
            if let Some(reason) = &c.unparsed_reason {
                println!(
                    "\nNOT PARSED: {reason}\n  read it with `cases raw {}`, or parse it again with a larger budget: `cases retry {}`",
                    s.reference, s.reference
                );
            }
            if !c.conversation.is_empty() {
                println!("\nconversation:");
                for m in &c.conversation {
                    let who = if m.from_reporter {
                        "from the reporter".to_owned()
                    } else {
                        "NOT FROM THE REPORTER".to_owned()
                    };
                    println!(
                        "  --- #{} {}  from <{}>  [{who}]  tls {}",
                        m.id,
                        local(m.at),
                        shown(&m.sender),
                        m.tls_version.as_deref().unwrap_or("none")
                    );
                    println!("  subject: {}", shown(&m.subject));
                    for line in m.text.lines() {
                        println!("    {}", shown(line));
                    }
                    for e in c
                        .evidence
                        .iter()
                        .filter(|e| e.conversation_id == Some(m.id))
                    {
                        println!(
                            "  attachment #{} {} ({} bytes)",
                            e.id,
                            e.name.as_deref().unwrap_or("(unnamed)"),
                            e.size
                        );
                    }
                }
            }
            println!("\ntimeline:");
            for e in &c.timeline {
                println!(
                    "  {}  {:<14} {:<10} {}",
                    local(e.at),
                    e.kind,
                    e.actor,
                    e.detail
                );
            }
        }
        CasesCommand::Transition {
            reference,
            state,
            reason,
            actor: who,
        } => {
            let next = CaseState::parse(&state)
                .ok_or_else(|| CliError::Usage(format!("unknown state {state:?}")))?;
            let mut conn = store.connection().await?;
            cases::transition(
                &mut conn,
                store.sealer(),
                &reference,
                next,
                reason.as_deref(),
                &Who {
                    actor: &actor(who),
                    source: "cli",
                },
                now,
            )
            .await?;
            println!("{reference}: {}", next.as_str());
        }
        CasesCommand::Breach {
            reference,
            actor: who,
        } => {
            let org = cases::org_of(store.pool(), &reference).await?;
            let policies = PolicySet::load_dir(&config.policies_dir)?;
            let policy = policies
                .get(&org)
                .ok_or_else(|| CliError::Usage(format!("no policy for organisation {org:?}")))?;
            let due = policy
                .due(jiff::Timestamp::now(), policy.breach_notification_within)
                .as_second();
            let mut conn = store.connection().await?;
            let due = cases::flag_breach(
                &mut conn,
                store.sealer(),
                &reference,
                due,
                &Who {
                    actor: &actor(who),
                    source: "cli",
                },
                now,
            )
            .await?;
            println!(
                "{reference}: personal-data breach; notify the authority by {}",
                local(due)
            );
        }
        CasesCommand::Note {
            reference,
            actor: who,
        } => {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(std::io::stdin(), 64 * 1024),
                &mut text,
            )
            .map_err(CliError::Stdin)?;
            let text = text.trim();
            if text.is_empty() {
                return Err(CliError::Usage(
                    "the note is empty (it is read from standard input)".into(),
                ));
            }
            let mut conn = store.connection().await?;
            cases::note(
                &mut conn,
                store.sealer(),
                &reference,
                text,
                &Who {
                    actor: &actor(who),
                    source: "cli",
                },
                now,
            )
            .await?;
            println!("{reference}: note added");
        }
        CasesCommand::Raw { reference } => {
            let raw = store.raw_of_case(&reference).await?;
            audit_read(store, "raw-download", &reference, "raw message (cli)").await?;
            use std::io::Write;
            std::io::stdout().write_all(&raw).map_err(CliError::Stdin)?;
        }
        CasesCommand::Retry { reference } => {
            let queue_id = store
                .retry_unparsed(&reference, config.intake.retry_budget_factor)
                .await?;
            audit_read(
                store,
                "retry",
                &reference,
                "unparsed message queued with a larger budget",
            )
            .await?;
            println!(
                "{reference}: message {queue_id} queued again with {}x the parse budget",
                config.intake.retry_budget_factor
            );
        }
        CasesCommand::Export { format } => {
            let what = match format {
                ExportFormat::Json => "cases export json",
                ExportFormat::Csv => "cases export csv",
            };
            audit_read(store, "export", "", what).await?;
            let list = cases::list(store.pool(), store.sealer(), &Filter::default(), now).await?;
            match format {
                ExportFormat::Json => {
                    let mut all = Vec::new();
                    for c in &list {
                        all.push(
                            cases::show(store.pool(), store.sealer(), &c.reference, now).await?,
                        );
                    }
                    println!("{}", serde_json::to_string_pretty(&all)?);
                }
                ExportFormat::Csv => {
                    println!(
                        "reference,org,kind,state,received_at,acknowledge_by,feedback_by,overdue,subject"
                    );
                    for c in &list {
                        println!(
                            "{},{},{},{},{},{},{},{},{}",
                            c.reference,
                            c.org,
                            c.kind,
                            c.state,
                            c.received_at,
                            c.acknowledge_by,
                            c.feedback_by,
                            c.overdue,
                            csv_field(&c.subject)
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// Report text as a terminal may show it: control characters (escape
/// sequences a sender could use to rewrite the screen) replaced.
fn shown(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// RFC 4180 quoting, and a leading quote mark against spreadsheet formula
/// injection (`=`, `+`, `-`, `@` from a hostile subject).
fn csv_field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!(
        "\"{}\"",
        guarded.replace('"', "\"\"").replace(['\r', '\n'], " ")
    )
}

/// The password, from a no-echo prompt or the first line of stdin, in a
/// buffer wiped on drop. It is never logged or stored.
fn read_password(
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

async fn audit_command(store: &Store, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Verify => match crate::audit::verify(store.pool(), store.sealer()).await? {
            crate::audit::Verdict::Intact { entries } => {
                println!("audit trail intact: {entries} entries");
                Ok(())
            }
            crate::audit::Verdict::Broken { at_entry, reason } => {
                Err(CliError::AuditBroken { at_entry, reason })
            }
        },
        AuditCommand::List { json } => {
            let entries = crate::audit::list(store.pool()).await?;
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
    action: &'static str,
    target: &str,
    detail: &str,
) -> Result<(), CliError> {
    let who = actor(None);
    let mut conn = store.connection().await?;
    crate::audit::record_now(
        &mut conn,
        store.sealer(),
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
    use crate::web::tokens;
    match command {
        TokensCommand::Create { name, orgs } => {
            let policies = PolicySet::load_dir(&config.policies_dir)?;
            if let Some(unknown) = orgs.iter().find(|o| policies.get(o).is_none()) {
                return Err(CliError::Usage(format!(
                    "no organisation {unknown:?} in {}",
                    config.policies_dir.display()
                )));
            }
            let token = tokens::create(store.pool(), &name, &orgs).await?;
            audit_read(store, "token-create", &name, "api token created").await?;
            println!("{token}");
            eprintln!("Store it now: only its hash is kept.");
        }
        TokensCommand::List => {
            for t in tokens::list(store.pool()).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{:<20} {:<8} {}", t.name, state, t.orgs.join(","));
            }
        }
        TokensCommand::Revoke { name } => {
            tokens::revoke(store.pool(), &name).await?;
            audit_read(store, "token-revoke", &name, "api token revoked").await?;
            println!("{name}: revoked");
        }
    }
    Ok(())
}

/// Every subcommand but `serve`, on an open store.
async fn run_command(store: &Store, config: &Config, command: Command) -> Result<(), CliError> {
    match command {
        Command::Policies { .. } => Ok(()),
        Command::Tokens { command } => tokens_command(store, config, command).await,
        Command::Audit { command } => audit_command(store, command).await,
        Command::Unlock {
            reference,
            password_stdin,
            actor: who,
        } => {
            let password = read_password(&reference, password_stdin)?;
            let policies = PolicySet::load_dir(&config.policies_dir)?;
            let limits = crate::intake::extract::ExtractLimits::default();
            let unlocker = crate::intake::unlock::Unlocker::new(
                store.clone(),
                std::sync::Arc::new(policies),
                config.intake.unlock_budget(limits.max_time),
                limits,
            );
            let outcome = unlocker
                .unlock(
                    &reference,
                    password,
                    &Who {
                        actor: &actor(who),
                        source: "cli",
                    },
                )
                .await?;
            println!(
                "{reference}: opened {} archive(s), extracted {} file(s)",
                outcome.opened, outcome.extracted_files
            );
            if !outcome.fields_filled.is_empty() {
                println!(
                    "filled from the report inside: {}",
                    outcome.fields_filled.join(", ")
                );
            }
            for r in &outcome.refused {
                println!("refused: {r}");
            }
            if outcome.left_locked > 0 {
                println!(
                    "{} archive(s) left locked for another attempt (limit max_archives)",
                    outcome.left_locked
                );
            }
            Ok(())
        }
        Command::Outbox {
            command: OutboxCommand::List { json },
        } => {
            let entries = crate::outbound::list(store.pool(), store.sealer()).await?;
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
        Command::Cases { command } => cases_command(store, config, command).await,
        Command::Serve { .. } | Command::IntakeWorker { .. } => Ok(()),
        Command::Messages {
            command: MessagesCommand::Requeue { queue_id },
        } => {
            let done = store.requeue(&queue_id).await?;
            if done {
                audit_read(
                    store,
                    "requeue",
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
