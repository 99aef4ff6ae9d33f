#!/usr/bin/env python3
"""Memory under a login flood (issue 19, finding 2).

Starts `palisade serve` on a fresh data directory, waits until it answers, then sends
ROUNDS bursts of PARALLEL simultaneous logins (each for a different unknown name, so no
lockout stops them and each one costs a full argon2id check), and reports the server's
resident memory (VmRSS from /proc) before, at its peak during the flood, and a few
seconds after, with the answers it gave. The login rate limit is raised so that the
flood reaches the password checks, as it does when it comes from many addresses.

Run it against two builds to compare them, e.g. the binary of the commit before the fix
and the current one:

usage: scripts/bench-login-flood.py [--bin PATH] [--parallel 80] [--rounds 5]
                                    [--env KEY=VALUE ...]
"""
import argparse, collections, http.client, json, os, shutil, socket, subprocess, sys
import tempfile, threading, time

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/palisade/target"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def login(port, name, out):
    body = json.dumps({"username": name, "password": "guess-guess-guess"})
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        out.append(c.getresponse().status)
        c.close()
    except OSError as e:
        out.append(type(e).__name__)


def wait_ready(port, proc):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"palisade exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("palisade never became ready")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(TARGET, "debug", "palisade"))
    ap.add_argument("--parallel", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the server")
    a = ap.parse_args()

    data = tempfile.mkdtemp(prefix="palisade-flood-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE_")}
    env.update({
        "PALISADE_LOG": "error",
        "PALISADE_ADMIN_PASSWORD": "bench-Admin-Password-1",
        "PALISADE_RATE_LIMIT__LOGIN_PER_MINUTE": "1000000",
    })
    for kv in a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    proc = subprocess.Popen(
        [a.bin, "--data-dir", data, "serve", "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        time.sleep(1)
        before = rss_kib(proc.pid)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses = []
        start = time.time()
        for r in range(a.rounds):
            threads = [threading.Thread(target=login, args=(port, f"flood{r}-{i}", statuses))
                       for i in range(a.parallel)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        took = time.time() - start
        time.sleep(3)
        stop.set()
        sampler.join()
        after = rss_kib(proc.pid)
        counts = dict(sorted(collections.Counter(map(str, statuses)).items()))
        print(json.dumps({
            "bin": a.bin, "parallel": a.parallel, "rounds": a.rounds, "seconds": round(took, 1),
            "rss_before_mib": round(before / 1024, 1), "rss_peak_mib": round(peak[0] / 1024, 1),
            "rss_after_mib": round(after / 1024, 1), "answers": counts,
            "extra_env": a.env,
        }))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
