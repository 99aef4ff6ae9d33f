#!/usr/bin/env python3
"""Turns OWASP CRS's rule regression tests (go-ftw YAML) into a labelled JSONL corpus
for `palisade eval`, with a `category` per CRS rule file and a `part` per test.

  python3 scripts/crs-corpus.py ../shared/data/crs-regression/v3.3.4/tests > /tmp/crs.jsonl
  python3 scripts/crs-corpus.py --all-files ../shared/data/crs-regression/v3.3.4/tests > /tmp/crs-all.jsonl

Every line also names the test's rule (`rule`), whether it must fire (`expect`:
`fires`/`silent`) and its rule file (`rule_file`), for rule-level pass rates
(`cargo run -p palisade-detect --example crs_regression`). `--all-files` keeps the files
skipped by default (911, 922, 943), categorised by file family.

A stage whose output expects its own rule to fire (`log_contains: id "N"`) is an attack;
one that expects it not to fire (`no_log_contains`) is labelled normal: these are CRS's
false-positive tests, hard benign look-alikes. Skipped, and counted on stderr: stages
given only as `encoded_request`/`raw_request` (hand-built byte streams, often testing
the web server's own parser), stages judged by `status` alone (server behaviour, not a
rule), and files about CRS internals (911 method policy, 922 multipart, 943 session
fixation) with no counterpart in the engine.
"""
import json
import os
import re
import sys
import urllib.parse

import yaml

CATEGORY = {
    "913": "scanner", "920": "protocol", "921": "protocol_attack", "930": "lfi",
    "931": "rfi", "932": "rce", "933": "php", "934": "nodejs", "941": "xss",
    "942": "sqli", "944": "java",
}
STANDARD = {"host", "user-agent", "accept", "accept-encoding", "accept-language",
            "accept-charset", "connection", "content-type", "content-length",
            "cache-control", "pragma", "keep-alive", "proxy-connection", "te"}


def part_of(uri, headers, data):
    """Where the payload sits: body, header, cookie, query or path."""
    if data:
        return "body"
    extra = [k for k in headers if k.lower() not in STANDARD]
    if any(k.lower() == "cookie" for k in extra):
        return "cookie"
    if any(k.lower() not in ("cookie",) for k in extra):
        return "header"
    return "query" if "?" in uri else "path"


def rule_of(out, key):
    """The rule id a stage's `log_contains`/`no_log_contains` names."""
    m = re.search(r"id \"?(\d+)", str(out.get(key, "")))
    return int(m.group(1)) if m else None


def main(root, all_files=False):
    skipped = {"encoded_or_raw": 0, "status_only": 0, "file": 0}
    for d in sorted(os.listdir(root)):
        path = os.path.join(root, d)
        if not os.path.isdir(path):
            continue
        family = d.split("-")[1] if "-" in d else ""
        category = CATEGORY.get(family) or (f"crs-{family}" if all_files else None)
        for f in sorted(os.listdir(path)):
            if not f.endswith(".yaml"):
                continue
            if category is None:
                skipped["file"] += 1
                continue
            doc = yaml.safe_load(open(os.path.join(path, f), encoding="utf-8", errors="replace"))
            for test in doc.get("tests", []):
                for st in test.get("stages", []):
                    stage = st.get("stage", st)
                    inp, out = stage.get("input", {}), stage.get("output", {})
                    if "encoded_request" in inp or "raw_request" in inp:
                        skipped["encoded_or_raw"] += 1
                        continue
                    if "log_contains" in out:
                        label, expect, rule = "attack", "fires", rule_of(out, "log_contains")
                    elif "no_log_contains" in out:
                        label, expect, rule = "normal", "silent", rule_of(out, "no_log_contains")
                    else:
                        skipped["status_only"] += 1
                        continue
                    headers = {str(k): str(v) for k, v in (inp.get("headers") or {}).items()}
                    data = inp.get("data") or ""
                    if isinstance(data, list):
                        data = "\r\n".join(str(x) for x in data)
                    uri = str(inp.get("uri", "/"))
                    print(json.dumps({
                        "method": str(inp.get("method", "GET")),
                        "uri": uri,
                        "version": str(inp.get("version", "HTTP/1.1")).replace("HTTP/1.0", "HTTP/1.1"),
                        "headers": [[k, v] for k, v in headers.items()],
                        "body": str(data),
                        "label": label,
                        "category": category,
                        "part": part_of(uri, headers, data),
                        "source": f"crs-3.3.4:{test.get('test_title', f)}",
                        "rule": rule,
                        "expect": expect,
                        "rule_file": d,
                    }))
    print(f"skipped: {skipped}", file=sys.stderr)


if __name__ == "__main__":
    argv = [a for a in sys.argv[1:] if a != "--all-files"]
    main(argv[0] if argv else "../shared/data/crs-regression/v3.3.4/tests",
         all_files="--all-files" in sys.argv[1:])
