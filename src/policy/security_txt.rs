//! `[security_txt]`: the organisation's RFC 9116 file, built from its
//! policy, so the address reporters are told to use is the one we receive
//! for. `Contact` is the policy's first address; the rest is given here.

use serde::Deserialize;

/// How long before `Expires` `policies check` starts to warn.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecurityTxtFile {
    /// RFC 3339; RFC 9116 §2.5.5 advises less than a year ahead.
    expires: String,
    /// The published disclosure policy (https URL).
    policy: Option<String>,
    /// The OpenPGP key for reports (https URL).
    encryption: Option<String>,
    #[serde(default)]
    preferred_languages: Vec<String>,
    /// Where this file is published (https URLs); their hosts also select
    /// the organisation a request for it is answered for.
    #[serde(default)]
    canonical: Vec<String>,
}

/// A validated `[security_txt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityTxt {
    pub contact: String,
    pub expires: jiff::Timestamp,
    pub policy: Option<String>,
    pub encryption: Option<String>,
    pub preferred_languages: Vec<String>,
    pub canonical: Vec<String>,
    /// Lower-case host names it is served for: the domains of the
    /// policy's addresses and of its canonical URLs.
    pub hosts: Vec<String>,
}

fn https_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    (!host.is_empty() && !url.contains(char::is_whitespace)).then(|| host.to_ascii_lowercase())
}

impl SecurityTxt {
    /// Validates; `Err((key, reason))`.
    pub(super) fn from_file(
        f: SecurityTxtFile,
        addresses: &[String],
    ) -> Result<SecurityTxt, (String, String)> {
        let k = |f: &str| format!("security_txt.{f}");
        let expires: jiff::Timestamp = f.expires.parse().map_err(|e| {
            (
                k("expires"),
                format!("{:?}: not an RFC 3339 time ({e})", f.expires),
            )
        })?;
        let mut hosts: Vec<String> = addresses
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_owned()))
            .collect();
        for (key, url) in [("policy", &f.policy), ("encryption", &f.encryption)] {
            if let Some(u) = url
                && https_host(u).is_none()
            {
                return Err((k(key), format!("{u:?}: must be an https:// URL")));
            }
        }
        for u in &f.canonical {
            hosts.push(
                https_host(u)
                    .ok_or_else(|| (k("canonical"), format!("{u:?}: must be an https:// URL")))?,
            );
        }
        for l in &f.preferred_languages {
            let ok = (2..=8).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err((
                    k("preferred_languages"),
                    format!("{l:?}: a language tag (RFC 5646), as \"da\" or \"en\""),
                ));
            }
        }
        hosts.sort();
        hosts.dedup();
        Ok(SecurityTxt {
            contact: format!("mailto:{}", addresses.first().map_or("", String::as_str)),
            expires,
            policy: f.policy,
            encryption: f.encryption,
            preferred_languages: f.preferred_languages,
            canonical: f.canonical,
            hosts,
        })
    }

    /// Whether a request for `host` (a `Host` header, port removed) is for
    /// this organisation: one of its hosts, or a name under one.
    pub fn serves(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts
            .iter()
            .any(|h| host == *h || host.ends_with(&format!(".{h}")))
    }

    /// The file (RFC 9116 §2.5), CRLF line ends.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |field: &str, value: &str| {
            out.push_str(field);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        };
        line("Contact", &self.contact);
        line(
            "Expires",
            &self.expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        if let Some(e) = &self.encryption {
            line("Encryption", e);
        }
        if !self.preferred_languages.is_empty() {
            line("Preferred-Languages", &self.preferred_languages.join(", "));
        }
        for c in &self.canonical {
            line("Canonical", c);
        }
        if let Some(p) = &self.policy {
            line("Policy", p);
        }
        out
    }

    /// `Err` once expired, `Ok(Some(warning))` within
    /// `EXPIRY_WARNING_DAYS` of it.
    pub fn expiry(&self, now: jiff::Timestamp) -> Result<Option<String>, String> {
        let left = self.expires.as_second() - now.as_second();
        if left <= 0 {
            Err(format!(
                "security.txt expired at {}: renew security_txt.expires",
                self.expires
            ))
        } else if left < EXPIRY_WARNING_DAYS * 86_400 {
            Ok(Some(format!(
                "security.txt expires at {} ({} days): renew security_txt.expires",
                self.expires,
                left / 86_400
            )))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(expires: &str) -> SecurityTxtFile {
        SecurityTxtFile {
            expires: expires.into(),
            policy: Some("https://magenta.example/disclosure".into()),
            encryption: None,
            preferred_languages: vec!["da".into(), "en".into()],
            canonical: vec!["https://www.magenta.example/.well-known/security.txt".into()],
        }
    }

    #[test]
    fn hosts_render_and_expiry() {
        let s = SecurityTxt::from_file(
            file("2027-01-31T00:00:00Z"),
            &["security@magenta.example".into()],
        )
        .unwrap();
        assert!(s.serves("magenta.example"));
        assert!(s.serves("WWW.Magenta.Example."));
        assert!(!s.serves("notmagenta.example"));
        let text = s.render();
        assert!(text.starts_with("Contact: mailto:security@magenta.example\r\n"));
        assert!(text.contains("Expires: 2027-01-31T00:00:00Z\r\n"));
        assert!(text.contains("Preferred-Languages: da, en\r\n"));
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(s.expiry(at("2026-11-29T00:00:00Z")), Ok(None));
        assert!(s.expiry(at("2027-01-10T00:00:00Z")).unwrap().is_some());
        assert!(s.expiry(at("2027-01-31T00:00:00Z")).is_err());
        let bad = SecurityTxt::from_file(
            SecurityTxtFile {
                canonical: vec!["http://x.example/".into()],
                ..file("2027-01-31T00:00:00Z")
            },
            &[],
        );
        assert_eq!(bad.unwrap_err().0, "security_txt.canonical");
        assert!(SecurityTxt::from_file(file("next year"), &[]).is_err());
    }
}
