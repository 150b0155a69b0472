//! The web surface: the analyst pages (`pages`) behind SAML sign-in
//! (`auth`), and the JSON API for service accounts (`api`), served on one
//! listener. Each is a thin adapter over the cases service.

pub mod api;
pub mod auth;
pub mod forwarded;
pub mod listener;
pub mod mta_sts;
pub mod pages;

use crate::cases::Cases;
use crate::store::Store;
use auth::{devidp, saml, session};
use std::net::SocketAddr;

/// Why the analyst interface could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Saml(#[from] saml::SamlError),
    #[error(transparent)]
    DevIdp(#[from] devidp::DevIdpError),
    #[error(transparent)]
    Sp(#[from] auth::sp::SpError),
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

pub async fn interface(
    config: &crate::config::Config,
    store: &Store,
    policies: std::sync::Arc<crate::policy::PolicySet>,
    cases: std::sync::Arc<Cases>,
    local: SocketAddr,
    dev_idp: bool,
) -> Result<Option<pages::Ui>, WebError> {
    let public_url = public_url(config, local);
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
    let keys = auth::sp::keys(store).await?;
    let sso = saml::Sso::new(
        &saml_config,
        &public_url,
        &metadata_path.display().to_string(),
        &xml,
        store
            .sealer()
            .purpose_key("disclosure-mx saml request ids v1"),
        keys,
    )?;
    // Secure cookies, except for plain HTTP on loopback (development).
    let secure_cookies = !(local.ip().is_loopback() && public_url.starts_with("http://"));
    Ok(Some(pages::Ui {
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

/// The URL browsers reach the interface by: `web.public_url`, else the
/// bound address.
pub fn public_url(config: &crate::config::Config, local: SocketAddr) -> String {
    let url = config.web.public_url.clone().unwrap_or_else(|| {
        let scheme = if config.web.tls { "https" } else { "http" };
        format!("{scheme}://{local}")
    });
    url.trim_end_matches('/').to_owned()
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
