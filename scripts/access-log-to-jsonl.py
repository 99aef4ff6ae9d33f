#!/usr/bin/env python3
"""Turns a combined-format access log into the `palisade eval` JSONL corpus format,
every line labelled as given (default "normal"), so the request model's false
positives can be measured on ordinary traffic that is not CSIC 2010.

usage: access-log-to-jsonl.py LOG [LABEL] > out.jsonl
"""
import json
import re
import sys

LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) (HTTP/[0-9.]+)" \d+ \S+ "([^"]*)" "([^"]*)"')

label = sys.argv[2] if len(sys.argv) > 2 else "normal"
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        m = LINE.match(line)
        if not m:
            continue
        method, uri, version, referer, agent = m.groups()
        headers = [["Host", "example.com"], ["User-Agent", agent]]
        if referer and referer != "-":
            headers.append(["Referer", referer])
        print(json.dumps({"method": method, "uri": uri, "version": version,
                          "headers": headers, "body": "", "label": label}))
