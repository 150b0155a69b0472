//! Sign-in through the organisation's SAML identity provider: the
//! request, our metadata, and the assertion consumer. Sign-out and single
//! logout are in `logout`.

use crate::store::analysts;
use crate::store::audit::{self, AuditAction, Who};
use crate::web::pages::{Base, MessagePage, S, UiError, now, render};

use super::saml::{Roles, SamlError, VerifiedAssertion};
use super::session;
use crate::web::pages::Ui;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

// ---------------------------------------------------------------- sign-in

pub(crate) async fn metadata(State(ui): State<S>) -> Result<Response, UiError> {
    ui.sso.refresh_keys(&ui.store).await;
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

pub(crate) async fn login(State(ui): State<S>) -> Result<Response, UiError> {
    // Nothing is stored: the request id carries its own expiry and MAC.
    // A cookie ties it to this browser, so a response cannot be posted
    // into someone else's browser to sign them in as another (login CSRF).
    ui.sso.refresh_keys(&ui.store).await;
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
pub(crate) struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
}

/// What kind of refusal `e` is, for the audit trail and the tally.
fn refusal_kind(e: &SamlError) -> &'static str {
    match e {
        SamlError::TooLarge | SamlError::Malformed(_) => "malformed response",
        SamlError::UnknownRequest => "unknown or answered request",
        SamlError::OtherBrowser => "started in another browser",
        SamlError::Replayed => "replayed assertion",
        _ => "response did not verify",
    }
}

/// Checks a posted response: it answers a request we made, from this
/// browser, and its signatures verify (xmlsec, off the async threads).
/// Returns the assertion and the request it answers.
async fn verify(
    ui: &Ui,
    response: &str,
    started_here: Option<&str>,
    now: i64,
) -> Result<(VerifiedAssertion, String), SamlError> {
    let unverified = ui.sso.precheck(response)?;
    if ui
        .sso
        .request_expiry(&unverified.in_response_to, now)
        .is_none()
    {
        return Err(SamlError::UnknownRequest);
    }
    if started_here != Some(unverified.in_response_to.as_str()) {
        return Err(SamlError::OtherBrowser);
    }
    let sso = Arc::clone(&ui.sso);
    let request_id = unverified.in_response_to.clone();
    tokio::task::spawn_blocking(move || {
        sso.verify(&unverified, &request_id, now)
            .map(|v| (v, unverified.in_response_to))
    })
    .await
    .map_err(|_| SamlError::Refused("verification task failed".into()))?
}

pub(crate) async fn acs(
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
                base: Base::anonymous("Sign-in refused", ui.dev_idp.is_some()),
                text,
                link: Some(("/login".into(), "Start again".into())),
            }),
        )
            .into_response()
    };
    let outcome = verify(&ui, &form.saml_response, started_here.as_deref(), now).await;
    let (verified, request_id) = match outcome {
        Ok(v) => v,
        // No identity yet: counted per source and minute, not written now
        // (`refusals`), so strangers cannot flood the audit trail.
        Err(e) => {
            ui.refusals.note(&source, refusal_kind(&e), now);
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
            &who.entry(AuditAction::SignInRefused, "", refusal_kind(&e)),
        )
        .await?;
        return Ok(refused(e));
    }
    // The person, as the audit trail will know them.
    let actor = match ui.sso.identity(&verified) {
        Ok(actor) => actor,
        Err(e) => {
            let who = Who {
                actor: verified.name_id(),
                source: &source,
            };
            audit::record_now(
                &ui.store,
                &who.entry(AuditAction::SignInRefused, "", &e.to_string()),
            )
            .await?;
            return Ok(refused(e));
        }
    };
    let who = Who {
        actor: &actor,
        source: &source,
    };
    let roles: Roles = ui.sso.roles(&verified);
    if roles.is_empty() {
        let missing = ui.sso.missing_role_attributes(&verified);
        let (detail, text) = if missing.is_empty() {
            (
                "no role granted".to_owned(),
                "Your identity provider signed you in, but grants you no role here. Ask an administrator to map your group to an organisation.".to_owned(),
            )
        } else {
            let names = missing.join(", ");
            (
                format!(
                    "no role granted: the IdP sent no {names} attribute, which the role rules read"
                ),
                format!(
                    "Your identity provider signed you in, but grants you no role here: it sent no {names} attribute, which the role rules read. Ask its administrator to release {names} to this service."
                ),
            )
        };
        audit::record_now(
            &ui.store,
            &who.entry(AuditAction::SignInRefused, "", &detail),
        )
        .await?;
        return Ok((
            StatusCode::FORBIDDEN,
            render(&MessagePage {
                base: Base::anonymous("No access", ui.dev_idp.is_some()),
                text,
                link: None,
            }),
        )
            .into_response());
    }
    session::sweep(&ui.store, ui.lifetimes, now).await?;
    let display = ui.sso.display_name(&verified);
    // Known from now on as someone who can take cases of these
    // organisations.
    analysts::signed_in(
        &ui.store,
        &analysts::Analyst {
            actor: actor.clone(),
            display: display.clone(),
            orgs: roles.orgs.iter().cloned().collect(),
            admin: roles.admin,
        },
        now,
    )
    .await?;
    let Some(token) = session::create(&ui.store, &verified, &actor, &display, &roles, now).await?
    else {
        return Err(UiError::Internal);
    };
    let orgs: Vec<&str> = roles.orgs.iter().map(String::as_str).collect();
    let mut detail = format!(
        "signed in via SAML; roles: {}{}",
        if roles.admin { "admin " } else { "" },
        orgs.join(" ")
    );
    if verified.is_transient() && actor == verified.name_id() {
        // Said in the log and the trail: the next sign-in of the same
        // person will be another actor.
        tracing::warn!(
            client = %source,
            "the IdP sent a transient NameID: each sign-in of the same person gets another name, so the audit trail cannot tie their actions together; configure the IdP for a persistent NameID, or set saml.identity_attribute"
        );
        detail.push_str("; transient NameID: the audit trail cannot tie this person's sign-ins together (ask the IdP for a persistent NameID, or set saml.identity_attribute)");
    }
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
