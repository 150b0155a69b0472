#!/usr/bin/env python3
"""Writes fuzz/seeds/{mime,html,archive}/: the shapes that once blew up intake's
HTML step (a wide table with a long word, mis-nested and deep tags) and
other MIME worst cases, small enough for libFuzzer to mutate. `make fuzz`
runs this first."""
import base64
import os

here = os.path.dirname(os.path.abspath(__file__))


def mail(ct, body, enc=None):
    h = ("From: r@researcher.example\r\nTo: security@netcompany.example\r\n"
         "Subject: Responsible disclosure: seed\r\nMIME-Version: 1.0\r\n"
         f"Content-Type: {ct}\r\n")
    if enc:
        h += f"Content-Transfer-Encoding: {enc}\r\n"
    return (h + "\r\n").encode() + body


table = ("<table><tr><td>" + "A" * 20000 + "</td></tr>"
         + "<tr><td>x</td></tr>" * 2000 + "</table>").encode()
misnested = ("<div></i>" * 20000).encode()
deep = ("<div>" * 20000 + "x" + "</div>" * 20000).encode()
long_word = ("<p>" + "W" * 100000 + "</p>").encode()
seeds = {
    "mime/table-bomb.eml": mail("text/html", table),
    "mime/misnested.eml": mail("text/html", misnested),
    "mime/deep.eml": mail("text/html", deep),
    "mime/long-word.eml": mail("text/html", long_word),
    "mime/table-bomb-base64.eml": mail(
        "text/html", base64.encodebytes(table).replace(b"\n", b"\r\n"), "base64"),
    "mime/nested-rfc822.eml": b"Subject: Responsible disclosure\r\n"
    + b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" * 200 + b"\r\ntext\r\n",
    "mime/many-parts.eml": b"Subject: x\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 3000 + b"--b--\r\n",
    "html/table.html": table,
    "html/misnested.html": misnested,
    "html/deep.html": deep,
    "html/long-word.html": long_word,
}
# Archives: every fixture made by the real tools, and the hostile ones.
fixtures = os.path.join(here, "..", "fixtures", "archives")
for sub in ("", "hostile"):
    folder = os.path.join(fixtures, sub)
    for f in sorted(os.listdir(folder)):
        if f.endswith((".7z", ".zip")):
            with open(os.path.join(folder, f), "rb") as src:
                seeds["archive/" + (sub + "-" if sub else "") + f] = src.read()


def encrypted_seeds():
    """OpenPGP and CMS made by the real gpg and openssl, when installed."""
    import shutil
    import subprocess
    import tempfile
    if not (shutil.which("gpg") and shutil.which("openssl")):
        return
    with tempfile.TemporaryDirectory(dir="/tmp") as home:
        def gpg(*args, data=b""):
            return subprocess.run(
                ["gpg", "--homedir", home, "--batch", "--quiet", "--trust-model", "always",
                 "--pinentry-mode", "loopback", "--passphrase", "", *args],
                input=data, capture_output=True, check=True).stdout
        gpg("--quick-gen-key", "Seed <seed@magenta.example>", "ed25519", "cert,sign", "never")
        fpr = [l.split(":")[9] for l in gpg("--with-colons", "--list-keys").decode().splitlines()
               if l.startswith("fpr:")][0]
        gpg("--quick-add-key", fpr, "cv25519", "encr", "never")
        body = b"Content-Type: text/plain\r\n\r\nDescription: seed\r\n"
        seeds["encrypted/pgp-armored.asc"] = gpg("--armor", "-e", "-r", fpr, data=body)
        seeds["encrypted/pgp-binary.pgp"] = gpg("-e", "-r", fpr, data=body)
        seeds["encrypted/pgp-signed.asc"] = gpg("--armor", "-e", "-s", "-r", fpr, data=body)
        seeds["encrypted/pgp-symmetric.asc"] = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
             "--passphrase", "seed", "--armor", "-c"], input=body,
            capture_output=True, check=True).stdout
        seeds["encrypted/public-key.asc"] = gpg("--armor", "--export", fpr)
        key, crt = os.path.join(home, "k.pem"), os.path.join(home, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=seed", "-keyout", key, "-out", crt],
                       capture_output=True, check=True)
        plain = os.path.join(home, "in.eml")
        with open(plain, "wb") as f:
            f.write(body)
        seeds["encrypted/smime-enveloped.der"] = subprocess.run(
            ["openssl", "cms", "-encrypt", "-aes256", "-in", plain, "-outform", "DER", crt],
            capture_output=True, check=True).stdout
        seeds["encrypted/smime-signed.eml"] = subprocess.run(
            ["openssl", "smime", "-sign", "-in", plain, "-signer", crt, "-inkey", key],
            capture_output=True, check=True).stdout
        seeds["encrypted/pgp-mime.eml"] = (
            b"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n\r\n"
            + seeds["encrypted/pgp-armored.asc"] + b"\r\n--b--\r\n")


encrypted_seeds()
for name, data in seeds.items():
    path = os.path.join(here, "seeds", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
