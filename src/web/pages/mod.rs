//! The analyst interface: server-rendered pages behind SAML sign-in.
//!
//! Layers, one way: routes → `Analyst` (a live session, or a redirect to
//! sign-in) → the cases service (`Cases::open` checks the analyst's
//! organisations once and answers a case elsewhere exactly like a missing
//! one; each operation writes its timeline and audit entries). A handler
//! parses its form, calls the service and renders the result or the
//! service's refusal; it holds no rule. Every page goes out with a strict
//! Content-Security-Policy (no script at all), nosniff, no framing and no
//! caching; error pages too, and in dev mode they carry its banner like
//! every other page (`error_pages`).

pub mod case;
pub mod cases;
pub mod clocks;
pub mod conversation;
pub mod dashboard;
pub mod evidence;
pub mod keys;
pub mod reporters;
pub mod trail;
pub mod wellknown;

use super::auth::devidp::DevIdp;
use super::auth::saml::Sso;
use super::auth::session::{self, Lifetimes, NoSession, Session};
use crate::cases::{
    Authorized, Case, CaseError, CaseKind, CaseState, Cases, Door, ErrorClass, EvidenceUse,
    NoteText, Page, Principal, Reason, ReplyText, Scope, instant, state_named,
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
    pub refusals: Arc<super::auth::refusals::RefusalLog>,
    pub secure_cookies: bool,
    pub lifetimes: Lifetimes,
}

pub(crate) type S = Arc<Ui>;

/// The interface's routes (the JSON API is merged beside them).
pub fn router(ui: Ui) -> Router {
    use super::auth::{dev_signin, logout, signin};
    let dev = ui.dev_idp.is_some();
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/cases") }))
        .route("/static/app.css", get(stylesheet))
        .route("/.well-known/security.txt", get(wellknown::security_txt))
        .route("/pgp-key.asc", get(wellknown::openpgp_key))
        .route("/login", get(signin::login))
        .route("/saml/metadata", get(signin::metadata))
        .route("/saml/acs", post(signin::acs))
        .route(
            "/saml/slo",
            get(logout::slo_redirect).post(logout::slo_post),
        )
        .route("/logout", post(logout::logout))
        .route("/cases", get(cases::list))
        .route("/cases/{reference}", get(case::show))
        .route(
            "/cases/{reference}/evidence/{object}",
            get(evidence::download),
        )
        .route(
            "/cases/{reference}/evidence/{object}/preview",
            get(evidence::preview),
        )
        .route("/cases/{reference}/unlock", post(case::unlock))
        .route("/cases/{reference}/transition", post(case::transition))
        .route("/cases/{reference}/notes", post(case::note))
        .route("/cases/{reference}/reply", post(case::reply))
        .route("/cases/{reference}/breach", post(case::breach))
        .route("/cases/{reference}/flag", post(clocks::flag))
        .route("/cases/{reference}/mark", post(clocks::mark))
        .route("/cases/{reference}/submitted", post(clocks::submitted))
        .route(
            "/cases/{reference}/draft/{regime}/{step}",
            get(clocks::draft),
        )
        .route("/cases/{reference}/assign", post(case::assign))
        .route("/cases/{reference}/fields", post(conversation::edit_field))
        .route("/cases/{reference}/bulk", post(conversation::bulk))
        .route("/cases/{reference}/promote", post(conversation::promote))
        .route(
            "/cases/{reference}/receipt/release",
            post(conversation::release_receipt),
        )
        .route("/cases/{reference}/feedback", post(conversation::feedback))
        .route(
            "/cases/{reference}/messages/{message}/headers",
            get(conversation::headers),
        )
        .route(
            "/cases/{reference}/messages/{message}/raw",
            get(conversation::raw),
        )
        .route("/dashboard", get(dashboard::page))
        .route("/audit", get(trail::page))
        .route("/admin/keys", get(keys::page))
        .route("/admin/keys/unlock", post(keys::unlock))
        .route("/admin/reporters", get(reporters::page))
        .route("/admin/reporters/export", post(reporters::export))
        .route("/admin/reporters/erase", post(reporters::erase));
    if dev {
        r = r.route("/dev-idp/sso", get(dev_signin::page).post(dev_signin::sign));
    }
    let ui = Arc::new(ui);
    r.with_state(Arc::clone(&ui))
        .layer(axum::middleware::map_response_with_state(ui, error_pages))
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
        // The page is rendered by `error_pages`, which knows the mode.
        let mut r = status.into_response();
        r.extensions_mut().insert(ErrorPage { title, text });
        r
    }
}

pub(crate) fn render<T: Template>(t: &T) -> Response {
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
    pub(crate) session: Session,
    pub(crate) source: String,
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

    pub(crate) fn who(&self) -> Who<'_> {
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
    pub(crate) fn check_csrf(&self, submitted: &str) -> Result<(), UiError> {
        if session::csrf_ok(&self.session, submitted) {
            Ok(())
        } else {
            Err(UiError::Forbidden(
                "The form's security token did not match your session. Reload the page and try again.",
            ))
        }
    }

    pub(crate) fn base(&self, title: impl Into<String>, ui: &Ui) -> Base {
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

pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

// ---------------------------------------------------------------- views

pub struct WhoView {
    pub(crate) display: String,
    pub(crate) admin: bool,
}

pub struct Base {
    pub(crate) title: String,
    pub(crate) dev: bool,
    pub(crate) csrf: String,
    pub(crate) who: Option<WhoView>,
}

impl Base {
    /// A page for someone not signed in; `dev` labels it as served by a
    /// development identity provider.
    pub(crate) fn anonymous(title: &str, dev: bool) -> Base {
        Base {
            title: title.to_owned(),
            dev,
            csrf: String::new(),
            who: None,
        }
    }
}

/// An error page still to render: `UiError` cannot see the interface's
/// state, `error_pages` can.
#[derive(Clone)]
struct ErrorPage {
    title: &'static str,
    text: String,
}

/// Renders error pages, labelled in dev mode like every other page.
async fn error_pages(State(ui): State<S>, mut r: Response) -> Response {
    let Some(page) = r.extensions_mut().remove::<ErrorPage>() else {
        return r;
    };
    let status = r.status();
    let mut out = (
        status,
        render(&MessagePage {
            base: Base::anonymous(page.title, ui.dev_idp.is_some()),
            text: page.text,
            link: Some(("/cases".to_owned(), "Back to cases".to_owned())),
        }),
    )
        .into_response();
    for (name, value) in r.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub(crate) base: Base,
    pub(crate) text: String,
    pub(crate) link: Option<(String, String)>,
}

pub(crate) fn when(t: i64) -> String {
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

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../static/app.css"),
    )
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
}
