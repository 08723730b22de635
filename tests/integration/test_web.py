"""test_web.py: the dashboard's static files served by a real ippocd over
loopback (src/api/api_web.c, built in by tools/embed_web.py): the page and
every asset it references load, gzip'd and identity (the same bytes as
web/), 304 on If-None-Match, HEAD, the security headers, traversal and
unknown names 404, no token for the page while /v1/ needs it, the token
never in the daemon's log, IPPOC_WEB_DIR, the vendored uPlot matching its
pin, and the first view's transferred size (at most 250 KB, printed)."""
import gzip
import hashlib
import html.parser
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import IPPOCD, SLOW, Daemon, run, wait_for

SRC = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
WEB = os.path.join(SRC, "web")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
FIRST_VIEW_MAX = 250 * 1000
D = None


def daemon():
    global D
    if D is None or D.proc.poll() is not None:
        D = Daemon().start()
    return D


def req(d, path, method="GET", headers=None):
    """One request with the path sent exactly as given (http.client does not
    normalise it); (status, headers with lower-case names, body)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10 * SLOW)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def web_file(name):
    with open(os.path.join(WEB, name), "rb") as f:
        return f.read()


class Refs(html.parser.HTMLParser):
    """The same-origin files a page references directly (script src, link
    href, img src), and any reference to another origin."""

    def __init__(self):
        super().__init__()
        self.local, self.foreign, self.inline_script, self.inline_style = [], [], 0, 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "style" in a:
            self.inline_style += 1
        if tag == "style":
            self.inline_style += 1
        url = a.get("src") if tag in ("script", "img") else a.get("href") if tag == "link" else None
        self._in_script = tag == "script"
        if url is None:
            return
        if re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.I):
            self.foreign.append(url)
        else:
            self.local.append(url if url.startswith("/") else "/" + url)

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_script += 1


def page_refs(d):
    st, _, body = req(d, "/")
    assert st == 200, st
    p = Refs()
    p.feed(body.decode())
    return p


def test_page_and_assets_load():
    d = daemon()
    p = page_refs(d)
    assert not p.foreign, f"index.html references other origins: {p.foreign}"
    assert p.inline_script == 0 and p.inline_style == 0, "inline script or style in index.html"
    assert "/assets/app.js" in p.local and "/assets/app.css" in p.local, p.local
    for path in ["/", "/index.html"] + p.local:
        st, h, body = req(d, path)
        assert st == 200, (path, st, body[:200])
        name = "index.html" if path in ("/", "/index.html") else path[len("/assets/"):]
        assert body == web_file(name), f"{path}: not the bytes of web/{name}"
        ext = os.path.splitext(name)[1]
        want = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml; charset=utf-8"}.get(ext)
        if want:
            assert h["content-type"] == want, (path, h["content-type"])
        assert "content-encoding" not in h, (path, h)  # no Accept-Encoding: identity
        assert int(h["content-length"]) == len(body)
    # every built-in file (web/meson.build's list), the vendored chart library among them
    for name in ["vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "favicon.svg"]:
        st, _, body = req(d, "/assets/" + name)
        assert st == 200 and body == web_file(name), name


def test_gzip_and_identity():
    d = daemon()
    for name in ["index.html", "app.js", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"]:
        raw = web_file(name)
        st, h, body = req(d, "/assets/" + name, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert st == 200, (name, st)
        if len(raw) > 1000:  # big enough that gzip is smaller
            assert h.get("content-encoding") == "gzip", (name, h)
            assert gzip.decompress(body) == raw, name
            assert len(body) < len(raw)
        else:
            assert h.get("content-encoding") in (None, "gzip")
            assert (gzip.decompress(body) if h.get("content-encoding") else body) == raw
        if h.get("content-encoding"):
            assert "accept-encoding" in h.get("vary", "").lower(), (name, h)
    big = "/assets/vendor/uPlot.iife.min.js"
    raw = web_file("vendor/uPlot.iife.min.js")
    # q=0 refuses gzip; * with gzip not named allows it; identity;q=1 alone does not
    for ae, want_gz in [("gzip;q=0", False), ("gzip; q=0.000, deflate", False), ("*;q=0", False),
                        ("identity", False), ("*", True), ("GZIP;Q=0.5", True), ("x-gzip", True),
                        ("br, *;q=0.1", True), ("gzip;q=0, *;q=1", False), ("", False)]:
        st, h, body = req(d, big, headers={"Accept-Encoding": ae})
        assert st == 200
        assert (h.get("content-encoding") == "gzip") == want_gz, (ae, h.get("content-encoding"))
        assert (gzip.decompress(body) if want_gz else body) == raw, ae
    # the gzip'd copy is reproducible: no mtime in its header (bytes 4..7)
    _, _, b1 = req(d, big, headers={"Accept-Encoding": "gzip"})
    assert b1[4:8] == b"\0\0\0\0", "gzip header carries an mtime"


def test_api_json_gzip():
    """The API's JSON answers (what the page fetches) are gzip'd too when the
    client accepts it and they are over 1 KB; never otherwise."""
    d = daemon()
    st, h, plain = req(d, "/v1/status")
    assert st == 200 and h.get("content-encoding") is None and len(plain) > 1024, (st, h, len(plain))
    assert "accept-encoding" in h.get("vary", "").lower()
    st, h, body = req(d, "/v1/status", headers={"Accept-Encoding": "gzip"})
    assert st == 200 and h.get("content-encoding") == "gzip", h
    assert len(body) < len(plain) // 2, (len(body), len(plain))
    doc = json.loads(gzip.decompress(body))
    assert doc.get("version") and doc.keys() == json.loads(plain).keys()
    st, h, body = req(d, "/v1/status", headers={"Accept-Encoding": "gzip;q=0"})
    assert h.get("content-encoding") is None and json.loads(body)
    # a small answer (an error) stays as it is
    st, h, body = req(d, "/v1/nope", headers={"Accept-Encoding": "gzip"})
    assert st == 404 and h.get("content-encoding") is None and json.loads(body)["error"]["code"] == "not_found"


def test_etag_304_and_head():
    d = daemon()
    st, h, body = req(d, "/assets/app.css")
    etag = h["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16,}"', etag), etag
    assert h["cache-control"] == "no-cache", h
    st, h2, body2 = req(d, "/assets/app.css", headers={"If-None-Match": etag})
    assert st == 304 and body2 == b"", (st, body2)
    assert h2["etag"] == etag
    st, _, _ = req(d, "/assets/app.css", headers={"If-None-Match": '"nope", W/' + etag})
    assert st == 304  # weak comparison, a list
    st, _, body3 = req(d, "/assets/app.css", headers={"If-None-Match": '"0000000000000000"'})
    assert st == 200 and body3 == body
    # a different file's tag is not this one's
    _, hj, _ = req(d, "/assets/app.js")
    assert hj["etag"] != etag
    assert req(d, "/assets/app.css", headers={"If-None-Match": hj["etag"]})[0] == 200
    # the gzip'd variant has its own tag; either matches on revalidation
    big = "/assets/vendor/uPlot.iife.min.js"
    _, hg, _ = req(d, big, headers={"Accept-Encoding": "gzip"})
    _, hi, _ = req(d, big)
    assert hg["etag"] != hi["etag"], (hg["etag"], hi["etag"])
    assert req(d, big, headers={"Accept-Encoding": "gzip", "If-None-Match": hg["etag"]})[0] == 304
    assert req(d, big, headers={"If-None-Match": hg["etag"]})[0] == 304
    # HEAD: the headers of a GET, no body
    st, hh, bh = req(d, "/", method="HEAD")
    _, hget, bget = req(d, "/")
    assert st == 200 and bh == b"", (st, bh[:100])
    assert hh["content-length"] == str(len(bget)), (hh, len(bget))
    assert hh["etag"] == hget["etag"] and hh["content-type"] == hget["content-type"]
    st, hh, bh = req(d, big, method="HEAD", headers={"Accept-Encoding": "gzip"})
    assert st == 200 and bh == b"" and hh.get("content-encoding") == "gzip"
    # other methods: 405 with Allow
    st, h, _ = req(d, "/", method="POST")
    assert st == 405 and "GET" in h.get("allow", ""), (st, h)


def test_security_headers():
    d = daemon()
    for path, hdrs in [("/", {}), ("/assets/app.js", {"Accept-Encoding": "gzip"}), ("/index.html", {})]:
        st, h, _ = req(d, path, headers=hdrs)
        assert st == 200
        assert h["content-security-policy"] == CSP, h
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
    st, h, _ = req(d, "/assets/app.js", headers={"If-None-Match": req(d, "/assets/app.js")[1]["etag"]})
    assert st == 304 and h["content-security-policy"] == CSP


def test_traversal_and_unknown_404():
    d = daemon()
    bad = ["/assets/../index.html", "/assets/%2e%2e/index.html", "/assets/%2E%2E/%2e%2e/etc/passwd",
           "/assets/..%2fetc%2fpasswd", "/assets//app.js", "/assets/./app.js", "/assets/vendor/../app.js",
           "/assets/vendor//uPlot.min.css", "/assets/app.js/", "/assets/%2fapp.js", "/assets/nope.js",
           "/assets/vendor", "/assets/vendor/", "/assets/..\\app.js", "/assets/%5c..%5capp.js", "/assets/APP.JS",
           "/index.htm", "/favicon.svg", "/app.js", "/assets/../../../../etc/passwd", "/assets/%252e%252e/app.js",
           "/assets/" + "a" * 3000]
    for path in bad:
        st, h, body = req(d, path)
        assert st in (400, 404), (path, st)
        assert h["content-type"] == "application/json", (path, h)
        err = json.loads(body)["error"]
        assert err["code"] in ("not_found", "bad_request"), (path, err)
        assert b"root:" not in body
    # NUL and control bytes: 400 from the request check, before any route
    assert req(d, "/assets/app.js%00.png")[0] == 400
    st, _, body = req(d, "/assets/../index.html")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
    assert d.proc.poll() is None and d.status()["last_tick_ms"] > 0


def test_token():
    token = "web-test-token-3f9a1c77e2"
    d = Daemon(config=f"[api]\ntoken = {token}\n", extra_args=["--log-level", "debug"]).start(wait=False)
    auth = {"Authorization": f"Bearer {token}"}
    wait_for(lambda: d.get("/v1/status", headers=auth).status == 200, 20, "api up")
    st, _, body = req(d, "/")
    assert st == 200 and body == web_file("index.html"), st
    for a in page_refs(d).local:
        assert req(d, a)[0] == 200, a
    assert req(d, "/v1/status")[0] == 401
    assert req(d, "/v1/status", headers={"Authorization": "Bearer wrong-" + token})[0] == 401
    assert req(d, "/v1/status", headers=auth)[0] == 200
    assert req(d, "/v1/services", headers=auth)[0] == 200
    # the page's files with a token sent anyway (the page sends it only to /v1/)
    assert req(d, "/assets/app.js", headers=auth)[0] == 200
    assert req(d, "/assets/nope.js", headers=auth)[0] == 404
    d.stop()
    log = d.log_text()
    assert "bearer token required" in log, log[-2000:]
    assert token not in log, "the token is in the daemon's log"
    assert not re.search(r"authorization:", log, re.I), "an Authorization header is in the daemon's log"


def test_api_code_never_logs_the_token():
    # no log call in src/api names the token or the Authorization header
    api_dir = os.path.join(SRC, "src", "api")
    for fn in sorted(os.listdir(api_dir)):
        if not fn.endswith(".c"):
            continue
        with open(os.path.join(api_dir, fn)) as f:
            text = f.read()
        for m in re.finditer(r"\blog_(?:debug|info|warn|error)\s*\((?:[^;]|\n)*?\);", text):
            args = re.sub(r'"(?:\\.|[^"\\])*"', '""', m.group(0))  # the text of string literals aside
            # a token variable passed (a test of its first byte, token[0], says only whether one is set)
            assert not re.search(r"\w*token\b(?!\s*\[)|AUTHORIZATION|[Aa]uthorization", args), (fn, m.group(0))


def test_web_dir():
    tmp = tempfile.mkdtemp(prefix="ippoc-webdir.")
    try:
        for name in ["index.html", "app.css", "app.js", "favicon.svg"]:
            shutil.copy(os.path.join(WEB, name), tmp)
        with open(os.path.join(tmp, "index.html"), "w") as f:
            f.write("<!doctype html><title>edited</title><p>from IPPOC_WEB_DIR</p>")
        with open(os.path.join(tmp, "secret.txt"), "w") as f:
            f.write("not listed")
        old = os.environ.get("IPPOC_WEB_DIR")
        os.environ["IPPOC_WEB_DIR"] = tmp
        try:
            d = Daemon().start()
        finally:
            if old is None:
                del os.environ["IPPOC_WEB_DIR"]
            else:
                os.environ["IPPOC_WEB_DIR"] = old
        st, h, body = req(d, "/", headers={"Accept-Encoding": "gzip"})
        assert st == 200 and b"from IPPOC_WEB_DIR" in body, (st, body[:200])
        assert h["cache-control"] == "no-store" and h["content-security-policy"] == CSP
        # read per request: an edit shows without a restart
        with open(os.path.join(tmp, "app.css"), "w") as f:
            f.write("body{color:red}")
        assert req(d, "/assets/app.css")[2] == b"body{color:red}"
        # only the built-in names; a file it lacks is a 404 naming it
        assert req(d, "/assets/secret.txt")[0] == 404
        assert req(d, "/assets/../secret.txt")[0] == 404
        st, _, body = req(d, "/assets/vendor/uPlot.min.css")
        assert st == 404 and b"IPPOC_WEB_DIR" in body, body
        d.stop()
        log = d.log_text()
        assert log.count("IPPOC_WEB_DIR=" + tmp) == 1, log[-2000:]
        # and --help says so
        r = subprocess.run([IPPOCD, "--help"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "IPPOC_WEB_DIR" in r.stdout, r.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_vendored_uplot():
    with open(os.path.join(WEB, "package.json")) as f:
        pin = json.load(f)["dependencies"]["uplot"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pin), f"uplot is not pinned to one version: {pin}"
    with open(os.path.join(WEB, "package-lock.json")) as f:
        lock = json.load(f)
    assert lock["packages"]["node_modules/uplot"]["version"] == pin
    js = web_file("vendor/uPlot.iife.min.js")
    assert js.startswith(f"/*! https://github.com/leeoniya/uPlot (v{pin}) */".encode()), js[:80]
    assert b"MIT" in web_file("vendor/LICENSE.uPlot")
    pkg = os.path.join(WEB, "node_modules", "uplot")
    if not os.path.isdir(pkg):
        print("  (web/node_modules/uplot is not installed: `make web-vendor` compares the files too)")
        return
    with open(os.path.join(pkg, "package.json")) as f:
        assert json.load(f)["version"] == pin
    for ours, theirs in [("vendor/uPlot.iife.min.js", "dist/uPlot.iife.min.js"),
                         ("vendor/uPlot.min.css", "dist/uPlot.min.css"), ("vendor/LICENSE.uPlot", "LICENSE")]:
        with open(os.path.join(pkg, theirs), "rb") as f:
            assert hashlib.sha256(f.read()).digest() == hashlib.sha256(web_file(ours)).digest(), \
                f"web/{ours} differs from npm's uplot@{pin} {theirs}: run `make web-vendor`"


def test_first_view_size():
    d = daemon()
    gz = {"Accept-Encoding": "gzip, deflate, br"}
    st, h, body = req(d, "/", headers=gz)
    assert st == 200
    total, parts = len(body), [("index.html", len(body))]
    for path in page_refs(d).local:
        st, h, b = req(d, path, headers=gz)
        assert st == 200, path
        total += len(b)
        parts.append((path, len(b)))
    print("  first view: " + ", ".join(f"{p} {n} B" for p, n in parts) + f"; total {total} B (limit {FIRST_VIEW_MAX})")
    assert total <= FIRST_VIEW_MAX, total


if __name__ == "__main__":
    run([test_page_and_assets_load, test_gzip_and_identity, test_api_json_gzip, test_etag_304_and_head, test_security_headers,
         test_traversal_and_unknown_404, test_token, test_api_code_never_logs_the_token, test_web_dir,
         test_vendored_uplot, test_first_view_size])
