//! The JSON API for service accounts (bearer tokens), over the same case
//! functions the CLI uses.
//!
//! Every request is authenticated; an account sees only the cases of its
//! organisations, and a case of another organisation answers 404 exactly
//! like one that does not exist, so references cannot be probed. Every
//! read and change is written to the audit trail with the account and the
//! client address. Responses are JSON, never cached, never sniffed.
//! `openapi.json` beside this file describes every route, and a test keeps
//! the two equal.

pub mod devidp;
pub mod listener;
pub mod refusals;
pub mod saml;
pub mod session;
pub mod tokens;
pub mod ui;

use crate::cases::{
    CaseError, CaseKind, Cases, Door, ErrorClass, NoteText, Principal, Reason, Scope, state_named,
};
use crate::store::Store;
use crate::store::audit::{self, AuditAction};
use crate::store::cases::Filter;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use tokens::ServiceAccount;

/// The OpenAPI document, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route: (method, path). The router is built from this list and the
/// OpenAPI test compares it with the document.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/cases"),
    ("get", "/api/v1/cases/{reference}"),
    ("post", "/api/v1/cases/{reference}/transition"),
    ("post", "/api/v1/cases/{reference}/notes"),
    ("get", "/api/v1/export"),
    ("get", "/api/v1/openapi.json"),
];

#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub cases: std::sync::Arc<Cases>,
}

/// Why the analyst interface could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Saml(#[from] saml::SamlError),
    #[error(transparent)]
    DevIdp(#[from] devidp::DevIdpError),
    #[error("--dev-idp lets anyone sign in as anyone: it serves on loopback only, not {0}")]
    DevIdpNotLoopback(SocketAddr),
    #[error(
        "--dev-idp lets anyone sign in as anyone: it is refused while web.public_url ({0}) names a host that is not loopback"
    )]
    DevIdpPublicUrl(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// The analyst interface for the bound address `local`, or None when no
/// identity provider is configured (the JSON API still runs).
/// Refuses the dev IdP anywhere but loopback: its listen address, and the
/// public URL browsers reach it by (a proxy in front would expose it).
pub fn check_dev_idp(config: &crate::config::Config, listen: SocketAddr) -> Result<(), WebError> {
    if !listen.ip().is_loopback() {
        return Err(WebError::DevIdpNotLoopback(listen));
    }
    if let Some(url) = &config.web.public_url
        && !url_is_loopback(url)
    {
        return Err(WebError::DevIdpPublicUrl(url.clone()));
    }
    Ok(())
}

/// Whether the host of `url` is a loopback name or address.
fn url_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn interface(
    config: &crate::config::Config,
    store: &Store,
    policies: std::sync::Arc<crate::policy::PolicySet>,
    cases: std::sync::Arc<Cases>,
    local: SocketAddr,
    dev_idp: bool,
) -> Result<Option<ui::Ui>, WebError> {
    let public_url = config.web.public_url.clone().unwrap_or_else(|| {
        let scheme = if config.web.tls { "https" } else { "http" };
        format!("{scheme}://{local}")
    });
    let public_url = public_url.trim_end_matches('/').to_owned();
    let mut saml_config = config.saml.clone();
    let (metadata_path, idp) = if dev_idp {
        check_dev_idp(config, local)?;
        let idp = devidp::DevIdp::generate(
            &format!("{public_url}/dev-idp"),
            &format!("{public_url}/dev-idp/sso"),
        )?;
        let path = config.data_dir.join("dev-idp-metadata.xml");
        std::fs::write(&path, idp.metadata_xml()).map_err(|source| WebError::Io {
            what: "writing",
            path: path.display().to_string(),
            source,
        })?;
        if saml_config.roles.is_empty() {
            saml_config.roles = dev_roles(&policies);
        }
        if saml_config.display_name_attribute.is_none() {
            saml_config.display_name_attribute = Some("displayName".into());
        }
        tracing::warn!(
            "DEVELOPMENT IDENTITY PROVIDER ENABLED: anyone who reaches {public_url} can sign in as anyone"
        );
        (path, Some(std::sync::Arc::new(idp)))
    } else {
        match &saml_config.idp_metadata {
            Some(p) => (p.clone(), None),
            None => return Ok(None),
        }
    };
    let xml = std::fs::read_to_string(&metadata_path).map_err(|source| WebError::Io {
        what: "reading IdP metadata",
        path: metadata_path.display().to_string(),
        source,
    })?;
    let sso = saml::Sso::new(
        &saml_config,
        &public_url,
        &metadata_path.display().to_string(),
        &xml,
        store
            .sealer()
            .purpose_key("disclosure-mx saml request ids v1"),
    )?;
    // Secure cookies, except for plain HTTP on loopback (development).
    let secure_cookies = !(local.ip().is_loopback() && public_url.starts_with("http://"));
    Ok(Some(ui::Ui {
        store: store.clone(),
        sso: std::sync::Arc::new(sso),
        dev_idp: idp,
        policies,
        cases,
        refusals: Default::default(),
        secure_cookies,
        lifetimes: session::Lifetimes {
            idle: i64::try_from(config.web.session_idle_seconds).unwrap_or(i64::MAX),
            absolute: i64::try_from(config.web.session_absolute_seconds).unwrap_or(i64::MAX),
        },
    }))
}

/// The dev IdP's groups: `{org}-analysts` per organisation, `dmx-admins`.
fn dev_roles(policies: &crate::policy::PolicySet) -> Vec<crate::config::RoleRule> {
    use crate::config::{RoleKind, RoleRule};
    let mut rules: Vec<RoleRule> = policies
        .iter()
        .map(|p| RoleRule {
            attribute: "groups".into(),
            value: format!("{}-analysts", p.id),
            role: RoleKind::Analyst,
            organisation: Some(p.id.clone()),
        })
        .collect();
    rules.push(RoleRule {
        attribute: "groups".into(),
        value: "dmx-admins".into(),
        role: RoleKind::Admin,
        organisation: None,
    });
    rules
}

/// The API's router: the cases service behind bearer tokens in `store`.
pub fn router(store: Store, cases: std::sync::Arc<Cases>) -> Router {
    Router::new()
        .route(ROUTES[0].1, get(list_cases))
        .route(ROUTES[1].1, get(show_case))
        .route(ROUTES[2].1, post(transition))
        .route(ROUTES[3].1, post(add_note))
        .route(ROUTES[4].1, get(export))
        .route(ROUTES[5].1, get(openapi))
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

#[derive(Deserialize)]
struct ListQuery {
    org: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    overdue: bool,
}

async fn list_cases(
    State(api): State<Api>,
    Caller(p): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(CaseKind::parse(k).ok_or_else(|| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown kind {k:?}"),
            )
        })?),
    };
    let filter = Filter {
        org: q.org,
        state: q.state.as_deref().map(state_named).transpose()?,
        kind,
        overdue: q.overdue,
    };
    let visible = api.cases.list(&p, &filter).await?;
    let mut tx = api.store.write().await?;
    audit::record(
        &mut tx,
        api.store.sealer(),
        &p.who().entry(AuditAction::List, "", "cases listed"),
    )
    .await?;
    tx.commit().await?;
    Ok(json(StatusCode::OK, &visible))
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
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, routed);
    }
}

#[cfg(test)]
mod dev_idp_tests {
    use super::url_is_loopback;

    #[test]
    fn public_urls_that_keep_the_dev_idp_local() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://localhost/",
            "http://[::1]:8080/x",
            "http://127.1.2.3",
        ] {
            assert!(url_is_loopback(ok), "{ok}");
        }
        for bad in [
            "https://dmx.example.org",
            "https://127.0.0.1.evil.example/",
            "http://user@10.0.0.1:80",
            "https://[2001:db8::1]/",
            "https://localhost.example",
        ] {
            assert!(!url_is_loopback(bad), "{bad}");
        }
    }
}
