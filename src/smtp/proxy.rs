//! The PROXY protocol (HAProxy's, versions 1 and 2), sans-I/O: a load
//! balancer in front of the receiver says, before any SMTP, which client it
//! is relaying for. Only a peer in `smtp.proxy_protocol_from` may say so;
//! from anyone else such a header is refused (`Reply::ProxyRefused`), since
//! believing it would let any client choose the address that admission,
//! the per-IP cap, `Received:` and the audit record.
//!
//! The bytes are parsed by the `ppp` crate under our bound
//! (`MAX_PROXY_HEADER`); this module never does I/O.

use std::net::SocketAddr;

/// Longest header accepted from a trusted proxy. Version 1 is at most 107
/// bytes; version 2 is 16 bytes, then the addresses (at most 216, for Unix
/// sockets) and whatever TLVs the balancer adds (ALPN, authority, unique
/// id, SSL facts: far below 1 KiB in practice). A longer declared length is
/// refused rather than waited for.
pub const MAX_PROXY_HEADER: usize = 1024;

/// Version 1's longest line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;

/// Version 2's fixed 12-byte signature.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a complete header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client the proxy relays for.
    Client(SocketAddr),
    /// The proxy speaks for itself (v2 `LOCAL`, v1 `UNKNOWN`: health
    /// checks); the connection's own address stands.
    Local,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Read more; nothing is wrong yet.
    NeedMore,
    /// A header of `len` bytes; what follows it is the client's.
    Header { source: Source, len: usize },
    /// Not a PROXY header, or one we do not accept (the reason, for the log).
    Invalid(&'static str),
}

/// Parses the start of a connection from a trusted proxy.
pub fn parse(input: &[u8]) -> Parsed {
    use ppp::PartialResult as _;
    if input.is_empty() {
        return Parsed::NeedMore;
    }
    if !could_be_header(input) {
        return Parsed::Invalid("no PROXY header");
    }
    // Version 1 is one line: judged once its CRLF has come (ppp calls a
    // line cut inside a number malformed), and never longer than 107 bytes.
    if input.starts_with(b"P") && !input.windows(2).any(|w| w == b"\r\n") {
        return if input.len() >= V1_MAX {
            Parsed::Invalid("PROXY header too long")
        } else {
            Parsed::NeedMore
        };
    }
    let result = ppp::HeaderResult::parse(input);
    if result.is_incomplete() {
        return if input.len() >= MAX_PROXY_HEADER {
            Parsed::Invalid("PROXY header too long")
        } else {
            Parsed::NeedMore
        };
    }
    match result {
        ppp::HeaderResult::V1(Ok(h)) => {
            let source = match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => {
                    Source::Client(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v1::Addresses::Tcp6(a) => {
                    Source::Client(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v1::Addresses::Unknown => Source::Local,
            };
            Parsed::Header {
                source,
                len: h.header.len(),
            }
        }
        ppp::HeaderResult::V2(Ok(h)) => {
            let len = h.len();
            if len > MAX_PROXY_HEADER {
                return Parsed::Invalid("PROXY header too long");
            }
            let source = match (h.command, h.addresses) {
                (ppp::v2::Command::Local, _) => Source::Local,
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => {
                    Source::Client(SocketAddr::from((a.source_address, a.source_port)))
                }
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => {
                    Source::Client(SocketAddr::from((a.source_address, a.source_port)))
                }
                // A Unix-socket or unspecified client has no address to
                // record; the proxy's own stands, as for LOCAL.
                (ppp::v2::Command::Proxy, _) => Source::Local,
            };
            Parsed::Header { source, len }
        }
        ppp::HeaderResult::V1(Err(_)) | ppp::HeaderResult::V2(Err(_)) => {
            Parsed::Invalid("malformed PROXY header")
        }
    }
}

/// Whether `input` (the first bytes a client sent) begins like a PROXY
/// header of either version, or could still become one.
pub fn could_be_header(input: &[u8]) -> bool {
    let v1 = b"PROXY ";
    let n = input.len().min(v1.len());
    let m = input.len().min(V2_SIGNATURE.len());
    input[..n] == v1[..n] || input[..m] == V2_SIGNATURE[..m]
}

/// Whether the first bytes an untrusted client sent are a PROXY header
/// (enough of one to tell; an SMTP client never starts this way).
pub fn is_header_start(input: &[u8]) -> bool {
    input.starts_with(b"PROXY ") || input.starts_with(&V2_SIGNATURE[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&((addresses.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addresses);
        h.extend_from_slice(tlvs);
        h
    }

    #[test]
    fn version_1_at_every_split() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n";
        let header_len = line.len() - b"EHLO x\r\n".len();
        for cut in 0..header_len {
            assert_eq!(parse(&line[..cut]), Parsed::NeedMore, "cut at {cut}");
        }
        assert_eq!(
            parse(line),
            Parsed::Header {
                source: Source::Client("192.0.2.7:40000".parse().unwrap()),
                len: header_len
            }
        );
        let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 25\r\n";
        assert_eq!(
            parse(v6),
            Parsed::Header {
                source: Source::Client("[2001:db8::7]:40000".parse().unwrap()),
                len: v6.len()
            }
        );
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                source: Source::Local,
                ..
            }
        ));
    }

    #[test]
    fn version_2_at_every_split() {
        let addrs = [192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0x40, 0, 25];
        let mut bytes = v2(1, 0x11, &addrs, &[]);
        let header_len = bytes.len();
        bytes.extend_from_slice(b"EHLO x\r\n");
        for cut in 0..header_len {
            assert_eq!(parse(&bytes[..cut]), Parsed::NeedMore, "cut at {cut}");
        }
        assert_eq!(
            parse(&bytes),
            Parsed::Header {
                source: Source::Client("192.0.2.7:40000".parse().unwrap()),
                len: header_len
            }
        );
        let local = v2(0, 0x00, &[], &[]);
        assert_eq!(
            parse(&local),
            Parsed::Header {
                source: Source::Local,
                len: 16
            }
        );
    }

    #[test]
    fn refusals_are_named() {
        assert_eq!(parse(b"EHLO x\r\n"), Parsed::Invalid("no PROXY header"));
        assert_eq!(
            parse(b"PROXY TCP4 not-an-ip 198.51.100.1 1 25\r\n"),
            Parsed::Invalid("malformed PROXY header")
        );
        // A declared length beyond the bound is not waited for.
        let addrs = [192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0x40, 0, 25];
        let mut big = v2(1, 0x11, &addrs, &[0u8; 2000]);
        big.truncate(MAX_PROXY_HEADER);
        assert_eq!(parse(&big), Parsed::Invalid("PROXY header too long"));
        let long_v1 = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(parse(&long_v1), Parsed::Invalid(_)));
    }

    #[test]
    fn untrusted_headers_are_recognised() {
        assert!(is_header_start(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
        assert!(is_header_start(&v2(1, 0x11, &[0; 12], &[])));
        assert!(!is_header_start(b"EHLO client\r\n"));
        assert!(!is_header_start(b"\r\n"));
    }
}
