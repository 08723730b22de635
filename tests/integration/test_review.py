"""test_review.py: `ippoc review` end to end, no daemon: a C file with a
planted out-of-bounds write. Without a model (an empty configuration) the
real cppcheck, and clang-tidy with a compile_commands.json beside the file,
report it at its line and the command says it ran static checks only; with
tests/llm/fakellm.py as the [llm] local model, the scenario's findings are
printed as FILE:LINE: severity: message, and the request the fake received
holds the review prompt and every line of the file; a malformed answer line,
a line past the end, an unknown file and an unknown severity are dropped and
said, the exit status follows what is left (1 with an error finding, 0
without, 3 when nothing usable is left or the model is down); --diff reviews
only a diff's hunks (stdin or a file); bad input gets exit 2 naming it."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import IPPOC, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llm"))
import fakellm  # noqa: E402 - the stand-in model server (tests/llm)

BUG = """#include <stdio.h>

int main(void)
{
    int a[10];
    for (int i = 0; i < 10; i++)
        a[i] = i;
    a[10] = 42;
    printf("%d\\n", a[0]);
    return 0;
}
"""
BUG_LINE = 8  # a[10] = 42;


def review(tmp, *args, stdin=None):
    p = subprocess.run([os.path.abspath(IPPOC), "review", *args], cwd=tmp, capture_output=True, text=True,
                       input=stdin, timeout=120)
    return p.returncode, p.stdout, p.stderr


def setup(tmp, llm_url=None):
    with open(os.path.join(tmp, "bug.c"), "w") as f:
        f.write(BUG)
    with open(os.path.join(tmp, "ippoc.conf"), "w") as f:
        f.write(f"[daemon]\nstate_dir = {tmp}/state\n")
        if llm_url:
            f.write(f"[llm]\nlocal = {llm_url}/v1\ntimeout = 20s\n")


def compdb_above(d):
    """Is there a DIR/compile_commands.json or DIR/build/... from d up?"""
    d = os.path.realpath(d)
    while True:
        if any(os.path.exists(os.path.join(d, s, "compile_commands.json")) for s in ("", "build")):
            return True
        if d == "/":
            return False
        d = os.path.dirname(d)


def findings(out):
    """[(file, line, severity, message)] of FILE:LINE: severity: message lines."""
    res = []
    for line in out.splitlines():
        f, ln, sev, msg = line.split(":", 3)
        res.append((f, int(ln), sev.strip(), msg.strip()))
    return res


def test_static_cppcheck():
    if not shutil.which("cppcheck"):
        print("skip: cppcheck not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        rc, out, err = review(tmp, "-c", "ippoc.conf", "bug.c")
        assert "no language model configured: static checks only (cppcheck, clang-tidy)" in err, err
        if not compdb_above(tmp):
            assert "clang-tidy skipped" in err, err  # no compile_commands.json here
        got = findings(out)
        assert any(f == "bug.c" and ln == BUG_LINE and sev == "error" and "arrayIndexOutOfBounds" in m
                   for f, ln, sev, m in got), (out, err)
        assert rc == 1, (rc, out, err)


def test_static_clang_tidy():
    if not shutil.which("clang-tidy") or not shutil.which("cppcheck"):
        print("skip: clang-tidy or cppcheck not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        os.mkdir(os.path.join(tmp, "build"))
        with open(os.path.join(tmp, "build", "compile_commands.json"), "w") as f:
            json.dump([{"directory": tmp, "file": os.path.join(tmp, "bug.c"),
                        "arguments": ["cc", "-std=c17", "-Wno-format-truncation", "-c", "bug.c"]}], f)
        rc, out, err = review(tmp, "--config", "ippoc.conf", "bug.c")
        assert "clang-tidy skipped" not in err and "Error while processing" not in err, err  # gcc's flag ignored
        tidy = [x for x in findings(out) if "clang" in x[3]]
        assert any(f == "bug.c" and ln == BUG_LINE for f, ln, _, _ in tidy), (out, err)
        assert rc == 1, (rc, out, err)


def line_json(file, line, sev, msg):
    return json.dumps({"file": file, "line": line, "severity": sev, "message": msg})


def test_model_findings():
    with tempfile.TemporaryDirectory() as tmp:
        answer = "\n".join([
            line_json("bug.c", BUG_LINE, "error", "writes a[10], one past the end of a"),
            line_json("bug.c", 5, "note", "a could be initialised at once"),
        ])
        with fakellm.Proc(tmp, {"/v1/chat/completions": [{"content": answer}]}) as fake:
            setup(tmp, fake.url)
            rc, out, err = review(tmp, "-c", "ippoc.conf", "bug.c")
            reqs = [r for r in fake.requests() if r["path"].endswith("/chat/completions")]
        assert rc == 1, (rc, out, err)
        assert "static checks" not in err, err
        assert out.splitlines() == ["bug.c:5: note: a could be initialised at once",
                                    f"bug.c:{BUG_LINE}: error: writes a[10], one past the end of a"], out
        assert len(reqs) == 1, reqs
        text = json.dumps(reqs[0]["body"])
        body = "\n".join(m["content"] for m in reqs[0]["body"]["messages"])
        assert "one JSON object per line" in body and '"severity"' in body, text[:600]
        assert "=== FILE: bug.c" in body, body[:400]
        for no, src in enumerate(BUG.splitlines(), 1):  # every line, with its number
            assert f"{no:6d}  {src}" in body, (no, src)


def test_model_bad_answers():
    with tempfile.TemporaryDirectory() as tmp:
        bad = [
            "this is not JSON",
            line_json("bug.c", 99, "error", "past the end"),
            line_json("other.c", 1, "error", "a file not under review"),
            line_json("bug.c", 3, "catastrophic", "unknown severity"),
            json.dumps({"file": "bug.c", "line": "8", "severity": "error", "message": "line as text"}),
        ]
        good = line_json("bug.c", 6, "warning", "loop bound repeated")
        with fakellm.Proc(tmp, {"/v1/chat/completions": [{"content": "\n".join(["```json"] + bad + [good, "```"])}]}) as fake:
            setup(tmp, fake.url)
            rc, out, err = review(tmp, "-c", "ippoc.conf", "bug.c")
            assert rc == 0, (rc, out, err)  # only a warning is left
            assert out.splitlines() == ["bug.c:6: warning: loop bound repeated"], out
            assert "5 lines of its answer dropped" in err, err
            assert "bad JSON" in err and "line 99 is out of range (bug.c has 11 lines)" in err, err
            assert "unknown file 'other.c'" in err and "unknown severity 'catastrophic'" in err, err
            # nothing usable: exit 3, and no finding printed
            fake.set({"/v1/chat/completions": [{"content": "\n".join(bad)}]})
            rc, out, err = review(tmp, "-c", "ippoc.conf", "bug.c")
            assert rc == 3 and out == "", (rc, out, err)
            # an error from the model that is out of range cannot make the exit 1
            fake.set({"/v1/chat/completions": [{"content": line_json("bug.c", 12, "error", "x")}]})
            rc, out, err = review(tmp, "-c", "ippoc.conf", "bug.c")
            assert rc == 3 and out == "" and "line 12 is out of range" in err, (rc, out, err)
            # the model down: exit 3, said
            fake.set({"/v1/chat/completions": [{"status": 500, "body": {"error": {"message": "boom"}}}]})
            rc, out, err = review(tmp, "-c", "ippoc.conf", "bug.c")
            assert rc == 3 and "the language model failed" in err, (rc, out, err)


DIFF = """diff --git a/bug.c b/bug.c
index 1111111..2222222 100644
--- a/bug.c
+++ b/bug.c
@@ -5,5 +5,5 @@ int main(void)
     int a[10];
     for (int i = 0; i < 10; i++)
         a[i] = i;
-    a[9] = 42;
+    a[10] = 42;
     printf("%d\\n", a[0]);
"""


def test_diff():
    with tempfile.TemporaryDirectory() as tmp:
        answer = "\n".join([line_json("bug.c", BUG_LINE, "error", "one past the end"),
                            line_json("bug.c", 2, "note", "outside the change")])
        with fakellm.Proc(tmp, {"/v1/chat/completions": [{"content": answer}]}) as fake:
            setup(tmp, fake.url)
            rc, out, err = review(tmp, "-c", "ippoc.conf", "--diff", stdin=DIFF)
            body = "\n".join(m["content"] for m in fake.requests()[-1]["body"]["messages"])
        assert rc == 1 and out.splitlines() == [f"bug.c:{BUG_LINE}: error: one past the end"], (rc, out, err)
        assert "line 2 of bug.c is not in the change" in err, err
        assert f"{BUG_LINE:6d} +     a[10] = 42;" in body and "       -     a[9] = 42;" in body, body
        assert "=== FILE: bug.c ===" in body, body
        # the static path on a diff read from a file: only the hunk's lines
        if shutil.which("cppcheck"):
            with open(os.path.join(tmp, "change.patch"), "w") as f:
                f.write(DIFF)
            rc, out, err = review(tmp, "-c", "ippoc.conf", "--static", "--diff", "change.patch")
            assert "--static: static checks only" in err, err
            assert rc == 1 and any(ln == BUG_LINE for _, ln, _, _ in findings(out)), (rc, out, err)


def test_bad_input():
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        rc, out, err = review(tmp, "-c", "ippoc.conf", "nosuch.c")
        assert rc == 2 and "nosuch.c: No such file or directory" in err, (rc, err)
        with open(os.path.join(tmp, "blob.c"), "wb") as f:
            f.write(b"int x;\0\1\2")
        rc, out, err = review(tmp, "-c", "ippoc.conf", "blob.c")
        assert rc == 2 and "blob.c: a binary file" in err, (rc, err)
        rc, out, err = review(tmp, "-c", "ippoc.conf", "--diff", stdin="@@ -1 +1 @@\n+x\n")
        assert rc == 2 and "stdin: diff line 1: a hunk before any '+++ FILE' line" in err, (rc, err)
        rc, out, err = review(tmp, "-c", "ippoc.conf", "--diff", stdin="+++ b/x.c\n@@ -1,2 +1,3 @@\n+a\n")
        assert rc == 2 and "the last hunk is cut short" in err, (rc, err)
        rc, out, err = review(tmp, "-c", "nosuch.conf", "bug.c")
        assert rc == 2 and "nosuch.conf" in err, (rc, err)
        with open(os.path.join(tmp, "badllm.conf"), "w") as f:
            f.write("[llm]\nlocal = http://127.0.0.1:1/v1\nnosuchkey = 1\n")
        rc, out, err = review(tmp, "-c", "badllm.conf", "bug.c")
        assert rc == 2 and "badllm.conf:3" in err, (rc, err)
        rc, out, err = review(tmp)
        assert rc == 2 and "which files?" in err, (rc, err)
        rc, out, err = review(tmp, "--frob", "bug.c")
        assert rc == 2 and "unknown option '--frob'" in err, (rc, err)


def test_wrapper():
    """tools/review_code.sh is `ippoc review "$@"` (here with $IPPOC: this build)."""
    src = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    with tempfile.TemporaryDirectory() as tmp:
        answer = line_json("bug.c", BUG_LINE, "error", "one past the end")
        with fakellm.Proc(tmp, {"/v1/chat/completions": [{"content": answer}]}) as fake:
            setup(tmp, fake.url)
            p = subprocess.run(["sh", os.path.join(src, "tools", "review_code.sh"), "-c", "ippoc.conf", "bug.c"],
                               cwd=tmp, capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, IPPOC=os.path.abspath(IPPOC)))
        assert p.returncode == 1 and p.stdout == f"bug.c:{BUG_LINE}: error: one past the end\n", p


if __name__ == "__main__":
    run([test_wrapper, test_static_cppcheck, test_static_clang_tidy, test_model_findings, test_model_bad_answers, test_diff,
         test_bad_input], sys.argv[1:])
