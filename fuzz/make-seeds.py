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
for name, data in seeds.items():
    path = os.path.join(here, "seeds", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
