"""test_skill.py: the OpenClaw skill (integrations/openclaw/ippoc/SKILL.md)
against the real `ippoc` binary, so the skill cannot drift from the CLI:
its frontmatter parses as YAML (python3-yaml) with the keys OpenClaw reads
(name, description, metadata.openclaw.requires.bins = ["ippoc"]) and their
types; every `ippoc COMMAND` in the body's code exists in `ippoc --help`;
every --option a command line in the body gives exists in that command's
help (or is a global option); the body states the approval rule. Quick, no
daemon."""
import os
import re
import subprocess
import sys

import yaml

from harness import IPPOC, run

SRC = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SKILL = os.path.join(SRC, "integrations", "openclaw", "ippoc", "SKILL.md")
OS_NAMES = {"darwin", "linux", "win32"}
REQUIRES_KEYS = {"bins", "anyBins", "env", "config"}


def split_skill(path):
    """(frontmatter dict, body text); the file must start with a --- block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.match(r"---\n(.*?)\n---\n(.*)\Z", text, re.S)
    assert m, f"{path}: no YAML frontmatter between '---' lines at the top"
    front = yaml.safe_load(m.group(1))
    assert isinstance(front, dict), f"{path}: the frontmatter is a {type(front).__name__}, not a mapping"
    return front, m.group(2)


def ippoc(*args):
    p = subprocess.run([IPPOC, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def help_commands():
    """The command names `ippoc --help` lists under 'commands:'."""
    rc, out, err = ippoc("--help")
    assert rc == 0, (rc, err)
    names, inside = set(), False
    for line in out.splitlines():
        if line.startswith("commands:"):
            inside = True
        elif inside and not line.strip():
            break
        elif inside and line.startswith("  ") and not line.startswith("   "):
            first = line.split()[0]
            names.update(first.split("|"))  # "evolve run|status|stop"
    assert {"status", "approve", "audit"} <= names, names
    return names


def global_options():
    rc, out, _ = ippoc("--help")
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out.split("global options", 1)[1]))


def code_lines(body):
    """The lines of fenced code blocks and the inline `code` spans of body."""
    lines, fence = [], False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            lines.append(line.split(" #", 1)[0])
        else:
            lines += re.findall(r"`([^`]+)`", line)
    return lines


def ippoc_invocations(body):
    """[(command, [--options], line)] for each `ippoc COMMAND ...` in code."""
    out = []
    for line in code_lines(body):
        oc = re.match(r"\s*openclaw mcp add \S+ --command (\S+)((?: --arg \S+)+)", line)
        if oc:  # the command OpenClaw will run: ippoc ARGS
            assert oc.group(1) == "ippoc", line
            line = "ippoc " + " ".join(re.findall(r"--arg (\S+)", oc.group(2)))
        elif line.lstrip().startswith("openclaw"):
            continue
        for m in re.finditer(r"(?:^|[\s(])ippoc((?:\s+--?[a-z][\w-]*(?:\s+[^\s-]\S*)?)*)\s+([a-z][a-z-]*)(.*)", line):
            rest = re.split(r"\s(?:&&|\||;)\s", m.group(3))[0]
            out.append((m.group(2), re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest), line.strip()))
    return out


def test_frontmatter():
    front, body = split_skill(SKILL)
    assert front.get("name") == "ippoc", front.get("name")
    desc = front.get("description")
    assert isinstance(desc, str) and 20 <= len(desc) <= 1024, desc
    assert "approv" in desc, "the description says that changes need the user's approval"
    meta = front.get("metadata")
    assert isinstance(meta, dict) and isinstance(meta.get("openclaw"), dict), meta
    oc = meta["openclaw"]
    req = oc.get("requires")
    assert isinstance(req, dict), req
    assert set(req) <= REQUIRES_KEYS, f"unknown requires keys {set(req) - REQUIRES_KEYS}"
    assert req.get("bins") == ["ippoc"], req.get("bins")
    assert all(isinstance(b, str) for b in req["bins"])
    if "emoji" in oc:
        assert isinstance(oc["emoji"], str) and oc["emoji"], oc["emoji"]
    if "os" in oc:
        assert isinstance(oc["os"], list) and set(oc["os"]) <= OS_NAMES, oc["os"]
    if "homepage" in front:
        assert isinstance(front["homepage"], str) and front["homepage"].startswith("https://")
    assert body.strip(), "empty body"


def test_commands_exist():
    _, body = split_skill(SKILL)
    names = help_commands()
    calls = ippoc_invocations(body)
    used = {c for c, _, _ in calls}
    # what the skill must teach: inspect, propose, approve, register the MCP server
    must = {"status", "services", "incidents", "why", "metrics", "anomalies", "logs", "ask",
            "pending", "audit", "history", "propose", "approve", "mcp"}
    assert must <= used, f"the skill does not show {sorted(must - used)}"
    missing = sorted({f"{c} (in: {line})" for c, _, line in calls if c not in names})
    assert not missing, f"commands the skill names that `ippoc --help` does not list: {missing}"


def test_options_exist():
    _, body = split_skill(SKILL)
    glob = global_options()
    bad = []
    for cmd, opts, line in ippoc_invocations(body):
        rc, out, err = ippoc("help", cmd)
        assert rc == 0, (cmd, rc, err)
        known = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out)) | glob
        bad += [f"{o} (in: {line})" for o in opts if o not in known]
    assert not bad, f"options the skill gives that the command's help does not list: {bad}"


def test_approval_rule():
    _, body = split_skill(SKILL)
    text = " ".join(body.split()).lower()
    assert "explicitly approves" in text or "explicit approval" in text, "the approval rule is missing"
    assert "never run shell fixes" in text, "the no-shell rule is missing"
    # the approve example comes after the words that gate it
    assert text.index("only after the user") < text.index("ippoc approve 7"), "approve shown before the rule"


def test_self_check():
    """The checker itself finds drift: an unknown command and an unknown option."""
    calls = ippoc_invocations("```\nippoc --json frobnicate --now\nippoc audit --nosuch\n```\n")
    assert ("frobnicate", ["--now"], "ippoc --json frobnicate --now") in calls, calls
    assert "frobnicate" not in help_commands()
    rc, out, _ = ippoc("help", "audit")
    assert rc == 0 and "--nosuch" not in out and "--verify" in out


if __name__ == "__main__":
    run([test_frontmatter, test_commands_exist, test_options_exist, test_approval_rule, test_self_check],
        sys.argv[1:])
