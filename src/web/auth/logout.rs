//! Sign-out: our own form at `/logout` (CSRF-protected), which also ends
//! the session at the IdP when it offers single logout; and the SAML
//! single logout endpoint at `/saml/slo`, which has its own protection
//! (the IdP's signature) and no cookie of ours to rely on.

use super::binding::{self, Kind};
use super::session;
use super::slo::{Incoming, MAX_RELAY_STATE, Outgoing, SloError};
use crate::store::audit::{self, AuditAction, Who};
use crate::store::sessions;
use crate::web::pages::{Analyst, Base, MessagePage, S, Ui, UiError, now, render};
use axum::extract::{ConnectInfo, Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// A plain page with the session cookie cleared.
fn signed_out_page(ui: &Ui, text: &str) -> Response {
    let mut r = render(&MessagePage {
        base: Base::anonymous("Signed out", ui.dev_idp.is_some()),
        text: text.to_owned(),
        link: Some(("/login".into(), "Sign in again".into())),
    });
    clear_cookie(ui, &mut r);
    r
}

fn clear_cookie(ui: &Ui, r: &mut Response) {
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(ui.secure_cookies)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// Sends a message of ours on its way: a redirect, or (`from_form`: the
/// answer to a form of ours, whose redirects browsers hold to the page's
/// `form-action`) a page that moves on by itself.
fn outgoing(o: Outgoing, from_form: bool) -> Response {
    match o {
        Outgoing::Redirect(url) if from_form => {
            axum::response::Html(binding::redirect_page(&url)).into_response()
        }
        Outgoing::Redirect(url) => Redirect::to(&url).into_response(),
        Outgoing::Post { page, .. } => {
            let mut r = axum::response::Html(page).into_response();
            if let Ok(csp) = HeaderValue::from_str(&binding::post_page_csp()) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            r
        }
    }
}

/// Our sign-out form: ends the session here, then at the IdP if it
/// offers single logout (its answer comes back to `/saml/slo`).
pub(crate) async fn logout(
    State(ui): State<S>,
    a: Analyst,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    session::end(&ui.store, &a.session.hash).await?;
    // Sessions made before single logout existed have no NameID.
    let at_idp = if a.session.name_id.is_empty() {
        Ok(None)
    } else {
        ui.sso.refresh_keys(&ui.store).await;
        ui.sso.logout_request(
            &a.session.name_id,
            a.session.name_id_format.as_deref(),
            a.session.session_index.as_deref(),
            now(),
        )
    };
    let detail = match &at_idp {
        Ok(Some(_)) => "signed out; single logout sent to the IdP",
        _ => "signed out",
    };
    audit::record_now(&ui.store, &a.who().entry(AuditAction::SignOut, "", detail)).await?;
    match at_idp {
        Ok(Some(o)) => {
            let mut r = outgoing(o, true);
            clear_cookie(&ui, &mut r);
            Ok(r)
        }
        Ok(_) => Ok(signed_out_page(
            &ui,
            "You are signed out. Close the browser window if others use this computer.",
        )),
        Err(e) => {
            tracing::error!(error = %e, "single logout request");
            Ok(signed_out_page(
                &ui,
                "You are signed out here, but the logout could not be sent to your identity provider: sign out there too, or close the browser.",
            ))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SloForm {
    #[serde(rename = "SAMLRequest")]
    request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The hash of this browser's session cookie, if it sent one.
fn session_hash(ui: &Ui, headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::from_header(c, ui.secure_cookies))
        .map(super::secrets::hash)
}

/// `/saml/slo` over HTTP-Redirect.
pub(crate) async fn slo_redirect(
    State(ui): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let now = now();
    let received = ui.sso.receive_redirect(query.as_deref().unwrap_or(""), now);
    handle(&ui, peer, session_hash(&ui, &headers), received, now).await
}

/// `/saml/slo` over HTTP-POST.
pub(crate) async fn slo_post(
    State(ui): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SloForm>,
) -> Result<Response, UiError> {
    let now = now();
    let browser = session_hash(&ui, &headers);
    if form
        .relay_state
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE)
    {
        let e = SloError::Malformed("RelayState longer than 1,024 bytes");
        return Ok(refused(&ui, &peer.ip().to_string(), &e, now));
    }
    let sso = std::sync::Arc::clone(&ui.sso);
    let relay = form.relay_state.clone();
    // xmlsec, off the async threads.
    let received = tokio::task::spawn_blocking(move || match (form.request, form.response) {
        (Some(v), None) => sso.receive_post(&v, Kind::Request, now),
        (None, Some(v)) => sso.receive_post(&v, Kind::Response, now),
        _ => Err(SloError::Malformed(
            "exactly one of SAMLRequest and SAMLResponse",
        )),
    })
    .await
    .map_err(|_| UiError::Internal)?
    .map(|i| (i, relay));
    handle(&ui, peer, browser, received, now).await
}

/// Answers a verified logout message. `browser` is the hash of the session
/// cookie the browser carrying it sent: its cookie is cleared only if that
/// session is among those ended (a stranger's signed request for their own
/// NameID, pushed through a victim's browser, signs the victim out of
/// nothing).
async fn handle(
    ui: &Ui,
    peer: SocketAddr,
    browser: Option<String>,
    received: Result<(Incoming, Option<String>), SloError>,
    now: i64,
) -> Result<Response, UiError> {
    let source = peer.ip().to_string();
    let (incoming, relay) = match received {
        Ok(r) => r,
        Err(e) => return Ok(refused(ui, &source, &e, now)),
    };
    ui.sso.refresh_keys(&ui.store).await;
    match incoming {
        Incoming::Request(req) => {
            // A captured request cannot be replayed.
            let key = format!("logout-request:{}", req.id);
            match sessions::mark_used(&ui.store, now, &[(key, req.remember_until)]).await? {
                Ok(()) => {}
                Err(_) => return Ok(refused(ui, &source, &SloError::Replayed, now)),
            }
            let ended =
                sessions::end_for_subject(&ui.store, &req.name_id, &req.session_indexes).await?;
            let detail = format!(
                "signed out by the IdP (single logout); {} session(s) ended",
                ended.len()
            );
            let mut actors: Vec<&str> = ended.iter().map(|e| e.actor.as_str()).collect();
            actors.sort_unstable();
            actors.dedup();
            for actor in &actors {
                let who = Who {
                    actor,
                    source: &source,
                };
                audit::record_now(&ui.store, &who.entry(AuditAction::SignOut, "", &detail)).await?;
            }
            if actors.is_empty() {
                let who = Who {
                    actor: "idp",
                    source: &source,
                };
                let detail = format!(
                    "single logout for NameID {}: no session here",
                    binding::shown(&req.name_id, 120)
                );
                audit::record_now(&ui.store, &who.entry(AuditAction::SignOut, "", &detail)).await?;
            }
            let ours = browser.is_some_and(|b| ended.iter().any(|e| e.hash == b));
            tracing::info!(sessions = ended.len(), "single logout from the IdP");
            match ui.sso.logout_response(&req.id, relay.as_deref(), now) {
                Ok(o) => {
                    let mut r = outgoing(o, false);
                    if ours {
                        clear_cookie(ui, &mut r);
                    }
                    Ok(r)
                }
                // An IdP without a logout endpoint of its own (e.g. a
                // back-channel sender) still has its sessions ended.
                Err(e) => {
                    tracing::warn!(error = %e, "answering the IdP's logout request");
                    Ok(signed_out_page(ui, "You are signed out."))
                }
            }
        }
        Incoming::Response(resp) => {
            let key = format!("logout-response:{}", resp.in_response_to);
            if sessions::mark_used(&ui.store, now, &[(key, resp.remember_until)])
                .await?
                .is_err()
            {
                return Ok(refused(ui, &source, &SloError::UnknownRequest, now));
            }
            let text = if resp.success() {
                "You are signed out, here and at your identity provider.".to_owned()
            } else {
                format!(
                    "You are signed out here. Your identity provider answered the logout with status {}: your session there may still be open, so sign out there too or close the browser.",
                    resp.status
                )
            };
            Ok(signed_out_page(ui, &text))
        }
    }
}

/// A refused logout message: a page saying why, the log, and the audit
/// trail (tallied per source and minute, as refused sign-ins are).
fn refused(ui: &Ui, source: &str, e: &SloError, now: i64) -> Response {
    tracing::warn!(error = %e, client = %source, "logout message refused");
    ui.refusals
        .note_as(AuditAction::LogoutRefused, source, e.kind(), now);
    (
        StatusCode::FORBIDDEN,
        render(&MessagePage {
            base: Base::anonymous("Logout refused", ui.dev_idp.is_some()),
            text: format!("Logout refused: {e}."),
            link: None,
        }),
    )
        .into_response()
}
