//! `/.well-known/security.txt` (RFC 9116) for the organisation whose
//! domain the request's `Host` names, built from its policy
//! (`policy::security_txt`), and its public OpenPGP key at
//! `/pgp-key.asc` (what the file's `Encryption:` can point to). No
//! sign-in: both are published for reporters.

use super::S;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The host a `Host` header names, without its port.
fn host_of(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    value.rsplit_once(':').map_or(value, |(h, _)| h)
}

pub(crate) fn not_found(text: &'static str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

pub(crate) fn request_host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_of)
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The organisation's public OpenPGP key, armored, for the organisation
/// whose security.txt hosts or address domains the `Host` names.
pub(crate) async fn openpgp_key(State(ui): State<S>, headers: HeaderMap) -> Response {
    let host = request_host(&headers);
    let key = ui
        .policies
        .iter()
        .find(|p| {
            p.security_txt.as_ref().is_some_and(|s| s.serves(&host))
                || p.addresses
                    .iter()
                    .any(|a| a.rsplit_once('@').is_some_and(|(_, d)| d == host))
        })
        .and_then(|p| ui.cases.public_key(&p.id));
    match key {
        Some(key) => (
            [
                (header::CONTENT_TYPE, "application/pgp-keys"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            key.to_owned(),
        )
            .into_response(),
        None => not_found("no OpenPGP key for this host\n"),
    }
}

pub(crate) async fn security_txt(State(ui): State<S>, headers: HeaderMap) -> Response {
    let host = request_host(&headers);
    let host = host.as_str();
    let found = ui
        .policies
        .iter()
        .filter_map(|p| p.security_txt.as_ref())
        .find(|s| s.serves(host));
    match found {
        Some(s) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            s.render(),
        )
            .into_response(),
        None => not_found("no security.txt for this host\n"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_without_ports() {
        assert_eq!(super::host_of("magenta.example:8443"), "magenta.example");
        assert_eq!(super::host_of("magenta.example"), "magenta.example");
        assert_eq!(super::host_of("[::1]:8080"), "::1");
    }
}
