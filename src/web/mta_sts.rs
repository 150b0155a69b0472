//! `/.well-known/mta-sts.txt` (RFC 8461) for `mta-sts.<domain>` of each
//! domain this MX receives for: the policy `[mta_sts]` describes
//! (`publish`). Served on the web listener with or without the analyst
//! interface, no sign-in; any other host gets 404.

use crate::web::pages::wellknown::{not_found, request_host};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

struct Policy {
    text: String,
    domains: Vec<String>,
}

pub fn router(text: String, domains: Vec<String>) -> axum::Router {
    axum::Router::new()
        .route("/.well-known/mta-sts.txt", get(serve))
        .with_state(Arc::new(Policy { text, domains }))
}

async fn serve(State(p): State<Arc<Policy>>, headers: HeaderMap) -> Response {
    let host = request_host(&headers);
    match crate::publish::policy_domain(&host, &p.domains) {
        Some(_) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            p.text.clone(),
        )
            .into_response(),
        None => not_found("no MTA-STS policy for this host\n"),
    }
}
