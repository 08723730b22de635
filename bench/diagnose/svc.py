#!/usr/bin/env python3
"""svc.py: the small, realistic services the fault benchmark (bench/diagnose)
runs under ippocd (python3 stdlib only).

  svc.py web --config FILE.ini --env FILE --cred FILE --data DIR
      An HTTP service on 127.0.0.1 (the port is in its config). Its
      environment file (KEY=VALUE lines: WORKERS, MAX_FDS) is read at start
      into its environment: a bad value is an uncaught ValueError. SIGHUP
      reloads it (it stops listening, waits 0.3 s and executes itself again). Its INI config is parsed at start: a parse error is logged
      ("FATAL config ...: line N: ...") and it exits 1. Every GET /health:
      resolves the database's host name (DNS, through the resolver of its
      mount namespace), asks the database with the token of the credential
      file, appends a record to DIR/journal.log and creates (then drops) a
      small request file in DIR/requests/; any failure is logged at ERROR and
      answered 503. /health costs about 25 ms of CPU (it checks a digest),
      so a CPU hog at a better nice makes it slow.
      Control endpoints (POST): /admin/leak (grow RSS by RATE MB/s),
      /admin/spike (allocate MB at once), /admin/fdleak (open RATE fds/s and
      keep them), /admin/storm (log RATE errors/s, staying healthy).
      GET /stats: counters (errors in the last 5 s, fds, rss).

  svc.py db --port PORT --tokens FILE
      The dependency: a tiny HTTP "database". GET /q with
      "Authorization: Bearer TOKEN" answers 200 when TOKEN is in FILE's
      "valid" line, 401 "token revoked" when it is in the "revoked" line.

  svc.py rogue --fd FD
      Another program that holds a port: serves a listening socket the bench
      bound and passed down (answers 404 to everything).

Logs go to stdout in "2026-12-04 21:00:00,123 LEVEL name: message" form,
captured by ippocd."""
import configparser
import hashlib
import http.server
import json
import os
import resource
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

NAME = "svc"


def log(level, msg):
    t = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ",%03d" % int((t % 1) * 1000)
    try:
        sys.stdout.write("%s %s %s: %s\n" % (stamp, level, NAME, msg))
        sys.stdout.flush()
    except OSError:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def _handle_request_noblock(self):
        try:
            request, client_address = self.get_request()
        except OSError as e:
            STATE["errors"].append(time.monotonic())
            log("ERROR", "accept failed: %s" % e)
            time.sleep(0.2)
            return
        if self.verify_request(request, client_address):
            try:
                self.process_request(request, client_address)
            except Exception:  # noqa: BLE001
                self.handle_error(request, client_address)
                self.shutdown_request(request)
        else:
            self.shutdown_request(request)


STATE = {"errors": [], "hold": [], "fds": [], "requests": 0}


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                out[k.strip()] = v.strip()
    return out


# ---- web ---------------------------------------------------------------------------

def load_config(path):
    cp = configparser.ConfigParser(interpolation=None)
    try:
        with open(path) as f:
            cp.read_file(f, path)
        port = cp.getint("server", "port")
        db_host = cp.get("database", "host")
        db_port = cp.getint("database", "port")
        timeout = cp.getfloat("database", "timeout")
    except configparser.ParsingError as e:
        first = e.errors[0] if e.errors else (0, "?")
        raise SystemExit(("config", "%s: line %d: cannot parse %s" % (path, first[0], first[1].strip())))
    except (configparser.Error, ValueError) as e:
        raise SystemExit(("config", "%s: %s" % (path, str(e).replace("\n", " "))))
    except OSError as e:
        raise SystemExit(("config", "cannot read %s: %s" % (path, e.strerror)))
    return {"port": port, "db_host": db_host, "db_port": db_port, "timeout": timeout}


def health_check(cfg, cred, data):
    """None when healthy, else the error (already logged)."""
    try:
        addr = socket.getaddrinfo(cfg["db_host"], cfg["db_port"], socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as e:
        return fail("cannot resolve database host %s: %s" % (cfg["db_host"], e.strerror or e))
    try:
        with open(cred) as f:
            token = f.read().strip()
    except OSError as e:
        return fail("cannot read credential %s: %s" % (cred, e.strerror))
    req = urllib.request.Request("http://%s:%d/q" % (addr, cfg["db_port"]),
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=cfg["timeout"]) as r:
            r.read()
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace").strip()
        if e.code == 401:
            return fail("database authentication failed for token %s...: %s (401)" % (token[:6], body))
        return fail("database query failed: HTTP %d %s" % (e.code, body))
    except (OSError, urllib.error.URLError) as e:
        reason = getattr(e, "reason", e)
        return fail("database %s:%d unreachable: %s" % (cfg["db_host"], cfg["db_port"], reason))
    rec = json.dumps({"ts": time.time(), "n": STATE["requests"]}) + "\n"
    try:
        with open(os.path.join(data, "journal.log"), "a") as f:
            f.write(rec)
        if os.path.getsize(os.path.join(data, "journal.log")) > 256 * 1024:
            os.replace(os.path.join(data, "journal.log"), os.path.join(data, "journal.log.1"))
        rq = os.path.join(data, "requests")
        os.makedirs(rq, exist_ok=True)
        # one new file per request (a new inode and page), the 8th oldest removed
        with open(os.path.join(rq, "req-%d-%d.json" % (os.getpid(), STATE["requests"])), "w") as f:
            f.write(rec)
        try:
            os.unlink(os.path.join(rq, "req-%d-%d.json" % (os.getpid(), STATE["requests"] - 8)))
        except FileNotFoundError:
            pass
        with tempfile.TemporaryFile(dir=os.environ.get("TMPDIR")) as f:   # a response buffer, in TMPDIR only
            f.write(rec.encode() * 64)
        if os.environ.get("ACCESS_LOG"):
            with open(os.environ["ACCESS_LOG"], "a") as f:
                f.write('127.0.0.1 - - [%s] "GET /health HTTP/1.1" 200\n' % time.strftime("%d/%b/%Y:%H:%M:%S"))
    except OSError as e:
        return fail("cannot write %s: %s" % (e.filename or data, e.strerror))
    # the digest check: about 25 ms of CPU
    h = b"x"
    for _ in range(40000):
        h = hashlib.sha256(h).digest()
    return None


def fail(msg):
    STATE["errors"].append(time.monotonic())
    log("ERROR", msg)
    return msg


def leak(rate_mb):
    while True:
        STATE["hold"].append(bytearray(os.urandom(1024)) * (rate_mb * 102))  # ~rate_mb/10 MB, touched
        time.sleep(0.1)


def fdleak(rate):
    while True:
        try:
            STATE["fds"].append(open("/dev/null"))
        except OSError as e:
            fail("open /dev/null: %s" % e.strerror)
            time.sleep(1)
        time.sleep(1.0 / rate)


def storm(rate):
    n = 0
    while True:
        n += 1
        STATE["errors"].append(time.monotonic())
        log("ERROR", "cache refresh failed for key user:%d: upstream returned garbage, retrying" % (n % 997))
        time.sleep(1.0 / rate)


def web(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--cred", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--env", required=True)
    a = ap.parse_args(argv)
    try:
        os.environ.update(read_kv(a.env))
    except OSError as e:
        log("FATAL", "cannot read environment file %s: %s" % (a.env, e.strerror))
        sys.exit(1)
    workers = int(os.environ.get("WORKERS", "4"))       # a bad value: an uncaught ValueError
    max_fds = int(os.environ.get("MAX_FDS", "1024"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        cfg = load_config(a.config)
    except SystemExit as e:
        log("FATAL", "config error: " + e.code[1])
        sys.exit(1)
    log("INFO", "starting: port %d, %d workers, database %s:%d, data %s" %
        (cfg["port"], workers, cfg["db_host"], cfg["db_port"], a.data))

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                STATE["requests"] += 1
                err = health_check(cfg, a.cred, a.data)
                self.answer(503 if err else 200, {"service": NAME, "ok": not err, "error": err})
            elif self.path == "/stats":
                now = time.monotonic()
                STATE["errors"] = [t for t in STATE["errors"] if now - t < 60]
                self.answer(200, {"service": NAME, "pid": os.getpid(),
                                  "errors_5s": sum(1 for t in STATE["errors"] if now - t < 5),
                                  "fds": len(os.listdir("/proc/self/fd")),
                                  "rss_kb": int(open("/proc/self/statm").read().split()[1]) * 4})
            else:
                self.answer(404, {"error": "not found"})

        def do_POST(self):
            q = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p)
            path = self.path.partition("?")[0]
            if path == "/admin/leak":
                threading.Thread(target=leak, args=(int(q.get("rate", "4")),), daemon=True).start()
            elif path == "/admin/spike":
                STATE["hold"].append(bytearray(int(q.get("mb", "300")) << 20))
                for i in range(0, len(STATE["hold"][-1]), 4096):
                    STATE["hold"][-1][i] = 1
            elif path == "/admin/fdleak":
                threading.Thread(target=fdleak, args=(int(q.get("rate", "50")),), daemon=True).start()
            elif path == "/admin/storm":
                threading.Thread(target=storm, args=(int(q.get("rate", "100")),), daemon=True).start()
            else:
                return self.answer(404, {"error": "not found"})
            log("INFO", "admin request %s" % self.path)
            self.answer(200, {"ok": True})

        def answer(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    try:
        srv = Server(("127.0.0.1", cfg["port"]), H)
    except OSError as e:
        log("FATAL", "cannot listen on 127.0.0.1:%d: %s" % (cfg["port"], e.strerror))
        sys.exit(1)
    log("INFO", "listening on 127.0.0.1:%d" % cfg["port"])

    def reload(_sig, _frm):
        # a graceful reload: stop listening, let requests drain, start again
        log("INFO", "SIGHUP: reloading (configuration and environment are read again)")
        srv.socket.close()
        time.sleep(0.3)
        os.execv(sys.executable, [sys.executable] + sys.argv)
    signal.signal(signal.SIGHUP, reload)
    srv.serve_forever()


# ---- db and rogue ------------------------------------------------------------------

def db(argv):
    port, tokens = int(argv[argv.index("--port") + 1]), argv[argv.index("--tokens") + 1]

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            kv = read_kv(tokens)
            tok = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if tok in kv.get("revoked", "").split():
                log("WARNING", "rejected a revoked token %s..." % tok[:6])
                code, body = 401, b"token revoked"
            elif tok in kv.get("valid", "").split():
                code, body = 200, b"ok"
            else:
                code, body = 401, b"unknown token"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = Server(("127.0.0.1", port), H)
    log("INFO", "database listening on 127.0.0.1:%d" % port)
    srv.serve_forever()


def rogue(argv):
    fd = int(argv[argv.index("--fd") + 1])   # a listening socket the bench bound

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = socketserver.TCPServer(("127.0.0.1", 0), H, bind_and_activate=False)
    srv.socket.close()
    srv.socket = socket.socket(fileno=fd)
    srv.serve_forever()


if __name__ == "__main__":
    kind = sys.argv[1]
    NAME = os.environ.get("SVC_NAME", kind)
    {"web": web, "db": db, "rogue": rogue}[kind](sys.argv[2:])
