#!/usr/bin/env bash
# Evaluates palisade-flows on every capture in the shared pcaps folder:
#   1. per file, TCP and UDP flows found vs `tshark -q -z conv,tcp -z conv,udp`;
#   2. JA3 / JA3S / JA4 values found vs the README's expectations (tshark, Suricata);
#   3. which captures raised which flow scenario in `palisade ingest` (scan, flood and
#      benign captures).
# Prints Markdown tables (docs/BENCHMARKS.md keeps the last run).
#
# usage: scripts/eval-flows.sh [PCAP_DIR]   (default ../shared/data/pcaps)
# needs: tshark (apt-get install tshark), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PCAPS=${1:-../shared/data/pcaps}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q -p palisade-flows --example pcap_flows
cargo build -q -p palisade
FLOWS="$CARGO_TARGET_DIR/debug/examples/pcap_flows"
PALISADE="$CARGO_TARGET_DIR/debug/palisade"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "### TCP+UDP flows per capture: palisade-flows vs tshark conv"
echo
echo "| capture | packets | malformed | tshark tcp | ours tcp | tshark udp | ours udp | match |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
find "$PCAPS" -name '*.pcap' -o -name '*.pcapng' | sort | while read -r f; do
  rel=${f#"$PCAPS"/}
  "$FLOWS" "$f" > "$OUT/flows.jsonl"
  tshark -q -z conv,tcp -z conv,udp -r "$f" > "$OUT/tshark.txt" 2>/dev/null || true
  python3 - "$rel" "$OUT/flows.jsonl" "$OUT/tshark.txt" <<'PY'
import json, sys
rel, flows, tsh = sys.argv[1:4]
ours = {"tcp": 0, "udp": 0}
summary = {}
for line in open(flows):
    d = json.loads(line)
    if "summary" in d:
        summary = d["summary"]
    elif d["protocol"] in ours:
        ours[d["protocol"]] += 1
theirs = {"tcp": 0, "udp": 0}
section = None
for line in open(tsh):
    if line.startswith("TCP Conversations"): section = "tcp"
    elif line.startswith("UDP Conversations"): section = "udp"
    elif "<->" in line and section: theirs[section] += 1
malformed = sum(summary.get(k, 0) for k in ("malformed_link", "malformed_ip", "malformed_transport", "malformed_arp"))
ok = "yes" if ours == theirs else "no"
print(f"| {rel} | {summary.get('packets', 0)} | {malformed} | {theirs['tcp']} | {ours['tcp']} | {theirs['udp']} | {ours['udp']} | {ok} |")
PY
done

echo
echo "### TLS fingerprints (client → server:port): ours"
echo
echo "| capture | SNI | JA3 | JA3S | JA4 |"
echo "|---|---|---|---|---|"
for f in "$PCAPS"/tls/*; do
  "$FLOWS" "$f" | python3 -c '
import json, sys
rel = sys.argv[1]
for line in sys.stdin:
    d = json.loads(line)
    a = d.get("app", {})
    if "summary" in d or not (a.get("ja3") or a.get("ja3s")): continue
    cols = [a.get(k) or "-" for k in ("tls_sni", "ja3", "ja3s", "ja4")]
    print("| " + rel + " | " + " | ".join(cols) + " |")
' "${f#"$PCAPS"/}"
done

echo
echo "### Flow scenarios raised by \`palisade ingest\`"
echo
echo "| capture | flows | scenario alerts |"
echo "|---|---:|---|"
for f in "$PCAPS"/scan/* "$PCAPS"/flood/* "$PCAPS"/http/* "$PCAPS"/tls/* "$PCAPS"/dns/* "$PCAPS"/ssh/* "$PCAPS"/dhcp/*; do
  d=$(mktemp -d -p "$OUT")
  line=$(PALISADE_LOG=warn "$PALISADE" ingest --quiet --data-dir "$d" "$f" 2>&1 | tr '\n' ' ')
  flows=$(sed -nE 's/.*capture, [0-9]+ packets, ([0-9]+) flows.*/\1/p' <<<"$line")
  alerts=$(sed -nE 's/.* ([0-9]+ scenario alerts[^)]*\)?).*/\1/p' <<<"$line" | sed -E 's/ in [0-9.]+s.*//')
  echo "| ${f#"$PCAPS"/} | ${flows:-?} | ${alerts:-?} |"
done

echo
echo "### Devices found by \`palisade ingest\` (DHCP, DNS/mDNS and browsing captures)"
echo
echo "| capture | device | vendor | addresses | names | OS guess (hints) | services |"
echo "|---|---|---|---|---|---|---|"
for f in "$PCAPS"/dhcp/* "$PCAPS"/dns/* "$PCAPS"/http/zeek_wikipedia.pcap; do
  d=$(mktemp -d -p "$OUT")
  PALISADE_LOG=warn "$PALISADE" ingest --quiet --no-detect --data-dir "$d" "$f" >/dev/null 2>&1 || true
  python3 - "${f#"$PCAPS"/}" "$d/palisade.db" <<'PY'
import json, sqlite3, sys
rel, db = sys.argv[1], sys.argv[2]
try:
    rows = sqlite3.connect(db).execute("SELECT detail FROM devices ORDER BY id").fetchall()
except sqlite3.Error as e:
    rows = []
if not rows:
    print(f"| {rel} | (none) | | | | | |")
for (detail,) in rows:
    d = json.loads(detail)
    hints = ", ".join(h for h in d.get("os_hints", []) if not h.startswith("dhcp-params"))
    os_ = (d.get("os_guess") or "-") + (f" ({hints})" if hints else "")
    cells = [d["key"], d.get("vendor") or "-", ", ".join(d.get("ips", [])) or "-",
             ", ".join(d.get("hostnames", [])) or "-", os_, ", ".join(d.get("services", [])) or "-"]
    print("| " + rel + " | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
PY
done
