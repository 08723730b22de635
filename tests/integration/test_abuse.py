"""test_abuse.py: the API under abuse, probed from outside over real sockets:
slowloris connections (a partial request line, one byte a second) cannot
keep the owner out (the CLI's Unix socket answers within 5 s) nor TCP
clients for more than a few seconds; malformed requests are all answered
with JSON errors; refused event streams are closed at once; the optional
Prometheus listener serves only /metrics, without the token."""
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time

from harness import IPPOC, SLOW, Daemon, free_port, run, wait_for

TOKEN = "abuse-test-token-0123456789"


def cli_over_socket(d, *args, timeout=20):
    env = {k: v for k, v in os.environ.items() if k not in ("IPPOC_URL", "IPPOC_STATE_DIR")}
    t0 = time.monotonic()
    r = subprocess.run([IPPOC, "--state-dir", d.state_dir, "--timeout", "5", *args], capture_output=True,
                       text=True, env=env, timeout=timeout * SLOW)
    return r, time.monotonic() - t0


class Slowloris:
    """n connections that each send a partial request line, then one more
    byte every second, reopening any the server closes."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.socks = []
        self.closed_by_server = 0
        self.answers = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def open_one(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setblocking(False)
        s.send(b"GET /v1/sta")
        return s

    def __enter__(self):
        for _ in range(self.n):
            self.socks.append(self.open_one())
        self.thread.start()
        return self

    def loop(self):
        while not self.stop.wait(1.0):
            for i, s in enumerate(self.socks):
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data is not None:  # answered or closed by the server
                    self.closed_by_server += 1
                    if data:
                        self.answers.append(data)
                    s.close()
                    try:
                        self.socks[i] = self.open_one()
                    except OSError:
                        pass
                    continue
                try:
                    s.send(b"t")
                except OSError:
                    pass

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def test_slowloris_cannot_lock_out():
    d = Daemon().start()
    sock = os.path.join(d.state_dir, "ippocd.sock")
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    with Slowloris(d.port, 100) as sl:
        time.sleep(1.5)  # the holders are in place and trickling
        r, took = cli_over_socket(d, "status")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert took < 5, f"ippoc status took {took:.1f}s over the socket"
        # TCP clients get in within a few seconds, holders or not
        t0 = time.monotonic()
        wait_for(lambda: d.get("/v1/status", timeout=2).status == 200, 5, "a TCP client to get in")
        tcp_wait = time.monotonic() - t0
        # holders are cut off after the head deadline, with a JSON 408
        wait_for(lambda: sl.answers, 8, "a slow connection to be answered")
        first = sl.answers[0].decode(errors="replace")
        assert first.startswith("HTTP/1.1 408 "), first[:200]
        body = json.loads(first.split("\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "timeout", body
        # the owner again, while they keep coming back
        r, took2 = cli_over_socket(d, "status")
        assert r.returncode == 0 and took2 < 5, (took2, r.stderr)
    print(f"   100 slowloris connections: ippoc status over the socket {took:.2f}s and {took2:.2f}s, "
          f"TCP client in after {tcp_wait:.2f}s, {sl.closed_by_server} holders cut off")
    assert d.stop() == 0


def test_cli_uses_the_socket_else_tcp():
    d = Daemon().start()
    url_file = os.path.join(d.state_dir, "ippocd.url")
    with open(url_file) as f:
        url = f.read()
    with open(url_file, "w") as f:  # a dead TCP address: only the socket can answer
        f.write(f"http://127.0.0.1:{free_port()}\n")
    r, _ = cli_over_socket(d, "status")
    assert r.returncode == 0, r.stderr
    with open(url_file, "w") as f:
        f.write(url)
    os.unlink(os.path.join(d.state_dir, "ippocd.sock"))
    r, _ = cli_over_socket(d, "status")
    assert r.returncode == 0, r.stderr
    assert d.stop() == 0


def raw(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


CODES = {"bad_request", "bad_range", "bad_step", "too_large", "unknown_metric", "not_found",
         "method_not_allowed", "unauthorized", "internal", "busy", "timeout", "unavailable"}


def check_json_error(out, want_status=None, want_code=None, what=""):
    text = out.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    status = int(head.split(" ")[1])
    assert "application/json" in head, f"{what}: not JSON:\n{text[:300]}"
    err = json.loads(body)["error"]
    assert err["code"] in CODES, (what, err)
    if want_status:
        assert status == want_status, f"{what}: status {status}, wanted {want_status}: {text[:300]}"
    if want_code:
        assert err["code"] == want_code, (what, err)
    return status


def test_malformed_requests_get_json():
    d = Daemon().start()
    p = d.port
    cases = [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n", 413, "too_large"),
        (b"POST /v1/pending/1/approve HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b" " * 5000,
         413, "too_large"),
        (b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too_large"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "too_large"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", 431, "too_large"),
        (b"GET /v1/status HTTP/2.0\r\nHost: x\r\n\r\n", 505, "bad_request"),
        (b"GET /v1/status HTTP/9.9\r\n\r\n", 505, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\n\r\n", 400, "bad_request"),  # no Host
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/sta\x00tus HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "bad_request"),
        (b"GET http://x/v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "bad_request"),
        (b"\x00\x01\x02\xff" * 100, 400, "bad_request"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n", 400, "bad_request"),  # ends early
        (b"GET /v1/metrics?from=\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/status?%%%% HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (b"BREW /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
    ]
    for data, status, code in cases:
        check_json_error(raw(p, data), status, code, repr(data[:60]))
    # mutations of a good request: every answer is JSON (a 200 or an error)
    import random
    rnd = random.Random(9)
    good = b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"
    alphabet = b"\x00\r\n :/%?#\x7f\xff\tAZaz09-HTTP/1.1"
    n, html, closed, ok = 3000, 0, 0, 0
    for _ in range(n):
        m = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            op, i = rnd.randint(0, 2), rnd.randrange(len(m))
            if op == 0:
                m[i] = rnd.choice(alphabet)
            elif op == 1:
                del m[i]
            else:
                m.insert(i, rnd.choice(alphabet))
        out = raw(p, bytes(m), timeout=5)
        if not out:
            closed += 1
            continue
        head = out.split(b"\r\n\r\n", 1)[0]
        if b"200 OK" in head.split(b"\r\n")[0]:
            ok += 1
        elif b"application/json" not in head:
            html += 1
            print("   not JSON:", bytes(m)[:80], out[:120])
    print(f"   {n} mutated requests: {ok} answered 200, {n - ok - closed - html} JSON errors, "
          f"{closed} closed without an answer, {html} not JSON")
    assert html == 0
    assert d.get("/v1/status").status == 200
    assert d.stop() == 0


def test_refused_stream_closed_at_once():
    d = Daemon(config="[api]\nmax_connections = 4\n").start()
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.sendall(b"GET /v1/events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
        held.append(s)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.sendall(b"GET /v1/events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
    took = time.monotonic() - t0
    s.close()
    check_json_error(out, 503, "busy", "third stream")
    assert took < 2, f"the refused stream's connection stayed open {took:.1f}s"
    for h in held:
        h.close()
    assert d.stop() == 0


def test_prometheus_listener():
    p1, p2, p3 = free_port(), free_port(), free_port()
    conf = f"[api]\nlisten = 127.0.0.1:{p1}\ntoken = {TOKEN}\nprometheus_listen = 127.0.0.1:{p2}\n"
    d = Daemon(config=conf, port=p1, listen_arg=False)
    d.start(wait=False)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: d.get("/v1/status", headers=auth).status == 200, 20, "ippocd to answer")
    main = d.get("/metrics", headers=auth)
    assert main.status == 200
    d.port = p2
    prom = d.get("/metrics")  # no token on this listener
    assert prom.status == 200, prom.body
    assert prom.headers["Content-Type"].startswith("text/plain"), prom.headers

    def families(text):
        return {line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE ")}
    assert families(prom.body) == families(main.body)
    r = d.get("/v1/status")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found", r.body
    r = d.get("/metrics", method="POST")
    assert r.status == 405, r.body
    # reload moves it like listen
    d.write_config(conf.replace(str(p2), str(p3)))
    d.signal(signal.SIGHUP)
    d.port = p3
    wait_for(lambda: d.get("/metrics").status == 200, 10, "the Prometheus listener on its new port")
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", p2)) != 0, "old Prometheus port still open"
    # and off again
    d.write_config(f"[api]\nlisten = 127.0.0.1:{p1}\ntoken = {TOKEN}\n")
    d.signal(signal.SIGHUP)

    def closed():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", p3)) != 0
    wait_for(closed, 10, "the Prometheus listener to close")
    d.port = p1
    assert d.get("/v1/status", headers=auth).status == 200
    assert d.stop() == 0


def test_prometheus_listen_taken_is_an_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        d = Daemon(config=f"[api]\nprometheus_listen = 127.0.0.1:{busy.getsockname()[1]}\n")
        d.start(wait=False)
        assert d.proc.wait(20 * SLOW) == 1
        assert "Address already in use" in d.log_text(), d.log_text()


run([test_slowloris_cannot_lock_out, test_cli_uses_the_socket_else_tcp, test_malformed_requests_get_json,
     test_refused_stream_closed_at_once, test_prometheus_listener, test_prometheus_listen_taken_is_an_error])
