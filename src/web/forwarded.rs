//! The client behind a reverse proxy. `Forwarded` (RFC 7239) and
//! `X-Forwarded-For` are believed only when the connection comes from a
//! network in `web.trusted_proxies`: from anyone else they are ignored, so
//! a browser cannot choose the address the audit trail and the sign-in
//! records name. Handlers keep reading `ConnectInfo<SocketAddr>`; this
//! layer replaces it before they run.

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Most forwarding hops read from one request: far above any real chain
/// of proxies, and it bounds the work a forged header can ask for.
const MAX_HOPS: usize = 16;

/// Wraps `app` so that handlers see the forwarded client where a trusted
/// proxy names one. Without trusted proxies `app` is returned unchanged.
pub fn layer(app: axum::Router, trusted: Vec<IpNet>) -> axum::Router {
    if trusted.is_empty() {
        return app;
    }
    let trusted: Arc<[IpNet]> = trusted.into();
    app.layer(axum::middleware::map_request(move |mut req: Request| {
        let trusted = Arc::clone(&trusted);
        async move {
            if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
                let client = client(*peer, req.headers(), &trusted);
                req.extensions_mut().insert(ConnectInfo(client));
            }
            req
        }
    }))
}

/// The client address: `peer` itself unless `peer` is a trusted proxy, then
/// the nearest hop the proxies name that is not itself a trusted proxy
/// (read right to left, so a client cannot prepend an address of its
/// choice). `Forwarded` wins over `X-Forwarded-For` when both are present.
pub fn client(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer.ip()) {
        return peer;
    }
    let hops = forwarded_hops(headers).unwrap_or_else(|| x_forwarded_for(headers));
    let mut nearest = peer;
    for hop in hops.into_iter().rev().take(MAX_HOPS) {
        let Some(hop) = hop else {
            // A hop we cannot read (`unknown`, an obfuscated name, junk):
            // nothing beyond it can be trusted, so the last proxy stands.
            return nearest;
        };
        nearest = hop;
        if !is_trusted(&hop.ip()) {
            return hop;
        }
    }
    nearest
}

fn parse_hop(s: &str) -> Option<SocketAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .unwrap_or(s);
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

/// RFC 7239: `Forwarded: for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<SocketAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',').take(MAX_HOPS) {
            let for_ = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v)
            });
            hops.push(for_.and_then(parse_hop));
        }
    }
    (!hops.is_empty()).then_some(hops)
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<SocketAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').take(MAX_HOPS).map(parse_hop).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: SocketAddr = "10.1.2.3:5555".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.9:5555".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.1, 192.0.2.7")]);
        // A stranger's header is ignored.
        assert_eq!(client(stranger, &xff, &trusted), stranger);
        // From the proxy: the rightmost hop that is not a proxy.
        assert_eq!(client(proxy, &xff, &trusted).ip().to_string(), "192.0.2.7");
        let chain = headers(&[("x-forwarded-for", "192.0.2.7, 10.9.9.9")]);
        assert_eq!(
            client(proxy, &chain, &trusted).ip().to_string(),
            "192.0.2.7"
        );
        // Forwarded wins, quoted IPv6 with a port.
        let fwd = headers(&[
            ("forwarded", "for=\"[2001:db8::1]:4711\";proto=https"),
            ("x-forwarded-for", "192.0.2.7"),
        ]);
        assert_eq!(
            client(proxy, &fwd, &trusted),
            "[2001:db8::1]:4711".parse::<SocketAddr>().unwrap()
        );
        // An unreadable hop stops the walk at the last trusted proxy.
        let unknown = headers(&[("forwarded", "for=192.0.2.1, for=unknown")]);
        assert_eq!(client(proxy, &unknown, &trusted), proxy);
        // No header: the proxy itself.
        assert_eq!(client(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
