//! The development identity provider's pages (`serve --dev-idp`, loopback
//! only): pick a user, get a signed response posted to our consumer.

use super::devidp::{ResponseSpec, Signed, read_redirect_request};
use crate::policy::PolicySet;
use crate::web::pages::{Base, S, UiError, render};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::response::Response;
use serde::Deserialize;

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
pub(crate) struct DevIdpQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
}

pub(crate) async fn page(
    State(ui): State<S>,
    Query(q): Query<DevIdpQuery>,
) -> Result<Response, UiError> {
    read_redirect_request(&q.saml_request).map_err(|e| UiError::BadRequest(e.to_string()))?;
    Ok(render(&DevIdpPage {
        base: Base::anonymous("Development sign-in", ui.dev_idp.is_some()),
        saml_request: q.saml_request,
        users: dev_users(&ui.policies),
    }))
}

#[derive(Deserialize)]
pub(crate) struct DevIdpForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    user: String,
}

pub(crate) async fn sign(
    State(ui): State<S>,
    Form(f): Form<DevIdpForm>,
) -> Result<Response, UiError> {
    let Some(idp) = ui.dev_idp.as_ref() else {
        return Err(UiError::NotFound);
    };
    let (request_id, acs) =
        read_redirect_request(&f.saml_request).map_err(|e| UiError::BadRequest(e.to_string()))?;
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
        // The dev IdP names people by what they type: the same name is the
        // same person.
        name_id_format: Some(crate::config::NameIdFormat::Persistent.urn().to_owned()),
        session_index: None,
    };
    let xml = idp.response(&spec).map_err(|e| {
        tracing::error!(error = %e, "dev idp signing");
        UiError::Internal
    })?;
    use base64::Engine as _;
    Ok(render(&DevIdpPost {
        base: Base::anonymous("Development sign-in", ui.dev_idp.is_some()),
        acs_url: acs,
        saml_response: base64::engine::general_purpose::STANDARD.encode(xml),
    }))
}
