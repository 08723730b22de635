#!/usr/bin/env python3
"""bench/retrieval/extract.py: the known-item corpus of the retrieval benchmark.

Renders every man page installed under /usr/share/man/man[1-8] (English, the
top-level sections) and the project's own pages (man/*.[1-8], docs/*.[1-8])
to plain text with groff (`groff -k -t -man -Tutf8 -P-cbou`, the renderer man
itself runs; gzip'd pages through zcat), splits off the NAME section, and
writes one JSON line per page to OUT:

  {"id": "ls.1", "path": ..., "query": "list directory contents",
   "text": the rendered page without its NAME section, header and footer}

The query is the NAME line's description with the page's own names removed
("ls - list directory contents" -> "list directory contents"). Dropped, and
counted on stderr: aliases (a page that is only `.so other`, or a symlink:
the same page under another name), pages that do not render or have no
NAME description, and every page whose description another page shares
(the query could not tell them apart).

Rendering takes minutes; the rendered pages are cached in OUT.render (a page
is rendered again when its file changed) and OUT is rebuilt only when it is
missing, older than a man directory, or --force.

Usage: extract.py OUT [--force] [--jobs N] [--limit N]
"""
import gzip
import json
import multiprocessing
import os
import re
import subprocess
import sys
from collections import Counter

MANDIR = "/usr/share/man"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212\u00ad"), "-")


def pages():
    """(path, section dir) of every page file, symlinks counted apart."""
    out, links = [], 0
    dirs = [os.path.join(MANDIR, "man%d" % i) for i in range(1, 9)]
    dirs += [os.path.join(ROOT, d) for d in ("man", "docs")]
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            p = os.path.join(d, f)
            if not re.search(r"\.[1-9][a-z]*(\.gz)?$", f):
                continue
            if os.path.islink(p):
                links += 1
            elif os.path.isfile(p):
                out.append(p)
    return out, links


def read_source(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        return f.read()


def render(path):
    """(path, status, text): status 'ok', 'alias' or 'error'."""
    try:
        src = read_source(path)
    except OSError:
        return path, "error", ""
    lines = [ln for ln in src.splitlines() if ln.strip() and not ln.startswith(b'.\\"')]
    if len(lines) <= 2 and any(ln.startswith(b".so ") for ln in lines):
        return path, "alias", ""
    try:
        r = subprocess.run(["groff", "-k", "-t", "-man", "-Tutf8", "-P-cbou", "-rLL=80n"], input=src,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60, cwd=MANDIR)
    except (OSError, subprocess.TimeoutExpired):
        return path, "error", ""
    return path, "ok", r.stdout.decode("utf-8", "replace").translate(DASHES)


HEADING = re.compile(r"^[A-Z][A-Z0-9 ,/&()-]*$")


def split_name(text):
    """(name line, rest) of a rendered page: NAME's text and every other line."""
    lines = text.splitlines()
    # the header (first non-empty line) and footer (last non-empty line) name the page
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines:
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if lines:
        lines.pop()
    name, rest, in_name = [], [], False
    for ln in lines:
        if HEADING.match(ln.rstrip()) and not ln.startswith(" "):
            in_name = ln.strip() in ("NAME", "NOM", "NAMN")
            if in_name:
                continue
        (name if in_name else rest).append(ln)
    return " ".join(" ".join(name).split()), "\n".join(rest).strip()


def query_of(name_line):
    """The description of 'a, b - text' without the names a, b; '' if none."""
    m = re.match(r"^(.*?)\s+-+\s+(.*)$", name_line) or re.match(r"^(\S+)\s*-+\s+(.*)$", name_line)
    if not m:
        return ""
    names = [n.strip() for n in m.group(1).split(",") if n.strip()]
    desc = m.group(2)
    for n in sorted(names, key=len, reverse=True):
        desc = re.sub(r"(?<![\w.-])" + re.escape(n) + r"(?![\w-])", " ", desc, flags=re.I)
    desc = " ".join(desc.split()).strip(" ,;:-")
    return desc if re.search(r"\w", desc) else ""


def page_id(path):
    f = os.path.basename(path)
    return f[:-3] if f.endswith(".gz") else f


def rendered(paths, jobs, cache):
    """(path, status, text) of every path, from the render cache where it has
    the path at the same mtime, else rendered (and the cache rewritten)."""
    old = {}
    if os.path.exists(cache):
        with open(cache) as f:
            for ln in f:
                r = json.loads(ln)
                old[(r["path"], r["mtime"])] = r
    key = {p: (p, int(os.path.getmtime(p))) for p in paths}
    todo = [p for p in paths if key[p] not in old]
    if todo:
        with multiprocessing.Pool(jobs) as pool:
            for i, (path, status, text) in enumerate(pool.imap_unordered(render, todo, chunksize=16)):
                if i % 2000 == 0:
                    print("extract: %d/%d rendered" % (i, len(todo)), file=sys.stderr)
                old[key[path]] = {"path": path, "mtime": key[path][1], "status": status, "text": text}
        with open(cache + ".tmp", "w") as f:
            for p in paths:
                f.write(json.dumps(old[key[p]], ensure_ascii=False) + "\n")
        os.replace(cache + ".tmp", cache)
    return [(p, old[key[p]]["status"], old[key[p]]["text"]) for p in paths]


def build(out, jobs, limit):
    paths, links = pages()
    if limit:
        paths = paths[:limit]
    counts = Counter()
    counts["symlink aliases"] = links
    rows = []
    for path, status, text in rendered(paths, jobs, out + ".render"):
        if status != "ok":
            counts[".so aliases" if status == "alias" else "render errors"] += 1
            continue
        name, body = split_name(text)
        q = query_of(name)
        if not q or len(body) < 20:
            counts["no NAME description or body"] += 1
            continue
        rows.append({"id": page_id(path), "path": path, "query": q, "text": body})
    shared = Counter(r["query"].lower() for r in rows)
    keep = [r for r in rows if shared[r["query"].lower()] == 1]
    counts["sharing a description"] = len(rows) - len(keep)
    keep.sort(key=lambda r: r["path"])
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for r in keep:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    total = len(paths) + links
    print("extract: %d page files (%d symlinks), %d kept; dropped: %s" %
          (total, links, len(keep), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))),
          file=sys.stderr)
    with open(out + ".counts", "w") as f:
        json.dump({"files": total, "kept": len(keep), "dropped": counts}, f)


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    out, force, jobs, limit = args[0], "--force" in args, 2, 0
    if "--jobs" in args:
        jobs = int(args[args.index("--jobs") + 1])
    if "--limit" in args:
        limit = int(args[args.index("--limit") + 1])
    fresh = os.path.exists(out) and all(os.path.getmtime(out) >= os.path.getmtime(os.path.join(MANDIR, "man%d" % i))
                                        for i in range(1, 9) if os.path.isdir(os.path.join(MANDIR, "man%d" % i)))
    if fresh and not force and not limit:
        print("extract: %s is up to date (cached)" % out, file=sys.stderr)
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    build(out, jobs, limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
