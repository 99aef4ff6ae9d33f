#!/usr/bin/env bash
# Do two Palisade binaries' protecting proxies behave the same? Each runs in turn (its
# own data directory, SQLite, shipped defaults: PL1, block, events stored, baselines on)
# in front of one nginx upstream that echoes back what it was sent (method, target and
# the forwarding and hop-by-hop headers it received), answers with a `Server` banner and
# a security header on some paths, and is sent the same requests:
# scripts/lib/proxy-sequence.py (odd shapes: chunked and gzip bodies, HTTP/1.0, hop-by-hop
# and forwarding headers, an upgrade, a refused head, pipelining, ...) then
# scripts/lib/send-requests.py's benchmark GET, POST and attack. Then the instance is
# stopped (SIGTERM: its events are drained to the store) and compared:
#   answers.txt   every answer byte for byte (Date and request ids masked)
#   events.tsv    every stored event, every column but id, ts, received_at and duration_us, with the
#                 extra keys (request_id's value masked)
#   threats.tsv   every threat: category, severity, score, client, method, uri, source,
#                 decision, evidence, rule ids
# (the posture observations, security headers and banners, are covered by
# crates/proxy/tests/observe.rs, not here)
# and prints "identical" or the diffs (exit 1).
#
#   bash scripts/proxy-same-behaviour.sh BEFORE_BIN AFTER_BIN [--port-base 19200] [--out DIR]
#
# Ports: P (upstream), P+2/P+3 (proxy/API). Needs nginx, sqlite3, python3, curl.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib/proxy-config.sh"
before=$1 after=$2; shift 2
port_base=19200 OUT=/tmp/palisade-same-behaviour
while [ $# -gt 0 ]; do
  case $1 in
    --port-base) port_base=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
UP=$port_base PROXY=$((port_base + 2)) API=$((port_base + 3))
rm -rf "$OUT" && mkdir -p "$OUT/nginx"
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat > "$OUT/nginx/nginx.conf" <<CONF
$user
daemon off;
master_process off;
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log off; client_body_temp_path $OUT/nginx/b; proxy_temp_path $OUT/nginx/p;
  fastcgi_temp_path $OUT/nginx/f; uwsgi_temp_path $OUT/nginx/u; scgi_temp_path $OUT/nginx/s;
  server {
    listen 127.0.0.1:$UP;
    default_type text/plain;
    location /tienda1/ { add_header X-Content-Type-Options nosniff; add_header X-Powered-By "PHP/7.4.3";
      return 200 "m=\$request_method u=\$request_uri host=\$http_host\n"; }
    location / { return 200 "m=\$request_method u=\$request_uri p=\$server_protocol host=\$http_host xff=\$http_x_forwarded_for xfp=\$http_x_forwarded_proto xfh=\$http_x_forwarded_host xri=\$http_x_real_ip rid=\$http_x_request_id conn=\$http_connection ka=\$http_keep_alive te=\$http_te pc=\$http_proxy_connection pa=\$http_proxy_authorization sec=\$http_x_secret up=\$http_upgrade dup=\$http_x_dup ct=\$http_content_type ce=\$http_content_encoding cl=\$http_content_length tenc=\$http_transfer_encoding\n"; }
  }
}
CONF
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" &
NGINX=$!
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  kill "$NGINX" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$UP/" && break; sleep 0.1; done

run() { # NAME BIN
  local name=$1 bin=$2 dir="$OUT/$1"
  mkdir -p "$dir"
  write_proxy_config "$dir/palisade.toml" "shop" "$API" "$PROXY" "http://127.0.0.1:$UP"
  PALISADE_ADMIN_PASSWORD="same-Admin-Password-42" "$bin" --config "$dir/palisade.toml" serve > "$dir/out.log" 2>&1 &
  PID=$!
  # Ready when the proxy's port takes connections: no request before the sequence, so
  # both instances number their request ids (echoed by the upstream) alike.
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PROXY") 2>/dev/null && break; sleep 0.1; done
  python3 "$HERE/lib/proxy-sequence.py" --port "$PROXY" --rounds 2 > "$dir/answers.txt"
  for c in get post attack; do
    local expect=200; [ $c = attack ] && expect=403
    python3 "$HERE/lib/send-requests.py" --port "$PROXY" --case $c --count 60 --expect $expect
  done
  sleep 1.5
  kill -TERM "$PID"; wait "$PID" || true; PID=""
  local db="$dir/data/palisade.db"
  python3 - "$db" "$dir/events.tsv" <<'PY'
import re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cur = db.execute("SELECT * FROM events ORDER BY id")
cols = [c[0] for c in cur.description]
skip = {"id", "ts", "duration_us", "received_at"}
with open(sys.argv[2], "w") as out:
    for row in cur:
        cells = [f"{c}={v.hex() if isinstance(v, bytes) else v}" for c, v in zip(cols, row) if c not in skip]
        out.write(re.sub(r"\b[0-9a-f]{8}-[0-9a-f]+\b", "<request-id>", "\t".join(cells)) + "\n")
PY
  sqlite3 -separator $'\t' "$db" "SELECT category, severity, score, hex(client_ip), method, uri, source, decision, evidence, rule_ids FROM threats ORDER BY id" \
    | sed -E 's/\b[0-9a-f]{8}-[0-9a-f]+\b/<request-id>/g' > "$dir/threats.tsv"
  echo "$name: $(wc -l < "$dir/answers.txt") answer lines, $(wc -l < "$dir/events.tsv") events, $(wc -l < "$dir/threats.tsv") threats" >&2
}
run before "$before"
run after "$after"
status=0
for f in answers.txt events.tsv threats.tsv; do
  if ! diff -u "$OUT/before/$f" "$OUT/after/$f" > "$OUT/$f.diff"; then
    echo "DIFFERENT: $f (see $OUT/$f.diff)"; head -40 "$OUT/$f.diff"; status=1
  fi
done
[ $status = 0 ] && echo "identical: answers, events (all columns but id/ts/duration), threats"
exit $status
