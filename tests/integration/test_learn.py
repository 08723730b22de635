"""test_learn.py: the cell reads. `ippoc learn DIR` reads a directory of
documents (hidden and binary files skipped) into the real daemon's knowledge
store and `--search` finds the right one; a second read changes nothing; a
large document goes through POST /v1/learn whole; a bad file gets an error
naming it. A recorded arXiv Atom feed served by a local HTTP server is
followed: its papers are stored once (a later fetch adds nothing), linked to
the knobs they mention, and once the server is stopped the feed is retried
later with no error event."""
import http.server
import json
import os
import shutil
import signal
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, run, wait_for  # noqa: E402

SRC = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(SRC, "tests", "brain", "fixtures", "learn")


def post(d, body, timeout=60):
    return d.post("/v1/learn", body, timeout)


def search(d, q, mode="hybrid", limit=5):
    r = d.get("/v1/knowledge/search?" + urllib.parse.urlencode({"q": q, "mode": mode, "limit": limit}))
    assert r.status == 200, r.body
    return r.json()["hits"]


def make_docs(root):
    docs = os.path.join(root, "docs")
    os.makedirs(os.path.join(docs, "man"))
    os.makedirs(os.path.join(docs, ".git"))
    shutil.copy(os.path.join(FIX, "page.html"), docs)
    shutil.copy(os.path.join(FIX, "runbook.md"), docs)
    shutil.copy(os.path.join(FIX, "ls.1"), os.path.join(docs, "man"))
    with open(os.path.join(docs, "quota.txt"), "w") as f:
        f.write("Disk quotas\n\nUse repquota -a to see which users are over their soft limit on /home.\n")
    with open(os.path.join(docs, ".hidden.md"), "w") as f:
        f.write("# Zanzibar\n\nzanzibar is a word only the hidden file has.\n")
    with open(os.path.join(docs, ".git", "notes.md"), "w") as f:
        f.write("# Zanzibar again\n\nzanzibar in a hidden directory.\n")
    with open(os.path.join(docs, "core.bin"), "wb") as f:
        f.write(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    return docs


def test_learn_dir_and_search():
    d = Daemon().start()
    docs = make_docs(d.tmp)
    r = d.cli("learn", docs, check=0, timeout=60)
    for name in ("page.html", "runbook.md", "quota.txt", "ls.1"):
        assert any(name in line and "added" in line for line in r.stdout.splitlines()), r.stdout
    assert "zanzibar" not in r.stdout.lower() and ".hidden" not in r.stdout, r.stdout
    assert "4 added, 0 unchanged, 0 failed, 1 binary files skipped" in r.stdout, r.stdout
    hits = search(d, "checkpoint write spikes max_wal_size")
    assert hits and hits[0]["source"].endswith("/docs/page.html"), hits
    assert hits[0]["title"] == "Tuning PostgreSQL checkpoints" and hits[0]["kind"] == "html", hits[0]
    assert "SHOULD_NOT_APPEAR" not in hits[0]["snippet"], hits[0]
    for mode in ("bm25", "vector"):
        assert search(d, "users over their soft limit repquota", mode)[0]["source"].endswith("quota.txt")
    assert not [h for h in search(d, "zanzibar", "bm25") if "zanzibar" in h["snippet"].lower()]
    r = d.cli("learn", "--search", "nginx 502 bad gateway upstream", check=0)
    first = r.stdout.splitlines()[0]
    assert first.startswith("1. Nginx 502 runbook (markdown"), r.stdout
    # a second read changes nothing
    r = d.cli("learn", docs, check=0, timeout=60)
    assert "0 added, 4 unchanged" in r.stdout, r.stdout
    k = d.get("/v1/knowledge").json()
    assert k["stats"]["docs"] == 4, k["stats"]
    r = d.cli("--json", "learn", os.path.join(docs, "quota.txt"), check=0)
    assert json.loads(r.stdout)["status"] == "unchanged", r.stdout
    r = d.cli("learn", "--list", check=0)
    assert "4 documents" in r.stdout and "Nginx 502 runbook" in r.stdout, r.stdout
    # runbooks: kind runbook, pinned
    r = d.cli("learn", "--kind", "runbook", os.path.join(docs, "runbook.md"), check=0)
    assert "added" in r.stdout and "runbook" in r.stdout, r.stdout
    doc = [x for x in d.get("/v1/knowledge").json()["docs"] if x["source"].endswith("runbook.md")][0]
    assert doc["kind"] == "runbook", doc
    # the runbook mentions nginx: linked
    links = d.get("/v1/knowledge/links?node=component:nginx").json()["links"]
    assert any(l["rel"] == "mentions" and l["from"].startswith("doc:") for l in links), links
    assert d.stop() == 0


def test_large_document():
    d = Daemon().start()
    path = os.path.join(d.tmp, "big.md")
    with open(path, "w") as f:
        f.write("# A long handbook\n\n")
        for i in range(40000):  # about 2.6 MB: more than one read of the socket, an Expect: 100-continue
            f.write(f"Paragraph {i}: the quick brown fox tunes net.core.somaxconn on host{i % 97}.\n\n")
        f.write("The last paragraph names the ultramarine procedure.\n")
    r = d.cli("learn", path, check=0, timeout=120)
    assert "added" in r.stdout, r.stdout + r.stderr
    hits = search(d, "ultramarine procedure", "bm25")
    assert hits and hits[0]["source"] == path, hits
    # over the limit: a clear 413 from the API, not a crash
    st, ans = post(d, {"source": "x", "text": "y" * (25 << 20)})
    assert st == 413 and "longer than" in ans["error"]["message"], (st, ans)
    assert d.get("/v1/status").status == 200
    assert d.stop() == 0


def test_bad_files():
    d = Daemon().start()
    blob = os.path.join(d.tmp, "blob.dat")
    with open(blob, "wb") as f:
        f.write(b"\x00\x01\x02binary\x00" * 100)
    missing = os.path.join(d.tmp, "nope.md")
    pdf = os.path.join(d.tmp, "paper.pdf")
    with open(pdf, "wb") as f:
        f.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    good = os.path.join(d.tmp, "good.txt")
    with open(good, "w") as f:
        f.write("A good note about inode exhaustion on /var.\n")
    r = d.cli("learn", blob, missing, pdf, good, check=1)
    assert f"{blob}: binary data" in r.stderr, r.stderr
    assert f"{missing}: No such file" in r.stderr, r.stderr
    if not shutil.which("pdftotext"):
        assert f"{pdf}: a PDF, and pdftotext is not installed" in r.stderr, r.stderr
    assert "good.txt: added" in r.stdout, r.stdout  # the others still went in
    # the API's own checks
    st, ans = post(d, {"source": "s", "text": "t", "kind": "bogus"})
    assert st == 400 and "unknown kind" in ans["error"]["message"], ans
    st, ans = post(d, {"text": "no source"})
    assert st == 400 and "source" in ans["error"]["message"], ans
    st, ans = post(d, {"url": "file:///etc/passwd"})
    assert st == 400 and "not an http" in ans["error"]["message"], ans
    st, ans = post(d, {"feed": "ftp://example.org/x"})
    assert st == 400, ans
    r = d.get("/v1/knowledge/search?q=x&mode=fuzzy")
    assert r.status == 400 and b"mode" in r.body, r.body
    assert d.stop() == 0


class FeedServer:
    """The recorded feed on a free loopback port; counts the fetches."""

    def __init__(self):
        with open(os.path.join(FIX, "arxiv.atom"), "rb") as f:
            atom = f.read()
        with open(os.path.join(FIX, "page.html"), "rb") as f:
            page = f.read()
        server = self
        self.hits = 0
        self.pdf_hits = 0

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.startswith("/pdf/"):
                    server.pdf_hits += 1
                    body, ctype = b"%PDF-1.4\n%fake\n" + self.path.encode() + b"\n", "application/pdf"
                elif self.path.startswith("/docs/page"):
                    body, ctype = page, "text/html; charset=utf-8"
                elif self.path.startswith("/docs/missing"):
                    self.send_error(404)
                    return
                else:
                    server.hits += 1
                    body, ctype = atom, "application/atom+xml"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        atom = atom.replace(b"http://arxiv.org/pdf/", self.base.encode() + b"/pdf/")  # its PDFs are here
        self.url = self.base + "/api/query?search_query=cat:cs.OS"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def feed_of(d, url):
    feeds = d.get("/v1/knowledge/feeds").json()["feeds"]
    return next(f for f in feeds if f["url"] == url)


def test_feed_followed_and_retried():
    srv = FeedServer()
    try:
        d = Daemon(config="[knowledge]\nfeed_interval = 1s\n").start()
        r = d.cli("learn", "--feed", srv.url, check=0, timeout=60)
        assert "registered" in r.stdout and "3 entries, 3 new papers stored" in r.stdout, r.stdout
        papers = [x for x in d.get("/v1/knowledge").json()["docs"] if x["kind"] == "paper"]
        assert len(papers) == 3, papers
        # linked to the knobs and components they mention
        links = d.get("/v1/knowledge/links?node=knob:vm.swappiness").json()["links"]
        assert any(l["from"] == "paper:2512.01234" and l["rel"] == "mentions" for l in links), links
        links = d.get("/v1/knowledge/links?node=knob:net.core.somaxconn").json()["links"]
        assert any(l["from"] == "paper:2512.04567" for l in links), links
        assert search(d, "swappiness tail latency reclaim")[0]["kind"] == "paper"
        # followed on its own: later fetches add nothing
        first = feed_of(d, srv.url)["last_success"]
        wait_for(lambda: srv.hits >= 3 and feed_of(d, srv.url)["last_success"] > first, 20, "two more fetches")
        assert d.get("/v1/knowledge").json()["stats"]["docs"] == 3
        assert feed_of(d, srv.url)["entries"] == 3
        r = d.cli("learn", "--feed", check=0)
        assert srv.url in r.stdout, r.stdout
        # the server goes away: retried later, quietly
        srv.stop()
        wait_for(lambda: feed_of(d, srv.url)["failures"] >= 2, 30, "two failed fetches")
        f = feed_of(d, srv.url)
        assert f["next_try"] > f["last_fetch"] and "connect" in f["error"].lower(), f
        errors = d.get("/v1/events?severity=error&limit=100").json()["events"]
        assert not errors, errors
        assert "feed" not in "".join(l for l in d.log_text().splitlines() if " error " in l or " warn" in l)
        assert d.get("/v1/knowledge").json()["stats"]["docs"] == 3
        # registered feeds survive a restart
        assert d.stop() == 0
        d2 = Daemon(config="[knowledge]\nfeed_interval = 1h\n", state_dir=d.state_dir).start()
        assert feed_of(d2, srv.url)["entries"] == 3
        assert d2.stop() == 0
    finally:
        try:
            srv.stop()
        except Exception:  # noqa: BLE001 (already stopped)
            pass


def test_url_and_configured_feed():
    srv = FeedServer()
    try:
        d = Daemon(config=f"[knowledge]\nfeeds = {srv.url}\nfeed_interval = 1h\n").start()
        # a configured feed is followed without being registered
        wait_for(lambda: len([x for x in d.get("/v1/knowledge").json()["docs"] if x["kind"] == "paper"]) == 3,
                 20, "the configured feed's papers")
        assert feed_of(d, srv.url)["configured"] is True
        # a URL the daemon fetches
        r = d.cli("learn", srv.base + "/docs/page", check=0, timeout=60)
        assert "added" in r.stdout and "(html" in r.stdout, r.stdout
        assert search(d, "checkpoint write spikes")[0]["source"] == srv.base + "/docs/page"
        r = d.cli("learn", srv.base + "/docs/missing", check=1, timeout=60)
        assert "HTTP 404" in r.stderr and "/docs/missing" in r.stderr, r.stderr
        # no longer configured: no longer followed (it was never registered)
        d.write_config("[knowledge]\nfeed_interval = 1h\n")
        d.signal(signal.SIGHUP)
        wait_for(lambda: not d.get("/v1/knowledge/feeds").json()["feeds"], 20, "the feed to be dropped")
        assert d.stop() == 0
    finally:
        srv.stop()


FAKE_PDFTOTEXT = """#!/bin/sh
# a stand-in for poppler's pdftotext: pdftotext -q -enc UTF-8 -nopgbrk FILE -
for a; do f=$prev; prev=$a; done
head -c 4 "$f" | grep -q '%PDF' || exit 1
echo "Full text of the paper."
echo "Section 4 describes the chromatic reclaim heuristic ($(sed -n 3p "$f"))."
"""


def test_pdf_through_pdftotext():
    srv = FeedServer()
    old_path = os.environ["PATH"]
    try:
        d = Daemon(config="[knowledge]\nfeed_pdf = yes\nfeed_interval = 1h\n")
        bindir = os.path.join(d.tmp, "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "pdftotext"), "w") as f:
            f.write(FAKE_PDFTOTEXT)
        os.chmod(os.path.join(bindir, "pdftotext"), 0o755)
        os.environ["PATH"] = bindir + os.pathsep + old_path  # the daemon and the CLI find it
        d.start()
        pdf = os.path.join(d.tmp, "paper.pdf")
        with open(pdf, "wb") as f:
            f.write(b"%PDF-1.4\n%x\n/local/paper\n")
        r = d.cli("learn", pdf, check=0)
        assert "added" in r.stdout and "(pdf" in r.stdout, r.stdout + r.stderr
        r = d.cli("learn", "--feed", srv.url, check=0, timeout=60)
        assert "3 new papers" in r.stdout, r.stdout
        assert srv.pdf_hits == 3, srv.pdf_hits
        hits = search(d, "chromatic reclaim heuristic", "bm25")  # only the PDFs' text says it
        assert sorted(h["kind"] for h in hits) == ["paper", "paper", "paper", "pdf"], hits
        assert d.stop() == 0
    finally:
        os.environ["PATH"] = old_path
        srv.stop()


def test_config_checked():
    d = Daemon(config="[knowledge]\nfeed_interval = soon\n")
    log = d.refused()
    assert "ippoc.conf:2: feed_interval: 'soon'" in log, log


if __name__ == "__main__":
    run([test_learn_dir_and_search, test_large_document, test_bad_files, test_feed_followed_and_retried,
         test_url_and_configured_feed, test_pdf_through_pdftotext, test_config_checked])
