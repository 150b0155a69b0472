//! GnuPG (Debian's `gnupg`) as the reporters' and the organisations' tool:
//! keys generated at test time in a throwaway home, messages encrypted and
//! signed by the real `gpg`, and our replies decrypted by it.

use std::path::Path;
use std::process::{Command, Stdio};

pub struct Gpg {
    home: tempfile::TempDir,
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("g")
            .tempdir_in("/tmp")
            .unwrap();
        Gpg { home }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs gpg; its standard output. Panics with its errors on failure.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let (ok, out, err) = self.try_run(args, stdin);
        assert!(ok, "gpg {args:?}: {err}");
        out
    }

    pub fn try_run(&self, args: &[&str], stdin: &[u8]) -> (bool, Vec<u8>, String) {
        use std::io::Write as _;
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--no-tty", "--quiet", "--trust-model", "always"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A new key for `uid` (Ed25519 to sign, Curve25519 to encrypt),
    /// protected by `passphrase` when it is not empty; its fingerprint.
    pub fn generate(&self, uid: &str, passphrase: &str) -> String {
        let pass = ["--pinentry-mode", "loopback", "--passphrase", passphrase];
        let mut args = pass.to_vec();
        args.extend(["--quick-gen-key", uid, "ed25519", "cert,sign", "never"]);
        self.run(&args, b"");
        let fpr = self.fingerprint(uid);
        let mut args = pass.to_vec();
        args.extend(["--quick-add-key", &fpr, "cv25519", "encr", "never"]);
        self.run(&args, b"");
        fpr
    }

    fn colons(&self, who: &str) -> String {
        String::from_utf8(self.run(&["--with-colons", "--list-keys", who], b"")).unwrap()
    }

    pub fn fingerprint(&self, who: &str) -> String {
        let text = self.colons(who);
        let line = text.lines().find(|l| l.starts_with("fpr:")).unwrap();
        line.split(':').nth(9).unwrap().to_owned()
    }

    /// The long key id of `who`'s encryption subkey.
    pub fn encryption_key_id(&self, who: &str) -> String {
        let text = self.colons(who);
        let sub = text
            .lines()
            .find(|l| {
                l.starts_with("sub:") && l.split(':').nth(11).is_some_and(|c| c.contains('e'))
            })
            .unwrap();
        sub.split(':').nth(4).unwrap().to_owned()
    }

    pub fn export_public(&self, who: &str) -> Vec<u8> {
        self.run(&["--armor", "--export", who], b"")
    }

    pub fn export_secret(&self, who: &str, passphrase: &str) -> Vec<u8> {
        self.run(
            &[
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
                "--armor",
                "--export-secret-keys",
                who,
            ],
            b"",
        )
    }

    pub fn import(&self, key: &[u8]) {
        self.run(&["--import"], key);
    }

    /// `data` encrypted to `to`, signed by `signer` if given; armored.
    pub fn encrypt(&self, to: &str, signer: Option<&str>, data: &[u8]) -> String {
        let mut args = vec!["--armor", "--encrypt", "--recipient", to];
        if let Some(s) = signer {
            args.extend(["--sign", "--local-user", s]);
        }
        String::from_utf8(self.run(&args, data)).unwrap()
    }

    /// `data` encrypted with a password only (`gpg -c`); armored.
    pub fn encrypt_symmetric(&self, password: &str, data: &[u8]) -> String {
        String::from_utf8(self.run(
            &[
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                password,
                "--armor",
                "--symmetric",
            ],
            data,
        ))
        .unwrap()
    }

    pub fn decrypt(&self, data: &[u8]) -> Vec<u8> {
        self.run(&["--decrypt"], data)
    }
}

/// An RFC 3156 PGP/MIME mail: `armored` as its encrypted part.
pub fn pgp_mime(from: &str, to: &str, subject: &str, id: &str, armored: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n\
         --enc\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
         --enc\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\nContent-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n\
         {}\r\n--enc--\r\n",
        armored.replace('\n', "\r\n").replace("\r\r\n", "\r\n")
    )
    .into_bytes()
}

/// A plain mail whose text is `note`, then `armored` inline.
pub fn inline(from: &str, to: &str, subject: &str, id: &str, note: &str, armored: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{note}\r\n\r\n{}\r\n",
        armored.replace('\n', "\r\n").replace("\r\r\n", "\r\n")
    )
    .into_bytes()
}

/// The inner MIME of a report: `text`, and optionally the reporter's
/// public key attached (`application/pgp-keys`).
pub fn inner_report(subject: Option<&str>, text: &str, key: Option<&[u8]>) -> Vec<u8> {
    let mut m = String::from("MIME-Version: 1.0\r\n");
    if let Some(s) = subject {
        m.push_str(&format!("Subject: {s}\r\n"));
    }
    m.push_str("Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&text.replace('\n', "\r\n"));
    m.push_str("\r\n");
    if let Some(k) = key {
        m.push_str("--in\r\nContent-Type: application/pgp-keys; name=\"reporter.asc\"\r\nContent-Disposition: attachment; filename=\"reporter.asc\"\r\n\r\n");
        m.push_str(
            &String::from_utf8_lossy(k)
                .replace('\n', "\r\n")
                .replace("\r\r\n", "\r\n"),
        );
        m.push_str("\r\n");
    }
    m.push_str("--in--\r\n");
    m.into_bytes()
}

/// The seed policies in a directory of their own, each organisation in
/// `keys` with its OpenPGP secret key (`fingerprint`, protected by
/// `passphrase` when not empty) exported by `gpg` beside it, mode 0600.
pub fn keyed_policies(gpg: &Gpg, keys: &[(&str, &str, &str)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let policies = tempfile::tempdir().unwrap();
    for name in ["magenta", "netcompany"] {
        let text = std::fs::read_to_string(format!(
            "{}/policies/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let text = match keys.iter().find(|(org, _, _)| *org == name) {
            Some((_, fpr, pass)) => {
                let key = policies.path().join(format!("{name}.key.asc"));
                std::fs::write(&key, gpg.export_secret(fpr, pass)).unwrap();
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
                format!("{text}\n[openpgp]\nsecret_key_file = \"{name}.key.asc\"\n")
            }
            None => text,
        };
        std::fs::write(policies.path().join(format!("{name}.toml")), text).unwrap();
    }
    policies
}
