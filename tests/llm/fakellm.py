#!/usr/bin/env python3
"""fakellm.py: a stand-in language-model server for the tests (stdlib only).

One HTTP server on loopback that speaks enough of
  - OpenAI chat completions   POST .../v1/chat/completions (plain and streamed)
  - OpenAI embeddings         POST .../v1/embeddings
  - Anthropic messages        POST .../v1/messages
  - a model list              GET  .../v1/models
answering from a JSON scenario file, and recording every request it gets.

    fakellm.py --scenario FILE [--record FILE.jsonl] [--port N] [--host 127.0.0.1]

It prints the port it listens on (one line, then flushes stdout), so a test
starts it with --port 0 and reads the first line. SIGTERM/SIGINT stop it.

Scenario file: a JSON object mapping a path to a list of responses. A
request's path picks the list whose key equals it, else the longest key the
path ends with (so "/v1/chat/completions" matches both "/v1/chat/completions"
and "/local/v1/chat/completions"; one server can stand in for several
providers with keys like "/local/v1/chat/completions" and
"/cloud/v1/messages"). Responses are used in order; the last one repeats.
A response whose "match" (a substring) occurs in the request body is chosen
first, without consuming the sequence. The file is read again when it
changes (and the sequences restart). Each response is an object:

  status      HTTP status (default 200)
  headers     {"Name": "value"} extra headers (e.g. {"Retry-After": "1"})
  delay_ms    wait before answering (a timeout test)
  close       true: hang up without answering (after delay_ms)
  body        the body: a JSON value (sent as JSON) or a string (sent as is)
  stream      a list of chunks sent one write at a time with
              chunk_delay_ms between them (text/event-stream): a string is
              written as is (so "data: {...}\\n\\n", ": keep-alive\\n\\n",
              a chunk cut in the middle of a line); an object is written as
              "data: JSON\\n\\n"
  chunk_delay_ms  see stream
  -- shorthands, when neither body nor stream is given --
  content     the answer's text: builds an OpenAI chat completion (or an
              Anthropic message on a .../messages path); if the request
              asked "stream": true, the completion is streamed as SSE in
              pieces of stream_piece characters (default 4), ending with
              "data: [DONE]" (OpenAI) or message_stop (Anthropic)
  prob        with content: every token's probability (logprobs reported,
              default: no logprobs in the answer)
  refusal     (OpenAI) a refusal text: message.refusal set, content null;
              (Anthropic) stop_reason "refusal"
  usage       [prompt_tokens, completion_tokens] (default: estimated;
              "none" leaves usage out)
  model       the model name in the answer (default: the request's)
  dims        for embeddings without body: deterministic vectors of this
              many dimensions (default 8) computed from each input's text

From Python tests: fakellm.Proc(tmpdir, scenario) starts it as a child and
stops it (see the class below).

Record file: one JSON object per request, appended and flushed at once:
  {"ts", "method", "path", "headers": {...}, "body": <parsed JSON or text>}
Missing scenario paths answer 404 with a JSON error.
"""
import argparse
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Scenario:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.mtime = None
        self.data = {}
        self.next = {}
        self._load()

    def _load(self):
        try:
            st = os.stat(self.path)
        except OSError:
            self.data, self.next, self.mtime = {}, {}, None
            return
        if self.mtime == st.st_mtime_ns:
            return
        with open(self.path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: the scenario must be a JSON object of path -> [responses]")
        for k, v in data.items():
            if isinstance(v, dict):
                data[k] = [v]
            elif not isinstance(v, list) or not v:
                raise ValueError(f"{self.path}: {k}: a non-empty list of responses is needed")
        self.data, self.next, self.mtime = data, {}, st.st_mtime_ns

    def pick(self, path, body_text):
        with self.lock:
            try:
                self._load()
            except (OSError, ValueError) as e:
                print(f"fakellm: scenario: {e}", file=sys.stderr)
            key = path if path in self.data else None
            if key is None:
                best = [k for k in self.data if path.endswith(k)]
                key = max(best, key=len) if best else None
            if key is None:
                return None
            items = self.data[key]
            for it in items:
                m = it.get("match")
                if m and m in body_text:
                    return it
            seq = [it for it in items if not it.get("match")]
            if not seq:
                return None
            i = self.next.get(key, 0)
            self.next[key] = i + 1
            return seq[min(i, len(seq) - 1)]


class Recorder:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def add(self, rec):
        if not self.path:
            return
        line = json.dumps(rec, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


def estimate_tokens(text):
    return max(1, len(text.encode()) // 4)


def request_text(req):
    """All the prompt text of an OpenAI or Anthropic request, for estimates."""
    if not isinstance(req, dict):
        return ""
    parts = []
    if isinstance(req.get("system"), str):
        parts.append(req["system"])
    for m in req.get("messages") or []:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts += [b.get("text", "") for b in c if isinstance(b, dict)]
    return "\n".join(parts)


def pieces(text, n):
    n = max(1, int(n))
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


def openai_logprobs(content, prob, piece):
    lp = math.log(max(prob, 1e-12))
    return {"content": [{"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
                        for t in pieces(content, piece)]}


def openai_completion(resp, req, model):
    content = resp.get("content")
    refusal = resp.get("refusal")
    msg = {"role": "assistant", "content": None if refusal else content}
    if refusal:
        msg["refusal"] = refusal
    choice = {"index": 0, "message": msg, "finish_reason": "stop"}
    if "prob" in resp and content is not None:
        choice["logprobs"] = openai_logprobs(content, resp["prob"], resp.get("stream_piece", 4))
    out = {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
           "model": model, "choices": [choice]}
    usage = usage_of(resp, req, content or refusal or "")
    if usage:
        out["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                        "total_tokens": usage[0] + usage[1]}
    return out


def usage_of(resp, req, content):
    u = resp.get("usage")
    if u == "none":
        return None
    if isinstance(u, list) and len(u) == 2:
        return [int(u[0]), int(u[1])]
    return [estimate_tokens(request_text(req)), estimate_tokens(content)]


def openai_stream(resp, req, model):
    content = resp.get("content") or ""
    piece = resp.get("stream_piece", 4)
    out = []
    first = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    out.append(first)
    for p in pieces(content, piece):
        ch = {"index": 0, "delta": {"content": p}, "finish_reason": None}
        if "prob" in resp:
            ch["logprobs"] = openai_logprobs(p, resp["prob"], len(p) or 1)
        out.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": [ch]})
    last = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = usage_of(resp, req, content)
    if usage:
        last["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                         "total_tokens": usage[0] + usage[1]}
    out.append(last)
    out.append("data: [DONE]\n\n")
    return out


def anthropic_message(resp, req, model):
    content = resp.get("content") or ""
    refusal = resp.get("refusal")
    out = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
           "content": [] if refusal and not content else [{"type": "text", "text": content}],
           "stop_reason": "refusal" if refusal else "end_turn", "stop_sequence": None}
    usage = usage_of(resp, req, content)
    if usage:
        out["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
    return out


def anthropic_stream(resp, req, model):
    content = resp.get("content") or ""
    usage = usage_of(resp, req, content) or [0, 0]

    def ev(name, obj):
        return f"event: {name}\ndata: {json.dumps(obj)}\n\n"

    out = [ev("message_start", {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "usage": {"input_tokens": usage[0], "output_tokens": 0}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        ": ping\n\n"]
    for p in pieces(content, resp.get("stream_piece", 4)):
        out.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": p}}))
    out.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(ev("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": "refusal" if resp.get("refusal") else "end_turn"},
                                    "usage": {"output_tokens": usage[1]}}))
    out.append(ev("message_stop", {"type": "message_stop"}))
    return out


def fake_vector(text, dims):
    v = []
    i = 0
    while len(v) < dims:
        h = hashlib.sha256(f"{i}:{text}".encode()).digest()
        v += [(b - 127.5) / 127.5 for b in h]
        i += 1
    return v[:dims]


def embeddings(resp, req):
    inp = req.get("input") if isinstance(req, dict) else None
    if isinstance(inp, str):
        inp = [inp]
    dims = int(resp.get("dims", 8))
    data = [{"object": "embedding", "index": i, "embedding": fake_vector(str(t), dims)}
            for i, t in enumerate(inp or [])]
    text = "".join(str(t) for t in inp or [])
    return {"object": "list", "data": data, "model": (req or {}).get("model", "fake-embed"),
            "usage": {"prompt_tokens": estimate_tokens(text), "total_tokens": estimate_tokens(text)}}


class Handler(BaseHTTPRequestHandler):
    server_version = "fakellm/1"

    def log_message(self, fmt, *args):  # quiet: the record file says what happened
        pass

    def do_GET(self):
        self.handle_any(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.handle_any(self.rfile.read(n) if n > 0 else b"")

    def handle_any(self, raw):
        text = raw.decode("utf-8", "replace")
        try:
            req = json.loads(text) if text else None
        except ValueError:
            req = None
        path = self.path.split("?", 1)[0]
        self.server.recorder.add({"ts": time.time(), "method": self.command, "path": path,
                                  "headers": {k: v for k, v in self.headers.items()},
                                  "body": req if req is not None else text})
        resp = self.server.scenario.pick(path, text)
        if resp is None:
            if path.endswith("/models"):
                return self.send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]}, {})
            return self.send_json(404, {"error": {"message": f"fakellm: no scenario for {path}"}}, {})
        if resp.get("delay_ms"):
            time.sleep(resp["delay_ms"] / 1000.0)
        if resp.get("close"):
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        status = int(resp.get("status", 200))
        headers = resp.get("headers") or {}
        model = resp.get("model") or (req or {}).get("model") or "fake"
        anthropic = path.endswith("/messages")
        if "stream" in resp and isinstance(resp["stream"], list):
            return self.send_stream(status, resp["stream"], resp.get("chunk_delay_ms", 0), headers)
        if "body" in resp:
            body = resp["body"]
            if isinstance(body, str):
                return self.send_raw(status, body.encode(), headers, "application/json")
            return self.send_json(status, body, headers)
        if path.endswith("/embeddings"):
            return self.send_json(status, embeddings(resp, req), headers)
        wants_stream = isinstance(req, dict) and req.get("stream") is True
        if wants_stream and status == 200:
            chunks = anthropic_stream(resp, req, model) if anthropic else openai_stream(resp, req, model)
            return self.send_stream(status, chunks, resp.get("chunk_delay_ms", 0), headers)
        body = anthropic_message(resp, req, model) if anthropic else openai_completion(resp, req, model)
        return self.send_json(status, body, headers)

    def send_raw(self, status, data, headers, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass

    def send_json(self, status, obj, headers):
        self.send_raw(status, json.dumps(obj).encode(), headers, "application/json")

    def send_stream(self, status, chunks, delay_ms, headers):
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        try:
            self.wfile.flush()
            for i, c in enumerate(chunks):
                if i and delay_ms:
                    time.sleep(delay_ms / 1000.0)
                data = c if isinstance(c, str) else "data: " + json.dumps(c) + "\n\n"
                self.wfile.write(data.encode())
                self.wfile.flush()
        except OSError:
            pass


class Proc:
    """Runs fakellm.py as a child process for a test (stdlib only):

        with fakellm.Proc(tmpdir, {"/v1/chat/completions": [{"content": "hi"}]}) as f:
            url = f.url + "/v1"          # e.g. [llm] local = URL
            ...
            f.requests()                 # what it received, oldest first

    It writes the scenario to tmpdir, waits for the port line, and stops the
    server (SIGTERM, then SIGKILL) when the block ends, even on failure."""

    def __init__(self, tmpdir, scenario, name="fakellm"):
        import subprocess
        self.scenario_path = os.path.join(tmpdir, f"{name}-scenario.json")
        self.record_path = os.path.join(tmpdir, f"{name}-requests.jsonl")
        self.set(scenario)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--scenario", self.scenario_path,
                                      "--record", self.record_path], stdout=subprocess.PIPE,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"fakellm did not start (said {line!r})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def set(self, scenario):
        """Replaces the scenario (the server reads it again; sequences restart)."""
        tmp = self.scenario_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(scenario, f)
        os.replace(tmp, self.scenario_path)

    def requests(self, path_suffix=None):
        try:
            with open(self.record_path, encoding="utf-8") as f:
                reqs = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            reqs = []
        return [r for r in reqs if path_suffix is None or r["path"].endswith(path_suffix)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - then it is killed
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description="stand-in OpenAI-/Anthropic-compatible server for tests")
    ap.add_argument("--scenario", required=True, help="JSON file: path -> [responses]")
    ap.add_argument("--record", help="append every request to this JSONL file")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    try:
        scenario = Scenario(a.scenario)
    except (OSError, ValueError) as e:
        print(f"fakellm: {a.scenario}: {e}", file=sys.stderr)
        return 2
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    srv.scenario = scenario
    srv.recorder = Recorder(a.record)

    def stop(_sig, _frm):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
