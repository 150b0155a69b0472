//! The analyst interface: server-rendered pages behind SAML sign-in.
//!
//! Layers, one way: routes → `Analyst` (a live session, or a redirect to
//! sign-in) → `CaseAccess` (the case belongs to one of the analyst's
//! organisations, else 404 exactly like a case that does not exist) → the
//! same case functions the CLI and API use, which write the timeline and
//! the audit trail. Every page goes out with a strict Content-Security-
//! Policy (no script at all), nosniff, no framing and no caching.
//! Evidence is hostile: downloads are attachments named by a sanitised
//! name; inline previews only for images whose type is re-checked from
//! their bytes on every request (PNG, JPEG, GIF, WebP; never SVG).

use super::devidp::{DevIdp, ResponseSpec, Signed};
use super::saml::{Roles, SamlError, Sso};
use super::session::{self, Lifetimes, NoSession, Session};
use crate::cases::{
    Authorized, Case, CaseError, CaseKind, CaseState, Cases, Door, ErrorClass, EvidenceUse,
    NoteText, Principal, Reason, ReplyText, Scope, state_named,
};
use crate::policy::PolicySet;
use crate::store::Store;
use crate::store::audit::{self, AuditAction, Who};
use crate::store::cases::Filter;
use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Entries shown on the audit page (the newest 500); the CLI lists all.
pub const AUDIT_PAGE_ENTRIES: i64 = 100;

/// Content-Security-Policy of every page: nothing but our own stylesheet,
/// images and forms; no script, no framing.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// For evidence bytes: nothing may run or load, even if a browser renders it.
const EVIDENCE_CSP: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";
/// Types shown inline, and only when the bytes say so too.
const PREVIEWABLE: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Shared state of the interface.
pub struct Ui {
    pub store: Store,
    pub sso: Arc<Sso>,
    pub dev_idp: Option<Arc<DevIdp>>,
    pub policies: Arc<PolicySet>,
    pub cases: Arc<Cases>,
    /// Refused sign-ins from strangers, tallied per source and minute.
    pub refusals: Arc<super::refusals::RefusalLog>,
    pub secure_cookies: bool,
    pub lifetimes: Lifetimes,
}

type S = Arc<Ui>;

/// Whether this process runs the dev IdP: every page, error pages
/// included, then carries the banner. One process has one mode.
static DEV_IDP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn dev_mode() -> bool {
    DEV_IDP.load(std::sync::atomic::Ordering::Relaxed)
}

/// The interface's routes (the JSON API is merged beside them).
pub fn router(ui: Ui) -> Router {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/cases") }))
        .route("/static/app.css", get(stylesheet))
        .route("/login", get(login))
        .route("/saml/metadata", get(metadata))
        .route("/saml/acs", post(acs))
        .route("/logout", post(logout))
        .route("/cases", get(list))
        .route("/cases/{reference}", get(show))
        .route("/cases/{reference}/evidence/{object}", get(download))
        .route("/cases/{reference}/evidence/{object}/preview", get(preview))
        .route("/cases/{reference}/unlock", post(unlock_case))
        .route("/cases/{reference}/transition", post(transition))
        .route("/cases/{reference}/notes", post(note))
        .route("/cases/{reference}/reply", post(reply))
        .route("/cases/{reference}/breach", post(breach))
        .route("/audit", get(audit_page));
    if ui.dev_idp.is_some() {
        DEV_IDP.store(true, std::sync::atomic::Ordering::Relaxed);
        r = r.route("/dev-idp/sso", get(dev_idp_page).post(dev_idp_sign));
    }
    r.with_state(Arc::new(ui))
        .layer(axum::middleware::map_response(page_headers))
}

/// Headers on every response; evidence handlers set stricter ones first.
async fn page_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

// ---------------------------------------------------------------- errors

/// What a request can end in besides its page.
#[derive(Debug)]
pub enum UiError {
    /// No session: GETs go to sign-in; POSTs get a page saying so (a form
    /// is never silently replayed after sign-in).
    SignIn {
        post: bool,
    },
    NotFound,
    /// A case operation refused by the cases service: its message, as the
    /// other doors show it.
    Case(ErrorClass, String),
    Forbidden(&'static str),
    BadRequest(String),
    Internal,
}

impl From<CaseError> for UiError {
    fn from(e: CaseError) -> Self {
        match e.class() {
            ErrorClass::Internal => {
                tracing::error!(error = %e, "web request failed");
                UiError::Internal
            }
            class => UiError::Case(class, e.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for UiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "web request failed");
        UiError::Internal
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            UiError::SignIn { post: false } => return Redirect::to("/login").into_response(),
            UiError::SignIn { post: true } => (
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended, so nothing was changed. Sign in again and repeat the action.".to_owned(),
            ),
            UiError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here for you.".to_owned()),
            UiError::Case(ErrorClass::NotFound, why) => (StatusCode::NOT_FOUND, "Not found", why),
            UiError::Case(ErrorClass::Conflict, why) => (StatusCode::CONFLICT, "Not done", why),
            UiError::Case(ErrorClass::Limited, why) => (StatusCode::TOO_MANY_REQUESTS, "Not now", why),
            UiError::Case(_, why) => (StatusCode::UNPROCESSABLE_ENTITY, "Not done", why),
            UiError::Forbidden(why) => (StatusCode::FORBIDDEN, "Refused", why.to_owned()),
            UiError::BadRequest(why) => (StatusCode::UNPROCESSABLE_ENTITY, "Not done", why),
            UiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "Something failed on our side; it is logged. Nothing was changed.".to_owned(),
            ),
        };
        let link = Some(("/cases".to_owned(), "Back to cases".to_owned()));
        (
            status,
            render(&MessagePage {
                base: Base::anonymous(title),
                text,
                link,
            }),
        )
            .into_response()
    }
}

fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

// ---------------------------------------------------------------- who

/// A signed-in person with a live session.
pub struct Analyst {
    session: Session,
    source: String,
}

impl Analyst {
    /// The analyst as a principal of the cases service: their stable
    /// identity and their organisations.
    fn principal(&self) -> Principal {
        Principal {
            id: self.session.actor.clone(),
            door: Door::Web,
            source: self.source.clone(),
            scope: Scope::Orgs(self.session.roles.orgs.clone()),
        }
    }

    fn who(&self) -> Who<'_> {
        Who {
            actor: &self.session.actor,
            source: &self.source,
        }
    }

    /// The case, through the one access check of the cases service.
    async fn open(&self, ui: &Ui, reference: &str) -> Result<Authorized<Case>, UiError> {
        Ok(ui.cases.open(&self.principal(), reference).await?)
    }

    /// Checks a form's CSRF token.
    fn check_csrf(&self, submitted: &str) -> Result<(), UiError> {
        if session::csrf_ok(&self.session, submitted) {
            Ok(())
        } else {
            Err(UiError::Forbidden(
                "The form's security token did not match your session. Reload the page and try again.",
            ))
        }
    }

    fn base(&self, title: impl Into<String>, ui: &Ui) -> Base {
        Base {
            title: title.into(),
            dev: ui.dev_idp.is_some(),
            csrf: self.session.csrf.clone(),
            who: Some(WhoView {
                display: self.session.display.clone(),
                admin: self.session.roles.admin,
            }),
        }
    }
}

fn client(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

impl FromRequestParts<S> for Analyst {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &S) -> Result<Self, Self::Rejection> {
        let post = parts.method == axum::http::Method::POST;
        let token = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| session::from_header(c, ui.secure_cookies))
            .ok_or(UiError::SignIn { post })?;
        let now = now();
        match session::load(&ui.store, token, ui.lifetimes, now).await? {
            Ok(session) => Ok(Analyst {
                session,
                source: client(parts),
            }),
            Err(NoSession::Expired | NoSession::Missing) => Err(UiError::SignIn { post }),
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

// ---------------------------------------------------------------- views

pub struct WhoView {
    display: String,
    admin: bool,
}

pub struct Base {
    title: String,
    dev: bool,
    csrf: String,
    who: Option<WhoView>,
}

impl Base {
    fn anonymous(title: &str) -> Base {
        Base {
            title: title.to_owned(),
            dev: dev_mode(),
            csrf: String::new(),
            who: None,
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    base: Base,
    text: String,
    link: Option<(String, String)>,
}

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// "2 d 3 h left" or "overdue by 5 h".
fn clock(due: i64, now: i64) -> String {
    let d = (due - now).abs();
    let span = if d >= 86_400 {
        format!("{} d {} h", d / 86_400, d % 86_400 / 3600)
    } else if d >= 3600 {
        format!("{} h {} min", d / 3600, d % 3600 / 60)
    } else {
        format!("{} min", d / 60)
    };
    if now > due {
        format!("overdue by {span}")
    } else {
        format!("{span} left")
    }
}

// ---------------------------------------------------------------- sign-in

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}

async fn metadata(State(ui): State<S>) -> Result<Response, UiError> {
    let xml = ui.sso.metadata().map_err(|e| {
        tracing::error!(error = %e, "sp metadata");
        UiError::Internal
    })?;
    Ok((
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        xml,
    )
        .into_response())
}

async fn login(State(ui): State<S>) -> Result<Response, UiError> {
    // Nothing is stored: the request id carries its own expiry and MAC.
    // A cookie ties it to this browser, so a response cannot be posted
    // into someone else's browser to sign them in as another (login CSRF).
    let (id, url) = ui.sso.start(now()).map_err(|e| {
        tracing::error!(error = %e, "sign-in request");
        UiError::Internal
    })?;
    let mut r = Redirect::to(&url).into_response();
    let cookie = session::set_request_cookie(&id, ui.secure_cookies, ui.sso.request_lifetime());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
}

async fn acs(
    State(ui): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Result<Response, UiError> {
    let started_here = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::request_from_header(c, ui.secure_cookies))
        .map(str::to_owned);
    let source = peer.ip().to_string();
    let now = now();
    let refused = |reason: SamlError| -> Response {
        tracing::warn!(error = %reason, client = %source, "sign-in refused");
        let text = format!("Sign-in refused: {reason}.");
        (
            StatusCode::FORBIDDEN,
            render(&MessagePage {
                base: Base::anonymous("Sign-in refused"),
                text,
                link: Some(("/login".into(), "Start again".into())),
            }),
        )
            .into_response()
    };
    let category = |e: &SamlError| match e {
        SamlError::TooLarge | SamlError::Malformed(_) => "malformed response",
        SamlError::UnknownRequest => "unknown or answered request",
        SamlError::OtherBrowser => "started in another browser",
        SamlError::Replayed => "replayed assertion",
        _ => "response did not verify",
    };
    let outcome = async {
        let unverified = ui.sso.precheck(&form.saml_response)?;
        if ui
            .sso
            .request_expiry(&unverified.in_response_to, now)
            .is_none()
        {
            return Err(SamlError::UnknownRequest);
        }
        if started_here.as_deref() != Some(unverified.in_response_to.as_str()) {
            return Err(SamlError::OtherBrowser);
        }
        let sso = Arc::clone(&ui.sso);
        let request_id = unverified.in_response_to.clone();
        // xmlsec is CPU work in C: off the async threads.
        let verified = tokio::task::spawn_blocking(move || {
            sso.verify(&unverified, &request_id, now)
                .map(|v| (v, unverified.in_response_to))
        })
        .await
        .map_err(|_| SamlError::Refused("verification task failed".into()))??;
        Ok(verified)
    }
    .await;
    let (verified, request_id) = match outcome {
        Ok(v) => v,
        // No identity yet: counted per source and minute, not written now
        // (`refusals`), so strangers cannot flood the audit trail.
        Err(e) => {
            ui.refusals.note(&source, category(&e), now);
            return Ok(refused(e));
        }
    };
    // Consume the request and the assertion id: a second post of the same
    // response is a replay.
    if let Err(e) = ui.sso.consume(&ui.store, &request_id, &verified, now).await {
        let who = Who {
            actor: verified.name_id(),
            source: &source,
        };
        audit::record_now(
            &ui.store,
            &who.entry(AuditAction::SignInRefused, "", category(&e)),
        )
        .await?;
        return Ok(refused(e));
    }
    let roles: Roles = ui.sso.roles(&verified);
    let actor = verified.name_id().to_owned();
    let who = Who {
        actor: &actor,
        source: &source,
    };
    if roles.is_empty() {
        audit::record_now(
            &ui.store,
            &who.entry(AuditAction::SignInRefused, "", "no role granted"),
        )
        .await?;
        return Ok((
            StatusCode::FORBIDDEN,
            render(&MessagePage {
                base: Base::anonymous("No access"),
                text: "Your identity provider signed you in, but grants you no role here. Ask an administrator to map your group to an organisation.".into(),
                link: None,
            }),
        )
            .into_response());
    }
    session::sweep(&ui.store, ui.lifetimes, now).await?;
    let display = ui.sso.display_name(&verified);
    let Some(token) = session::create(&ui.store, &verified, &display, &roles, now).await? else {
        return Err(UiError::Internal);
    };
    let orgs: Vec<&str> = roles.orgs.iter().map(String::as_str).collect();
    let detail = format!(
        "signed in via SAML; roles: {}{}",
        if roles.admin { "admin " } else { "" },
        orgs.join(" ")
    );
    audit::record_now(&ui.store, &who.entry(AuditAction::SignIn, "", &detail)).await?;
    let mut r = Redirect::to("/cases").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
        &token,
        ui.secure_cookies,
        ui.lifetimes,
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(ui): State<S>,
    a: Analyst,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    session::end(&ui.store, &a.session.hash).await?;
    audit::record_now(
        &ui.store,
        &a.who().entry(AuditAction::SignOut, "", "signed out"),
    )
    .await?;
    let mut r = render(&MessagePage {
        base: Base::anonymous("Signed out"),
        text: "You are signed out. Close the browser window if others use this computer.".into(),
        link: Some(("/login".into(), "Sign in again".into())),
    });
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(ui.secure_cookies)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

// ---------------------------------------------------------------- list

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    org: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    overdue: Option<String>,
    #[serde(default)]
    awaiting: Option<String>,
    #[serde(default)]
    unflagged: Option<String>,
}

struct ListFilterView {
    org: String,
    state: String,
    overdue: bool,
    awaiting: bool,
    unflagged: bool,
}

struct Row {
    reference: String,
    org: String,
    kind: &'static str,
    state: &'static str,
    subject: String,
    received: String,
    clock: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct ListPage {
    base: Base,
    rows: Vec<Row>,
    orgs: Vec<String>,
    states: Vec<&'static str>,
    f: ListFilterView,
}

async fn list(
    State(ui): State<S>,
    a: Analyst,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let now = now();
    let f = ListFilterView {
        overdue: q.overdue.is_some(),
        awaiting: q.awaiting.is_some(),
        unflagged: q.unflagged.is_some(),
        org: q.org,
        state: q.state,
    };
    let state = if f.awaiting {
        Some(CaseState::AwaitingPassword)
    } else if f.state.is_empty() {
        None
    } else {
        Some(state_named(&f.state)?)
    };
    let filter = Filter {
        org: Some(f.org.clone()).filter(|o| !o.is_empty()),
        state,
        kind: f.unflagged.then_some(CaseKind::Unflagged),
        overdue: f.overdue,
    };
    let rows = ui
        .cases
        .list(&a.principal(), &filter)
        .await?
        .into_iter()
        .map(|c| {
            let clock = if !c.state.is_open() {
                "closed".to_owned()
            } else if !c.state.acknowledged() {
                format!("receipt: {}", self::clock(c.acknowledge_by, now))
            } else {
                format!("feedback: {}", self::clock(c.feedback_by, now))
            };
            Row {
                received: when(c.received_at),
                reference: c.reference,
                org: c.org,
                kind: c.kind.as_str(),
                state: c.state.as_str(),
                subject: c.subject,
                clock,
                overdue: c.overdue,
            }
        })
        .collect();
    Ok(render(&ListPage {
        base: a.base("Cases", &ui),
        rows,
        orgs: a.session.roles.orgs.iter().cloned().collect(),
        states: CaseState::ALL.iter().map(|s| s.as_str()).collect(),
        f,
    }))
}

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
    anonymous: bool,
    reporter: String,
    reply_to: Option<String>,
    fields: Vec<(&'static str, String)>,
    cves: String,
    cwes: String,
    cvss: Option<String>,
    assets: Vec<(String, bool)>,
    suggestions: Vec<(String, String)>,
    evidence: Vec<EvidenceView>,
    tls: String,
    auth_results: String,
    timeline: Vec<EventView>,
    has_locked: bool,
    next_states: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    base: Base,
    c: CaseView,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct Flash {
    #[serde(default)]
    done: Option<String>,
}

/// Notices after an action, by code: the URL never carries free text.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "unlocked" => "Archive unlocked and its contents filed as evidence.",
        "transition" => "State changed.",
        "note" => "Note added.",
        "reply" => "Reply queued to the reporter; it is in the timeline.",
        "breach" => {
            "Flagged as a personal-data breach: the deadline to notify the authority is on the case."
        }
        _ => return None,
    })
}

async fn show(
    State(ui): State<S>,
    a: Analyst,
    Path(reference): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let notice = flash
        .done
        .as_deref()
        .and_then(notice_text)
        .map(str::to_owned);
    case_page(&ui, &a, &case, notice, None).await
}

async fn case_page(
    ui: &Ui,
    a: &Analyst,
    case: &Authorized<Case>,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
) -> Result<Response, UiError> {
    let now = now();
    let d = ui.cases.view(case).await?;
    let s = &d.summary;
    let state = s.state;
    let open = state.is_open();
    let names: std::collections::HashMap<i64, String> = d
        .evidence
        .iter()
        .map(|e| (e.id, e.name.clone().unwrap_or_else(|| "(unnamed)".into())))
        .collect();
    let evidence: Vec<EvidenceView> = d
        .evidence
        .iter()
        .map(|e| {
            let locked = e.opened_at.is_none()
                && e.archive
                    .as_ref()
                    .and_then(|a| a.get("encryption"))
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| v != "none");
            EvidenceView {
                name: e.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                kind: e.kind.clone(),
                size: e.size,
                sniffed: e.sniffed_type.clone(),
                locked,
                from_archive: e.parent_id.and_then(|p| names.get(&p).cloned()),
                url: format!("/cases/{}/evidence/{}", s.reference, e.object_id),
                preview: e
                    .sniffed_type
                    .as_deref()
                    .is_some_and(|t| PREVIEWABLE.contains(&t)),
            }
        })
        .collect();
    let has_locked = evidence.iter().any(|e| e.locked);
    let fields: Vec<(&'static str, String)> = [
        ("Description", &d.description),
        ("Steps / attack chain", &d.steps),
        ("Impact", &d.impact),
        ("Mitigation", &d.mitigation),
        ("Contact", &d.contact),
        ("Channel", &d.channel),
        ("Language", &d.language),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect();
    let reporter = match (&d.reporter_name, &d.reporter_address) {
        (Some(n), Some(a)) => format!("{n} <{a}>"),
        (None, Some(a)) => a.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => "unknown".into(),
    };
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
        feedback_clock: if !open {
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
        feedback_overdue: open && !d.feedback_paused && now > s.feedback_by,
        breach_clock: d
            .breach_notify_by
            .map(|t| format!("notify the authority by {} ({})", when(t), clock(t, now))),
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
            notice,
            error,
        }),
    )
        .into_response())
}

// ---------------------------------------------------------------- evidence

/// A file name safe in a header: letters, digits, `.-_`, at most 100.
fn safe_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "evidence.bin".into()
    } else {
        trimmed.to_owned()
    }
}

fn evidence_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(EVIDENCE_CSP),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

async fn download(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, object)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let (info, data) = ui
        .cases
        .evidence(&case, &object, EvidenceUse::Download)
        .await?;
    let name = safe_filename(info.name.as_deref().unwrap_or("evidence.bin"));
    let mut r = data.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    evidence_headers(h);
    Ok(r)
}

async fn preview(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, object)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let (_, data) = ui
        .cases
        .evidence(&case, &object, EvidenceUse::Preview)
        .await?;
    // The type comes from the bytes, now, not from what was stored.
    let Some(kind) = crate::intake::mime::sniff_image(&data).filter(|t| PREVIEWABLE.contains(t))
    else {
        return Err(UiError::NotFound);
    };
    let mut r = data.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    evidence_headers(h);
    Ok(r)
}

// ---------------------------------------------------------------- actions

fn done(reference: &str, code: &str) -> Response {
    Redirect::to(&format!("/cases/{reference}?done={code}")).into_response()
}

#[derive(Deserialize)]
struct UnlockForm {
    csrf: String,
    password: Zeroizing<String>,
}

async fn unlock_case(
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
async fn refused(
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
struct TransitionForm {
    csrf: String,
    state: String,
    #[serde(default)]
    reason: String,
}

async fn transition(
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
struct TextForm {
    csrf: String,
    text: String,
}

async fn note(
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

async fn reply(
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

async fn breach(
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

// ---------------------------------------------------------------- audit

struct AuditRow {
    id: i64,
    when: String,
    actor: String,
    action: String,
    target: String,
    source: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    base: Base,
    entries: Vec<AuditRow>,
    verdict: String,
    intact: bool,
    query: AuditQuery,
    /// Links to the newer and older pages, with the same filters.
    newer: Option<String>,
    older: Option<String>,
}

/// The audit page's filters and page, from the query string.
#[derive(Deserialize, Default, Clone)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// First day shown, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    from: String,
    /// Last day shown, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: u32,
}

impl AuditQuery {
    fn filter(&self) -> Result<audit::Filter, UiError> {
        let day = |s: &str, what: &str| -> Result<Option<i64>, UiError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            let date: jiff::civil::Date = s.trim().parse().map_err(|_| {
                UiError::BadRequest(format!("The {what} date must look like 2026-11-29."))
            })?;
            Ok(date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp().as_second()))
        };
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(audit::Filter {
            actor: text(&self.actor),
            action: text(&self.action),
            since: day(&self.from, "first")?,
            until: day(&self.to, "last")?.map(|t| t + 86_400),
        })
    }

    fn link(&self, page: u32) -> String {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' | b':' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        format!(
            "/audit?actor={}&action={}&from={}&to={}&page={page}",
            enc(&self.actor),
            enc(&self.action),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

async fn audit_page(
    State(ui): State<S>,
    a: Analyst,
    Query(query): Query<AuditQuery>,
) -> Result<Response, UiError> {
    if !a.session.roles.admin {
        return Err(UiError::NotFound);
    }
    let filter = query.filter()?;
    let verdict = audit::verify(ui.store.pool(), ui.store.sealer()).await?;
    let (verdict, intact) = match verdict {
        audit::Verdict::Intact { entries } => {
            (format!("Chain intact: {entries} entries verified."), true)
        }
        audit::Verdict::Broken { at_entry, reason } => {
            (format!("CHAIN BROKEN at entry {at_entry}: {reason}"), false)
        }
    };
    let offset = i64::from(query.page) * AUDIT_PAGE_ENTRIES;
    let (entries, more) = audit::page(ui.store.pool(), &filter, AUDIT_PAGE_ENTRIES, offset).await?;
    let entries = entries
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            when: when(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            source: e.source,
            detail: e.detail,
        })
        .collect();
    audit::record_now(
        &ui.store,
        &a.who()
            .entry(AuditAction::AuditView, "", "audit trail viewed (web)"),
    )
    .await?;
    Ok(render(&AuditPage {
        base: a.base("Audit trail", &ui),
        entries,
        verdict,
        intact,
        newer: (query.page > 0).then(|| query.link(query.page - 1)),
        older: more.then(|| query.link(query.page + 1)),
        query,
    }))
}

// ---------------------------------------------------------------- dev IdP

/// A person the dev IdP can sign in as.
pub struct DevUser {
    name: String,
    description: String,
    groups: Vec<String>,
}

/// One analyst per organisation, an admin of everything, and someone with
/// no role (to see the refusal).
pub fn dev_users(policies: &PolicySet) -> Vec<DevUser> {
    let mut users: Vec<DevUser> = policies
        .iter()
        .map(|p| DevUser {
            name: format!("analyst@{}", p.id),
            description: format!("analyst of {}", p.name),
            groups: vec![format!("{}-analysts", p.id)],
        })
        .collect();
    let mut all: Vec<String> = policies
        .iter()
        .map(|p| format!("{}-analysts", p.id))
        .collect();
    all.push("dmx-admins".into());
    users.push(DevUser {
        name: "admin".into(),
        description: "administrator and analyst of every organisation".into(),
        groups: all,
    });
    users.push(DevUser {
        name: "outsider".into(),
        description: "signed in by the IdP but granted no role".into(),
        groups: vec![],
    });
    users
}

#[derive(Template)]
#[template(path = "devidp.html")]
struct DevIdpPage {
    base: Base,
    saml_request: String,
    users: Vec<DevUser>,
}

#[derive(Template)]
#[template(path = "devidp_post.html")]
struct DevIdpPost {
    base: Base,
    acs_url: String,
    saml_response: String,
}

#[derive(Deserialize)]
struct DevIdpQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
}

async fn dev_idp_page(
    State(ui): State<S>,
    Query(q): Query<DevIdpQuery>,
) -> Result<Response, UiError> {
    super::devidp::read_redirect_request(&q.saml_request)
        .map_err(|e| UiError::BadRequest(e.to_string()))?;
    Ok(render(&DevIdpPage {
        base: Base::anonymous("Development sign-in"),
        saml_request: q.saml_request,
        users: dev_users(&ui.policies),
    }))
}

#[derive(Deserialize)]
struct DevIdpForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    user: String,
}

async fn dev_idp_sign(State(ui): State<S>, Form(f): Form<DevIdpForm>) -> Result<Response, UiError> {
    let Some(idp) = ui.dev_idp.as_ref() else {
        return Err(UiError::NotFound);
    };
    let (request_id, acs) = super::devidp::read_redirect_request(&f.saml_request)
        .map_err(|e| UiError::BadRequest(e.to_string()))?;
    // It signs only for this service provider.
    if acs != ui.sso.acs_url {
        return Err(UiError::BadRequest(
            "The request names another service provider.".into(),
        ));
    }
    let user = dev_users(&ui.policies)
        .into_iter()
        .find(|u| u.name == f.user)
        .ok_or_else(|| UiError::BadRequest("No such development user.".into()))?;
    let spec = ResponseSpec {
        request_id,
        name_id: user.name.clone(),
        audience: ui.sso.entity_id.clone(),
        acs_url: acs.clone(),
        attributes: user
            .groups
            .iter()
            .map(|g| ("groups".to_owned(), g.clone()))
            .chain([("displayName".to_owned(), user.name.clone())])
            .collect(),
        lifetime_seconds: 300,
        signed: Signed::Assertion,
        sha1_digest: false,
    };
    let xml = idp.response(&spec).map_err(|e| {
        tracing::error!(error = %e, "dev idp signing");
        UiError::Internal
    })?;
    use base64::Engine as _;
    Ok(render(&DevIdpPost {
        base: Base::anonymous("Development sign-in"),
        acs_url: acs,
        saml_response: base64::engine::general_purpose::STANDARD.encode(xml),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_as_time_left_or_overdue() {
        assert_eq!(clock(100 + 2 * 86_400 + 3 * 3600, 100), "2 d 3 h left");
        assert_eq!(clock(100, 100 + 5 * 3600 + 60), "overdue by 5 h 1 min");
        assert_eq!(clock(700, 100), "10 min left");
    }

    #[test]
    fn download_names_cannot_break_the_header() {
        assert_eq!(safe_filename("a\"b\r\nc.txt"), "a_b__c.txt");
        assert_eq!(safe_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_filename(""), "evidence.bin");
        assert_eq!(safe_filename("rapport æøå.pdf"), "rapport____.pdf");
    }
}
