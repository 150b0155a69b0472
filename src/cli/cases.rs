//! `cases …` and `unlock`: parse the arguments, call the cases service,
//! print what it returns. The rules live in `crate::cases`.

use super::{CasesCommand, CliError, ExportFormat};
use crate::cases::unlock::Unlocker;
use crate::cases::{
    Cases, Door, NoteText, Page, Principal, Reason, Scope, instant, kind_named, state_named,
};
use crate::config::Config;
use crate::intake::extract::ExtractLimits;
use crate::model::thread::{EntryKind, FieldSource, ReportField};
use crate::policy::PolicySet;
use crate::store::Store;
use crate::store::cases::{CaseDetail, Filter};
use std::sync::Arc;

/// Cases per page when --after is given without --limit.
const DEFAULT_PAGE: u32 = 50;

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(super) fn local(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(
        |_| t.to_string(),
        |ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// "2d 4h left" or "overdue 3h".
pub(super) fn clock(due: i64, now: i64) -> String {
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

pub(super) fn actor(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into())
}

/// The operator as a principal of the cases service: their login name (or
/// `--actor`), every organisation unless `--for-org` narrows it.
pub(super) fn principal(actor_name: Option<String>, for_orgs: &[String]) -> Principal {
    Principal {
        id: actor(actor_name),
        door: Door::Cli,
        source: "cli".into(),
        scope: if for_orgs.is_empty() {
            Scope::All
        } else {
            Scope::Orgs(for_orgs.iter().cloned().collect())
        },
    }
}

/// The cases service over an open store, as `serve` builds it.
pub(super) fn service(store: &Store, config: &Config) -> Result<Cases, CliError> {
    let policies = Arc::new(PolicySet::load_dir(&config.policies_dir)?);
    let limits = ExtractLimits::default();
    let unlocker = Unlocker::new(
        store.clone(),
        Arc::clone(&policies),
        config.intake.unlock_budget(limits.max_time),
        limits,
    );
    Ok(Cases::new(
        store.clone(),
        policies,
        Arc::new(unlocker),
        config.smtp.hostname.clone(),
        config.intake.retry_budget_factor,
    )
    .with_outbound(config.outbound.clone()))
}

pub(super) async fn cases_command(
    cases: &Cases,
    for_orgs: &[String],
    command: CasesCommand,
) -> Result<(), CliError> {
    let now = now();
    let operator = |given: Option<String>| principal(given, for_orgs);
    match command {
        CasesCommand::List {
            org,
            state,
            kind,
            overdue,
            assignee,
            breach,
            clock: clock_state,
            since,
            before,
            search,
            after,
            limit,
            json,
        } => {
            let filter = Filter {
                org,
                state: state.as_deref().map(state_named).transpose()?,
                kind: kind.as_deref().map(kind_named).transpose()?,
                overdue,
                assignee,
                breach,
                clock: clock_state
                    .as_deref()
                    .map(crate::cases::clock_state_named)
                    .transpose()?,
                received_from: since.as_deref().map(instant).transpose()?,
                received_until: before.as_deref().map(instant).transpose()?,
                ..Filter::default()
            };
            // All of them unless a page is asked for: scripts that read the
            // whole list keep working.
            let page = Page {
                limit: limit.or(after.is_some().then_some(DEFAULT_PAGE)),
                after,
            };
            let listing = cases
                .list(&operator(None), &filter, search.as_deref(), &page)
                .await?;
            let list = &listing.cases;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<14} {:<11} {:<18} {:<11} {:<22} SUBJECT",
                    "REFERENCE", "ORG", "STATE", "KIND", "FEEDBACK"
                );
                for c in list {
                    println!(
                        "{:<14} {:<11} {:<18} {:<11} {:<22} {}",
                        c.reference,
                        c.org,
                        c.state.as_str(),
                        c.kind.as_str(),
                        clock(c.feedback_by, now),
                        shown(&c.subject.chars().take(60).collect::<String>())
                    );
                }
                if page.limit.is_some() || search.is_some() {
                    println!("{} of {} case(s)", list.len(), listing.total);
                }
            }
            if let Some(next) = &listing.next {
                eprintln!("next page: --after {}", next.encode());
            }
        }
        CasesCommand::Show { reference, json } => {
            let case = cases.open(&operator(None), &reference).await?;
            let c = cases.view(&case).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print_case(&c, now);
            }
        }

        CasesCommand::Transition {
            reference,
            state,
            reason,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            let next = state_named(&state)?;
            let reason = Reason::new(reason.as_deref())?;
            cases.transition(&case, next, &reason).await?;
            println!("{reference}: {}", next.as_str());
        }
        CasesCommand::Flag { .. }
        | CasesCommand::Mark { .. }
        | CasesCommand::Submitted { .. }
        | CasesCommand::Clocks { .. }
        | CasesCommand::Draft { .. } => {
            super::clocks::clocks_command(cases, for_orgs, command).await?;
        }
        CasesCommand::Breach {
            reference,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            let due = cases.flag_breach(&case).await?;
            println!(
                "{reference}: personal-data breach; the first notification is due {}",
                local(due)
            );
        }
        CasesCommand::Assign {
            reference,
            to,
            none: _,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            cases.assign(&case, to.as_deref()).await?;
            match to {
                Some(to) => println!("{reference}: assigned to {to}"),
                None => println!("{reference}: unassigned"),
            }
        }
        CasesCommand::Note {
            reference,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            let text = NoteText::new(&read_text()?)?;
            cases.note(&case, &text).await?;
            println!("{reference}: note added");
        }
        CasesCommand::Raw { reference, message } => {
            let case = cases.open(&operator(None), &reference).await?;
            let raw = match message {
                Some(m) => cases.raw_message(&case, m).await?,
                None => cases.raw(&case).await?,
            };
            use std::io::Write;
            std::io::stdout().write_all(&raw).map_err(CliError::Stdin)?;
        }
        CasesCommand::Headers { reference, message } => {
            let case = cases.open(&operator(None), &reference).await?;
            let h = cases.headers(&case, message).await?;
            for line in h.text.lines() {
                println!("{}", shown(line));
            }
            if h.truncated {
                println!(
                    "(only the first {} bytes; `cases raw {reference} --message {message}` has them all)",
                    crate::cases::thread::MAX_HEADER_BYTES
                );
            }
        }
        CasesCommand::Edit {
            reference,
            field,
            clear,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            let field = crate::cases::field_named(&field)?;
            let text = if clear {
                None
            } else {
                Some(crate::cases::FieldText::new(&read_text()?)?)
            };
            cases.edit_field(&case, field, text.as_ref()).await?;
            match text {
                Some(_) => println!("{reference}: {} written", field.as_str()),
                None => println!("{reference}: {} cleared", field.as_str()),
            }
        }
        CasesCommand::Retry { reference } => {
            let case = cases.open(&operator(None), &reference).await?;
            let queue_id = cases.retry(&case).await?;
            println!(
                "{reference}: message {queue_id} queued again with {}x the parse budget",
                cases.retry_budget_factor()
            );
        }
        CasesCommand::Bulk {
            reference,
            by,
            action,
            dry_run,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            let by = crate::cases::selector_named(&by)?;
            let action = crate::cases::action_named(&action)?;
            let outcome = cases.bulk(&case, by, action, dry_run).await?;
            let verb = if dry_run { "would move" } else { "moved" };
            println!(
                "{} case(s) with the same {} as {reference}: {verb} {} to junk, {} unchanged{}",
                outcome.selected,
                by.as_str(),
                outcome.moved.len(),
                outcome.unchanged,
                if outcome.left > 0 {
                    format!(", {} left for another action", outcome.left)
                } else {
                    String::new()
                }
            );
            if dry_run {
                for r in &outcome.moved {
                    println!("  {r}");
                }
            }
        }
        CasesCommand::Feedback {
            reference,
            kind,
            draft,
            text_stdin,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            let kind = crate::cases::feedback_named(&kind)?;
            let d = cases.feedback_draft(&case, kind).await?;
            if draft {
                println!("Subject: {}\n\n{}", d.subject, d.text);
                return Ok(());
            }
            let text = if text_stdin { read_text()? } else { d.text };
            let to = cases
                .send_feedback(&case, kind, &crate::cases::ReplyText::new(&text)?)
                .await?;
            println!(
                "{reference}: status update ({}) queued to {to}",
                kind.as_str()
            );
        }
        CasesCommand::ReleaseReceipt {
            reference,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            cases.release_receipt(&case).await?;
            println!("{reference}: receipt released");
        }
        CasesCommand::Promote {
            reference,
            actor: who,
        } => {
            let case = cases.open(&operator(who), &reference).await?;
            match cases.promote(&case).await? {
                Some(to) => {
                    println!("{reference}: now a disclosure report; receipt queued to {to}")
                }
                None => {
                    println!("{reference}: now a disclosure report; no receipt (see `outbox list`)")
                }
            }
        }
        CasesCommand::Reindex => {
            let n = cases.reindex().await?;
            println!("{n} case(s) indexed for search");
        }
        CasesCommand::Export { format } => export(cases, &operator(None), format).await?,
    }
    Ok(())
}

/// Every case the operator may see: whole as JSON, or one line each as CSV.
async fn export(cases: &Cases, operator: &Principal, format: ExportFormat) -> Result<(), CliError> {
    let all = cases.export(operator).await?;
    match format {
        ExportFormat::Json => println!("{}", serde_json::to_string_pretty(&all)?),
        ExportFormat::Csv => {
            println!(
                "reference,org,kind,state,received_at,acknowledge_by,feedback_by,overdue,subject"
            );
            for c in all.iter().map(|d| &d.summary) {
                println!(
                    "{},{},{},{},{},{},{},{},{}",
                    c.reference,
                    c.org,
                    c.kind.as_str(),
                    c.state.as_str(),
                    c.received_at,
                    c.acknowledge_by,
                    c.feedback_by,
                    c.overdue,
                    csv_field(&c.subject)
                );
            }
        }
    }
    Ok(())
}

/// `cases show` for a person: the fields, the clocks, the conversation.
fn print_case(c: &CaseDetail, now: i64) {
    print_summary(c, now);
    print_findings(c);
    print_conversation(c);
    print_timeline(c);
}

/// The header: reference, state, clocks, reporter, TLS, the report's fields.
fn print_summary(c: &CaseDetail, now: i64) {
    let s = &c.summary;
    println!(
        "{}  [{}]  {} ({})",
        s.reference,
        s.org,
        s.state.as_str(),
        s.kind.as_str()
    );
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
    super::clocks::print_clocks(&c.clocks, now);
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
    for e in &c.encryption {
        println!("encryption:     {}", e.summary);
    }
    for line in c.sender_auth.iter().flat_map(|a| a.lines()) {
        println!("sender:         {line}");
    }
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
    for (field, label, value) in [
        (ReportField::Description, "description", &c.description),
        (ReportField::Steps, "steps / attack chain", &c.steps),
        (ReportField::Impact, "impact", &c.impact),
        (ReportField::Mitigation, "mitigation", &c.mitigation),
        (ReportField::Contact, "contact", &c.contact),
    ] {
        if let Some(v) = value {
            let source = match c.field_sources.get(field) {
                Some(FieldSource::Mail) => " (from the mail)",
                Some(FieldSource::Archive) => " (from the report inside the archive)",
                Some(FieldSource::Analyst) => " (written by an analyst)",
                None => "",
            };
            println!(
                "\n{label}:{source}\n{}",
                v.lines()
                    .map(|l| format!("  {}", shown(l)))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Assets, suggestions, evidence, and why a case was not parsed.
fn print_findings(c: &CaseDetail) {
    let s = &c.summary;
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
    if !c.duplicates.is_empty() {
        println!("\npossible duplicates (an analyst decides):");
        for h in &c.duplicates {
            println!("  {}: {}", h.reference, h.reason);
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
}

/// The whole conversation, in order, each text escaped line by line.
fn print_conversation(c: &CaseDetail) {
    if c.thread.is_empty() {
        return;
    }
    println!("\nconversation:");
    for m in &c.thread {
        let mut head = format!("  --- {}  {}", local(m.at), m.kind.as_str());
        if m.from_archive {
            head.push_str(" (found inside the archive)");
        }
        if m.internal {
            head.push_str(" [INTERNAL, never sent]");
        }
        match m.from_reporter {
            Some(true) => head.push_str(" [from the reporter]"),
            Some(false) => head.push_str(" [NOT FROM THE REPORTER]"),
            None => {}
        }
        head.push_str(&format!("  from {}", shown(&m.from)));
        if let Some(to) = &m.to {
            head.push_str(&format!(" to {}", shown(to)));
        }
        if let Some(d) = &m.delivery {
            head.push_str(&format!("  delivery {d}"));
            if let Some(r) = &m.delivery_reason {
                head.push_str(&format!(" ({})", shown(r)));
            }
        }
        if !matches!(
            m.kind,
            EntryKind::Receipt | EntryKind::Reply | EntryKind::StatusUpdate | EntryKind::Note
        ) {
            head.push_str(&format!(
                "  tls {}",
                m.tls_version.as_deref().unwrap_or("none")
            ));
        }
        if let Some(id) = m.message {
            head.push_str(&format!("  (mail {id})"));
        }
        println!("{head}");
        if let Some(s) = &m.subject {
            println!("  subject: {}", shown(s));
        }
        for line in m.text.lines() {
            println!("    {}", shown(line));
        }
        for e in c.evidence.iter().filter(|e| m.attachments.contains(&e.id)) {
            println!(
                "  attachment #{} {} ({} bytes)",
                e.id,
                e.name.as_deref().unwrap_or("(unnamed)"),
                e.size
            );
        }
    }
}

fn print_timeline(c: &CaseDetail) {
    println!("\ntimeline:");
    for e in &c.timeline {
        println!(
            "  {}  {:<14} {:<10} {}",
            local(e.at),
            e.kind.as_str(),
            e.actor,
            e.detail
        );
    }
}

/// Standard input, up to what the longest note can take (four bytes per
/// character) and one character more, so an over-long note is refused by
/// the same rule as at the other doors, never cut short.
fn read_text() -> Result<String, CliError> {
    let cap = (crate::cases::input::MAX_TEXT_CHARS * 4 + 4) as u64;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), cap), &mut bytes)
        .map_err(CliError::Stdin)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Opens the case's encrypted archives with the reporter's password.
pub(super) async fn unlock(
    cases: &Cases,
    for_orgs: &[String],
    reference: &str,
    password_stdin: bool,
    who: Option<String>,
) -> Result<(), CliError> {
    let case = cases.open(&principal(who, for_orgs), reference).await?;
    let password = super::keys::read_password(reference, password_stdin)?;
    let outcome = cases.unlock(&case, password).await?;
    println!(
        "{reference}: opened {} archive(s), extracted {} file(s)",
        outcome.opened, outcome.extracted_files
    );
    if outcome.report_found {
        println!(
            "the report inside is now the case's report; the mail's own text is kept as its covering note"
        );
    }
    if !outcome.fields_filled.is_empty() {
        println!(
            "taken from the report inside: {}",
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
