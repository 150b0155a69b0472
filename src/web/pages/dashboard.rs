//! The service-level dashboard: per organisation of the analyst, open
//! cases by state, what is overdue or due within a business day, the 90-day
//! shares of receipts and feedback on time, the medians, and a weekly
//! chart drawn by the server as SVG (no script; the page's CSP stays).

use super::*;
use crate::cases::sla::OrgSla;

/// Chart geometry, in SVG user units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 30.0;

struct Bar {
    x: String,
    y: String,
    height: String,
    width: String,
    label: String,
    label_x: String,
    title: String,
}

struct OrgView {
    org: String,
    open: u64,
    states: Vec<(&'static str, u64)>,
    overdue: u64,
    due_soon: u64,
    window_days: i64,
    receipts: String,
    feedback: String,
    ack_median: String,
    feedback_median: String,
    bars: Vec<Bar>,
    /// The on-time share as a polyline, when any week has one.
    line: Option<String>,
    weeks: Vec<(String, u64, String)>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    base: Base,
    orgs: Vec<OrgView>,
    clocks: Vec<ClockRow>,
}

/// A regulatory clock not yet met.
struct ClockRow {
    reference: String,
    org: String,
    clock: String,
    article: &'static str,
    due: String,
    overdue: bool,
}

fn percent(share: Option<f64>, on_time: u64, due: u64) -> String {
    match share {
        Some(s) => format!("{:.0}% ({on_time} of {due})", s * 100.0),
        None => "nothing due yet".into(),
    }
}

fn days(d: Option<f64>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{d:.2} business days"))
}

fn view(f: OrgSla) -> OrgView {
    let max = f.weeks.iter().map(|w| w.received).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / f.weeks.len().max(1) as f64;
    let plot = HEIGHT - TOP - BOTTOM;
    let bars = f
        .weeks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let h = plot * w.received as f64 / max;
            Bar {
                x: format!("{:.1}", i as f64 * slot + slot * 0.15),
                y: format!("{:.1}", TOP + plot - h),
                height: format!("{h:.1}"),
                width: format!("{:.1}", slot * 0.7),
                label: w.start.get(5..).unwrap_or(&w.start).to_owned(),
                label_x: format!("{:.1}", i as f64 * slot + slot / 2.0),
                title: format!("week of {}: {} report(s)", w.start, w.received),
            }
        })
        .collect();
    let points: Vec<String> = f
        .weeks
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            w.receipt_on_time_share.map(|s| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * slot + slot / 2.0,
                    TOP + plot * (1.0 - s)
                )
            })
        })
        .collect();
    OrgView {
        receipts: percent(f.receipt_on_time_share, f.receipts_on_time, f.receipts_due),
        feedback: percent(f.feedback_on_time_share, f.feedback_on_time, f.feedback_due),
        ack_median: days(f.median_business_days_to_acknowledge),
        feedback_median: days(f.median_business_days_to_first_feedback),
        weeks: f
            .weeks
            .iter()
            .map(|w| {
                (
                    w.start.clone(),
                    w.received,
                    w.receipt_on_time_share
                        .map_or_else(|| "-".into(), |s| format!("{:.0}%", s * 100.0)),
                )
            })
            .collect(),
        line: (!points.is_empty()).then(|| points.join(" ")),
        bars,
        org: f.org,
        open: f.open,
        states: f.open_by_state.into_iter().collect(),
        overdue: f.overdue,
        due_soon: f.due_within_one_business_day,
        window_days: f.window_days,
    }
}

pub(crate) async fn page(State(ui): State<S>, a: Analyst) -> Result<Response, UiError> {
    let figures = ui.cases.sla(&a.principal(), None).await?;
    let clocks = ui
        .cases
        .running_clocks(&a.principal())
        .await?
        .into_iter()
        .map(|c| ClockRow {
            due: jiff::Timestamp::from_second(c.due)
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            reference: c.reference,
            org: c.org,
            clock: c.clock,
            article: c.article,
            overdue: c.overdue,
        })
        .collect();
    Ok(render(&DashboardPage {
        base: a.base("Service levels", &ui),
        orgs: figures.into_iter().map(view).collect(),
        clocks,
    }))
}
