//! The regulatory clocks through the API: flag a case, record a mark or a
//! submission, read the clocks and a notification's draft. The rules are
//! the cases service's (`crate::cases::clocks`).

use super::{Api, ApiError, Caller, json};
use crate::cases::{Reason, flag_named, instant, language_named, mark_named};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub(super) async fn clocks(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    Ok(json(StatusCode::OK, &api.cases.clocks(&case).await?))
}

#[derive(Deserialize)]
pub(super) struct FlagBody {
    flag: String,
    /// RFC 3339; default now.
    aware_at: Option<String>,
    reason: Option<String>,
}

pub(super) async fn flag(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<FlagBody>,
) -> Result<Response, ApiError> {
    let flag = flag_named(&body.flag)?;
    let aware_at = body.aware_at.as_deref().map(instant).transpose()?;
    let reason = Reason::new(body.reason.as_deref())?;
    let case = api.cases.open(&p, &reference).await?;
    let clocks = api.cases.flag(&case, flag, aware_at, &reason).await?;
    Ok(json(StatusCode::OK, &clocks))
}

#[derive(Deserialize)]
pub(super) struct MarkBody {
    mark: String,
    at: Option<String>,
}

pub(super) async fn mark(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<MarkBody>,
) -> Result<Response, ApiError> {
    let mark = mark_named(&body.mark)?;
    let at = body.at.as_deref().map(instant).transpose()?;
    let case = api.cases.open(&p, &reference).await?;
    Ok(json(
        StatusCode::OK,
        &api.cases.mark(&case, mark, at).await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct SubmissionBody {
    /// The authority's reference for the submission.
    reference: String,
    at: Option<String>,
}

pub(super) async fn submitted(
    State(api): State<Api>,
    Caller(p): Caller,
    Path((reference, regime, step)): Path<(String, String, String)>,
    Json(body): Json<SubmissionBody>,
) -> Result<Response, ApiError> {
    let at = body.at.as_deref().map(instant).transpose()?;
    let case = api.cases.open(&p, &reference).await?;
    let clock = format!("{regime}/{step}");
    let clocks = api
        .cases
        .submitted(&case, &clock, at, &body.reference)
        .await?;
    Ok(json(StatusCode::OK, &clocks))
}

#[derive(Deserialize)]
pub(super) struct DraftQuery {
    lang: Option<String>,
}

pub(super) async fn draft(
    State(api): State<Api>,
    Caller(p): Caller,
    Path((reference, regime, step)): Path<(String, String, String)>,
    Query(q): Query<DraftQuery>,
) -> Result<Response, ApiError> {
    let language = q.lang.as_deref().map(language_named).transpose()?;
    let case = api.cases.open(&p, &reference).await?;
    let draft = api
        .cases
        .draft(&case, &format!("{regime}/{step}"), language)
        .await?;
    let text = draft.text();
    let mut value = serde_json::to_value(&draft)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("draft: {e}")))?;
    value["text"] = serde_json::Value::String(text);
    Ok(json(StatusCode::OK, &value))
}
