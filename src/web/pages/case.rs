//! One case: its page, and the actions on it (unlock, transition, note,
//! reply, breach), each a call to the cases service.

use super::*;
use crate::model::thread::{FieldSource, ReportField};
use crate::store::cases::CaseDetail;
use crate::web::auth::logout::CsrfForm;

// ---------------------------------------------------------------- case

struct EvidenceView {
    name: String,
    kind: String,
    size: i64,
    sniffed: Option<String>,
    locked: bool,
    from_archive: Option<String>,
    url: String,
    preview: bool,
}

struct EventView {
    when: String,
    kind: &'static str,
    actor: String,
    detail: String,
}

struct CaseView {
    reference: String,
    subject: String,
    state: &'static str,
    close_reason: Option<String>,
    org: String,
    kind: &'static str,
    received: String,
    receipt_clock: String,
    receipt_overdue: bool,
    feedback_clock: String,
    feedback_overdue: bool,
    breach_clock: Option<String>,
    /// Regulatory clocks, and what the case may be flagged as:
    /// (flag, description, flagged already).
    clocks: Vec<super::clocks::ClockView>,
    /// Some clock can be submitted now.
    any_open: bool,
    flag_choices: Vec<(&'static str, &'static str, bool)>,
    /// The personal data was erased (retention or a request): when.
    erased: Option<String>,
    anonymous: bool,
    reporter: String,
    reply_to: Option<String>,
    /// (label, value, where it came from)
    fields: Vec<(&'static str, String, &'static str)>,
    cves: String,
    cwes: String,
    cvss: Option<String>,
    assets: Vec<(String, bool)>,
    suggestions: Vec<(String, String)>,
    evidence: Vec<EvidenceView>,
    tls: String,
    /// One plain-language line per encrypted mail.
    encryption: Vec<String>,
    auth_results: String,
    timeline: Vec<EventView>,
    has_locked: bool,
    next_states: Vec<&'static str>,
    /// The whole conversation, in order.
    thread: Vec<super::conversation::EntryView>,
    /// Likely duplicates: (reference, reason).
    duplicates: Vec<(String, String)>,
    /// An unflagged case may be promoted to a report.
    promotable: bool,
    /// Its receipt waits because the sender is not authenticated.
    receipt_held: bool,
    /// Sender authentication as we computed it, one line per check.
    sender_auth: Vec<String>,
    /// The fields an analyst may write: (name, label).
    editable: Vec<(&'static str, &'static str)>,
    /// Who works it, by display name, and who could: (actor, display).
    assignee: Option<String>,
    analysts: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    base: Base,
    c: CaseView,
    /// A drafted status update: (kind, language, text).
    draft: Option<(&'static str, &'static str, String)>,
    feedback_kinds: Vec<&'static str>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Flash {
    #[serde(default)]
    done: Option<String>,
    /// How many cases a bulk action moved: a number, never text.
    #[serde(default)]
    n: Option<u32>,
    /// A status update to draft (`FeedbackKind`).
    #[serde(default)]
    draft: Option<String>,
}

/// Notices after an action, by code: the URL never carries free text.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "unlocked" => "Archive unlocked and its contents filed as evidence.",
        "transition" => "State changed.",
        "note" => "Note added.",
        "assign" => "Assignment changed.",
        "edit" => "Field saved; nothing extracted later will overwrite it.",
        "feedback" => "Status update queued to the reporter; the feedback clock has stopped.",
        "promote" => {
            "Now a disclosure report: the receipt is in the outbox and the clocks run from its arrival."
        }
        "reply" => "Reply queued to the reporter; it is in the timeline.",
        "receipt-released" => "Receipt released: it is in the outbox.",
        "flag" => "Flagged: the regulatory clocks are on the case.",
        "mark" => "Recorded; the clocks that run from it have started.",
        "submitted" => "Submission recorded: the clock is met.",
        "breach" => {
            "Flagged as a personal-data breach: the deadline to notify the authority is on the case."
        }
        _ => return None,
    })
}

pub(crate) async fn show(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let notice = match (flash.done.as_deref(), flash.n) {
        (Some("bulk"), Some(n)) => Some(format!(
            "{n} case(s) like this one moved to junk; each has it on its timeline."
        )),
        (done, _) => done.and_then(notice_text).map(str::to_owned),
    };
    let draft = match flash.draft.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(kind) => {
            let drafted = async {
                let kind = crate::cases::feedback_named(kind)?;
                ui.cases.feedback_draft(&case, kind).await
            }
            .await;
            match drafted {
                Ok(d) => Some(d),
                Err(e) => return refused(&ui, &a, &case, e).await,
            }
        }
    };
    case_page_with(&ui, &a, &case, notice, None, draft).await
}

/// The evidence list: names, where each came from, what is still locked.
fn evidence_views(d: &CaseDetail) -> Vec<EvidenceView> {
    let names: std::collections::HashMap<i64, String> = d
        .evidence
        .iter()
        .map(|e| (e.id, e.name.clone().unwrap_or_else(|| "(unnamed)".into())))
        .collect();
    d.evidence
        .iter()
        .map(|e| EvidenceView {
            name: e.name.clone().unwrap_or_else(|| "(unnamed)".into()),
            kind: e.kind.clone(),
            size: e.size,
            sniffed: e.sniffed_type.clone(),
            locked: e.locked,
            from_archive: e.parent_id.and_then(|p| names.get(&p).cloned()),
            url: format!("/cases/{}/evidence/{}", d.summary.reference, e.object_id),
            preview: e
                .sniffed_type
                .as_deref()
                .is_some_and(|t| PREVIEWABLE.contains(&t)),
        })
        .collect()
}

/// Labels of the report fields an analyst may write.
const EDITABLE: [(ReportField, &str); 6] = [
    (ReportField::Description, "Description"),
    (ReportField::Steps, "Steps / attack chain"),
    (ReportField::Impact, "Impact"),
    (ReportField::Mitigation, "Mitigation"),
    (ReportField::Contact, "Contact"),
    (ReportField::Channel, "Channel"),
];

/// The report's fields that it gave, labelled, with where each came from.
fn report_fields(d: &CaseDetail) -> Vec<(&'static str, String, &'static str)> {
    let source = |f: ReportField| match d.field_sources.get(f) {
        Some(FieldSource::Mail) => "from the mail",
        Some(FieldSource::Archive) => "from the archive",
        Some(FieldSource::Analyst) => "written by an analyst",
        None => "",
    };
    let values = [
        &d.description,
        &d.steps,
        &d.impact,
        &d.mitigation,
        &d.contact,
        &d.channel,
    ];
    let mut out: Vec<_> = EDITABLE
        .iter()
        .zip(values)
        .filter_map(|((f, label), v)| v.clone().map(|v| (*label, v, source(*f))))
        .collect();
    if let Some(l) = &d.language {
        out.push(("Language", l.clone(), ""));
    }
    out
}

fn reporter(d: &CaseDetail) -> String {
    match (&d.reporter_name, &d.reporter_address) {
        (Some(n), Some(a)) => format!("{n} <{a}>"),
        (None, Some(a)) => a.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => "unknown".into(),
    }
}

async fn case_page(
    ui: &Ui,
    a: &Analyst,
    case: &Authorized<Case>,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
) -> Result<Response, UiError> {
    case_page_with(ui, a, case, notice, error, None).await
}

/// The case page, with a status update drafted for the analyst to edit.
async fn case_page_with(
    ui: &Ui,
    a: &Analyst,
    case: &Authorized<Case>,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    draft: Option<crate::cases::feedback::Draft>,
) -> Result<Response, UiError> {
    let now = now();
    let d = ui.cases.view(case).await?;
    let s = &d.summary;
    let state = s.state;
    let open = state.is_open();
    let evidence = evidence_views(&d);
    let has_locked = evidence.iter().any(|e| e.locked);
    let fields = report_fields(&d);
    let reporter = reporter(&d);
    let analysts: Vec<(String, String)> = ui
        .cases
        .analysts_for(&case.org)
        .await?
        .into_iter()
        .map(|a| (a.actor, a.display))
        .collect();
    let assignee = s.assignee.as_ref().map(|who| {
        analysts
            .iter()
            .find(|(actor, _)| actor == who)
            .map_or_else(|| who.clone(), |(_, display)| format!("{display} ({who})"))
    });
    let c = CaseView {
        reference: s.reference.clone(),
        subject: s.subject.clone(),
        state: s.state.as_str(),
        close_reason: d.close_reason.clone(),
        org: s.org.clone(),
        kind: s.kind.as_str(),
        received: when(s.received_at),
        receipt_clock: if state.acknowledged() {
            "acknowledged".into()
        } else if open {
            format!(
                "due {} ({})",
                when(s.acknowledge_by),
                clock(s.acknowledge_by, now)
            )
        } else {
            "not needed".into()
        },
        receipt_overdue: open && !state.acknowledged() && now > s.acknowledge_by,
        feedback_clock: if let Some(at) = d.feedback_given_at {
            format!("given {}", when(at))
        } else if !open {
            "closed".into()
        } else if d.feedback_paused {
            "paused while waiting for the reporter".into()
        } else {
            format!(
                "due {} ({})",
                when(s.feedback_by),
                clock(s.feedback_by, now)
            )
        },
        feedback_overdue: open
            && !d.feedback_paused
            && d.feedback_given_at.is_none()
            && now > s.feedback_by,
        breach_clock: d
            .breach_notify_by
            .map(|t| format!("first notification due {} ({})", when(t), clock(t, now))),
        clocks: super::clocks::clock_views(&d.clocks),
        any_open: d.clocks.iter().any(|k| {
            matches!(
                k.state,
                crate::model::clock::ClockState::Due | crate::model::clock::ClockState::Overdue
            )
        }),
        flag_choices: ui
            .cases
            .flags_for(&s.org)
            .into_iter()
            .map(|f| {
                (
                    f.as_str(),
                    f.describe(),
                    d.flags.iter().any(|x| x.flag == f),
                )
            })
            .collect(),
        erased: d.erased_at.map(when),
        anonymous: d.anonymous,
        reporter,
        reply_to: d.reporter_address.clone(),
        fields,
        cves: d.cve_ids.join(", "),
        cwes: d.cwe_ids.join(", "),
        cvss: d.cvss_vector.as_ref().map(|v| {
            format!(
                "{} {} ({v})",
                d.cvss_score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                d.cvss_severity.clone().unwrap_or_default()
            )
        }),
        assets: d
            .assets
            .iter()
            .map(|a| (a.value.clone(), a.in_scope))
            .collect(),
        suggestions: d
            .suggestions
            .iter()
            .map(|s| (s.label.clone(), s.matched.clone()))
            .collect(),
        evidence,
        tls: match (&d.tls_version, &d.tls_cipher) {
            (Some(v), Some(c)) => format!("{v}, {c}"),
            (Some(v), None) => v.clone(),
            _ => "none: delivered without TLS".into(),
        },
        encryption: d.encryption.iter().map(|e| e.summary.clone()).collect(),
        auth_results: d
            .authentication_results
            .clone()
            .unwrap_or_else(|| "none".into()),
        timeline: d
            .timeline
            .iter()
            .map(|t| EventView {
                when: when(t.at),
                kind: t.kind.as_str(),
                actor: t.actor.clone(),
                detail: t.detail.clone(),
            })
            .collect(),
        has_locked,
        thread: super::conversation::thread_views(&d),
        promotable: s.kind == CaseKind::Unflagged,
        receipt_held: d.outbound.iter().any(|o| {
            o.kind == "receipt"
                && o.state == "suppressed"
                && o.reason.as_deref() == Some(crate::cases::authenticate::UNAUTHENTICATED)
        }),
        sender_auth: d.sender_auth.iter().flat_map(|a| a.lines()).collect(),
        duplicates: d
            .duplicates
            .iter()
            .map(|h| (h.reference.clone(), h.reason.clone()))
            .collect(),
        editable: EDITABLE.iter().map(|(f, l)| (f.as_str(), *l)).collect(),
        assignee,
        analysts,
        next_states: CaseState::ALL
            .iter()
            .filter(|n| state.may_become(**n))
            .map(|n| n.as_str())
            .collect(),
    };
    let (status, error) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    Ok((
        status,
        render(&CasePage {
            base: a.base(format!("{} {}", s.reference, s.subject), ui),
            c,
            draft: draft.map(|d| (d.kind.as_str(), d.language, d.text)),
            feedback_kinds: crate::policy::feedback::FeedbackKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect(),
            notice,
            error,
        }),
    )
        .into_response())
}

// ---------------------------------------------------------------- actions

pub(crate) fn done(reference: &str, code: &str) -> Response {
    Redirect::to(&format!("/cases/{reference}?done={code}")).into_response()
}

#[derive(Deserialize)]
pub(crate) struct UnlockForm {
    csrf: String,
    password: Zeroizing<String>,
}

pub(crate) async fn unlock(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<UnlockForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    match ui.cases.unlock(&case, f.password).await {
        Ok(outcome) if outcome.opened > 0 => Ok(done(&case.reference, "unlocked")),
        Ok(outcome) => {
            let why = if outcome.refused.is_empty() {
                "Nothing was opened.".to_owned()
            } else {
                format!("Not opened: {}", outcome.refused.join("; "))
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            case_page(&ui, &a, &case, None, Some((status, why))).await
        }
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

/// A refused action: the case page again with the service's message,
/// for what the analyst can put right; an error page for the rest.
pub(crate) async fn refused(
    ui: &Ui,
    a: &Analyst,
    case: &Authorized<Case>,
    e: CaseError,
) -> Result<Response, UiError> {
    let status = match e.class() {
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorClass::Limited => StatusCode::TOO_MANY_REQUESTS,
        _ => return Err(e.into()),
    };
    case_page(ui, a, case, None, Some((status, e.to_string()))).await
}

#[derive(Deserialize)]
pub(crate) struct TransitionForm {
    csrf: String,
    state: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn transition(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<TransitionForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let next = state_named(&f.state)?;
        let reason = Reason::new(Some(&f.reason))?;
        ui.cases.transition(&case, next, &reason).await
    }
    .await;
    match result {
        Ok(()) => Ok(done(&case.reference, "transition")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct TextForm {
    csrf: String,
    text: String,
}

pub(crate) async fn note(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<TextForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    match async { ui.cases.note(&case, &NoteText::new(&f.text)?).await }.await {
        Ok(()) => Ok(done(&case.reference, "note")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

pub(crate) async fn reply(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<TextForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    match async { ui.cases.reply(&case, &ReplyText::new(&f.text)?).await }.await {
        Ok(_) => Ok(done(&case.reference, "reply")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct AssignForm {
    csrf: String,
    /// An analyst's stable identity; empty takes the case back.
    #[serde(default)]
    assignee: String,
}

pub(crate) async fn assign(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<AssignForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let to = Some(f.assignee.as_str()).filter(|s| !s.is_empty());
    match ui.cases.assign(&case, to).await {
        Ok(()) => Ok(done(&case.reference, "assign")),
        Err(e) => refused(&ui, &a, &case, e).await,
    }
}

pub(crate) async fn breach(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    ui.cases.flag_breach(&case).await?;
    Ok(done(&case.reference, "breach"))
}
