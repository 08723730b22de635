"""harness.py: starts the real ippocd on a temporary state dir and a free
loopback port, talks to it over real HTTP, and always stops what it started.

Used by every integration test; nothing here is mocked."""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

IPPOCD = os.environ.get("IPPOCD", "build/src/daemon/ippocd")
IPPOC = os.environ.get("IPPOC", "build/src/cli/ippoc")
SLOW = 3 if ("asan" in IPPOCD or "tsan" in IPPOCD) else 1  # sanitizer builds run slower

# A health endpoint the heal tests supervise: python3 health.py PORT answers
# every GET with 200 "ok".
HEALTH_SERVER = """import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

_live = []


def _cleanup():
    for d in list(_live):
        d.kill()
    for d in list(_live):
        d.remove()


atexit.register(_cleanup)
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda s, f: sys.exit(1))


def kill_marked(tmp):
    """SIGKILLs every process whose environment carries IPPOC_IT_DIR=tmp: the
    services a test's ippocd started (a failed test must not leave them)."""
    if not tmp:
        return
    mark = f"IPPOC_IT_DIR={tmp}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark not in f.read().split(b"\0"):
                    continue
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, what="condition", interval=0.05):
    """Polls cond() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout * SLOW
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


class HTTPResult:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class _Child:
    """What Daemon and Peer share: a program in its own process group (proc),
    its log file (log_path) and temp dir (tmp), listed in _live until
    removed."""

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        kill_marked(getattr(self, "tmp", None))

    def remove(self):
        if self in _live:
            _live.remove(self)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Daemon(_Child):
    def __init__(self, config="", state_dir=None, port=None, extra_args=(), listen_arg=True):
        self.tmp = tempfile.mkdtemp(prefix="ippoc-it.")
        self.state_dir = state_dir or os.path.join(self.tmp, "state")
        self.port = port or free_port()
        self.conf_dir = os.path.join(self.tmp, "etc")
        os.makedirs(os.path.join(self.conf_dir, "conf.d"), exist_ok=True)
        self.config_path = os.path.join(self.conf_dir, "ippoc.conf")
        self.write_config(config)
        self.extra_args = list(extra_args)
        self.listen_arg = listen_arg  # False: the config file says where to listen
        self.proc = None
        self.log_path = os.path.join(self.tmp, "ippocd.log")
        self.owns_state = state_dir is None
        _live.append(self)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        args = [IPPOCD, "--config", self.config_path, "--state-dir", self.state_dir, *self.extra_args]
        if self.listen_arg:
            args += ["--listen", f"127.0.0.1:{self.port}"]
        # the marker reaches every supervised service (they inherit ippocd's
        # environment), so kill() can find them: they run in their own sessions
        # and outlive a SIGKILLed ippocd by design
        env = dict(os.environ, IPPOC_IT_DIR=self.tmp)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, ticks=1):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"ippocd exited with {self.proc.returncode}:\n{self.log_text()}")
            st = self.get("/v1/status")
            return st.status == 200 and st.json().get("last_tick_ms", 0) > 0
        wait_for(ready, 20, "ippocd to answer /v1/status")
        if ticks > 1:
            self.wait_ticks(ticks - 1)

    def wait_ticks(self, n):
        """Waits until the daemon has completed n more ticks."""
        start = self.status()["last_tick_ms"]
        wait_for(lambda: self.status()["last_tick_ms"] >= start + 1000 * n, 5 + 2 * n, f"{n} ticks")

    def get(self, path, headers=None, method="GET", timeout=10):
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                return HTTPResult(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return HTTPResult(e.code, dict(e.headers), e.read())

    def refused(self, timeout=20):
        """Starts the daemon expecting it to refuse its configuration: waits
        for it to exit, asserts a failure status; returns its log."""
        self.start(wait=False)
        wait_for(lambda: self.proc.poll() is not None, timeout, "ippocd to refuse the configuration")
        assert self.proc.returncode != 0, self.proc.returncode
        return self.log_text()

    def post(self, path, body=b"", timeout=10):
        """POSTs body (bytes as they are, anything else as JSON) to path;
        (status, the answer's JSON) for 2xx and error answers alike."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def status(self):
        r = self.get("/v1/status")
        assert r.status == 200, r.body
        return r.json()

    def raw_request(self, data, timeout=5):
        """Sends raw bytes on a TCP connection; returns what came back."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout * SLOW) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:  # the server already answered and closed (e.g. a request line too long)
                pass
            chunks = []
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    chunks.append(b)
            except socket.timeout:
                pass
            return b"".join(chunks)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("ippocd did not stop within the timeout on SIGTERM")
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def cli(self, *args, check=None, timeout=20):
        env = dict(os.environ, IPPOC_URL=self.url, LANG="C.UTF-8")
        r = subprocess.run([IPPOC, *args], capture_output=True, text=True, env=env, timeout=timeout * SLOW)
        if check is not None:
            assert r.returncode == check, f"ippoc {' '.join(args)} exited {r.returncode}, wanted {check}\n{r.stdout}\n{r.stderr}"
        return r



def start_script(tmp, source, name, *args):
    """Runs the Python program `source` (written to tmp/NAME.py) with a
    pidfile tmp/NAME.pid as its first argument and args after it, stdin and
    stdout piped; waits for the pidfile. Returns (Popen, pidfile)."""
    script = os.path.join(tmp, name + ".py")
    with open(script, "w") as f:
        f.write(source)
    pidfile = os.path.join(tmp, name + ".pid")
    p = subprocess.Popen([sys.executable, script, pidfile, *map(str, args)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(pidfile), 10, f"{name}'s pidfile")
    return p, pidfile


def stop_script(p):
    """Kills what start_script started (if still running) and closes its pipes."""
    if p.poll() is None:
        p.kill()
    p.wait()
    for f in (p.stdin, p.stdout):
        if f:
            f.close()


def anomalies_of(d, all_=False):
    """GET /v1/anomalies[?all=1] of daemon d, as JSON (asserts a 200)."""
    r = d.get("/v1/anomalies" + ("?all=1" if all_ else ""))
    assert r.status == 200, r.body
    return r.json()


def events_of(d, typ):
    """Every event of type typ in daemon d's store, oldest first (asserts a 200)."""
    r = d.get(f"/v1/events?type={typ}&limit=1000&order=asc")
    assert r.status == 200, r.body
    return r.json()["events"]


def genome_commits(d, path=None, limit=None):
    """The cell's genome commits (GET /v1/genome[?path=&limit=]) of daemon d,
    newest first (asserts a 200)."""
    q = "&".join(f"{k}={v}" for k, v in (("path", path), ("limit", limit)) if v is not None)
    r = d.get("/v1/genome" + ("?" + q if q else ""))
    assert r.status == 200, r.body
    j = r.json()
    return j["commits"] if isinstance(j, dict) else j


def read_text(path):
    """A file's whole text."""
    with open(path) as f:
        return f.read()


def run(tests, only=()):
    """Runs test functions in order (only those named in only, when given);
    prints a line each; exits non-zero on failure."""
    failed = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            t()
            print(f"ok   {t.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL {t.__name__}: {e}", flush=True)
            for d in list(_live):
                if d.proc:
                    print(f"--- ippocd log ({d.tmp}):\n{d.log_text()[-4000:]}", flush=True)
        finally:
            _cleanup()
    sys.exit(1 if failed else 0)


class Peer(_Child):
    """Another real program the test runs beside ippocd (node_exporter,
    Prometheus): its own process group and temp dir, stopped at the end of
    every test (the run() cleanup), even when the test fails."""

    def __init__(self, args, name):
        self.tmp = tempfile.mkdtemp(prefix=f"ippoc-{name}.")
        self.name = name
        self.args = list(args)
        self.log_path = os.path.join(self.tmp, f"{name}.log")
        self.proc = None
        _live.append(self)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.tmp)
        return self

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        return True



def http_get(url, timeout=10):
    """GET url; (status, body bytes)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout * SLOW) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def parse_exposition(text):
    """Prometheus text format 0.0.4 -> {family: {"type", "help", "samples":
    [(sample name, {label: value}, value)]}}. Samples are assigned to their
    family by name, with _bucket/_sum/_count for histograms and summaries."""
    fams = {}

    def fam(name):
        return fams.setdefault(name, {"type": "untyped", "help": None, "samples": []})

    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                fam(parts[2])["type"] = parts[3].strip() if len(parts) > 3 else ""
            elif len(parts) >= 3 and parts[1] == "HELP":
                fam(parts[2])["help"] = parts[3] if len(parts) > 3 else ""
            continue
        name, labels, value = _parse_sample(line)
        owner = name
        if name not in fams:
            for sfx, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                               ("_count", ("histogram", "summary"))):
                base = name[: -len(sfx)]
                if name.endswith(sfx) and fams.get(base, {}).get("type") in kinds:
                    owner = base
                    break
        fam(owner)["samples"].append((name, labels, value))
    return fams


def _parse_sample(line):
    i = 0
    while i < len(line) and line[i] not in "{ \t":
        i += 1
    name, labels = line[:i], {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            while line[i] in " ,":
                i += 1
            if line[i] == "}":
                i += 1
                break
            eq = line.index("=", i)
            key = line[i:eq].strip()
            j = line.index('"', eq) + 1
            val = []
            while line[j] != '"':
                if line[j] == "\\":
                    j += 1
                    val.append({"n": "\n"}.get(line[j], line[j]))
                else:
                    val.append(line[j])
                j += 1
            labels[key] = "".join(val)
            i = j + 1
    value = float(line[i:].split()[0])
    return name, labels, value
