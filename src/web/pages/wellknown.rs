//! `/.well-known/security.txt` (RFC 9116) for the organisation whose
//! domain the request's `Host` names, built from its policy
//! (`policy::security_txt`). No sign-in: it is published for reporters.

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

pub(crate) async fn security_txt(State(ui): State<S>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_of)
        .unwrap_or("");
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
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no security.txt for this host\n",
        )
            .into_response(),
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
