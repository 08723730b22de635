#!/usr/bin/env python3
"""test_llm.py: the llm client (src/llm) against fakellm.py over real HTTP on
loopback, through the llm_probe driver: local first, the fallbacks to the
cloud (OpenAI and Anthropic formats) on every kind of failure and doubt,
budgets that refuse without sending, redaction of everything that leaves,
the record of what was sent, streaming and embeddings."""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import fakellm  # noqa: E402
import harness  # noqa: E402

PROBE = os.environ.get("LLM_PROBE", "build/tests/llm/llm_probe")
KEY = "sk-test-0123456789abcdefghijklmnop"
EIO, EDQUOT = -5, -122

GOOD = '{"cause":"oom","action":"restart","confidence":0.8}'
CLOUD_GOOD = '{"cause":"disk full","action":"none","confidence":0.9}'
SCHEMA = {"type": "object", "required": ["cause", "action", "confidence"], "additionalProperties": False,
          "properties": {"cause": {"type": "string"},
                         "action": {"type": "string", "enum": ["restart", "none", "clean"]},
                         "confidence": {"type": "number", "minimum": 0, "maximum": 1}}}
REQ = {"purpose": "diagnose", "system": "You are a careful SRE.", "user": "why did nginx restart?",
       "schema_name": "diagnosis", "schema": SCHEMA, "max_tokens": 200}


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connection refused


class Case:
    """A temporary state dir, a config and the probe's run."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ippoc-llm.")
        self.state = os.path.join(self.tmp, "state")
        os.mkdir(self.state)
        self.keyfile = os.path.join(self.tmp, "key")
        with open(self.keyfile, "w") as f:
            f.write(KEY + "\n")

    def config(self, **llm):
        path = os.path.join(self.tmp, "ippoc.conf")
        with open(path, "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.state}\n\n[llm]\n")
            for k, v in llm.items():
                f.write(f"{k} = {v}\n")
        return path

    def run(self, conf, reqs, env=None):
        rpath = os.path.join(self.tmp, "requests.json")
        with open(rpath, "w") as f:
            json.dump(reqs, f)
        e = dict(os.environ)
        e.pop("OPENAI_API_KEY", None)
        e.pop("ANTHROPIC_API_KEY", None)
        e.update(env or {})
        p = subprocess.run([PROBE, conf, rpath], capture_output=True, text=True, timeout=120, env=e)
        assert p.returncode == 0, f"llm_probe failed ({p.returncode}): {p.stderr}"
        out = json.loads(p.stdout)
        return out["results"], out["status"]

    def sent_log(self):
        path = os.path.join(self.state, "llm", "sent.jsonl")
        if not os.path.exists(path):
            return None, []
        with open(path) as f:
            return path, [json.loads(line) for line in f]

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def with_case(fn):
    def wrapped():
        c = Case()
        try:
            fn(c)
        finally:
            c.cleanup()
    wrapped.__name__ = fn.__name__
    return wrapped


def local_cloud_conf(c, f, cloud="openai", **extra):
    kw = dict(local=f.url + "/local/v1", cloud=cloud, cloud_url=f.url + "/cloud/v1", cloud_model="big",
              key_file=c.keyfile, timeout="1s")
    kw.update(extra)
    return c.config(**kw)


@with_case
def test_local_good_answer(c):
    with fakellm.Proc(c.tmp, {"/local/v1/chat/completions": [{"content": GOOD, "prob": 0.9}]}) as f:
        res, status = c.run(c.config(local=f.url + "/local/v1", local_model="phi"), REQ)
        r = res[0]
        assert r["rc"] == 0, r
        assert r["provider"] == "local" and r["content"] == GOOD and not r["unsure"], r
        assert abs(r["confidence"] - 0.9) < 1e-6, r
        assert [a["outcome"] for a in r["attempts"]] == ["ok"], r["attempts"]
        got = f.requests()
        assert len(got) == 1
        body = got[0]["body"]
        assert body["model"] == "phi" and body["temperature"] == 0 and body["logprobs"] is True, body
        assert body["response_format"]["type"] == "json_schema", body
        assert body["response_format"]["json_schema"]["strict"] is True
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA
        assert body["messages"][0] == {"role": "system", "content": REQ["system"]}, body
        assert "Authorization" not in got[0]["headers"], "no key goes to the local server"
        assert r["sent"] == [] and c.sent_log()[0] is None, "a loopback local server is not 'leaving'"
        assert status["requests"] == 1 and status["fallbacks"] == 0, status
        # a reasoning model's <think> block and a code fence around the JSON are not the answer
        f.set({"/local/v1/chat/completions": [{"content": "<think>hmm, OOM?</think>\n```json\n" + GOOD + "\n```"}]})
        res, _ = c.run(c.config(local=f.url + "/local/v1"), [REQ, dict(REQ, schema=None)])
        assert res[0]["rc"] == 0 and res[0]["content"].strip() == GOOD, res[0]
        assert res[1]["rc"] == 0 and res[1]["content"].startswith("\n```json"), res[1]


@with_case
def test_local_down_openai(c):
    with fakellm.Proc(c.tmp, {"/cloud/v1/chat/completions": [{"content": CLOUD_GOOD, "prob": 0.95}]}) as f:
        conf = c.config(local=f"http://127.0.0.1:{closed_port()}/v1", cloud="openai",
                        cloud_url=f.url + "/cloud/v1", cloud_model="gpt-x", key_file=c.keyfile)
        res, status = c.run(conf, REQ)
        r = res[0]
        assert r["rc"] == 0 and r["provider"] == "openai" and r["content"] == CLOUD_GOOD, r
        a = r["attempts"]
        assert [x["outcome"] for x in a] == ["failed", "ok"], a
        assert "connection refused" in a[0]["reason"], a
        got = f.requests()
        assert len(got) == 1 and got[0]["headers"]["Authorization"] == "Bearer " + KEY, got
        assert got[0]["body"]["model"] == "gpt-x"
        path, lines = c.sent_log()
        assert len(lines) == 1 and lines[0]["provider"] == "openai" and lines[0]["purpose"] == "diagnose", lines
        assert json.loads(lines[0]["body"]) == got[0]["body"], "sent.jsonl has the exact body"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert KEY not in open(path).read(), "the key is never recorded"
        assert len(r["sent"]) == 1 and r["sent"][0]["provider"] == "openai"
        assert status["fallbacks"] == 1 and status["recent_fallbacks"][0]["purpose"] == "diagnose", status
        assert "connection refused" in status["recent_fallbacks"][0]["reason"], status


@with_case
def test_local_down_anthropic(c):
    with fakellm.Proc(c.tmp, {"/cloud/v1/messages": [{"content": CLOUD_GOOD}]}) as f:
        conf = c.config(local=f"http://127.0.0.1:{closed_port()}/v1", cloud="anthropic",
                        cloud_url=f.url + "/cloud/v1", cloud_model="claude-x")
        res, _ = c.run(conf, REQ, env={"ANTHROPIC_API_KEY": "sk-ant-envkey0123456789abcdef"})
        r = res[0]
        assert r["rc"] == 0 and r["provider"] == "anthropic" and r["content"] == CLOUD_GOOD, r
        assert r["confidence"] is None, "no logprobs from anthropic: NaN"
        got = f.requests()
        h = got[0]["headers"]
        assert h["x-api-key"] == "sk-ant-envkey0123456789abcdef" and h["anthropic-version"], h
        b = got[0]["body"]
        assert b["model"] == "claude-x" and b["max_tokens"] == 200 and b["messages"][0]["role"] == "user", b
        assert "JSON schema" in b["system"] and REQ["system"] in b["system"], b
        # an anthropic answer that violates the schema fails like any other
        f.set({"/cloud/v1/messages": [{"content": '{"cause":"x"}'}]})
        res, _ = c.run(conf, REQ, env={"ANTHROPIC_API_KEY": "sk-ant-envkey0123456789abcdef"})
        assert res[0]["rc"] == EIO and "schema violation" in res[0]["attempts"][1]["reason"], res[0]
        # stop_reason refusal is a failure
        f.set({"/cloud/v1/messages": [{"content": "", "refusal": True}]})
        res, _ = c.run(conf, REQ, env={"ANTHROPIC_API_KEY": "sk-ant-envkey0123456789abcdef"})
        assert res[0]["rc"] == EIO and "refusal" in res[0]["attempts"][1]["reason"], res[0]


BAD_LOCAL = [
    ("invalid json", {"content": '{"cause": oops'}, {}, "invalid JSON"),
    ("schema violation", {"content": '{"cause":"oom","action":"reboot","confidence":0.8}'}, {}, "schema violation"),
    ("refusal", {"refusal": "I cannot help with that"}, {}, "refusal"),
    ("empty", {"content": ""}, {}, "refusal"),
    ("500", {"status": 500, "body": {"error": {"message": "model crashed"}}}, {}, "HTTP 500: model crashed"),
    ("429 long", {"status": 429, "headers": {"Retry-After": "30"}, "body": {"error": "busy"}}, {}, "HTTP 429"),
    ("timeout", {"content": GOOD, "delay_ms": 2500}, {}, "timeout"),
    ("hang up", {"close": True}, {}, "no answer"),
    ("slow stream", {"content": GOOD, "chunk_delay_ms": 300, "stream_piece": 2}, {"stream": True}, "timeout"),
]


@with_case
def test_each_failure_falls_back(c):
    for name, local, extra, why in BAD_LOCAL:
        scen = {"/local/v1/chat/completions": [local],
                "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD, "prob": 0.9}]}
        with fakellm.Proc(c.tmp, scen, name="f" + str(abs(hash(name)))) as f:
            t0 = time.monotonic()
            res, _ = c.run(local_cloud_conf(c, f), dict(REQ, **extra))
            r = res[0]
            assert r["rc"] == 0 and r["provider"] == "openai" and r["content"] == CLOUD_GOOD, (name, r)
            a = r["attempts"]
            assert [x["provider"] for x in a] == ["local", "openai"], (name, a)
            assert a[0]["outcome"] == "failed" and why in a[0]["reason"], (name, a)
            assert len(f.requests("/cloud/v1/chat/completions")) == 1, name
            if name == "429 long":
                assert len(f.requests("/local/v1/chat/completions")) == 1, "a long Retry-After is not waited"
                assert time.monotonic() - t0 < 5
            if extra.get("stream"):
                assert r["deltas"] and r["deltas"].endswith(CLOUD_GOOD), (name, r["deltas"])


@with_case
def test_short_retry_after_is_honoured(c):
    scen = {"/local/v1/chat/completions": [{"status": 429, "headers": {"Retry-After": "1"}, "body": {}},
                                           {"content": GOOD, "prob": 0.9}],
            "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD}]}
    with fakellm.Proc(c.tmp, scen) as f:
        res, _ = c.run(local_cloud_conf(c, f, timeout="5s"), REQ)
        r = res[0]
        assert r["rc"] == 0 and r["provider"] == "local" and r["content"] == GOOD, r
        local = f.requests("/local/v1/chat/completions")
        assert len(local) == 2 and local[1]["ts"] - local[0]["ts"] >= 0.9, local
        assert f.requests("/cloud/v1/chat/completions") == []


@with_case
def test_streaming(c):
    scen = {"/local/v1/chat/completions": [{"content": GOOD, "prob": 0.8, "stream_piece": 3}]}
    with fakellm.Proc(c.tmp, scen) as f:
        res, _ = c.run(c.config(local=f.url + "/local/v1"), dict(REQ, stream=True))
        r = res[0]
        assert r["rc"] == 0 and r["content"] == GOOD and r["deltas"] == GOOD, r
        assert abs(r["confidence"] - 0.8) < 1e-6 and r["prompt_tokens"] > 0, r
        assert f.requests()[0]["body"]["stream"] is True
    # keep-alives, events split mid-line and [DONE], written raw
    chunks = [": keep-alive\n\n", 'data: {"choices":[{"delta":{"content":"{\\"cause\\":\\"oom\\","}}]}\n',
              '\ndata: {"choices":[{"delta":{"content":"\\"action\\":\\"none\\",\\"confidence\\":1}"}}]}\n\nda',
              'ta: [DONE]\n\n']
    with fakellm.Proc(c.tmp, {"/v1/chat/completions": [{"stream": chunks, "chunk_delay_ms": 50}]}) as f:
        res, _ = c.run(c.config(local=f.url + "/v1"), dict(REQ, stream=True))
        r = res[0]
        assert r["rc"] == 0 and json.loads(r["content"]) == {"cause": "oom", "action": "none", "confidence": 1}, r
        assert r["completion_tokens"] > 0, "usage estimated when the stream has none"


@with_case
def test_unsure_asks_cloud_and_prefers_it(c):
    scen = {"/local/v1/chat/completions": [{"content": GOOD, "prob": 0.2}],
            "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD, "prob": 0.9}]}
    with fakellm.Proc(c.tmp, scen) as f:
        conf = local_cloud_conf(c, f, unsure_below="0.5")
        res, _ = c.run(conf, REQ)
        r = res[0]
        assert r["rc"] == 0 and r["provider"] == "openai" and r["content"] == CLOUD_GOOD and not r["unsure"], r
        assert [a["outcome"] for a in r["attempts"]] == ["unsure", "ok"], r["attempts"]
        assert "0.200" in r["attempts"][0]["reason"], r["attempts"]
        # the validator's doubt works the same way
        f.set({"/local/v1/chat/completions": [{"content": GOOD, "prob": 0.99}],
               "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD, "prob": 0.9}]})
        res, _ = c.run(conf, dict(REQ, unsure_if="oom"))
        assert res[0]["provider"] == "openai" and res[0]["attempts"][0]["outcome"] == "unsure", res[0]
        # the cloud failing leaves the local unsure answer, marked unsure
        f.set({"/local/v1/chat/completions": [{"content": GOOD, "prob": 0.2}],
               "/cloud/v1/chat/completions": [{"status": 503, "body": {"error": "down"}}]})
        res, _ = c.run(conf, REQ)
        r = res[0]
        assert r["rc"] == 0 and r["provider"] == "local" and r["unsure"] and r["content"] == GOOD, r


@with_case
def test_both_bad_is_eio(c):
    scen = {"/local/v1/chat/completions": [{"content": "not json"}],
            "/cloud/v1/chat/completions": [{"status": 500, "body": {"error": {"message": "boom"}}}]}
    with fakellm.Proc(c.tmp, scen) as f:
        res, status = c.run(local_cloud_conf(c, f), REQ)
        r = res[0]
        assert r["rc"] == EIO and r["content"] is None, r
        assert [a["outcome"] for a in r["attempts"]] == ["failed", "failed"], r["attempts"]
        assert "boom" in r["err"], r["err"]
        assert status["failures"] == 1 and status["local"]["failures"] == 1 and status["cloud"]["failures"] == 1


@with_case
def test_unsafe_proposal_rejected(c):
    unsafe = '{"cause":"oom","action":"clean","confidence":0.9,"cmd":"rm -rf /"}'
    scen = {"/local/v1/chat/completions": [{"content": '{"cause":"rm -rf / it","action":"clean","confidence":0.9}',
                                            "prob": 0.99}],
            "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD}]}
    with fakellm.Proc(c.tmp, scen) as f:
        conf = local_cloud_conf(c, f)
        res, _ = c.run(conf, dict(REQ, invalid_if="rm -rf"))
        r = res[0]
        assert r["rc"] == 0 and r["provider"] == "openai", r
        assert r["attempts"][0]["outcome"] == "failed" and "unsafe proposal" in r["attempts"][0]["reason"], r
        f.set({"/local/v1/chat/completions": [{"content": unsafe}],
               "/cloud/v1/chat/completions": [{"content": '{"cause":"rm -rf","action":"clean","confidence":1}'}]})
        res, _ = c.run(conf, dict(REQ, invalid_if="rm -rf"))
        r = res[0]
        assert r["rc"] == EIO and r["content"] is None, r
        assert "schema violation" in r["attempts"][0]["reason"], "an extra property is refused first"
        assert "rejected" in r["attempts"][1]["reason"], r["attempts"]


@with_case
def test_budget_per_hour(c):
    scen = {"/v1/chat/completions": [{"content": GOOD, "usage": [100, 400]}]}
    with fakellm.Proc(c.tmp, scen) as f:
        conf = c.config(local=f.url + "/v1", tokens_per_hour="1000")
        res, status = c.run(conf, [dict(REQ, max_tokens=2000), dict(REQ, max_tokens=500),
                                   dict(REQ, max_tokens=600), dict(REQ, max_tokens=300)])
        assert res[0]["rc"] == EDQUOT and "tokens_per_hour" in res[0]["err"], res[0]
        assert res[1]["rc"] == 0, res[1]
        assert res[2]["rc"] == EDQUOT, "500 reported + 600 asked > 1000"
        assert res[3]["rc"] == 0, res[3]
        assert len(f.requests()) == 2, "a refused request sends nothing"
        assert status["tokens_hour"] == 1000 and status["refused"] == 2, status


@with_case
def test_budget_per_incident(c):
    scen = {"/local/v1/chat/completions": [{"content": GOOD, "usage": [50, 450]}],
            "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD, "usage": [50, 450]}]}
    with fakellm.Proc(c.tmp, scen) as f:
        conf = local_cloud_conf(c, f, tokens_per_incident="600")
        res, _ = c.run(conf, [dict(REQ, incident=7, max_tokens=500), dict(REQ, incident=7, max_tokens=500),
                              dict(REQ, incident=8, max_tokens=500), dict(REQ, max_tokens=500)])
        assert [r["rc"] for r in res] == [0, EDQUOT, 0, 0], [(r["rc"], r["err"]) for r in res]
        assert "incident 7" in res[1]["err"], res[1]
        assert len(f.requests()) == 3 and f.requests("/cloud/v1/chat/completions") == []
        # a fallback that would go over the incident's budget is not sent either
        f.set({"/local/v1/chat/completions": [{"content": "bad", "usage": [50, 450]}],
               "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD}]})
        res, _ = c.run(conf, [dict(REQ, incident=9, max_tokens=500)])
        r = res[0]
        assert r["rc"] == EDQUOT and [a["outcome"] for a in r["attempts"]] == ["failed", "over_budget"], r
        assert f.requests("/cloud/v1/chat/completions") == []


SECRETS = {
    "openai key": "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2",
    "aws key": "AKIAQWERTYUIOPASDFGH",
    "github token": "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "slack token": "xoxp-2468013579-abcdefghijkl",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRtaW4ifQ.c2lnbmF0dXJlLXZhbHVl",
    "bearer": "Zm9vYmFyYmF6cXV4MTIzNDU2",
    "basic": "YWRtaW46aHVudGVyMg==",
    "password": "correct-horse-battery",
    "secret": "s3cr3tValue!",
    "token": "tkn_98765zyx",
    "pem": "MIIEpAIBAAKCAQEA7bq98xKqZ",
    "email": "alice.ops@example.org",
    "ipv4": "203.0.113.77",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "host": "db-prod-7.corp.example",
}
LEAKY = (f"Logs: api_key={SECRETS['openai key']} aws={SECRETS['aws key']} gh {SECRETS['github token']}\n"
         f"slack {SECRETS['slack token']} session {SECRETS['jwt']}\n"
         f"Authorization: Bearer {SECRETS['bearer']}\nAuthorization: Basic {SECRETS['basic']}\n"
         f"password={SECRETS['password']} secret: \"{SECRETS['secret']}\" token={SECRETS['token']}\n"
         f"-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['pem']}\nabcdef\n-----END RSA PRIVATE KEY-----\n"
         f"mail {SECRETS['email']} from {SECRETS['ipv4']} and {SECRETS['ipv6']} on {SECRETS['host']}:5432\n"
         "nginx restarted at 03:12 after an OOM kill")


@with_case
def test_redaction(c):
    scen = {"/local/v1/chat/completions": [{"content": "bad"}],
            "/cloud/v1/chat/completions": [{"content": CLOUD_GOOD}],
            "/cloud/v1/messages": [{"content": CLOUD_GOOD}]}
    with fakellm.Proc(c.tmp, scen) as f:
        for cloud in ("openai", "anthropic"):
            conf = local_cloud_conf(c, f, cloud=cloud, redact_hosts="db-prod-7.corp.example, other")
            req = dict(REQ, system="Context for " + SECRETS["host"] + " owner " + SECRETS["email"], user=LEAKY)
            res, _ = c.run(conf, req)
            assert res[0]["rc"] == 0 and res[0]["provider"] == cloud, res[0]
        local = f.requests("/local/v1/chat/completions")
        assert SECRETS["password"] in json.dumps(local[0]["body"]), "loopback local gets the raw text"
        cloud_reqs = f.requests("/cloud/v1/chat/completions") + f.requests("/cloud/v1/messages")
        assert len(cloud_reqs) == 2
        path, lines = c.sent_log()
        assert len(lines) == 2 and {x["provider"] for x in lines} == {"openai", "anthropic"}, lines
        sent_text = open(path).read()
        for where, text in (("fakellm", json.dumps([r["body"] for r in cloud_reqs])), ("sent.jsonl", sent_text),
                            ("on_sent", json.dumps(res[0]["sent"]))):
            text = text.replace("\\/", "/")
            for kind, s in SECRETS.items():
                for probe in (s, json.dumps(s)[1:-1]):
                    assert probe not in text, f"{kind} ({s}) reached {where}"
            for ph in ("<secret>", "<private-key>", "<email>", "<ip>", "<host>"):
                assert ph in text.replace("\\u003c", "<").replace("\\u003e", ">"), f"{ph} missing in {where}"
        assert "nginx restarted at 03:12" in sent_text, "ordinary text survives"


@with_case
def test_remote_local_is_redacted(c):
    # [::ffff:127.0.0.1] reaches fakellm but is not a loopback name: treated as leaving the machine
    with fakellm.Proc(c.tmp, {"/v1/chat/completions": [{"content": GOOD}]}) as f:
        conf = c.config(local=f"http://[::ffff:127.0.0.1]:{f.port}/v1")
        res, status = c.run(conf, dict(REQ, user=LEAKY))
        assert res[0]["rc"] == 0 and res[0]["provider"] == "local", res[0]
        assert status["local"]["redacted"] is True, status
        body = json.dumps(f.requests()[0]["body"])
        assert SECRETS["password"] not in body and SECRETS["openai key"] not in body and "<secret>" in body, body
        _, lines = c.sent_log()
        assert len(lines) == 1 and lines[0]["provider"] == "local", lines


@with_case
def test_sent_log_rotates(c):
    with fakellm.Proc(c.tmp, {"/v1/chat/completions": [{"content": GOOD}]}) as f:
        os.makedirs(os.path.join(c.state, "llm"), exist_ok=True)
        path = os.path.join(c.state, "llm", "sent.jsonl")
        with open(path, "wb") as fh:
            fh.truncate(10 << 20)  # sparse: 10 MB without writing them
        conf = c.config(cloud="openai", cloud_url=f.url + "/v1", key_file=c.keyfile)
        res, _ = c.run(conf, REQ)
        assert res[0]["rc"] == 0, res[0]
        assert os.path.getsize(path + ".1") == 10 << 20, "the full log was set aside"
        _, lines = c.sent_log()
        assert len(lines) == 1 and stat.S_IMODE(os.stat(path).st_mode) == 0o600, lines


@with_case
def test_embeddings(c):
    with fakellm.Proc(c.tmp, {"/v1/embeddings": [{"dims": 6}]}) as f:
        conf = c.config(embeddings=f.url + "/v1", embeddings_model="e5")
        res, status = c.run(conf, [{"embed": ["alpha", "beta"], "dims": 6}, {"embed": ["x"], "dims": 4}])
        r = res[0]
        assert r["rc"] == 0 and len(r["vectors"]) == 2 and r["dims"] == 6, r
        for v in r["vectors"]:
            assert abs(sum(x * x for x in v) - 1) < 1e-4, v
        assert r["vectors"][0] != r["vectors"][1]
        assert res[1]["rc"] == EIO and "dimensions" in res[1]["err"], res[1]
        got = f.requests()[0]
        assert got["body"] == {"model": "e5", "input": ["alpha", "beta"]}, got
        assert status["embeddings"]["dims"] == 6


@with_case
def test_no_provider_and_bad_config(c):
    res, status = c.run(c.config(), [REQ])
    assert res[0]["rc"] == -2 and status["available"] is False, res[0]
    conf = c.config(cloud="azure")
    rpath = os.path.join(c.tmp, "r.json")
    with open(rpath, "w") as fh:
        json.dump(REQ, fh)
    p = subprocess.run([PROBE, conf, rpath], capture_output=True, text=True)
    assert p.returncode == 2 and "ippoc.conf:" in p.stderr and "cloud" in p.stderr, p.stderr
    conf = c.config(unsure_below="2")
    p = subprocess.run([PROBE, conf, rpath], capture_output=True, text=True)
    assert p.returncode == 2 and "unsure_below" in p.stderr, p.stderr


def main():
    tests = [test_local_good_answer, test_local_down_openai, test_local_down_anthropic, test_each_failure_falls_back,
             test_short_retry_after_is_honoured, test_streaming, test_unsure_asks_cloud_and_prefers_it,
             test_both_bad_is_eio, test_unsafe_proposal_rejected, test_budget_per_hour, test_budget_per_incident,
             test_redaction, test_remote_local_is_redacted, test_sent_log_rotates,
             test_embeddings, test_no_provider_and_bad_config]
    harness.run(tests, sys.argv[1:])


if __name__ == "__main__":
    main()
