"""test_detect_cli.py: `ippoc detect`, the offline anomaly scorer of CSV files:
its output format, several files and -o DIR, stdin, --reason, a bad row named
by file and line (exit 2, no half-written output), and that it needs no
daemon (none is started here; the URL points at a closed port)."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import IPPOC, free_port, run

TMP = tempfile.mkdtemp(prefix="ippoc-detect-it.")
NAB = os.path.join(os.environ.get("IPPOC_SRC", "."), "..", "shared", "datasets", "nab", "data")
ROW = re.compile(r"^([^,]+),([^,]+),(0\.\d{6}|1\.000000)$")


def detect(*args, check=None, stdin=None):
    # no daemon anywhere: an unreachable URL and an empty state dir
    env = dict(os.environ, IPPOC_URL=f"http://127.0.0.1:{free_port()}", IPPOC_STATE_DIR=TMP)
    r = subprocess.run([IPPOC, "detect", *args], capture_output=True, text=True, env=env,
                       input=stdin, timeout=120)
    if check is not None:
        assert r.returncode == check, f"ippoc detect {args} exited {r.returncode}, wanted {check}\n{r.stderr}"
    return r


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def series(n, t0=1397114100, step=300, spike_at=None):
    """A header, then n rows: a slow wave, one spike."""
    rows = ["timestamp,value"]
    for i in range(n):
        v = 50 + 5 * ((i % 24) - 12) / 12
        if i == spike_at:
            v = 500
        rows.append(f"{t0 + i * step},{v:.2f}")
    return "\n".join(rows) + "\n"


def test_output_format():
    src = write("a.csv", "timestamp,value\r\n2014-04-10 07:15:00,1.50\r\n\r\n"
                         "2014-04-10 07:20:00,2\r\n2014-04-10T07:25:00Z,  3e1 \r\n1397114700,4")
    r = detect(src, check=0)
    lines = r.stdout.splitlines()
    assert lines[0] == "timestamp,value,anomaly_score", lines
    assert len(lines) == 5, lines
    # timestamp and value as written (trimmed), a score with 6 decimals
    assert [l.rsplit(",", 1)[0] for l in lines[1:]] == [
        "2014-04-10 07:15:00,1.50", "2014-04-10 07:20:00,2", "2014-04-10T07:25:00Z,3e1", "1397114700,4"]
    for l in lines[1:]:
        assert ROW.match(l), l
    assert r.stderr == ""


def test_spike_scores_high_and_reason():
    src = write("spike.csv", series(600, spike_at=500))
    r = detect(src, "--reason", check=0)
    lines = r.stdout.splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,reason"
    rows = [l.split(",") for l in lines[1:]]
    assert len(rows) == 600
    scores = [float(x[2]) for x in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[500] == max(scores) and scores[500] > 0.5, scores[495:505]
    assert rows[500][3] not in ("", "none"), rows[500]
    assert all(re.fullmatch(r"[a-z_]+", x[3]) for x in rows)


def test_files_and_dir():
    a = write("one.csv", series(300))
    b = write("two.csv", series(300, spike_at=200))
    out = os.path.join(TMP, "out")
    os.mkdir(out)
    detect(a, b, "-o", out, check=0)
    # from scratch per file: the same as scoring each alone
    assert open(os.path.join(out, "one.csv")).read() == detect(a, check=0).stdout
    assert open(os.path.join(out, "two.csv")).read() == detect(b, check=0).stdout
    assert sorted(os.listdir(out)) == ["one.csv", "two.csv"]
    # -o FILE, and stdin
    f = os.path.join(TMP, "single.out")
    detect(b, "--output", f, check=0)
    assert open(f).read() == detect(b, check=0).stdout
    assert detect("-", stdin=series(300, spike_at=200), check=0).stdout == open(f).read()
    # deterministic
    assert detect(b, check=0).stdout == detect(b, check=0).stdout


def test_bad_row():
    src = write("bad.csv", "timestamp,value\n2014-04-10 07:15:00,1\n\n2014-04-10 07:25:00,abc\n"
                           "2014-04-10 07:30:00,2\n")
    r = detect(src, check=2)
    assert f"{src}:4: bad number 'abc'" in r.stderr, r.stderr
    out = os.path.join(TMP, "bad.out")
    r = detect(src, "-o", out, check=2)
    assert not os.path.exists(out) and not [n for n in os.listdir(TMP) if n.startswith("bad.out")]
    for text, want in (("2014-04-10 07:15:00\n", ":1: missing column"),
                       ("2014-04-10 07:15:00,1,2\n", ":1: extra column"),
                       ("1,1\n2014-13-01 00:00:00,1\n", ":2: bad timestamp '2014-13-01 00:00:00'"),
                       ("1,1\n2,nan\n", ":2: value 'nan' is not finite"),
                       ("1,1\n" + "9" * 5000 + "\n", ":2: line too long")):
        r = detect(write("b.csv", text), check=2)
        assert want in r.stderr, (text[:40], r.stderr)
    r = detect("-", stdin="1,1\n2,x\n", check=2)
    assert "<stdin>:2: bad number 'x'" in r.stderr, r.stderr


def test_usage_errors():
    a = write("u.csv", series(10))
    for args, want in (([], "missing FILE"),
                       ([a, a], "need -o DIR"),
                       ([a, "--frob"], "unknown option '--frob'"),
                       ([a, "-o"], "-o: missing value"),
                       ([os.path.join(TMP, "nope.csv")], "cannot open"),
                       ([a, "-o", os.path.join(TMP, "no-dir") + "/"], "is not a directory"),
                       (["-", "-o", TMP], "standard input")):
        r = detect(*args, check=2)
        assert want in r.stderr, (args, r.stderr)
    assert "usage: ippoc detect" in detect("--help", check=0).stdout
    r = subprocess.run([IPPOC, "help", "detect"], capture_output=True, text=True)
    assert r.returncode == 0 and "anomaly_score" in r.stdout
    # an output that cannot be written: exit 1
    r = detect(a, "-o", "/proc/version", check=1)
    assert "cannot" in r.stderr


def test_nab_file():
    """A real NAB file, when the dataset is there: one output row per input row."""
    path = os.path.join(NAB, "realTraffic", "speed_6005.csv")
    if not os.path.exists(path):
        print("   (NAB data not found, skipped)")
        return
    r = detect(path, check=0)
    n_in = sum(1 for l in open(path) if l.strip()) - 1
    lines = r.stdout.splitlines()
    assert len(lines) == n_in + 1
    assert all(ROW.match(l) for l in lines[1:])


try:
    run([test_output_format, test_spike_scores_high_and_reason, test_files_and_dir, test_bad_row,
         test_usage_errors, test_nab_file])
finally:
    shutil.rmtree(TMP, ignore_errors=True)
