//! What an operator publishes so that other mail servers reach this MX
//! safely: the MTA-STS policy (RFC 8461), served at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and the DNS records
//! that go with it — MX, `_mta-sts` (whose id changes whenever the policy
//! text does), `_smtp._tls` for TLS reports (RFC 8460), and a DANE TLSA
//! record for the certificate in use.

use serde::Deserialize;

/// `[mta_sts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtaStsConfig {
    /// `enforce`, `testing` or `none`. Default `testing`: senders report
    /// failures (to `tls_rpt`) but still deliver, which is where RFC 8461
    /// §5 says to start; move to `enforce` once the reports are clean.
    pub mode: Mode,
    /// The MX host names senders may deliver to (wildcards as `*.example`).
    /// Empty (the default): `smtp.hostname`.
    pub mx: Vec<String>,
    /// Seconds senders cache the policy. Default 604800 (a week): RFC 8461
    /// §3.2 advises weeks, so a downgrade attack must outlast the cache.
    pub max_age: u64,
    /// Where senders mail their daily TLS reports (RFC 8460 `rua`), e.g.
    /// `mailto:tls-reports@example.org`. Empty: no `_smtp._tls` record.
    pub tls_rpt: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            mode: Mode::Testing,
            mx: Vec::new(),
            max_age: 604_800,
            tls_rpt: Vec::new(),
        }
    }
}

impl MtaStsConfig {
    /// The policy file's text (RFC 8461 §3.2), CRLF lines.
    pub fn policy(&self, hostname: &str) -> String {
        let mut text = format!("version: STSv1\r\nmode: {}\r\n", self.mode.as_str());
        let own = [hostname.to_owned()];
        let mx = if self.mx.is_empty() {
            &own[..]
        } else {
            &self.mx
        };
        for m in mx {
            text.push_str(&format!("mx: {m}\r\n"));
        }
        text.push_str(&format!("max_age: {}\r\n", self.max_age));
        text
    }
}

/// The `_mta-sts` id for a policy text: 20 hex digits of its SHA-256, so
/// it changes exactly when the policy does (RFC 8461 §3.1 allows 1-32
/// alphanumerics).
pub fn policy_id(policy: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, policy.as_bytes());
    hex::encode(&digest.as_ref()[..10])
}

/// The mail domains this MX serves: those of the policies' addresses and
/// of `smtp.accept_for`, lower-case, each once.
pub fn domains<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = addresses
        .into_iter()
        .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .filter(|d| !d.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The domain whose MTA-STS policy `host` (a `Host:` header without its
/// port) asks for: `mta-sts.<domain>` for one of ours.
pub fn policy_domain<'a>(host: &str, ours: &'a [String]) -> Option<&'a String> {
    let host = host.to_ascii_lowercase();
    let domain = host.strip_prefix("mta-sts.")?;
    ours.iter().find(|d| *d == domain)
}

/// A DANE-EE TLSA record's data (`3 1 1`: the end entity's public key,
/// SHA-256) for a PEM certificate chain's first certificate.
pub fn tlsa_3_1_1(cert_pem: &[u8]) -> Result<String, String> {
    let cert = openssl::x509::X509::from_pem(cert_pem).map_err(|e| e.to_string())?;
    let spki = cert
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(|e| e.to_string())?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    Ok(format!("3 1 1 {}", hex::encode(digest.as_ref())))
}

/// The zone lines to publish for `domains`, `hostname` being the MX.
pub fn records(
    config: &MtaStsConfig,
    hostname: &str,
    domains: &[String],
    tlsa: Option<&str>,
) -> Vec<String> {
    let policy = config.policy(hostname);
    let id = policy_id(&policy);
    let mut out = Vec::new();
    for d in domains {
        out.push(format!("; {d}"));
        out.push(format!("{d}. MX 10 {hostname}."));
        out.push(format!("_mta-sts.{d}. TXT \"v=STSv1; id={id}\""));
        out.push(format!(
            "; https://mta-sts.{d}/.well-known/mta-sts.txt must reach the web listener, with a certificate for mta-sts.{d}"
        ));
        if !config.tls_rpt.is_empty() {
            out.push(format!(
                "_smtp._tls.{d}. TXT \"v=TLSRPTv1; rua={}\"",
                config.tls_rpt.join(",")
            ));
        }
    }
    if let Some(t) = tlsa {
        out.push("; DANE (DNSSEC-signed zone only): the certificate in use now".to_owned());
        out.push(format!("_25._tcp.{hostname}. TLSA {t}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_follows_the_policy() {
        let mut c = MtaStsConfig::default();
        let a = c.policy("mx.example.org");
        assert_eq!(
            a,
            "version: STSv1\r\nmode: testing\r\nmx: mx.example.org\r\nmax_age: 604800\r\n"
        );
        c.mode = Mode::Enforce;
        let b = c.policy("mx.example.org");
        assert_ne!(policy_id(&a), policy_id(&b));
        assert_eq!(policy_id(&b), policy_id(&c.policy("mx.example.org")));
        assert!(
            policy_id(&a).chars().all(|c| c.is_ascii_alphanumeric()) && policy_id(&a).len() == 20
        );
    }

    #[test]
    fn hosts_and_domains() {
        let ours = domains([
            "security@Netcompany.example",
            "cert@magenta.example",
            "x@magenta.example",
        ]);
        assert_eq!(ours, ["magenta.example", "netcompany.example"]);
        assert_eq!(
            policy_domain("MTA-STS.magenta.example", &ours).map(String::as_str),
            Some("magenta.example")
        );
        assert_eq!(policy_domain("magenta.example", &ours), None);
        assert_eq!(policy_domain("mta-sts.other.example", &ours), None);
    }
}
