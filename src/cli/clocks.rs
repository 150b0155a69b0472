//! `cases flag|mark|submitted|clocks|draft`: the regulatory clocks
//! (`crate::cases::clocks`) from the command line.

use super::cases::{clock, local, principal};
use super::{CasesCommand, CliError};
use crate::cases::{Cases, Reason, flag_named, instant, language_named, mark_named};
use crate::model::clock::{Clock, ClockState};

/// The clocks, one per line, as `cases show` and `cases clocks` print them.
pub(super) fn print_clocks(clocks: &[Clock], now: i64) {
    if clocks.is_empty() {
        return;
    }
    println!("regulatory clocks:");
    for c in clocks {
        let when = match (c.state, c.due, c.met_at) {
            (ClockState::Met, _, Some(m)) => format!(
                "met {} (ref {}){}",
                local(m),
                c.reference.as_deref().unwrap_or("-"),
                if c.late { ", LATE" } else { "" }
            ),
            (ClockState::Overdue, Some(d), _) => {
                format!("OVERDUE: due {} ({})", local(d), clock(d, now))
            }
            (_, Some(d), _) => format!("due {} ({})", local(d), clock(d, now)),
            _ => format!("waiting for {}", c.runs_from),
        };
        println!("  {:<44} {:<20} {when}", c.clock, c.article);
        println!(
            "    {} to {}; runs from {}",
            c.what, c.authority, c.runs_from
        );
    }
}

pub(super) async fn clocks_command(
    cases: &Cases,
    for_orgs: &[String],
    command: CasesCommand,
) -> Result<(), CliError> {
    let now = jiff::Timestamp::now().as_second();
    let operator = |given: Option<String>| principal(given, for_orgs);
    match command {
        CasesCommand::Flag {
            reference,
            kind,
            aware_at,
            reason,
            actor,
        } => {
            let flag = flag_named(&kind)?;
            let aware_at = aware_at.as_deref().map(instant).transpose()?;
            let reason = Reason::new(reason.as_deref())?;
            let case = cases.open(&operator(actor), &reference).await?;
            let clocks = cases.flag(&case, flag, aware_at, &reason).await?;
            println!("{reference}: flagged as {}", flag.describe());
            print_clocks(&clocks, now);
        }
        CasesCommand::Mark {
            reference,
            mark,
            at,
            actor,
        } => {
            let mark = mark_named(&mark)?;
            let at = at.as_deref().map(instant).transpose()?;
            let case = cases.open(&operator(actor), &reference).await?;
            let clocks = cases.mark(&case, mark, at).await?;
            println!("{reference}: recorded that {}", mark.describe());
            print_clocks(&clocks, now);
        }
        CasesCommand::Submitted {
            reference,
            clock: name,
            submission,
            at,
            actor,
        } => {
            let at = at.as_deref().map(instant).transpose()?;
            let case = cases.open(&operator(actor), &reference).await?;
            let clocks = cases.submitted(&case, &name, at, &submission).await?;
            println!("{reference}: {name} submitted");
            print_clocks(&clocks, now);
        }
        CasesCommand::Clocks { reference, json } => {
            let case = cases.open(&operator(None), &reference).await?;
            let clocks = cases.clocks(&case).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&clocks)?);
            } else if clocks.is_empty() {
                println!("{reference}: no regulatory clocks (not flagged)");
            } else {
                print_clocks(&clocks, now);
            }
        }
        CasesCommand::Draft {
            reference,
            clock: name,
            lang,
            json,
        } => {
            let language = lang.as_deref().map(language_named).transpose()?;
            let case = cases.open(&operator(None), &reference).await?;
            let draft = cases.draft(&case, &name, language).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&draft)?);
            } else {
                print!("{}", draft.text());
            }
        }
        _ => unreachable!("cases_command routes only the clock commands here"),
    }
    Ok(())
}
