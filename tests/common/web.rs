//! The analyst interface over real HTTP (curl with a cookie jar), and a
//! test identity provider that signs what each test asks for.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::{Opts, Server};
use disclosure_mx::web::auth::devidp::{DevIdp, ResponseSpec, Signed, read_redirect_request};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An HTTP reply as curl saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A browser-like client: one cookie jar, no redirects followed.
pub struct Client {
    pub base: String,
    jar: PathBuf,
    _dir: tempfile::TempDir,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let dir = tempfile::tempdir().unwrap();
        Client {
            base: base.to_owned(),
            jar: dir.path().join("jar"),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Reply {
        let dir = tempfile::tempdir().unwrap();
        let head = dir.path().join("h");
        let body = dir.path().join("b");
        let out = Command::new("curl")
            // -k: the dev certificate when the interface serves HTTPS.
            .args(["-s", "-k", "--max-time", "30", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar)
            .arg("-D")
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let headers = std::fs::read_to_string(&head)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        Reply {
            status,
            headers,
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.run(&[&format!("{}{path}", self.base)])
    }

    /// GETs an absolute URL (another origin, e.g. the IdP).
    pub fn get_url(&self, url: &str) -> Reply {
        self.run(&[url])
    }

    /// POSTs form fields, URL-encoded.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_url(&format!("{}{path}", self.base), fields)
    }

    /// POSTs form fields to an absolute URL.
    pub fn post_url(&self, url: &str, fields: &[(&str, &str)]) -> Reply {
        let mut args: Vec<String> = Vec::new();
        for (k, v) in fields {
            args.push("--data-urlencode".into());
            args.push(format!("{k}={v}"));
        }
        if fields.is_empty() {
            args.push("--data".into());
            args.push(String::new());
        }
        args.push(url.to_owned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// Starts a sign-in: the AuthnRequest id our server sent to the IdP.
    pub fn start_login(&self) -> String {
        let r = self.get("/login");
        assert_eq!(r.status, 303, "{}", r.text());
        let location = r.header("location").unwrap().to_owned();
        let (_, query) = location.split_once('?').unwrap();
        let encoded = query
            .split('&')
            .find_map(|p| p.strip_prefix("SAMLRequest="))
            .unwrap();
        let request = percent_decode(encoded);
        read_redirect_request(&request).unwrap().0
    }

    /// Posts a SAML response (XML) to the ACS.
    pub fn post_response(&self, xml: &str) -> Reply {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        self.post("/saml/acs", &[("SAMLResponse", &b64)])
    }

    /// The CSRF token in the page at `path`.
    pub fn csrf(&self, path: &str) -> String {
        let page = self.get(path).text();
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        page[at + 19..].split('"').next().unwrap().to_owned()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A test IdP and a server that trusts it.
pub struct Sso {
    pub idp: DevIdp,
    /// Further IdP keys the metadata lists (`SsoOpts::also_trusted`).
    pub also: Vec<DevIdp>,
    pub server: Server,
    pub base: String,
    _dir: tempfile::TempDir,
}

pub const IDP_ENTITY: &str = "https://idp.test/metadata";

/// How `Sso::start_opts` sets up the server and its IdP.
#[derive(Default)]
pub struct SsoOpts<'a> {
    /// Lines of `[web]`.
    pub web: &'a str,
    pub intake: &'static str,
    /// Tables before `[web]`.
    pub extra: &'a str,
    /// Lines of `[saml]` (the IdP metadata and role rules are added).
    pub saml: &'a str,
    pub env: Vec<(&'static str, String)>,
    /// The IdP's single logout endpoint (HTTP-POST), if any.
    pub idp_slo: Option<&'a str>,
    /// IdPs (same entity id) whose signing certificates the metadata also
    /// lists.
    pub also_trusted: Vec<DevIdp>,
}

/// Role rules of the tests: `nc-analysts` → netcompany, `mag-analysts`
/// → magenta, `dmx-admins` → admin.
pub const ROLES: &str = "\
[[saml.roles]]\nattribute = \"groups\"\nvalue = \"nc-analysts\"\nrole = \"analyst\"\norganisation = \"netcompany\"\n\
[[saml.roles]]\nattribute = \"groups\"\nvalue = \"mag-analysts\"\nrole = \"analyst\"\norganisation = \"magenta\"\n\
[[saml.roles]]\nattribute = \"groups\"\nvalue = \"dmx-admins\"\nrole = \"admin\"\n";

impl Sso {
    /// Starts a server whose `[saml]` trusts a fresh test IdP; `web` and
    /// `intake` lines are added to the config.
    pub fn start(web: &str, intake: &'static str) -> Sso {
        Sso::start_with(web, intake, "")
    }

    /// As `start`, with more config tables (e.g. `[outbound]`).
    pub fn start_with(web: &str, intake: &'static str, extra: &str) -> Sso {
        Sso::start_env(web, intake, extra, Vec::new())
    }

    /// As `start_with`, with environment variables for the server and for
    /// the CLI run beside it (e.g. `DISCLOSURE_MX_POLICIES_DIR`).
    pub fn start_env(
        web: &str,
        intake: &'static str,
        extra: &str,
        env: Vec<(&'static str, String)>,
    ) -> Sso {
        Sso::start_opts(SsoOpts {
            web,
            intake,
            extra,
            env,
            ..SsoOpts::default()
        })
    }

    /// A server trusting a fresh test IdP, as `opts` says.
    pub fn start_opts(opts: SsoOpts<'_>) -> Sso {
        let dir = tempfile::tempdir().unwrap();
        let mut idp = DevIdp::generate(IDP_ENTITY, "https://idp.test/sso").unwrap();
        idp.slo_url = opts.idp_slo.map(str::to_owned);
        let metadata = dir.path().join("idp.xml");
        let others: Vec<&DevIdp> = opts.also_trusted.iter().collect();
        std::fs::write(&metadata, idp.metadata_xml_with(&others)).unwrap();
        let server = Server::start(Opts {
            intake: opts.intake,
            extra: format!(
                "{}\n[web]\nlisten = \"127.0.0.1:0\"\n{}\n[saml]\nidp_metadata = {:?}\n{}\n{ROLES}",
                opts.extra, opts.web, metadata, opts.saml
            ),
            env: opts.env,
            ..Opts::default()
        });
        let scheme = if opts.web.contains("tls = true") {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", web_addr(&server.data_dir()));
        Sso {
            idp,
            also: opts.also_trusted,
            server,
            base,
            _dir: dir,
        }
    }

    /// A correct response to `request_id` for `name` in `groups`.
    pub fn spec(&self, request_id: &str, name: &str, groups: &[&str]) -> ResponseSpec {
        ResponseSpec {
            request_id: request_id.to_owned(),
            name_id: name.to_owned(),
            audience: format!("{}/saml/metadata", self.base),
            acs_url: format!("{}/saml/acs", self.base),
            attributes: groups
                .iter()
                .map(|g| ("groups".to_owned(), (*g).to_owned()))
                .collect(),
            lifetime_seconds: 300,
            signed: Signed::Assertion,
            sha1_digest: false,
            name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into()),
            session_index: Some(format!("_session-{name}")),
        }
    }

    /// A new browser that signs in as `name` in `groups`, with the
    /// response changed by `edit` before the IdP signs it: the browser and
    /// our ACS's reply.
    pub fn sign_in_with(
        &self,
        name: &str,
        groups: &[&str],
        edit: impl FnOnce(&mut ResponseSpec),
    ) -> (Client, Reply) {
        let c = Client::new(&self.base);
        let id = c.start_login();
        let mut spec = self.spec(&id, name, groups);
        edit(&mut spec);
        let r = c.post_response(&self.idp.response(&spec).unwrap());
        (c, r)
    }

    /// A client signed in as `name` in `groups`.
    pub fn signed_in(&self, name: &str, groups: &[&str]) -> Client {
        let c = Client::new(&self.base);
        let id = c.start_login();
        let xml = self.idp.response(&self.spec(&id, name, groups)).unwrap();
        let r = c.post_response(&xml);
        assert_eq!(r.status, 303, "{}", r.text());
        c
    }
}

/// The web address the server bound (written once it listens).
pub fn web_addr(data_dir: &Path) -> String {
    let file = data_dir.join("api-listening");
    for _ in 0..200 {
        if let Ok(s) = std::fs::read_to_string(&file)
            && !s.trim().is_empty()
        {
            return s.trim().to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the web interface did not start");
}
