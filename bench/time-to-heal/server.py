#!/usr/bin/env python3
"""server.py: the small HTTP service bench/time-to-heal supervises.

    python3 server.py PORT [PIDFILE] [--daemon]

Listens on 127.0.0.1:PORT (python3 stdlib http.server, one thread) and answers
GET /health with 200 "ok" and an X-Pid header naming the process that
answered, so the bench can tell an old process from its replacement; any
other path gets 404. With PIDFILE it writes its pid there (atomically, after
the port is bound), for supervisors that follow a pidfile (monit). With
--daemon it binds, then forks into the background as a classic daemon does
(setsid, stdio on /dev/null) and the command returns once the pidfile names
the serving process: monit's start program must return. It logs nothing and
keeps the default SIGTERM action (die at once, even when stopped with
SIGSTOP).
"""
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        ok = self.path == "/health"
        body = b"ok\n" if ok else b"not found\n"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pid", str(os.getpid()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(HTTPServer):
    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a name lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def write_pidfile(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.replace(tmp, path)


def daemonize():
    """Returns in the background grandchild; the caller's process exits 0 once
    the grandchild says (through a pipe) that its pidfile is written."""
    r, w = os.pipe()
    if os.fork() > 0:
        os.close(w)
        ok = os.read(r, 1)
        os._exit(0 if ok else 1)
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    return w


def main():
    args = [a for a in sys.argv[1:] if a != "--daemon"]
    daemon = len(args) < len(sys.argv) - 1
    if len(args) not in (1, 2) or (daemon and len(args) != 2):
        sys.stderr.write("usage: server.py PORT [PIDFILE] [--daemon] (--daemon needs PIDFILE)\n")
        return 2
    port = int(args[0])
    srv = Server(("127.0.0.1", port), Handler)
    ready = daemonize() if daemon else None
    if len(args) == 2:
        write_pidfile(args[1])
    if ready is not None:
        os.write(ready, b"1")
        os.close(ready)
    srv.serve_forever(poll_interval=3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
