#!/usr/bin/env python3
"""Times the workspace over a seeded store: BASE TOKEN CONVERSATION DB CASES.

Through the API (a token of both organisations) and the web pages (signed
in through the dev IdP): the first list page, pages deep in the list (by
their cursors), searches for a word one case holds, a common word and two
words, and the case with a 200-message conversation. Beside each, the bare
SQL of the same read on the same SQLite file (no HTTP, no sealing, no
access check): the floor. p50/p95 in ms; the targets are p95 <= 50 ms for
a list page and a case page, <= 100 ms for a search."""
import html, json, os, random, re, sqlite3, statistics, sys, time
import http.cookiejar, urllib.parse, urllib.request

base, token, conversation, db, cases = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
N = int(os.environ.get("REPEAT", "100"))
api = urllib.request.build_opener()
api.addheaders = [("Authorization", f"Bearer {token}")]


def timed(open_url, path):
    t0 = time.perf_counter()
    r = open_url(base + path)
    body = r.read()
    return (time.perf_counter() - t0) * 1000, r, body


def q(xs, p):
    return sorted(xs)[max(0, int(len(xs) * p) - 1)]


def report(name, xs, target=None, floor=None):
    line = f"{name:<44} p50 {statistics.median(xs):6.1f} ms  p95 {q(xs, 0.95):6.1f} ms"
    if target is not None:
        line += f"  (target p95 <= {target} ms: {'met' if q(xs, 0.95) <= target else 'MISSED'})"
    if floor:
        line += f"  {statistics.median(xs) / statistics.median(floor):.1f}x bare SQL"
    print(line)


sql = sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def bare(query, args=()):
    out = []
    for _ in range(N):
        t0 = time.perf_counter()
        sql.execute(query, args).fetchall()
        out.append((time.perf_counter() - t0) * 1000)
    return out


# --- the list: first page, then deep pages by cursor
first = [timed(api.open, "/api/v1/cases")[0] for _ in range(N)]
floor_list = bare("SELECT reference, subject FROM cases ORDER BY received_at, reference LIMIT 51")
deep, path = [], "/api/v1/cases"
for _ in range(N):
    ms, r, _ = timed(api.open, path)
    deep.append(ms)
    link = r.headers.get("Link")
    path = re.match(r"<([^>]*)>", link).group(1) if link else "/api/v1/cases"
total = int(r.headers.get("X-Total-Count"))
assert total == cases, (total, cases)

# --- search: one case's own word, a common word, two words
rng = random.Random(7)
rare, common, two = [], [], []
for _ in range(N):
    n = rng.randrange(cases)
    ms, _, body = timed(api.open, f"/api/v1/cases?q=marker{n}")
    assert len(json.loads(body)) == 1, n
    rare.append(ms)
for _ in range(N):
    ms, r, _ = timed(api.open, "/api/v1/cases?q=" + rng.choice(["session", "token", "customer", "login"]))
    common.append(ms)
for _ in range(N):
    ms, _, _ = timed(api.open, "/api/v1/cases?q=" + urllib.parse.quote(rng.choice(["stored xss", "sql injection", "open redirect"])))
    two.append(ms)
# --- the case with a 200-message conversation
case = []
for _ in range(N):
    ms, _, body = timed(api.open, f"/api/v1/cases/{conversation}")
    case.append(ms)
assert len(json.loads(body)["thread"]) >= 201
floor_case = bare(
    "SELECT body FROM case_messages WHERE case_id = (SELECT id FROM cases WHERE reference = ?) ORDER BY id",
    (conversation,),
)

# --- the web pages, signed in through the dev IdP
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
idp = web.open(base + "/cases").read().decode()
req = html.unescape(re.search(r'name="SAMLRequest" value="([^"]*)"', idp).group(1))
signed = web.open(base + "/dev-idp/sso", urllib.parse.urlencode({"SAMLRequest": req, "user": "admin"}).encode()).read().decode()
resp = html.unescape(re.search(r'name="SAMLResponse" value="([^"]*)"', signed).group(1))
assert "Signed in as" in web.open(base + "/saml/acs", urllib.parse.urlencode({"SAMLResponse": resp}).encode()).read().decode()
web_list = [timed(web.open, "/cases")[0] for _ in range(N)]
web_search = []
for _ in range(N):
    ms, _, body = timed(web.open, f"/cases?q=marker{rng.randrange(cases)}")
    assert b"1 case(s)" in body
    web_search.append(ms)
web_case = [timed(web.open, f"/cases/{conversation}")[0] for _ in range(N)]

sql.close()
size = os.path.getsize(db) + (os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
print(f"{cases} cases, {N} requests each; database {size / 2**20:.0f} MiB, {size / cases / 1024:.1f} KiB per case")
report("API list, first page (50)", first, 50, floor_list)
report("API list, pages deep by cursor", deep, 50, floor_list)
report("API search, one case's word", rare, 100)
report("API search, a common word (first page)", common, 100)
report("API search, two words", two, 100)
report("API case, 200-message conversation", case, 50, floor_case)
report("web list page", web_list, 50, floor_list)
report("web search", web_search, 100)
report("web case page, 200-message conversation", web_case, 50, floor_case)
