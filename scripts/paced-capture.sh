#!/usr/bin/env bash
# Records, beside a running paced benchmark, what the proxy's tail is made of (issue 16,
# paced1): the loopback packets of the proxy and upstream ports and the scheduler of
# CPUs 0-1, on clocks that can be matched (tcpdump's wall clock, perf's CLOCK_MONOTONIC
# and their offset).
#
#   bash scripts/paced-capture.sh PROXY_PORT UPSTREAM_PORT PREFIX [SECONDS] [PID]
#
# Waits until wrk targets PROXY_PORT, lets it run 2 s, then records SECONDS (4):
# PREFIX.pcap, PREFIX.sched (+ .sched.txt from `perf script`) and PREFIX.offset; with PID
# (the Palisade instance's) also PREFIX.tids, its threads (`TID COMM`) at the start and
# the end of the recording (paced12). Read with
#   python3 scripts/proxy-pcap-legs.py PREFIX.pcap PROXY_PORT UPSTREAM_PORT
#   python3 scripts/proxy-stall-cpu.py PREFIX.pcap PREFIX.sched.txt $(cat PREFIX.offset) PROXY_PORT UPSTREAM_PORT
#   python3 scripts/worker-waits.py PREFIX.sched.txt WORKER_TID [OWN_TIDS]
#   python3 scripts/paced-slow-holders.py PREFIX PROXY_PORT UPSTREAM_PORT   (needs PID)
# Needs tcpdump and perf (root). E.g. beside
#   CONNS=2 ROUNDS=1 PORT_BASE=21000 bash scripts/bench-proxy-paced.sh main=BIN
# run `bash scripts/paced-capture.sh 21010 21000 /tmp/x/cap &` first.
set -euo pipefail
for _ in $(seq 1 1200); do pgrep -f "wrk .*127.0.0.1:$1/" >/dev/null && break; sleep 0.1; done
sleep 2
python3 -c 'import time; print(time.time() - time.monotonic())' >"$3.offset"
tids() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(cat "$t/comm" 2>/dev/null)"; done; }
[ -n "${5:-}" ] && tids "$5" >"$3.tids.0"
timeout "${4:-4}" tcpdump -i lo -s 2048 -w "$3.pcap" --time-stamp-precision=nano \
  "tcp port $1 or tcp port $2" >"$3.tcpdump.log" 2>&1 &
perf sched record -k mono -C 0,1 -o "$3.sched" -- sleep "${4:-4}" >/dev/null 2>&1
wait
[ -n "${5:-}" ] && { tids "$5" | cat "$3.tids.0" - | sort -un >"$3.tids"; rm -f "$3.tids.0"; }
perf script -i "$3.sched" -F time,cpu,event,trace >"$3.sched.txt" 2>/dev/null
