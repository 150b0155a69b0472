//! `report sla`: the service-level figures, as the dashboard and the API
//! give them (`cases::sla`).

use super::cases::principal;
use super::{CliError, ReportCommand};
use crate::cases::Cases;

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.0}%", s * 100.0))
}

fn days(d: Option<f64>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{d:.2}"))
}

pub(super) async fn report_command(
    cases: &Cases,
    for_orgs: &[String],
    command: ReportCommand,
) -> Result<(), CliError> {
    match command {
        ReportCommand::Sla { org, json } => {
            let figures = cases
                .sla(&principal(None, for_orgs), org.as_deref())
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
                return Ok(());
            }
            for f in &figures {
                println!("{}:", f.org);
                let states: Vec<String> = f
                    .open_by_state
                    .iter()
                    .map(|(s, n)| format!("{s} {n}"))
                    .collect();
                println!("  open cases          {} ({})", f.open, states.join(", "));
                println!(
                    "  overdue now         {}; due within one business day {}",
                    f.overdue, f.due_within_one_business_day
                );
                println!(
                    "  last {} days: receipts on time {} ({} of {}), feedback on time {} ({} of {})",
                    f.window_days,
                    percent(f.receipt_on_time_share),
                    f.receipts_on_time,
                    f.receipts_due,
                    percent(f.feedback_on_time_share),
                    f.feedback_on_time,
                    f.feedback_due
                );
                println!(
                    "  median business days to acknowledge {}, to first feedback {}",
                    days(f.median_business_days_to_acknowledge),
                    days(f.median_business_days_to_first_feedback)
                );
                let weeks: Vec<String> = f
                    .weeks
                    .iter()
                    .map(|w| format!("{} {}", w.start, w.received))
                    .collect();
                println!("  reports per week    {}", weeks.join(", "));
            }
        }
    }
    Ok(())
}
