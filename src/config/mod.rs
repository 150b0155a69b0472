//! Configuration: embedded defaults, a TOML file, then environment
//! overrides, in that order. Every subcommand reads it the same way.
//!
//! Unknown keys are errors, so a misspelt limit cannot silently fall back to
//! its default.

pub mod env;

use crate::smtp::limits::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("environment variable {name}: {reason}")]
    EnvVar { name: String, reason: String },
    #[error("config key {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, generated certificate and keys live.
    pub data_dir: PathBuf,
    /// One TOML policy per organisation; see `policies/`. Every file must
    /// be valid or start-up fails. A missing directory is allowed (the
    /// receiver then accepts only `smtp.accept_for`), with a warning.
    pub policies_dir: PathBuf,
    pub smtp: SmtpConfig,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    pub limits: Limits,
    pub intake: crate::intake::IntakeSettings,
    pub outbound: crate::outbound::OutboundConfig,
    /// `[sender_auth]`: SPF, DKIM, DMARC and ARC computed after filing.
    pub sender_auth: crate::sender_auth::SenderAuthSettings,
    pub web: WebConfig,
    pub saml: SamlConfig,
    /// `[[webhooks]]`: signed POSTs on new cases and state changes.
    pub webhooks: Vec<crate::outbound::webhooks::WebhookConfig>,
    /// `[mta_sts]`: the MTA-STS policy the web listener serves, and what
    /// `dns records` prints.
    pub mta_sts: crate::publish::MtaStsConfig,
    /// `[metrics]`: Prometheus text and health checks on their own listener.
    pub metrics: crate::telemetry::MetricsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where the analyst interface and the JSON API listen. Unset: neither
    /// runs (`serve --dev-idp` defaults it to 127.0.0.1:8080).
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS with the receiver's certificate (`[tls]`, reloaded on
    /// SIGHUP). Off: plain HTTP, for loopback or behind a TLS proxy.
    pub tls: bool,
    /// The address analysts' browsers use, e.g. `https://dmx.example.org`.
    /// SAML endpoints (ACS, metadata) are built from it. Unset: `http://`
    /// (`https://` with `tls`) and the bound address.
    pub public_url: Option<String>,
    /// Seconds without a request after which a session ends (default
    /// 1800, 30 minutes): an unattended browser does not stay signed in to
    /// report content.
    pub session_idle_seconds: u64,
    /// Seconds after sign-in at which a session ends whatever its use
    /// (default 28800, a working day): a stolen cookie has a bounded life.
    pub session_absolute_seconds: u64,
    /// Networks of the reverse proxies in front of the web listener (CIDR).
    /// From them alone `Forwarded` / `X-Forwarded-For` name the client
    /// that sign-in records and the audit trail show; from anyone else
    /// those headers are ignored. Empty (the default): none is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: None,
            tls: false,
            public_url: None,
            session_idle_seconds: 1800,
            session_absolute_seconds: 8 * 3600,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[saml]`: single sign-on for the analyst interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamlConfig {
    /// The identity provider's metadata (XML). It must carry a signing
    /// certificate: without one the interface refuses to start, since
    /// unsigned assertions could then not be refused.
    pub idp_metadata: Option<PathBuf>,
    /// Our entity id. Default: `{public_url}/saml/metadata`.
    pub entity_id: Option<String>,
    /// Seconds of clock difference tolerated on NotBefore/NotOnOrAfter
    /// (default 60): enough for NTP-synchronised hosts, short enough that an
    /// expired assertion stays expired.
    pub clock_skew_seconds: u64,
    /// Seconds an AuthnRequest stays answerable (default 600): a sign-in
    /// that takes longer starts again.
    pub request_lifetime_seconds: u64,
    /// The attribute whose value is shown as the analyst's name (default:
    /// the NameID).
    pub display_name_attribute: Option<String>,
    /// IdP attribute values that grant roles. No matching rule: no access.
    pub roles: Vec<RoleRule>,
    /// The NameID format we ask for (`NameIDPolicy`) and list in our
    /// metadata (default `persistent`): a transient NameID is random at
    /// every sign-in, so the audit trail could not tie one person's
    /// actions together.
    pub name_id_format: NameIdFormat,
    /// The attribute that names the person in sessions and the audit
    /// trail (e.g. `mail`), instead of the NameID. When set, a response
    /// without it is refused.
    pub identity_attribute: Option<String>,
    /// Days our metadata says it stays valid (`validUntil`). Unset (the
    /// default): no `validUntil`, so an IdP that loads the file keeps it.
    pub metadata_valid_days: Option<u64>,
    /// Sign our AuthnRequests (HTTP-Redirect, RSA-SHA256); some IdPs
    /// (ADFS, Shibboleth) require it. Logout messages are always signed.
    pub sign_requests: bool,
    /// `[saml.organization]` in our metadata.
    pub organization: Option<SamlOrganization>,
    /// `[[saml.contacts]]` in our metadata.
    pub contacts: Vec<SamlContact>,
}

/// The NameID formats we can ask for.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum NameIdFormat {
    #[default]
    #[serde(rename = "persistent")]
    Persistent,
    #[serde(rename = "emailAddress")]
    EmailAddress,
    #[serde(rename = "unspecified")]
    Unspecified,
}

impl NameIdFormat {
    /// The format's URN.
    pub fn urn(self) -> &'static str {
        match self {
            NameIdFormat::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            NameIdFormat::EmailAddress => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            NameIdFormat::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        }
    }
}

/// `[saml.organization]`: who runs this service provider.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SamlOrganization {
    pub name: String,
    pub display_name: Option<String>,
    pub url: String,
}

/// One `[[saml.contacts]]`: whom the IdP's administrator can ask.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SamlContact {
    /// `technical`, `support`, `administrative`, `billing` or `other`.
    #[serde(rename = "type")]
    pub kind: ContactKind,
    pub name: Option<String>,
    pub email: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContactKind {
    Technical,
    Support,
    Administrative,
    Billing,
    Other,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Technical => "technical",
            ContactKind::Support => "support",
            ContactKind::Administrative => "administrative",
            ContactKind::Billing => "billing",
            ContactKind::Other => "other",
        }
    }
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            idp_metadata: None,
            entity_id: None,
            clock_skew_seconds: 60,
            request_lifetime_seconds: 600,
            display_name_attribute: None,
            roles: Vec::new(),
            name_id_format: NameIdFormat::default(),
            identity_attribute: None,
            metadata_valid_days: None,
            sign_requests: false,
            organization: None,
            contacts: Vec::new(),
        }
    }
}

/// One `[[saml.roles]]`: who has `attribute` = `value` gets `role`
/// (`analyst` of `organisation`, or `admin`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    pub attribute: String,
    pub value: String,
    pub role: RoleKind,
    /// Required for `analyst`: the policy name (file stem) of the
    /// organisation whose cases the role opens.
    pub organisation: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleKind {
    Analyst,
    Admin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Addresses to listen on. An MX listens on port 25; the default is a
    /// loopback port so a first `make run` exposes nothing.
    pub listen: Vec<SocketAddr>,
    /// The name in the greeting, EHLO reply and Received header.
    pub hostname: String,
    /// Recipient mailboxes (`security@example.org`) or domains
    /// (`@example.org`) accepted besides the addresses the policies own;
    /// every other RCPT gets 550 5.1.1.
    pub accept_for: Vec<String>,
    /// Allow MAIL without STARTTLS. Off: the policies demand TLS 1.2+.
    pub allow_plaintext: bool,
    /// Networks of the load balancers in front of the receiver (CIDR, e.g.
    /// `10.0.0.0/24`). A connection from one of them must open with a
    /// PROXY header (v1 or v2) naming the client, whose address then
    /// drives admission, the per-IP cap, `Received:` and the records. A
    /// PROXY header from anywhere else is refused with 554 5.7.1. Empty
    /// (the default): no proxy is trusted.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`. When both are unset a
    /// self-signed development certificate is generated under `data_dir`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:PATH`; `{data_dir}` is replaced by the data directory.
    pub url: String,
    /// Messages that may share one commit (one fsync). 1 disables group
    /// commit; 256 covers every session committing at once with the default
    /// `max_sessions`.
    pub group_commit_max: usize,
    /// The master key sealing report content at rest (64 hex digits, mode
    /// 0600). `{data_dir}` is replaced. Generated on first start of an
    /// empty store; `DISCLOSURE_MX_MASTER_KEY` overrides it.
    pub key_file: String,
}

impl StoreConfig {
    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        PathBuf::from(
            self.key_file
                .replace("{data_dir}", &data_dir.to_string_lossy()),
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// error, warn, info, debug or trace.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            policies_dir: PathBuf::from("./policies"),
            smtp: SmtpConfig::default(),
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            limits: Limits::default(),
            intake: crate::intake::IntakeSettings::default(),
            outbound: crate::outbound::OutboundConfig::default(),
            sender_auth: crate::sender_auth::SenderAuthSettings::default(),
            web: WebConfig::default(),
            saml: SamlConfig::default(),
            webhooks: Vec::new(),
            metrics: crate::telemetry::MetricsConfig::default(),
            mta_sts: crate::publish::MtaStsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            hostname: "localhost".into(),
            accept_for: Vec::new(),
            allow_plaintext: false,
            proxy_protocol_from: Vec::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite:{data_dir}/disclosure-mx.db".into(),
            group_commit_max: 256,
            key_file: "{data_dir}/master.key".into(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            json: false,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Defaults, then `path` if given (secrets' `<key>_file` read), then
    /// the environment (`env`).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let table = Self::table(path, std::env::vars())?;
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|source| ConfigError::Parse {
                    path: path.map_or_else(|| PathBuf::from("(environment)"), Path::to_path_buf),
                    source,
                })?;
        config.validate()?;
        Ok(config)
    }

    /// The file's table with secrets read and the environment applied:
    /// what `load` deserialises.
    fn table(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<toml::Table, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            None => toml::Table::new(),
        };
        env::secret_files(&mut table)?;
        env::overlay(&mut table, vars)?;
        Ok(table)
    }

    /// The effective configuration as TOML, secrets masked: every default,
    /// with the file and the environment on top (`config show`).
    pub fn effective(path: Option<&Path>) -> Result<String, ConfigError> {
        let over = Self::table(path, std::env::vars())?;
        let defaults: toml::Table =
            toml::from_str(env::EXAMPLE).map_err(|source| ConfigError::Parse {
                path: PathBuf::from("(defaults)"),
                source,
            })?;
        Ok(toml::to_string_pretty(&env::masked(env::merged(defaults, over))).unwrap_or_default())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if self.smtp.listen.is_empty() {
            return Err(invalid("smtp.listen", "at least one address is needed"));
        }
        let h = &self.smtp.hostname;
        if h.is_empty()
            || h.len() > 255
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(invalid("smtp.hostname", "must be a plain DNS name"));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(invalid(
                "tls",
                "cert_file and key_file must be set together",
            ));
        }
        if self.web.session_idle_seconds == 0 || self.web.session_absolute_seconds == 0 {
            return Err(invalid("web", "session timeouts must be at least 1"));
        }
        for r in &self.saml.roles {
            if r.role == RoleKind::Analyst && r.organisation.is_none() {
                return Err(invalid(
                    "saml.roles",
                    "an analyst rule needs the organisation it opens",
                ));
            }
        }
        if self
            .saml
            .metadata_valid_days
            .is_some_and(|d| !(1..=36_500).contains(&d))
        {
            return Err(invalid(
                "saml.metadata_valid_days",
                "must be 1 to 36500 days, or unset for no validUntil",
            ));
        }
        if let Some(a) = &self.saml.identity_attribute
            && a.trim().is_empty()
        {
            return Err(invalid("saml.identity_attribute", "must not be empty"));
        }
        for c in &self.saml.contacts {
            if !c.email.contains('@') {
                return Err(invalid("saml.contacts", "email must be an address"));
            }
        }
        let l = &self.limits;
        if l.max_message_size == 0 || l.max_recipients == 0 || l.max_errors == 0 {
            return Err(invalid("limits", "sizes and counts must be at least 1"));
        }
        if l.max_inflight_body_bytes < l.max_message_size {
            return Err(invalid(
                "limits.max_inflight_body_bytes",
                "must hold at least one max_message_size message",
            ));
        }
        if l.max_sessions == 0 || l.max_sessions_per_ip == 0 {
            return Err(invalid("limits", "session caps must be at least 1"));
        }
        if self.log.level.parse::<tracing::Level>().is_err() {
            return Err(invalid(
                "log.level",
                "expected error, warn, info, debug or trace",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "data_dir = '/srv/dmx'\n[smtp]\nhostname = 'mx.example'\n[limits]\nmax_errors = 3\nidle_timeout = 7\n",
        )
        .unwrap();
        let vars = vec![
            (
                "DISCLOSURE_MX_SMTP_ACCEPT_FOR".to_owned(),
                "a@x.example, @y.example".to_owned(),
            ),
            ("DISCLOSURE_MX_LIMITS_MAX_ERRORS".to_owned(), "4".to_owned()),
        ];
        let c: Config = toml::Value::Table(Config::table(Some(&file), vars).unwrap())
            .try_into()
            .unwrap();
        assert_eq!(c.limits.max_errors, 4, "the environment wins");
        assert_eq!(c.limits.idle_timeout.as_secs(), 7);
        assert_eq!(c.limits.max_recipients, 100);
        assert_eq!(c.smtp.accept_for, vec!["a@x.example", "@y.example"]);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let c: Config = toml::from_str(include_str!("../../deploy/disclosure-mx.toml")).unwrap();
        let d = Config::default();
        assert_eq!(format!("{:?}", c.limits), format!("{:?}", d.limits));
        assert_eq!(c.smtp.listen, d.smtp.listen);
        assert_eq!(c.smtp.accept_for, d.smtp.accept_for);
        assert_eq!(c.policies_dir, d.policies_dir);
        assert_eq!(c.store.url, d.store.url);
        assert_eq!(c.store.group_commit_max, d.store.group_commit_max);
        assert_eq!(c.store.key_file, d.store.key_file);
        assert_eq!(format!("{:?}", c.outbound), format!("{:?}", d.outbound));
        assert_eq!(format!("{:?}", c.intake), format!("{:?}", d.intake));
        assert_eq!(
            format!("{:?}", c.sender_auth),
            format!("{:?}", d.sender_auth)
        );
        assert_eq!(c.web.listen, d.web.listen);
        assert_eq!(c.web.trusted_proxies, d.web.trusted_proxies);
        assert_eq!(c.smtp.proxy_protocol_from, d.smtp.proxy_protocol_from);
        assert_eq!(format!("{:?}", c.metrics), format!("{:?}", d.metrics));
        assert_eq!(format!("{:?}", c.mta_sts), format!("{:?}", d.mta_sts));
        assert!(c.webhooks.is_empty());
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[limits]\nmax_mesage_size = 5\n").is_err());
        assert!(toml::from_str::<Config>("[smtp]\nlisten = 'not-an-address'\n").is_err());
    }
}
