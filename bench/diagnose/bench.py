"""bench.py: the fault benchmark of issue 10 (bench/diagnose; python3 stdlib,
run as root). Shared by bench/diagnose/run and tests/integration/test_faults.py.

An Env is one ippocd (tests/integration/harness.py's Daemon) supervising two
real services (svc.py): `db`, and `web`, which depends on it, resolves its
host name through a DNS responder of the bench in its own mount namespace,
authenticates with a credential file and writes to a data dir on a small
tmpfs. A Fault breaks the machine for real (a file edited, a filesystem
filled, a process hogging the CPU, a port taken, ...); a run injects it,
then watches, without trusting ippocd's word: the events it writes
(incident.open, brain.diagnosis) say when it detected and what it
diagnosed, and the bench's own polls of the services say when the fault's
effect was gone. Everything an Env or a Fault creates (processes, mounts,
cgroups, temp dirs) is removed when it ends, fails or is interrupted."""
import atexit
import ctypes
import http.client as http_client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  (Daemon, free_port, wait_for)

os.environ.setdefault("IPPOCD", os.path.join(ROOT, "build/src/daemon/ippocd"))
harness.IPPOCD = os.environ["IPPOCD"]

DNS_ADDR = "127.0.0.2"       # the bench's DNS responder (port 53, loopback)
DEAD_DNS = "127.0.0.9"       # nothing answers there: the broken resolver
DB_NAME = "db.ippoc-bench.test"
GOOD_TOKEN = "tok-5f2c9a7e41d8"
OLD_TOKEN = "tok-0b13d6c2e9aa"  # revoked
NOBODY = 65534

POLL_S = 0.25

_cleanups = []   # (name, fn), run newest first at exit


def on_exit(name, fn):
    _cleanups.append((name, fn))
    return fn


def run_cleanups():
    while _cleanups:
        name, fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - keep cleaning
            print("cleanup %s: %s" % (name, e), file=sys.stderr)


atexit.register(run_cleanups)


def forget(fn):
    for i, (_, f) in enumerate(_cleanups):
        if f is fn:
            del _cleanups[i]
            return


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


# ---- HTTP -----------------------------------------------------------------------------

def http(url, method="GET", timeout=2.0, headers=None):
    """(status, body bytes, seconds), or (None, error text, seconds)."""
    t = time.monotonic()
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), time.monotonic() - t
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except (OSError, http_client.HTTPException):  # an error reply cut short by a dying server
            body = b""
        return e.code, body, time.monotonic() - t
    except (OSError, urllib.error.URLError, http_client.HTTPException) as e:  # a starved server may cut short
        return None, str(e).encode(), time.monotonic() - t


def http_json(url, **kw):
    st, body, _ = http(url, **kw)
    if st is None:
        return st, None
    try:
        return st, json.loads(body)
    except ValueError:
        return st, None


# ---- the DNS responder ------------------------------------------------------------------

class Dns:
    """Answers A queries for DB_NAME with 127.0.0.1 on DNS_ADDR:53 (UDP);
    NXDOMAIN for any other name."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # another bench (or the integration test) may run at the same time: both answer alike
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((DNS_ADDR, 53))
        self.sock.settimeout(0.5)
        self.stop = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()
        on_exit("dns", self.close)

    def _loop(self):
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(q), peer)
            except (OSError, ValueError, IndexError, struct.error):
                pass

    @staticmethod
    def answer(q):
        qid, _flags = struct.unpack("!HH", q[:4])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
            i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        if name != DB_NAME:
            return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        if qtype != 1:
            return struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question  # no data
        rr = struct.pack("!HHHIH4s", 0xC00C, 1, 1, 5, 4, socket.inet_aton("127.0.0.1"))
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr

    def close(self):
        self.stop = True
        self.sock.close()


# ---- the stand-in model (--model replay:FILE) ---------------------------------------------

FAKELLM = os.path.join(ROOT, "tests", "llm", "fakellm.py")
MODEL_BRAIN_CONF = "deadline = 40s\n"   # the model's call gets what is left of the deliberation's deadline


class ReplayModel:
    """tests/llm/fakellm.py answering ippocd's [llm] local with the recorded
    answers of FILE ({"answers": [{"name", "content"}]}, content a JSON value
    or a text sent as is), in turn, over and over, each fault's server going
    on where the last one stopped (so a short run meets the bad answers
    too). In a content, "{fault_type}"
    and "{component}" become the fault's expected type and component and
    "{other_fault_type}" a type the fault is not: one file serves every fault.
    One server per fault (per Env); what ippocd sent is kept in its record."""

    ROUNDS = 50  # the list is repeated: fakellm repeats only its last answer

    def __init__(self, path):
        with open(path) as f:
            self.answers = json.load(f)["answers"]
        if not self.answers or not all("content" in a for a in self.answers):
            raise ValueError("%s: no answers, or an answer without content" % path)
        self.proc = None
        self.record = None
        self.served = 0  # answers served by the earlier faults' servers

    @staticmethod
    def fill(content, fault):
        text = content if isinstance(content, str) else json.dumps(content)
        other = "crash" if fault.fault_type != "crash" else "config_error"
        comp = fault.components[0] if fault.components else "web"
        return (text.replace("{fault_type}", fault.fault_type).replace("{other_fault_type}", other)
                .replace("{component}", comp))

    def start(self, fault, tmp):
        """Starts fakellm for fault; returns the [llm] section pointing at it."""
        self.stop()
        sc = os.path.join(tmp, "llm-scenario.json")
        k = self.served % len(self.answers)
        resp = [{"content": self.fill(a["content"], fault), "prob": a.get("prob", 0.9)}
                for a in self.answers[k:] + self.answers[:k]]
        write(sc, json.dumps({"/v1/chat/completions": resp * self.ROUNDS}))
        self.record = os.path.join(tmp, "llm-sent.jsonl")
        port = harness.free_port()
        self.proc = subprocess.Popen([sys.executable, FAKELLM, "--scenario", sc, "--record", self.record,
                                      "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        on_exit("fakellm " + tmp, self.stop)
        line = self.proc.stdout.readline().strip()
        if line != str(port):
            raise RuntimeError("fakellm did not start (said %r)" % line)
        return "\n[llm]\nlocal = http://127.0.0.1:%d/v1\ntimeout = 30s\n" % port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc:
            self.served += self.requests()
            self.record = None
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def requests(self):
        """Chat requests the current server got."""
        try:
            with open(self.record) as f:
                return sum(1 for line in f if "chat/completions" in line)
        except (OSError, TypeError):
            return 0


def model_note(payload):
    """What the model did in a diagnosis: agree / disagree (unsure) / none, or absent: why."""
    m = payload.get("model")
    if not isinstance(m, dict):
        return None
    if "absent" in m:
        return "absent: " + str(m["absent"])[:160]
    return payload.get("agreement", "?") + (" (unsure)" if m.get("unsure") else "")


# ---- processes, mounts, cgroups -----------------------------------------------------------

def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pids_mentioning(mark):
    """Pids whose command line contains mark (the bench's temp dir)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if mark.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def mount_tmpfs(path, opts):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], check=True)
    on_exit("umount " + path, lambda: subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL))


def write(path, text, mode=0o644, uid=None):
    """Writes in place (the same inode: a bind mount of the file sees it)."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, uid)


def read(path):
    with open(path) as f:
        return f.read()


# ---- the environment ------------------------------------------------------------------

class Env:
    """One ippocd with db and web. state_dir: kept across Envs, so the
    case memory of earlier faults is there."""

    # "signal-process" lets the brain's proposals signal any process by pid (a
    # CPU hog, a port's holder): off (run --no-signal-process) on a machine
    # shared with other people's work, whose busy processes it may blame
    allow_signal_process = True

    def __init__(self, state_dir, extra_conf="", brain_conf=""):
        self.tmp = tempfile.mkdtemp(prefix="ippoc-diag.")
        os.chmod(self.tmp, 0o755)
        on_exit("rm " + self.tmp, lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        on_exit("sweep " + self.tmp, self.sweep)
        self.dir = os.path.join(self.tmp, "web")
        self.data = os.path.join(self.dir, "data")
        self.tmpdir = os.path.join(self.dir, "tmp")
        self.logdir = os.path.join(self.dir, "log")
        self.app = os.path.join(self.dir, "app")
        for d in (self.dir, self.app, self.logdir):
            os.makedirs(d, exist_ok=True)
        mount_tmpfs(self.data, "size=16m,nr_inodes=2048,mode=0755,uid=%d,gid=%d" % (NOBODY, NOBODY))
        mount_tmpfs(self.tmpdir, "size=4m,nr_inodes=1024,mode=01777")
        os.chown(self.logdir, NOBODY, NOBODY)
        self.port, self.db_port = harness.free_port(), harness.free_port()
        self.files = {
            "web.ini": self.ini(),
            "web.env": "WORKERS=4\nMAX_FDS=96\nTMPDIR=%s\nACCESS_LOG=%s/access.log\n" % (self.tmpdir, self.logdir),
            "token": GOOD_TOKEN + "\n",
            "resolv.conf": "nameserver %s\noptions timeout:1 attempts:1\n" % DNS_ADDR,
        }
        for name, text in self.files.items():
            write(os.path.join(self.dir, name), text)
        self.tokens = os.path.join(self.tmp, "db-tokens")
        write(self.tokens, "valid = %s\nrevoked = %s\n" % (GOOD_TOKEN, OLD_TOKEN))
        shutil.copy(os.path.join(HERE, "svc.py"), os.path.join(self.app, "svc.py"))
        shutil.copy(os.path.join(HERE, "run-web.sh"), os.path.join(self.app, "run-web.sh"))
        self.daemon = harness.Daemon(config=self.config(extra_conf, brain_conf), state_dir=state_dir)
        on_exit("daemon " + self.tmp, self.stop)
        self.dropped = self.drop_unknown_keys()

    def drop_unknown_keys(self):
        """Keys this ippocd does not know yet (a part of issue 10 not merged)
        are dropped, with a warning, so the rest can still be measured."""
        dropped = []
        for _ in range(10):
            r = subprocess.run([harness.IPPOCD, "--check-config", "--config", self.daemon.config_path],
                               capture_output=True, text=True)
            m = re.search(r"unknown key '([^']+)'", r.stdout + r.stderr)
            if r.returncode == 0 or not m:
                break
            key = m.group(1)
            text = read(self.daemon.config_path)
            self.daemon.write_config("".join(l for l in text.splitlines(True) if not l.startswith(key + " =")))
            dropped.append(key)
            log("WARNING: this ippocd does not know '%s': dropped from the config" % key)
        return dropped

    def ini(self):
        return "[server]\nport = %d\n\n[database]\nhost = %s\nport = %d\ntimeout = 1.0\n" % (
            self.port, DB_NAME, self.db_port)

    def config(self, extra_conf, brain_conf):
        cp = lambda p: "config_path = %s\n" % p  # noqa: E731
        return (
            "[heal]\nmode = heal\nverify = 15s\nflap = 20 restarts within 1m\nflap_cooldown = 10s\n"
            "service_max_actions = 30 per 1m\n\n"
            "[brain]\nenabled = yes\nmerge = 10s\n%s\n"
            "[logs]\nnew_template_grace = 5s\n\n"
            "[service.db]\ncommand = /usr/bin/python3 %s db --port %d --tokens %s\n"
            "autorestart = no\nallow = default\n\n"
            "[service.web]\ncommand = /bin/sh %s %s\ndepends = db\nstop_timeout = 3s\nhealthy_after = 3s\n"
            "%s%s%s%s%s"
            "log_file = %s/access.log\n"
            "allow = default, clean, %srenice-process\n"
            "rule = if failed http://127.0.0.1:%d/health latency < 400ms timeout 900ms every 1s for 3 checks "
            "then restart\n"
            "rule = if memory > 160MB for 2 checks then restart\n%s"
            % (brain_conf, os.path.join(self.app, "svc.py"), self.db_port, self.tokens,
               os.path.join(self.app, "run-web.sh"), self.dir,
               cp(os.path.join(self.dir, "web.ini")), cp(os.path.join(self.dir, "web.env")),
               cp(os.path.join(self.dir, "token")), cp(self.data), cp(os.path.join(self.dir, "resolv.conf")),
               self.logdir, "signal-process, " if self.allow_signal_process else "", self.port, extra_conf))

    # ---- life ----

    def start(self, timeout=30):
        self.daemon.start()
        if not self.wait_healthy(timeout):
            raise RuntimeError("web did not become healthy:\n" + self.daemon.log_text()[-3000:] +
                               "\n--- web log:\n" + self.service_log("web")[-3000:])
        return self

    def stop(self):
        if self.daemon.proc and self.daemon.proc.poll() is None:
            try:
                self.daemon.stop(timeout=20)
            except AssertionError:
                pass
        self.daemon.kill()
        self.sweep()
        self.daemon.remove()

    def sweep(self):
        for pid in pids_mentioning(self.tmp):
            kill_pid(pid)

    def service_log(self, name):
        try:
            with open(os.path.join(self.daemon.state_dir, "services", name + ".log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # ---- looking at the services ourselves ----

    def web_url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def health(self, timeout=2.0):
        """(ok, seconds, body json or None)."""
        st, body, secs = http(self.web_url("/health"), timeout=timeout)
        try:
            j = json.loads(body) if st else None
        except ValueError:
            j = None
        ok = st == 200 and isinstance(j, dict) and j.get("service") == "web" and j.get("ok") is True
        return ok, secs, j

    def stats(self):
        st, j = http_json(self.web_url("/stats"))
        return j if st == 200 and isinstance(j, dict) and j.get("service") == "web" else None

    def db_ok(self):
        st, _, _ = http("http://127.0.0.1:%d/q" % self.db_port, headers={"Authorization": "Bearer " + GOOD_TOKEN})
        return st == 200

    def wait_healthy(self, timeout):
        end = time.monotonic() + timeout
        good = 0
        while time.monotonic() < end:
            good = good + 1 if self.health()[0] else 0
            if good >= 3:
                return True
            time.sleep(POLL_S)
        return False

    def wait_known_good(self, timeout=40):
        """Heal keeps a known-good copy of each config_path once web was
        healthy for its healthy_after (10 s): restore needs it. True when
        every path has one and none differs (or this ippocd has none)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            cps = self.services().get("web", {}).get("config_paths")
            if cps is None:
                return True
            if cps and all(c.get("known_good_ms") and not c.get("differs") for c in cps):
                return True
            time.sleep(0.5)
        return False

    def web_pid(self):
        s = self.stats()
        return s["pid"] if s else None

    def post(self, path):
        st, body, _ = http(self.web_url(path), method="POST", timeout=5)
        if st != 200:
            raise RuntimeError("POST %s: %s %s" % (path, st, body[:200]))

    def services(self):
        r = self.daemon.get("/v1/services")
        j = r.json() if r.status == 200 else {}
        return {s["name"]: s for s in j.get("services", [])} if isinstance(j, dict) else {}

    def last_event_id(self):
        j = self.daemon.get("/v1/events?limit=1").json()
        return j["events"][0]["id"] if j.get("events") else 0

    def events_after(self, after, types=("incident.*", "brain.diagnosis")):
        out = []
        for t in types:
            r = self.daemon.get("/v1/events?order=asc&limit=10000&after=%d&type=%s" % (after, t))
            if r.status == 200:
                out += r.json().get("events", [])
        return sorted(out, key=lambda e: e["id"])

    def restore_files(self):
        for name, text in self.files.items():
            p = os.path.join(self.dir, name)
            if read(p) != text:
                write(p, text)
        os.chmod(self.data, 0o755)
        os.chmod(self.logdir, 0o755)


# ---- faults ---------------------------------------------------------------------------------

class Fault:
    """A fault: what it breaks (inject), when the bench sees its effect
    (manifest), when that effect is gone (gone, besides web answering
    /health), and how the bench puts things back after the run (undo)."""
    name = ""
    fault_type = ""
    components = ("web",)     # what a diagnosis may name as the component
    unseen = False            # held out: the brain's authors were not told of it
    quick = False             # in tests/integration/test_faults.py
    what = ""

    def __init__(self):
        self.procs = []

    def inject(self, env):
        raise NotImplementedError

    def manifest(self, env, health_ok, stats):
        return not health_ok

    def gone(self, env, stats):
        return True

    def undo(self, env):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self.procs = []
        env.restore_files()

    def spawn(self, args, **kw):
        p = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        on_exit("kill %d" % p.pid, lambda: p.poll() is None and os.killpg(p.pid, signal.SIGKILL))
        return p


def edit(env, name, old, new):
    p = os.path.join(env.dir, name)
    text = read(p)
    assert old in text, (name, old)
    write(p, text.replace(old, new, 1))


def reload_web(env):
    pid = env.web_pid()
    assert pid, "web is not answering"
    os.kill(pid, signal.SIGHUP)
    return pid


class BadEnv(Fault):
    name, fault_type = "bad_env", "bad_environment"
    what = "WORKERS=four in web's environment file, then a reload: a ValueError at start, exit 1, again and again"

    def inject(self, env):
        edit(env, "web.env", "WORKERS=4", "WORKERS=four")
        reload_web(env)


class ConfigTypo(Fault):
    name, fault_type, quick = "config_typo", "config_error", True
    what = "'timeout = 1.0' becomes 'timeout 1.0' in web.ini, then a reload: it logs FATAL and exits 1"

    def inject(self, env):
        edit(env, "web.ini", "timeout = 1.0", "timeout 1.0")
        reload_web(env)


class Cgroup:
    """A cgroup v1 memory cgroup with a limit (this machine has the v1
    memory controller; v2 would be memory.max)."""

    def __init__(self, limit):
        self.path = "/sys/fs/cgroup/memory/ippoc-bench-%d" % os.getpid()
        os.makedirs(self.path, exist_ok=True)
        write(os.path.join(self.path, "memory.limit_in_bytes"), str(limit))
        on_exit("rmdir " + self.path, self.remove)

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def remove(self):
        if not os.path.isdir(self.path):
            return
        for pid in read(os.path.join(self.path, "cgroup.procs")).split():
            try:
                with open("/sys/fs/cgroup/memory/cgroup.procs", "w") as f:
                    f.write(pid)
            except OSError:
                pass
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


class OomKill(Fault):
    name, fault_type = "oom_kill", "oom_kill"
    what = "web in a memory cgroup limited to 96 MiB allocates 200 MiB at once: the kernel's OOM killer kills it"

    def inject(self, env):
        self.cg = Cgroup(96 << 20)
        self.pid = env.web_pid()
        self.cg.add(self.pid)
        try:
            env.post("/admin/spike?mb=200")
        except RuntimeError:
            pass  # killed while answering

    def manifest(self, env, health_ok, stats):
        return not health_ok or (stats and stats["pid"] != self.pid)

    def undo(self, env):
        super().undo(env)
        self.cg.remove()
        forget(self.cg.remove)


class MemoryLeak(Fault):
    name, fault_type = "memory_leak", "memory_leak"
    what = "web's RSS grows by about 8 MB/s and never comes back (a leak), up to its 160 MB memory rule"

    def inject(self, env):
        self.pid = env.web_pid()
        env.post("/admin/leak?rate=8")

    def manifest(self, env, health_ok, stats):
        return not health_ok or (stats and (stats["pid"] != self.pid or stats["rss_kb"] > 80000))

    def gone(self, env, stats):
        return stats is not None and stats["rss_kb"] < 60000


HOG = "import ctypes\nctypes.CDLL(None).prctl(15, b'batch-job', 0, 0, 0)\nwhile True:\n    pass\n"


class CpuHog(Fault):
    name, fault_type = "cpu_hog", "cpu_starvation"
    components = ("web", "batch-job")
    what = "a 'batch-job' process per core spins at nice -15 (web runs at 0): web's /health gets slow"

    def inject(self, env):
        for _ in range(os.cpu_count() or 1):
            p = self.spawn([sys.executable, "-c", HOG], preexec_fn=lambda: os.nice(-15))
            # with sched_autogroup (on here) nice only counts inside a session's
            # group: the hog's own session gets the better nice too
            try:
                with open("/proc/%d/autogroup" % p.pid, "w") as f:
                    f.write("-15")
            except OSError:
                pass

    def gone(self, env, stats):
        return all(env.health(timeout=1.0)[1] < 0.25 for _ in range(2))


def fill_files(d, prefix, size, limit):
    """Creates files of size bytes in d until the filesystem refuses (or limit)."""
    n = 0
    while n < limit:
        try:
            with open(os.path.join(d, "%s%05d" % (prefix, n)), "wb") as f:
                if size:
                    f.write(b"\0" * size)
        except OSError:
            break
        n += 1
    return n


class FillFault(Fault):
    """Fills the filesystem of env.<where> with <prefix>* files: big ones, then
    4 KiB ones to the last byte; undo removes them."""
    where, prefix, big = "data", "upload-", 2 << 20

    def inject(self, env):
        d = getattr(env, self.where)
        fill_files(d, self.prefix, self.big, 100)
        fill_files(d, self.prefix + "x", 4096, 10000)

    def undo(self, env):
        super().undo(env)
        d = getattr(env, self.where)
        for f in os.listdir(d):
            if f.startswith(self.prefix):
                os.unlink(os.path.join(d, f))


class DiskFull(FillFault):
    name, fault_type, quick = "disk_full", "disk_full", True
    what = "2 MiB upload-* files fill web's data filesystem (16 MiB tmpfs) to the last byte"


class InodesFull(Fault):
    name, fault_type = "inodes_full", "inode_exhaustion"
    what = "empty sess-* files use every inode of web's data filesystem (2048)"

    def inject(self, env):
        fill_files(env.data, "sess-", 0, 100000)

    def undo(self, env):
        super().undo(env)
        for f in os.listdir(env.data):
            if f.startswith("sess-"):
                os.unlink(os.path.join(env.data, f))


class FdExhaustion(Fault):
    name, fault_type, quick = "fd_exhaustion", "fd_exhaustion", True
    what = "web leaks 50 file descriptors a second up to its limit (RLIMIT_NOFILE 96): accept() fails with EMFILE"

    def inject(self, env):
        self.pid = env.web_pid()
        env.post("/admin/fdleak?rate=50")

    def gone(self, env, stats):
        return stats is not None and stats["fds"] < 40


class PortTaken(Fault):
    name, fault_type, quick = "port_taken", "port_in_use", True
    what = "while web reloads, another program (svc.py rogue) binds its port: web cannot listen, exits 1"

    def inject(self, env):
        reload_web(env)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        end = time.monotonic() + 3
        while True:
            try:
                s.bind(("127.0.0.1", env.port))
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError("could not take web's port")
                time.sleep(0.002)
        s.listen(16)
        self.spawn([sys.executable, os.path.join(env.app, "svc.py"), "rogue", "--fd", str(s.fileno())],
                   pass_fds=(s.fileno(),))
        s.close()


class DependencyDown(Fault):
    name, fault_type = "dependency_down", "dependency_down"
    components = ("db",)
    what = "db (autorestart = no) is killed: web cannot reach its database"

    def inject(self, env):
        pid = env.services()["db"]["pid"]
        os.kill(pid, signal.SIGKILL)

    def gone(self, env, stats):
        return env.db_ok()


class DnsFailure(Fault):
    name, fault_type = "dns_failure", "dns_failure"
    what = "the resolv.conf of web's mount namespace points at %s, where no DNS server answers" % DEAD_DNS

    def inject(self, env):
        edit(env, "resolv.conf", "nameserver %s" % DNS_ADDR, "nameserver %s" % DEAD_DNS)


class CredentialRevoked(Fault):
    name, fault_type = "credential_revoked", "credential_revoked"
    what = "web's credential file gets a token the database has revoked: every query answers 401"

    def inject(self, env):
        write(os.path.join(env.dir, "token"), OLD_TOKEN + "\n")


class PermissionChange(Fault):
    name, fault_type, quick = "permission_change", "permission_denied", True
    what = "chmod 000 on web's data dir (web runs as nobody): its writes fail with EACCES"

    def inject(self, env):
        os.chmod(env.data, 0)


class ErrorStorm(Fault):
    name, fault_type = "error_storm", "error_storm"
    what = "web logs 100 ERROR lines a second (a stuck retry loop) while /health stays 200"

    def inject(self, env):
        self.pid = env.web_pid()
        env.post("/admin/storm?rate=100")

    def manifest(self, env, health_ok, stats):
        return not health_ok or (stats and (stats["pid"] != self.pid or stats["errors_5s"] > 0))

    def gone(self, env, stats):
        return stats is not None and stats["errors_5s"] == 0


class Control(Fault):
    name, fault_type, components = "control", "none", ()
    what = "nothing is broken: no incident and no diagnosis should come"

    def inject(self, env):
        pass


# held out: written from the README as a new user would, not told to the brain's authors

class BrokenBinary(Fault):
    name, fault_type, unseen = "broken_binary", "crash", True
    what = "web's program (app/svc.py) is replaced by a truncated copy, then a reload: SyntaxError at start"

    def inject(self, env):
        p = os.path.join(env.app, "svc.py")
        self.orig = read(p)
        write(p, self.orig[: len(self.orig) // 2])
        reload_web(env)

    def undo(self, env):
        write(os.path.join(env.app, "svc.py"), self.orig)
        super().undo(env)


class TmpFull(FillFault):
    name, fault_type, unseen = "tmp_full", "disk_full", True
    what = "web's own TMPDIR (a 4 MiB tmpfs, not in its config_path) is filled by spool files"
    where, prefix, big = "tmpdir", "spool-", 1 << 18


class LogUnwritable(Fault):
    name, fault_type, unseen = "log_unwritable", "permission_denied", True
    what = "web's access log (its [service.web] log_file) is made read-only (chmod 444, web runs as nobody)"

    def inject(self, env):
        p = os.path.join(env.logdir, "access.log")
        if not os.path.exists(p):
            write(p, "", uid=NOBODY)
        os.chmod(p, 0o444)

    def undo(self, env):
        super().undo(env)
        p = os.path.join(env.logdir, "access.log")
        if os.path.exists(p):
            os.chmod(p, 0o644)


FAULTS = [BadEnv, ConfigTypo, OomKill, MemoryLeak, CpuHog, DiskFull, InodesFull, FdExhaustion, PortTaken,
          DependencyDown, DnsFailure, CredentialRevoked, PermissionChange, ErrorStorm, Control,
          BrokenBinary, TmpFull, LogUnwritable]


# ---- one run: inject, watch, score ---------------------------------------------------------

DETECT_S = 45      # an incident or a diagnosis later than this is not a detection
MITIGATE_S = 60    # healthy later than this is not a mitigation
CONTROL_S = 40     # how long the control watches
HEALTHY_FOR_S = 2  # mitigated: healthy (and the effect gone) at every poll for this long


def ms(t):
    return int(t * 1000)


def run_once(env, fault, occurrence):
    """Injects fault into env's machine and watches. Returns the result
    dict (times in seconds from the injection)."""
    if not env.wait_healthy(30):
        raise RuntimeError("web is not healthy before %s" % fault.name)
    if not env.wait_known_good():
        log("WARNING: no known-good copy of every config_path of web yet: %s" %
            env.services().get("web", {}).get("config_paths"))
    after = env.last_event_id()
    pid0 = env.web_pid()
    res = {"fault": fault.name, "occurrence": occurrence, "expected_type": fault.fault_type,
           "expected_components": list(fault.components), "unseen": fault.unseen}
    t0 = time.time()
    fault.inject(env)
    log("%s #%d injected" % (fault.name, occurrence))
    limit = CONTROL_S if fault.fault_type == "none" else MITIGATE_S
    manifest_at = mitigated_at = None
    good = 0
    first_good = None
    events = []
    last_ev_poll = 0
    while time.time() - t0 < limit:
        ok, _, _ = env.health(timeout=1.0)
        stats = env.stats()
        now = time.time()
        if manifest_at is None and fault.manifest(env, ok, stats):
            manifest_at = now
        if manifest_at is not None and mitigated_at is None:
            if ok and fault.gone(env, stats):
                good += 1
                first_good = first_good or now
                if now - first_good >= HEALTHY_FOR_S:
                    mitigated_at = first_good
            else:
                good, first_good = 0, None
        if now - last_ev_poll >= 1.0:
            events = env.events_after(after)
            last_ev_poll = now
        diag = [e for e in events if e["type"] == "brain.diagnosis"]
        if fault.fault_type != "none" and mitigated_at is not None and (diag or now - t0 > DETECT_S):
            break
        time.sleep(POLL_S)
    events = env.events_after(after)
    res.update(score(fault, events, t0, manifest_at, mitigated_at))
    res["pid_before"] = pid0
    return res


def score(fault, events, t0, manifest_at, mitigated_at):
    opens = [e for e in events if e["type"] == "incident.open"]
    diags = [e for e in events if e["type"] == "brain.diagnosis"]
    about = set(fault.components) | {"web", "db"}
    d_open = [e for e in opens if e["source"] in about and e["ts"] - ms(t0) <= DETECT_S * 1000]
    # diagnoses about the machine (component "": an anomaly or a filesystem
    # elsewhere, e.g. another user's work on this shared machine) are kept in
    # the results but are not ippocd's answer about the faulty service
    mine = [e for e in diags if e["payload"].get("component") in about]
    d_diag = [e for e in mine if e["ts"] - ms(t0) <= DETECT_S * 1000]
    first = mine[0]["payload"] if mine else None
    r = {
        "incidents": [{"id": e["payload"].get("id"), "service": e["source"], "what": e["payload"].get("what"),
                       "t": (e["ts"] - ms(t0)) / 1000} for e in opens],
        "diagnoses": [{"t": (e["ts"] - ms(t0)) / 1000, "component": e["payload"].get("component"),
                       "fault_type": e["payload"].get("fault_type"), "source": e["payload"].get("source"),
                       "root_cause": e["payload"].get("root_cause"), "model": model_note(e["payload"]),
                       "actions": [a.get("action") for a in e["payload"].get("proposed_actions") or []]}
                      for e in diags],
        "manifest_s": None if manifest_at is None else round(manifest_at - t0, 2),
        "machine_diagnoses": len(diags) - len(mine),
    }
    if fault.fault_type == "none":
        r.update(detected=None, alarm=bool(d_open or mine), component_ok=None, type_ok=None, mitigated=None,
                 ttd=None, ttdiag=None, ttm=None)
        return r
    times = [e["ts"] for e in d_open] + [e["ts"] for e in d_diag]
    r["detected"] = bool(times)
    r["ttd"] = round((min(times) - ms(t0)) / 1000, 2) if times else None
    r["ttdiag"] = round((mine[0]["ts"] - ms(t0)) / 1000, 2) if mine else None
    r["component_ok"] = bool(first) and first.get("component") in fault.components
    r["type_ok"] = bool(first) and first.get("fault_type") == fault.fault_type
    r["mitigated"] = mitigated_at is not None
    r["ttm"] = round(mitigated_at - t0, 2) if mitigated_at else None
    return r


def settle(env, fault):
    """After a run: the bench puts back what the fault broke and waits until
    web is healthy again (restarting it, or the whole ippocd, if need be).
    Returns what it had to do."""
    fault.undo(env)
    if env.db_ok() is False and env.services().get("db", {}).get("state") != "running":
        did = "restarted ippocd (db was still down)"
        env.daemon.stop()
        env.sweep()
        env.daemon.start()
        env.wait_healthy(30)
        return did
    if env.wait_healthy(15):
        return ""
    pid = env.services().get("web", {}).get("pid")
    if pid:
        kill_pid(pid, signal.SIGTERM)
    if env.wait_healthy(30):
        return "restarted web"
    raise RuntimeError("web did not come back after %s:\n%s" % (fault.name, env.service_log("web")[-2000:]))


def run_in(env, fault_cls, occurrences=2):
    """occurrences of one fault in env (the same ippocd), each followed by
    settle(). Returns the results (one per occurrence)."""
    out = []
    for occ in range(1, occurrences + 1):
        fault = fault_cls()
        try:
            res = run_once(env, fault, occ)
        finally:
            did = settle(env, fault)
        res["settle"] = did
        res["dropped_keys"] = env.dropped
        out.append(res)
        log(line(res))
    return out


def run_fault(state_dir, fault_cls, occurrences=2, brain_conf="", model=None):
    """Both occurrences of one fault in a new Env (one ippocd); with model
    (a ReplayModel), fakellm as its [llm] local."""
    extra = ""
    mtmp = None
    if model:
        mtmp = tempfile.mkdtemp(prefix="ippoc-diag-llm.")
        on_exit("rm " + mtmp, lambda: shutil.rmtree(mtmp, ignore_errors=True))
        extra = model.start(fault_cls(), mtmp)
        brain_conf += MODEL_BRAIN_CONF
    env = Env(state_dir, extra_conf=extra, brain_conf=brain_conf)
    try:
        env.start()
        return run_in(env, fault_cls, occurrences)
    finally:
        env.stop()
        if model:
            model.stop()
        run_cleanups_of(env)


def run_cleanups_of(env):
    """Runs (now) the cleanups registered for env's temp dir and mounts."""
    mine = [(n, f) for n, f in _cleanups if env.tmp in n]
    for n, f in reversed(mine):
        forget(f)
        try:
            f()
        except Exception as e:  # noqa: BLE001
            print("cleanup %s: %s" % (n, e), file=sys.stderr)


def first_diag(r):
    """The first diagnosis of a run about web, db or the fault's component."""
    about = set(r["expected_components"]) | {"web", "db"}
    return next((d for d in r["diagnoses"] if d["component"] in about), {})


def yn(v):
    return "-" if v is None else ("yes" if v else "NO")


def secs(v):
    return "-" if v is None else "%.1f" % v


def line(r):
    if r["expected_type"] == "none":
        return "%s #%d: %s" % (r["fault"], r["occurrence"], "ALARM" if r["alarm"] else "quiet (ok)")
    d = first_diag(r)
    return ("%s #%d: detected %s, component %s (%s), type %s (%s), mitigated %s, TTD %s TTDiag %s TTM %s"
            % (r["fault"], r["occurrence"], yn(r["detected"]), yn(r["component_ok"]), d.get("component"),
               yn(r["type_ok"]), d.get("fault_type"), yn(r["mitigated"]), secs(r["ttd"]), secs(r["ttdiag"]),
               secs(r["ttm"])))


# ---- the table and the totals ----------------------------------------------------------------

TARGETS = {"detection": 1.0, "localisation": 0.95, "fault_type": 0.90, "mitigation": 0.85}


def pct(a, b):
    return None if not b else a / b


def totals(results):
    runs = [r for r in results if r["expected_type"] != "none"]
    ctrl = [r for r in results if r["expected_type"] == "none"]
    t = {
        "runs": len(runs),
        "detection": pct(sum(1 for r in runs if r["detected"]), len(runs)),
        "localisation": pct(sum(1 for r in runs if r["component_ok"]), len(runs)),
        "fault_type": pct(sum(1 for r in runs if r["type_ok"]), len(runs)),
        "mitigation": pct(sum(1 for r in runs if r["mitigated"]), len(runs)),
        "control_runs": len(ctrl),
        "control_alarms": sum(1 for r in ctrl if r["alarm"]),
    }
    firsts = {r["fault"]: r for r in runs if r["occurrence"] == 1}
    seconds = {r["fault"]: r for r in runs if r["occurrence"] == 2}
    pairs = [(firsts[f]["ttm"], seconds[f]["ttm"]) for f in firsts
             if f in seconds and firsts[f]["ttm"] and seconds[f]["ttm"]]
    t["ttm_pairs"] = len(pairs)
    t["ttm_first"] = sum(a for a, _ in pairs)
    t["ttm_second"] = sum(b for _, b in pairs)
    t["ttm_ratio"] = pct(t["ttm_second"], t["ttm_first"])
    t["ttm_halved"] = sum(1 for a, b in pairs if b <= a / 2)
    mean = lambda k: (lambda v: sum(v) / len(v) if v else None)([r[k] for r in runs if r[k] is not None])  # noqa
    t["mean_ttd"], t["mean_ttdiag"], t["mean_ttm"] = mean("ttd"), mean("ttdiag"), mean("ttm")
    return t


def fmt_pct(v):
    return "-" if v is None else "%.0f %%" % (100 * v)


def table(results):
    """A markdown table: one row per fault, both occurrences side by side."""
    by = {}
    for r in results:
        by.setdefault(r["fault"], {})[r["occurrence"]] = r
    occs = sorted({r["occurrence"] for r in results})
    head = "| fault | expected |"
    sep = "|---|---|"
    for o in occs:
        head += " #%d det | comp | type | mitig | TTD s | TTDiag s | TTM s |" % o
        sep += "---|---|---|---|--:|--:|--:|"
    rows = [head, sep]
    for f, rs in by.items():
        r0 = next(iter(rs.values()))
        row = "| %s | %s |" % (f, r0["expected_type"])
        for o in occs:
            r = rs.get(o)
            if not r:
                row += " | | | | | | |"
            elif r["expected_type"] == "none":
                row += " %s | | | | | | |" % ("ALARM" if r["alarm"] else "quiet")
            else:
                d = first_diag(r)
                comp = yn(r["component_ok"]) + ("" if r["component_ok"] else " (%s)" % d.get("component", "none"))
                typ = yn(r["type_ok"]) + ("" if r["type_ok"] else " (%s)" % d.get("fault_type", "none"))
                row += " %s | %s | %s | %s | %s | %s | %s |" % (yn(r["detected"]), comp, typ, yn(r["mitigated"]),
                                                                 secs(r["ttd"]), secs(r["ttdiag"]), secs(r["ttm"]))
        rows.append(row)
    return "\n".join(rows)


def summary(results, label):
    t = totals(results)
    out = ["%s: %d runs" % (label, t["runs"])]
    for k, target in TARGETS.items():
        v = t[k]
        ok = v is not None and v >= target
        out.append("- %s %s (target %s): %s" % (k, fmt_pct(v), fmt_pct(target), "met" if ok else "NOT met"))
    if t["control_runs"]:
        out.append("- control: %d alarm(s) in %d run(s) (target 0): %s" % (
            t["control_alarms"], t["control_runs"], "met" if t["control_alarms"] == 0 else "NOT met"))
    if t["ttm_pairs"]:
        out.append("- time to mitigate, 2nd occurrence vs 1st: %.1f s vs %.1f s over %d faults mitigated both times "
                   "(ratio %.2f, target <= 0.50: %s); halved or better for %d of them" % (
                       t["ttm_second"], t["ttm_first"], t["ttm_pairs"], t["ttm_ratio"],
                       "met" if t["ttm_ratio"] <= 0.5 else "NOT met", t["ttm_halved"]))
    out.append("- mean TTD %s s, TTDiag %s s, TTM %s s" % (secs(t["mean_ttd"]), secs(t["mean_ttdiag"]),
                                                          secs(t["mean_ttm"])))
    notes = [first_diag(r).get("model") for r in results if r["expected_type"] != "none"]
    if any(notes):
        kinds = {}
        for n in notes:
            k = "no diagnosis" if not n else n.split(":")[0]
            kinds[k] = kinds.get(k, 0) + 1
        out.append("- the model in the first diagnoses: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    return "\n".join(out), t
