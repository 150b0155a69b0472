//! The regulatory clocks on the case page: the table of clocks, the forms
//! to flag, mark and record a submission, and a notification's draft.
//! Each action is one call to the cases service (`crate::cases::clocks`).

use super::case::{done, refused};
use super::{Analyst, S, UiError, render};
use crate::cases::{Reason, flag_named, instant, language_named, mark_named};
use crate::model::clock::{Clock, ClockState, From, StepRule};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// One clock as the page shows it.
pub(crate) struct ClockView {
    pub clock: String,
    pub article: &'static str,
    pub what: &'static str,
    pub authority: String,
    pub runs_from: String,
    pub state: &'static str,
    /// "due …", "OVERDUE: due …", "met … (ref …)" or "waiting for …".
    pub status: String,
    pub overdue: bool,
    /// It can be submitted now.
    pub open: bool,
    /// `regime` and `step`, for the draft link.
    pub regime: &'static str,
    pub step: &'static str,
    /// A waiting clock that starts from a mark: (mark, what it says).
    pub waits_for: Option<(&'static str, &'static str)>,
}

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub(crate) fn clock_views(clocks: &[Clock]) -> Vec<ClockView> {
    clocks
        .iter()
        .map(|c| ClockView {
            clock: c.clock.clone(),
            article: c.article,
            what: c.what,
            authority: c.authority.clone(),
            runs_from: c.runs_from.clone(),
            state: c.state.as_str(),
            status: match (c.state, c.due, c.met_at) {
                (ClockState::Met, _, Some(m)) => format!(
                    "met {} (reference {}){}",
                    when(m),
                    c.reference.as_deref().unwrap_or("-"),
                    if c.late { ", after its deadline" } else { "" }
                ),
                (ClockState::Overdue, Some(d), _) => format!("OVERDUE: was due {}", when(d)),
                (_, Some(d), _) => format!("due {}", when(d)),
                _ => format!("waiting for {}", c.runs_from),
            },
            overdue: c.state == ClockState::Overdue,
            open: matches!(c.state, ClockState::Due | ClockState::Overdue),
            regime: c.regime.as_str(),
            step: c.step.as_str(),
            waits_for: match (c.state, StepRule::named(&c.clock).map(|r| r.from)) {
                (ClockState::Waiting, Some(From::Mark(m))) => Some((m.as_str(), m.describe())),
                _ => None,
            },
        })
        .collect()
}

#[derive(Deserialize)]
pub(crate) struct FlagForm {
    csrf: String,
    flag: String,
    #[serde(default)]
    aware_at: String,
    #[serde(default)]
    reason: String,
}

fn optional(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

pub(crate) async fn flag(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<FlagForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let flag = flag_named(&f.flag)?;
        let aware_at = optional(&f.aware_at).map(instant).transpose()?;
        let reason = Reason::new(optional(&f.reason))?;
        ui.cases.flag(&case, flag, aware_at, &reason).await
    }
    .await;
    match result {
        Ok(_) => Ok(done(&case.reference, "flag")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct MarkForm {
    csrf: String,
    mark: String,
    #[serde(default)]
    at: String,
}

pub(crate) async fn mark(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<MarkForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let mark = mark_named(&f.mark)?;
        let at = optional(&f.at).map(instant).transpose()?;
        ui.cases.mark(&case, mark, at).await
    }
    .await;
    match result {
        Ok(_) => Ok(done(&case.reference, "mark")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct SubmittedForm {
    csrf: String,
    clock: String,
    submission: String,
    #[serde(default)]
    at: String,
}

pub(crate) async fn submitted(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<SubmittedForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let at = optional(&f.at).map(instant).transpose()?;
        ui.cases.submitted(&case, &f.clock, at, &f.submission).await
    }
    .await;
    match result {
        Ok(_) => Ok(done(&case.reference, "submitted")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

#[derive(Template)]
#[template(path = "draft.html")]
struct DraftPage {
    base: super::Base,
    reference: String,
    clock: String,
    article: &'static str,
    to: String,
    text: String,
    other: &'static str,
    other_label: &'static str,
    regime: String,
    step: String,
}

#[derive(Deserialize)]
pub(crate) struct DraftQuery {
    #[serde(default)]
    lang: Option<String>,
}

pub(crate) async fn draft(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, regime, step)): Path<(String, String, String)>,
    Query(q): Query<DraftQuery>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let language = q.lang.as_deref().map(language_named).transpose()?;
        ui.cases
            .draft(&case, &format!("{regime}/{step}"), language)
            .await
    }
    .await;
    let d = match result {
        Ok(d) => d,
        Err(e) => return refused(&ui, &a, &case, e).await,
    };
    let (other, other_label) = match d.language {
        crate::model::report::Language::Da => ("en", "English"),
        crate::model::report::Language::En => ("da", "Dansk"),
    };
    Ok(render(&DraftPage {
        base: a.base(format!("{} draft {}", d.reference, d.clock), &ui),
        reference: d.reference.clone(),
        clock: d.clock.clone(),
        article: d.article,
        to: d.to.clone(),
        text: d.text(),
        other,
        other_label,
        regime,
        step,
    })
    .into_response())
}
