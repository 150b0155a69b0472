//! A real identity provider: Debian's SimpleSAMLphp 1.19, served by PHP's
//! built-in server on loopback from a temporary configuration directory,
//! with a user/password source. Its signing key is made by openssl; our
//! SP metadata reaches it through its own metadata parser
//! (`tests/fixtures/simplesamlphp/convert-sp-metadata.php`), as an
//! administrator's would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSP: &str = "/usr/share/simplesamlphp";
const CONVERTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/simplesamlphp/convert-sp-metadata.php"
);

/// Users of the test IdP: (user, password, uid, mail, groups).
pub const USERS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "alice",
        "alice-pass",
        "alice",
        "alice@nc.example",
        &["nc-analysts"],
    ),
    ("eve", "eve-pass", "eve", "eve@example.org", &["marketing"]),
];

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";

pub struct Idp {
    child: Child,
    pub port: u16,
    pub base: String,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn php_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Idp {
    /// Starts the IdP; `trusted` are the origins it may send browsers
    /// back to after logout (our interface).
    pub fn start(trusted: &[&str]) -> Idp {
        assert!(
            Path::new(SSP).join("www").exists(),
            "SimpleSAMLphp missing: deploy/system-deps.sh test installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "config", "metadata", "cert", "log", "data", "tmp", "sessions",
        ] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        let ok = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", "/CN=SimpleSAMLphp test IdP", "-keyout"])
            .arg(root.join("cert/idp.key"))
            .arg("-out")
            .arg(root.join("cert/idp.crt"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl req");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let p = |d: &str| php_string(&format!("{}/{d}/", root.display()));
        let domains: Vec<String> = trusted.iter().map(|t| php_string(t)).collect();
        std::fs::write(
            root.join("config/config.php"),
            format!(
                "<?php\n$config = [\n\
                 'baseurlpath' => {base},\n\
                 'certdir' => {cert},\n'loggingdir' => {log},\n'datadir' => {data},\n\
                 'tempdir' => {tmp},\n'metadatadir' => {metadata},\n\
                 'secretsalt' => 'a-salt-for-this-test-idp-only',\n\
                 'auth.adminpassword' => 'an-admin-password-for-this-test-only',\n\
                 'technicalcontact_name' => 'Test', 'technicalcontact_email' => 'test@example.org',\n\
                 'timezone' => 'UTC',\n\
                 'logging.level' => SimpleSAML\\Logger::DEBUG, 'logging.handler' => 'file',\n\
                 'logging.logfile' => 'idp.log',\n\
                 'enable.saml20-idp' => true,\n\
                 'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],\n\
                 'store.type' => 'phpsession', 'session.phpsession.savepath' => {sessions},\n\
                 'session.cookie.secure' => false, 'session.cookie.path' => '/',\n\
                 'trusted.url.domains' => [{domains}],\n\
                 'language.available' => ['en'], 'language.default' => 'en',\n];\n",
                base = php_string(&format!("{base}/")),
                cert = p("cert"),
                log = p("log"),
                data = p("data"),
                tmp = p("tmp"),
                metadata = p("metadata"),
                sessions = p("sessions"),
                domains = domains.join(", "),
            ),
        )
        .unwrap();
        let users: Vec<String> = USERS
            .iter()
            .map(|(user, pass, uid, mail, groups)| {
                let groups: Vec<String> = groups.iter().map(|g| php_string(g)).collect();
                format!(
                    "{} => ['uid' => [{}], 'mail' => [{}], 'displayName' => [{}], 'groups' => [{}]]",
                    php_string(&format!("{user}:{pass}")),
                    php_string(uid),
                    php_string(mail),
                    php_string(&format!("{user} (test)")),
                    groups.join(", ")
                )
            })
            .collect();
        std::fs::write(
            root.join("config/authsources.php"),
            format!(
                "<?php\n$config = [\n'users' => ['exampleauth:UserPass',\n{}\n],\n];\n",
                users.join(",\n")
            ),
        )
        .unwrap();
        std::fs::write(root.join("metadata/saml20-sp-remote.php"), "<?php\n").unwrap();
        let idp = Idp {
            // No opcache: it would serve a rewritten metadata file's old
            // contents for up to two seconds.
            child: Command::new("php")
                .args([
                    "-d",
                    "opcache.enable=0",
                    "-S",
                    &format!("127.0.0.1:{port}"),
                    "-t",
                ])
                .arg(Path::new(SSP).join("www"))
                .env("SIMPLESAMLPHP_CONFIG_DIR", root.join("config"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("php.log")).unwrap())
                .spawn()
                .expect("php-cli"),
            port,
            base,
            dir,
        };
        idp.sign_with(RSA_SHA256);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "php -S did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        idp
    }

    /// (Re)writes the hosted IdP: signs assertions and logout messages
    /// with `algorithm`; persistent NameIDs from `uid`.
    pub fn sign_with(&self, algorithm: &str) {
        std::fs::write(
            self.dir.path().join("metadata/saml20-idp-hosted.php"),
            format!(
                "<?php\n$metadata['__DYNAMIC:1__'] = [\n\
                 'host' => '__DEFAULT__',\n\
                 'privatekey' => 'idp.key', 'certificate' => 'idp.crt',\n\
                 'auth' => 'users',\n\
                 'signature.algorithm' => {},\n\
                 'sign.logout' => true,\n\
                 'userid.attribute' => 'uid',\n];\n",
                php_string(algorithm)
            ),
        )
        .unwrap();
    }

    /// The IdP's metadata, as it publishes it.
    pub fn metadata(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "30"])
            .arg(format!("{}/saml2/idp/metadata.php", self.base))
            .output()
            .unwrap();
        assert!(out.status.success(), "IdP metadata: {}", self.log());
        String::from_utf8(out.stdout).unwrap()
    }

    /// Trusts the SP whose metadata is `xml`, converted by SimpleSAMLphp's
    /// own parser after schema validation, plus the settings an admin adds
    /// by hand (`extra`, PHP array entries).
    pub fn trust_sp(&self, xml: &str, extra: &str) {
        let root = self.dir.path();
        let md = root.join("sp-metadata.xml");
        std::fs::write(&md, xml).unwrap();
        let extra_file = root.join("sp-extra.php");
        std::fs::write(&extra_file, format!("<?php\nreturn [{extra}];\n")).unwrap();
        let out = Command::new("php")
            .arg(CONVERTER)
            .arg(&md)
            .arg(&extra_file)
            .env("SIMPLESAMLPHP_CONFIG_DIR", root.join("config"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "SimpleSAMLphp refused our metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(root.join("metadata/saml20-sp-remote.php"), out.stdout).unwrap();
    }

    pub fn log(&self) -> String {
        let root = self.dir.path();
        format!(
            "{}\n{}",
            std::fs::read_to_string(root.join("log/idp.log")).unwrap_or_default(),
            std::fs::read_to_string(root.join("php.log")).unwrap_or_default()
        )
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
