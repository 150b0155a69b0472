//! The `cases` subcommands and their arguments.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// Cases, oldest first: all of them, or a page with --limit/--after.
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        state: Option<String>,
        /// disclosure, unflagged or unparsed.
        #[arg(long)]
        kind: Option<String>,
        /// Only open cases past a deadline.
        #[arg(long)]
        overdue: bool,
        /// Only the cases assigned to this analyst.
        #[arg(long)]
        assignee: Option<String>,
        /// Only cases flagged as a personal-data breach.
        #[arg(long)]
        breach: bool,
        /// Only cases with a regulatory clock that is due, overdue, met or
        /// waiting.
        #[arg(long)]
        clock: Option<String>,
        /// Received at or after: a date (YYYY-MM-DD, UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Received before: a date or time, as --since.
        #[arg(long)]
        before: Option<String>,
        /// Only cases holding every word of TEXT (subject, fields, message
        /// texts, assets, CVE/CWE ids), through the blind index.
        #[arg(long)]
        search: Option<String>,
        /// The page after this cursor (a case's `cursor`); pages hold 50
        /// cases unless --limit says otherwise.
        #[arg(long)]
        after: Option<String>,
        /// Cases per page (1-500).
        #[arg(long)]
        limit: Option<u32>,
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
    /// Flag what a case is: breach (a personal-data breach), exploited (an
    /// actively exploited vulnerability) or incident (a significant
    /// incident). Starts every clock of the organisation's regimes from
    /// --aware-at (default now). Flagging again with another --aware-at
    /// moves the clocks and needs --reason.
    Flag {
        reference: String,
        kind: String,
        /// When the organisation became aware: RFC 3339, e.g.
        /// 2026-12-23T10:00:00+01:00.
        #[arg(long)]
        aware_at: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Record what a later clock runs from: fix-available (CRA final
    /// report) or high-risk (GDPR art. 34: tell the people affected).
    Mark {
        reference: String,
        mark: String,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Record that a clock's notification was submitted (the clock is met),
    /// with the authority's reference for it.
    Submitted {
        reference: String,
        /// The clock, as `cases clocks` names it (e.g.
        /// gdpr-controller/authority-notification).
        clock: String,
        #[arg(long = "ref", value_name = "AUTHORITY_REFERENCE")]
        submission: String,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// A case's regulatory clocks: regime, step, article, what it runs
    /// from, due time and state.
    Clocks {
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// The pre-filled draft of a clock's notification, in the report's
    /// language or --lang (en, da). Recorded in the audit trail.
    Draft {
        reference: String,
        clock: String,
        #[arg(long)]
        lang: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Give a case to an analyst (someone who has signed in with a role
    /// for its organisation, named as the audit trail names them), or take
    /// it back with --none.
    Assign {
        reference: String,
        #[arg(long, conflicts_with = "none", required_unless_present = "none")]
        to: Option<String>,
        #[arg(long)]
        none: bool,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Add an internal note, read from standard input.
    Note {
        reference: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The message a case was opened from (or, with --message, another of
    /// its stored mails: `cases show` names them), as it arrived (with our
    /// Received: header on top), to standard output: e.g. to read an
    /// `unparsed` case. Recorded in the audit trail.
    Raw {
        reference: String,
        #[arg(long)]
        message: Option<i64>,
    },
    /// The header section of a stored mail of the case, as it arrived.
    /// Recorded in the audit trail.
    Headers { reference: String, message: i64 },
    /// Write a report field (description, steps, impact, mitigation,
    /// contact, channel) as an analyst's, read from standard input, or
    /// clear it with --clear. Nothing extracted later overwrites it.
    Edit {
        reference: String,
        field: String,
        #[arg(long)]
        clear: bool,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Parse an `unparsed` case's message again, with a budget
    /// `intake.retry_budget_factor` times larger; intake fills the case.
    Retry { reference: String },
    /// Junk every case of REFERENCE's organisation from the same sender,
    /// domain, client address, or with the same text: one action, one
    /// audit entry. --dry-run lists them without changing anything.
    Bulk {
        reference: String,
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "junk")]
        action: String,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Send a status update to the reporter from the policy's template
    /// (investigating, needs-information, resolved, closed) in the
    /// report's language: --draft prints it; --text-stdin sends your
    /// edited text instead. It stops the feedback clock.
    Feedback {
        reference: String,
        kind: String,
        #[arg(long, conflicts_with = "text_stdin")]
        draft: bool,
        #[arg(long)]
        text_stdin: bool,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Make an unflagged case a disclosure report: the receipt goes out
    /// and the clocks run from its arrival.
    Promote {
        reference: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Send a case's receipt that was held because the sender is not
    /// authenticated (no SPF pass, no aligned DKIM): the report is genuine.
    ReleaseReceipt {
        reference: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Index every case for search again (start-up does it once for a
    /// store from before the index).
    Reindex,
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
