#!/usr/bin/env python3
"""Random strings and `grep -P`'s answers for CRS rule 920120's pattern (look-behind),
the reference the native matcher (`crates/detect/src/seclang/entity_semicolon.rs`) is
tested against.

  python3 scripts/crs-920120-grep.py > crates/detect/tests/fixtures/crs-920120-grep.tsv

Deterministic (seed 920120). Each line: `1` or `0` (grep matched the string), the byte
offset of grep's first match (`-o -b`, relative to the line) or `-`, the string. The
strings are built from the entity parts of the look-behind (with near misses), quotes,
`=`, `;`, `&` and letters, so that every branch is exercised.
"""
import random
import subprocess
import tempfile

PATTERN = ("(?<!&(?:[aAoOuUyY]uml)|&(?:[aAeEiIoOuU]circ)|&(?:[eEiIoOuUyY]acute)|"
           "&(?:[aAeEiIoOuU]grave)|&(?:[cC]cedil)|&(?:[aAnNoO]tilde)|&(?:amp)|&(?:apos));|['\"=]")
PIECES = ["&", ";", "'", "\"", "=", "uml", "circ", "acute", "grave", "cedil", "tilde", "amp",
          "apos", "Amp", "szlig", "a", "A", "o", "e", "E", "c", "C", "n", "y", "x", "I", "u",
          ".txt", "_", "-", " ", "1", "é"]
# Whole entities the look-behind lists, and near misses it does not.
ENTITIES = ["&auml;", "&Ouml;", "&Ecirc;", "&icirc;", "&eacute;", "&Yacute;", "&ograve;",
            "&Ccedil;", "&ntilde;", "&Otilde;", "&amp;", "&apos;", "&aacute;", "&Amp;",
            "&uml;", "&szlig;", "&ycirc;", "&&amp;", "&amp;;"]


def main():
    rng = random.Random(920120)
    strings = []
    for _ in range(3000):
        n = rng.randint(1, 8)
        s = "".join(rng.choice(PIECES if rng.random() < 0.7 else ENTITIES)
                    for _ in range(n))
        # Most strings without a quote or `=`, so the `;` branch decides them.
        if rng.random() < 0.8:
            s = s.replace("'", "").replace("\"", "").replace("=", "")
        if not s:
            s = "x"
        strings.append(s)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False) as f:
        f.write("\n".join(strings) + "\n")
        path = f.name
    out = subprocess.run(["grep", "-P", "-n", "-o", "-b", PATTERN, path],
                         capture_output=True, check=False).stdout.decode("utf-8")
    starts, pos = [], 0
    for s in strings:
        starts.append(pos)
        pos += len(s.encode("utf-8")) + 1
    first = {}
    for line in out.splitlines():
        no, off, _m = line.split(":", 2)
        no = int(no) - 1
        first.setdefault(no, int(off) - starts[no])
    for i, s in enumerate(strings):
        if i in first:
            print(f"1\t{first[i]}\t{s}")
        else:
            print(f"0\t-\t{s}")


if __name__ == "__main__":
    main()
