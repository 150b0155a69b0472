//! A case's conversation on its page, the headers of each stored mail, the
//! original mail as a download, and an analyst's correction of a report
//! field — each a call to the cases service.

use super::evidence::hostile_download;
use super::*;
use crate::cases::{FieldText, field_named};
use crate::model::thread::{EntryKind, ThreadEntry};
use crate::store::cases::CaseDetail;

/// One entry of the conversation, as the page shows it.
pub(crate) struct EntryView {
    pub(crate) kind: &'static str,
    pub(crate) label: String,
    pub(crate) internal: bool,
    pub(crate) when: String,
    pub(crate) from: String,
    pub(crate) to: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) tls: Option<String>,
    pub(crate) text: String,
    pub(crate) delivery: Option<String>,
    /// (name, download URL)
    pub(crate) attachments: Vec<(String, String)>,
    /// The stored mail's headers view and raw download.
    pub(crate) mail: Option<(String, String)>,
}

fn label(e: &ThreadEntry) -> String {
    match e.kind {
        EntryKind::Report if e.from_archive => "Report (found inside the archive)".into(),
        EntryKind::Report => "Report".into(),
        EntryKind::CoveringNote => "Covering note (the mail's own text)".into(),
        EntryKind::FollowUp => match e.from_reporter {
            Some(true) => "Follow-up from the reporter".into(),
            _ => "Follow-up NOT FROM THE REPORTER".into(),
        },
        EntryKind::Receipt => "Our receipt".into(),
        EntryKind::Reply => "Our reply".into(),
        EntryKind::StatusUpdate => "Our status update".into(),
        EntryKind::Note => "Internal note (never sent)".into(),
    }
}

/// The conversation of `d`, in order.
pub(crate) fn thread_views(d: &CaseDetail) -> Vec<EntryView> {
    let reference = &d.summary.reference;
    d.thread
        .iter()
        .map(|e| EntryView {
            kind: e.kind.as_str(),
            label: label(e),
            internal: e.internal,
            when: when(e.at),
            from: e.from.clone(),
            to: e.to.clone(),
            subject: e.subject.clone(),
            tls: match (e.kind, &e.tls_version) {
                (
                    EntryKind::Receipt
                    | EntryKind::Reply
                    | EntryKind::StatusUpdate
                    | EntryKind::Note,
                    _,
                ) => None,
                (_, Some(v)) => Some(v.clone()),
                (_, None) => Some("none: delivered without TLS".into()),
            },
            text: e.text.clone(),
            delivery: e.delivery.as_ref().map(|s| match &e.delivery_reason {
                Some(r) => format!("{s}: {r}"),
                None => s.clone(),
            }),
            attachments: e
                .attachments
                .iter()
                .filter_map(|id| d.evidence.iter().find(|x| x.id == *id))
                .map(|x| {
                    (
                        x.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                        format!("/cases/{reference}/evidence/{}", x.object_id),
                    )
                })
                .collect(),
            mail: e.message.map(|m| {
                (
                    format!("/cases/{reference}/messages/{m}/headers"),
                    format!("/cases/{reference}/messages/{m}/raw"),
                )
            }),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "headers.html")]
struct HeadersPage {
    base: Base,
    reference: String,
    message: i64,
    text: String,
    truncated: bool,
}

/// The header section of one stored mail, as it arrived; audited.
pub(crate) async fn headers(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, message)): Path<(String, i64)>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let h = ui.cases.headers(&case, message).await?;
    Ok(render(&HeadersPage {
        base: a.base(
            format!("{} message {message}: headers", case.reference),
            &ui,
        ),
        reference: case.reference.clone(),
        message,
        text: h.text,
        truncated: h.truncated,
    }))
}

/// One stored mail as it arrived, as an attachment; audited.
pub(crate) async fn raw(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, message)): Path<(String, i64)>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let raw = ui.cases.raw_message(&case, message).await?;
    Ok(hostile_download(
        raw,
        &format!("{}-message-{message}.eml", case.reference),
    ))
}

#[derive(Deserialize)]
pub(crate) struct BulkForm {
    csrf: String,
    by: String,
}

/// Junks every case of the organisation like this one (same sender,
/// domain, client or text).
pub(crate) async fn bulk(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<BulkForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let by = crate::cases::selector_named(&f.by)?;
        ui.cases
            .bulk(&case, by, crate::cases::triage::BulkAction::Junk, false)
            .await
    }
    .await;
    match result {
        Ok(outcome) => Ok(Redirect::to(&format!(
            "/cases/{}?done=bulk&n={}",
            case.reference,
            outcome.moved.len()
        ))
        .into_response()),
        Err(e) => super::case::refused(&ui, &a, &case, e).await,
    }
}

pub(crate) async fn promote(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<crate::web::auth::logout::CsrfForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    match ui.cases.promote(&case).await {
        Ok(_) => Ok(super::case::done(&case.reference, "promote")),
        Err(e) => super::case::refused(&ui, &a, &case, e).await,
    }
}

/// Sends the receipt held because the sender is not authenticated.
pub(crate) async fn release_receipt(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<crate::web::auth::logout::CsrfForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    match ui.cases.release_receipt(&case).await {
        Ok(_) => Ok(super::case::done(&case.reference, "receipt-released")),
        Err(e) => super::case::refused(&ui, &a, &case, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct FeedbackForm {
    csrf: String,
    kind: String,
    text: String,
}

/// Sends a status update (the draft, as the analyst edited it).
pub(crate) async fn feedback(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<FeedbackForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let kind = crate::cases::feedback_named(&f.kind)?;
        let text = crate::cases::ReplyText::new(&f.text)?;
        ui.cases.send_feedback(&case, kind, &text).await
    }
    .await;
    match result {
        Ok(_) => Ok(super::case::done(&case.reference, "feedback")),
        Err(e) => super::case::refused(&ui, &a, &case, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct FieldForm {
    csrf: String,
    field: String,
    /// Empty clears the field.
    #[serde(default)]
    text: String,
}

pub(crate) async fn edit_field(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Form(f): Form<FieldForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let case = a.open(&ui, &reference).await?;
    let result = async {
        let field = field_named(&f.field)?;
        let text = match f.text.trim() {
            "" => None,
            t => Some(FieldText::new(t)?),
        };
        ui.cases.edit_field(&case, field, text.as_ref()).await
    }
    .await;
    match result {
        Ok(()) => Ok(super::case::done(&case.reference, "edit")),
        Err(e) => super::case::refused(&ui, &a, &case, e).await,
    }
}
