//! The JSON API for service accounts (bearer tokens): a thin adapter over
//! the cases service, like the CLI and the pages.
//!
//! Every request is authenticated; an account sees only the cases of its
//! organisations, and a case of another organisation answers 404 exactly
//! like one that does not exist, so references cannot be probed. Every
//! read and change is written to the audit trail with the account and the
//! client address. Responses are JSON, never cached, never sniffed.
//! `openapi.json` beside this file describes every route, and a test keeps
//! the two equal.

mod clocks;
pub mod tokens;

use crate::cases::{
    CaseError, Cases, Door, ErrorClass, FieldText, NoteText, Page, Principal, Reason, ReplyText,
    Scope, action_named, feedback_named, field_named, instant, kind_named, selector_named,
    state_named,
};
use crate::store::Store;
use crate::store::audit::{self, AuditAction};
use crate::store::cases::Filter;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, RawQuery, State};
use axum::http::Method;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use tokens::ServiceAccount;

/// The OpenAPI document, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The API's paths, by name.
pub mod paths {
    pub const CASES: &str = "/api/v1/cases";
    pub const CASE: &str = "/api/v1/cases/{reference}";
    pub const TRANSITION: &str = "/api/v1/cases/{reference}/transition";
    pub const NOTES: &str = "/api/v1/cases/{reference}/notes";
    pub const ASSIGN: &str = "/api/v1/cases/{reference}/assign";
    pub const FIELDS: &str = "/api/v1/cases/{reference}/fields";
    pub const HEADERS: &str = "/api/v1/cases/{reference}/messages/{message}/headers";
    pub const RAW: &str = "/api/v1/cases/{reference}/messages/{message}/raw";
    pub const BULK: &str = "/api/v1/cases/{reference}/bulk";
    pub const PROMOTE: &str = "/api/v1/cases/{reference}/promote";
    pub const RELEASE_RECEIPT: &str = "/api/v1/cases/{reference}/receipt/release";
    pub const FEEDBACK: &str = "/api/v1/cases/{reference}/feedback";
    pub const FEEDBACK_DRAFT: &str = "/api/v1/cases/{reference}/feedback/{kind}";
    pub const CLOCKS: &str = "/api/v1/cases/{reference}/clocks";
    pub const FLAGS: &str = "/api/v1/cases/{reference}/flags";
    pub const MARKS: &str = "/api/v1/cases/{reference}/marks";
    pub const SUBMISSION: &str = "/api/v1/cases/{reference}/clocks/{regime}/{step}/submission";
    pub const DRAFT: &str = "/api/v1/cases/{reference}/clocks/{regime}/{step}/draft";
    pub const SLA: &str = "/api/v1/sla";
    pub const EXPORT: &str = "/api/v1/export";
    pub const OPENAPI: &str = "/api/v1/openapi.json";
}

/// Every route: its method, its path by name, its handler. The router is
/// built from this list, and a test compares it with the OpenAPI document.
fn routes() -> Vec<(Method, &'static str, MethodRouter<Api>)> {
    vec![
        (Method::GET, paths::CASES, get(list_cases)),
        (Method::GET, paths::CASE, get(show_case)),
        (Method::POST, paths::TRANSITION, post(transition)),
        (Method::POST, paths::NOTES, post(add_note)),
        (Method::POST, paths::ASSIGN, post(assign)),
        (Method::POST, paths::FIELDS, post(edit_field)),
        (Method::GET, paths::HEADERS, get(headers)),
        (Method::GET, paths::RAW, get(raw)),
        (Method::POST, paths::BULK, post(bulk)),
        (Method::POST, paths::PROMOTE, post(promote)),
        (Method::POST, paths::RELEASE_RECEIPT, post(release_receipt)),
        (Method::POST, paths::FEEDBACK, post(send_feedback)),
        (Method::GET, paths::FEEDBACK_DRAFT, get(feedback_draft)),
        (Method::GET, paths::CLOCKS, get(clocks::clocks)),
        (Method::POST, paths::FLAGS, post(clocks::flag)),
        (Method::POST, paths::MARKS, post(clocks::mark)),
        (Method::POST, paths::SUBMISSION, post(clocks::submitted)),
        (Method::GET, paths::DRAFT, get(clocks::draft)),
        (Method::GET, paths::SLA, get(sla)),
        (Method::GET, paths::EXPORT, get(export)),
        (Method::GET, paths::OPENAPI, get(openapi)),
    ]
}

#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub cases: std::sync::Arc<Cases>,
}

/// Why the analyst interface could not start.
/// The API's router: the cases service behind bearer tokens in `store`.
pub fn router(store: Store, cases: std::sync::Arc<Cases>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .with_state(Api { store, cases })
}

/// An API error: a status and a message, as JSON.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response();
        secure(r.headers_mut());
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        let status = match e.class() {
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::Conflict => StatusCode::CONFLICT,
            ErrorClass::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorClass::Limited => StatusCode::TOO_MANY_REQUESTS,
            ErrorClass::Internal => {
                tracing::error!(error = %e, "api request failed");
                return ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into());
            }
        };
        ApiError(status, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        CaseError::Store(e).into()
    }
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The authenticated caller: a service account as a principal of the
/// cases service, scoped to the account's organisations.
pub struct Caller(Principal);

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required".into(),
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let account: ServiceAccount = tokens::authenticate(&api.store, token.trim())
            .await?
            .ok_or_else(unauthorized)?;
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Caller(Principal {
            id: format!("token:{}", account.name),
            door: Door::Api,
            source,
            scope: Scope::Orgs(account.orgs.into_iter().collect()),
        }))
    }
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let mut r = (status, Json(value)).into_response();
    secure(r.headers_mut());
    r
}

/// Cases per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;

#[derive(Deserialize)]
struct ListQuery {
    org: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    overdue: bool,
    assignee: Option<String>,
    #[serde(default)]
    breach: bool,
    clock: Option<String>,
    received_since: Option<String>,
    received_before: Option<String>,
    q: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_cases(
    State(api): State<Api>,
    Caller(p): Caller,
    RawQuery(raw): RawQuery,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = Filter {
        org: q.org,
        state: q.state.as_deref().map(state_named).transpose()?,
        kind: q.kind.as_deref().map(kind_named).transpose()?,
        overdue: q.overdue,
        assignee: q.assignee,
        breach: q.breach,
        clock: q
            .clock
            .as_deref()
            .map(crate::cases::clock_state_named)
            .transpose()?,
        received_from: q.received_since.as_deref().map(instant).transpose()?,
        received_until: q.received_before.as_deref().map(instant).transpose()?,
        ..Filter::default()
    };
    let page = Page {
        after: q.after,
        limit: Some(q.limit.unwrap_or(DEFAULT_PAGE)),
    };
    let listing = api.cases.list(&p, &filter, q.q.as_deref(), &page).await?;
    let mut tx = api.store.write().await?;
    audit::record(
        &mut tx,
        api.store.sealer(),
        &p.who().entry(AuditAction::List, "", "cases listed"),
    )
    .await?;
    tx.commit().await?;
    let mut r = json(StatusCode::OK, &listing.cases);
    let h = r.headers_mut();
    h.insert("x-total-count", HeaderValue::from(listing.total));
    if let Some(next) = &listing.next {
        // The same query, from the next page on (a cursor is URL-safe).
        let mut query: Vec<&str> = raw
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("after="))
            .collect();
        let after = format!("after={}", next.encode());
        query.push(&after);
        if let Ok(v) = HeaderValue::from_str(&format!(
            "<{}?{}>; rel=\"next\"",
            paths::CASES,
            query.join("&")
        )) {
            h.insert(header::LINK, v);
        }
    }
    Ok(r)
}

async fn show_case(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    Ok(json(StatusCode::OK, &api.cases.view(&case).await?))
}

#[derive(Deserialize)]
struct TransitionBody {
    state: String,
    reason: Option<String>,
}

async fn transition(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<TransitionBody>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let next = state_named(&body.state)?;
    let reason = Reason::new(body.reason.as_deref())?;
    api.cases.transition(&case, next, &reason).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "reference": reference, "state": next }),
    ))
}

#[derive(Deserialize)]
struct NoteBody {
    text: String,
}

async fn add_note(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<NoteBody>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    api.cases.note(&case, &NoteText::new(&body.text)?).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "reference": reference, "note": "added" }),
    ))
}

#[derive(Deserialize)]
struct AssignBody {
    /// Required, and null to take the case back: a missing field is a
    /// mistake, not an unassignment.
    #[serde(deserialize_with = "present")]
    assignee: Option<String>,
}

/// An `Option` field that must be present, null or not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

async fn assign(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<AssignBody>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    api.cases.assign(&case, body.assignee.as_deref()).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "reference": reference, "assignee": body.assignee }),
    ))
}

#[derive(Deserialize)]
struct FieldBody {
    field: String,
    /// Required, and null to clear the field.
    #[serde(deserialize_with = "present")]
    text: Option<String>,
}

async fn edit_field(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<FieldBody>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let field = field_named(&body.field)?;
    let text = body.text.as_deref().map(FieldText::new).transpose()?;
    api.cases.edit_field(&case, field, text.as_ref()).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "reference": reference, "field": field, "source": text.as_ref().map(|_| "analyst") }),
    ))
}

async fn headers(
    State(api): State<Api>,
    Caller(p): Caller,
    Path((reference, message)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let h = api.cases.headers(&case, message).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "message": message, "headers": h.text, "truncated": h.truncated }),
    ))
}

/// The original mail, as it arrived: `message/rfc822` bytes as an
/// attachment, never for a browser to render.
async fn raw(
    State(api): State<Api>,
    Caller(p): Caller,
    Path((reference, message)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let raw = api.cases.raw_message(&case, message).await?;
    let mut r = raw.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-message-{message}.eml\"",
        case.reference
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    secure(h);
    Ok(r)
}

#[derive(Deserialize)]
struct BulkBody {
    action: String,
    by: String,
    #[serde(default)]
    dry_run: bool,
}

async fn bulk(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<BulkBody>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let by = selector_named(&body.by)?;
    let action = action_named(&body.action)?;
    let outcome = api.cases.bulk(&case, by, action, body.dry_run).await?;
    Ok(json(StatusCode::OK, &outcome))
}

async fn promote(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let to = api.cases.promote(&case).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "reference": reference, "kind": "disclosure", "receipt_to": to }),
    ))
}

async fn release_receipt(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    api.cases.release_receipt(&case).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "reference": reference, "released": true }),
    ))
}

async fn feedback_draft(
    State(api): State<Api>,
    Caller(p): Caller,
    Path((reference, kind)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let kind = feedback_named(&kind)?;
    Ok(json(
        StatusCode::OK,
        &api.cases.feedback_draft(&case, kind).await?,
    ))
}

#[derive(Deserialize)]
struct FeedbackBody {
    kind: String,
    /// The update's text; the policy's template when left out.
    text: Option<String>,
}

async fn send_feedback(
    State(api): State<Api>,
    Caller(p): Caller,
    Path(reference): Path<String>,
    Json(body): Json<FeedbackBody>,
) -> Result<Response, ApiError> {
    let case = api.cases.open(&p, &reference).await?;
    let kind = feedback_named(&body.kind)?;
    let text = match body.text {
        Some(t) => t,
        None => api.cases.feedback_draft(&case, kind).await?.text,
    };
    let to = api
        .cases
        .send_feedback(&case, kind, &ReplyText::new(&text)?)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "reference": reference, "kind": kind, "to": to }),
    ))
}

#[derive(Deserialize)]
struct SlaQuery {
    org: Option<String>,
}

async fn sla(
    State(api): State<Api>,
    Caller(p): Caller,
    Query(q): Query<SlaQuery>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &api.cases.sla(&p, q.org.as_deref()).await?,
    ))
}

async fn export(State(api): State<Api>, Caller(p): Caller) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &api.cases.export(&p).await?))
}

async fn openapi() -> Response {
    let mut r = ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response();
    secure(r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.")),
            Some(true)
        );
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = routes()
            .into_iter()
            .map(|(m, p, _)| (m.as_str().to_ascii_lowercase(), p.to_owned()))
            .collect();
        assert_eq!(documented, routed);
    }
}
