#!/usr/bin/env python3
"""Sign-in latency through the dev IdP: BASE N. Prints p50/p95 of the ACS
step (signature verification, checks, session, first page) and of the
whole flow."""
import html, re, sys, time, statistics, urllib.parse, urllib.request, http.cookiejar
base = sys.argv[1]; n = int(sys.argv[2])
acs_t, total_t = [], []
for i in range(n):
    web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    t0 = time.perf_counter()
    idp = web.open(base + "/cases").read().decode()
    req = html.unescape(re.search(r'name="SAMLRequest" value="([^"]*)"', idp).group(1))
    signed = web.open(base + "/dev-idp/sso", urllib.parse.urlencode({"SAMLRequest": req, "user": "analyst@netcompany"}).encode()).read().decode()
    resp = html.unescape(re.search(r'name="SAMLResponse" value="([^"]*)"', signed).group(1))
    t1 = time.perf_counter()
    page = web.open(base + "/saml/acs", urllib.parse.urlencode({"SAMLResponse": resp}).encode()).read().decode()
    t2 = time.perf_counter()
    assert "Signed in as" in page
    acs_t.append((t2 - t1) * 1000); total_t.append((t2 - t0) * 1000)
q = lambda xs, p: sorted(xs)[int(len(xs) * p) - 1]
print(f"{n} sign-ins: ACS (verify + session + first page) p50 {statistics.median(acs_t):.1f} ms p95 {q(acs_t,0.95):.1f} ms; whole flow incl. dev IdP signing p50 {statistics.median(total_t):.1f} ms")
