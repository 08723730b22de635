"""test_logs_cli.py: `ippoc logs templates`, the offline log template miner:
the CSV it writes (header, one row per line in order, quoting), odd input
(CRLF, no last newline, empty lines, invalid UTF-8, NULs, a long line), a
header format, extra masks, and the errors (unreadable file: exit 1; bad
option, format or regex: exit 2, each naming the place and the reason). No
daemon is started: the URL points at a closed port."""
import csv
import io
import os
import shutil
import subprocess
import tempfile

from harness import IPPOC, free_port, run

TMP = tempfile.mkdtemp(prefix="ippoc-logs-it.")


def templates(*args, check=None, stdin=None):
    env = dict(os.environ, IPPOC_URL=f"http://127.0.0.1:{free_port()}", IPPOC_STATE_DIR=TMP)
    r = subprocess.run([IPPOC, "logs", "templates", *args], capture_output=True, env=env, input=stdin,
                       timeout=120)
    if check is not None:
        assert r.returncode == check, f"ippoc logs templates {args} exited {r.returncode}, wanted {check}\n" \
                                      f"{r.stderr.decode(errors='replace')}"
    return r


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def rows(r):
    text = r.stdout.decode("utf-8", errors="strict")  # the output is valid UTF-8
    got = list(csv.reader(io.StringIO(text, newline="")))
    assert got[0] == ["LineId", "EventId", "EventTemplate"], got[0]
    return got[1:]


def test_csv_shape():
    lines = [b"Connection from 10.0.0.1 closed", b"Connection from 10.0.0.2 closed",
             b"user=alice, action=\"log in\" ok", b"disk sda is full", b"Connection from 10.9.9.9 closed"]
    src = write("a.log", b"\r\n".join(lines))  # CRLF, no newline after the last line
    got = rows(templates(src, check=0))
    assert [g[0] for g in got] == ["1", "2", "3", "4", "5"], got
    assert got[0][2] == "Connection from <*> closed", got
    assert got[0][1] == got[1][1] == got[4][1] != got[3][1], got
    # a template with a comma and a quote comes back intact through CSV quoting
    assert got[2][2] == 'user=<*>, action="<*>" ok', got
    assert all(g[1].startswith("E") for g in got)
    # EventId and EventTemplate map one to one
    assert len({g[1] for g in got}) == len({g[2] for g in got})


def test_odd_input():
    data = (b"\n\nplain line one\n" + b"bad \xff\xfe utf8 here\n" + b"nul\x00inside it\n" +
            b"x " * 50000 + b"\n" + b"42 0x1f 10.0.0.1\n")
    src = write("odd.log", data)
    got = rows(templates(src, check=0))
    assert len(got) == 7, len(got)
    assert got[3][2] == "bad ?? utf8 here", got[3]  # invalid UTF-8 shows as '?'
    assert got[4][2] == "nul inside it", got[4]
    assert got[0][2] == "" and got[1][2] == "" and got[0][1] == got[1][1]
    assert got[6][2] == "<*>", got[6]
    # stdin works too
    got2 = rows(templates("-", check=0, stdin=b"a 1\na 2\n"))
    assert got2[0][1] == got2[1][1] and got2[0][2] == "a <*>", got2


def test_format_and_masks():
    src = write("fmt.log", b"2024-01-01 10:00:00 INFO web: GET /a 200\n"
                           b"2024-01-01 10:00:01 WARN web: GET /b 404\n"
                           b"not a matching line\n"
                           b"2024-01-01 10:00:02 INFO db: session abc opened\n"
                           b"2024-01-01 10:00:03 INFO db: session xyz opened\n")
    r = templates(src, "--format", "<Date> <Time> <Level> <Component>: <Content>",
                  "--mask", r"session \w+", check=0)
    got = rows(r)
    assert got[0][2] == "GET <*>" and got[0][1] == got[1][1], got  # adjacent variables are one
    assert got[2][2] == "not a matching line", got
    assert got[3][2] == "<*> opened" and got[3][1] == got[4][1], got
    assert b"1 of 5 lines do not match the format" in r.stderr, r.stderr
    # the classic mode (plain Drain) runs too and keeps the shape
    got = rows(templates(src, "--classic", "--sim", "0.5", "--depth", "4", check=0))
    assert len(got) == 5


def test_errors():
    src = write("e.log", b"a b c\n")
    r = templates(os.path.join(TMP, "missing.log"), check=1)
    assert b"missing.log" in r.stderr and b"No such file" in r.stderr, r.stderr
    r = templates(src, "--mask", "(unclosed", check=2)
    assert b"--mask" in r.stderr and b"offset" in r.stderr, r.stderr
    r = templates(src, "--format", "<Date> <Time>", check=2)
    assert b"--format" in r.stderr and b"Content" in r.stderr, r.stderr
    r = templates(src, "--sim", "2", check=2)
    assert b"--sim" in r.stderr, r.stderr
    r = templates(src, "--sim-tokens", "0", check=2)
    assert b"--sim-tokens" in r.stderr, r.stderr
    r = templates(src, "--depth", "x", check=2)
    assert b"--depth" in r.stderr, r.stderr
    r = templates(check=2)
    assert b"missing FILE" in r.stderr, r.stderr
    r = templates(src, "--bogus", check=2)
    assert b"--bogus" in r.stderr, r.stderr
    assert b"usage: ippoc logs templates" in templates("--help", check=0).stdout
    r = subprocess.run([IPPOC, "help", "logs templates"], capture_output=True)
    assert r.returncode == 0 and b"EventTemplate" in r.stdout
    # an output that cannot be written: exit 1
    with open("/dev/full", "wb") as full:
        r = subprocess.run([IPPOC, "logs", "templates", src], stdout=full, stderr=subprocess.PIPE)
    assert r.returncode == 1 and b"cannot write" in r.stderr, r.stderr


try:
    run([test_csv_shape, test_odd_input, test_format_and_masks, test_errors])
finally:
    shutil.rmtree(TMP, ignore_errors=True)
