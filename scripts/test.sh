#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine or a warm one: makes sure what
# the tests talk to is there (PostgreSQL running, nginx, systemd-analyze; installed from
# Debian's packages when missing, which needs root), then format check, clippy with
# -D warnings, schemathesis over every API operation, and every test against SQLite and
# PostgreSQL. Idempotent; says what each step is doing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

# apt_install PKG...: installs the missing Debian packages (refreshing the index once if
# the first attempt fails).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  echo "installing from Debian's packages: $*"
  apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

step "PostgreSQL: checking it runs on 127.0.0.1:5432 (installing or starting it if not)"
source scripts/lib/postgres.sh
ensure_postgres
# Shown without its password (if it has one).
echo "tests use $(python3 -c 'import re,sys; print(re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", sys.argv[1]))' "$PALISADE_TEST_DATABASE_URL")"

step "nginx (the auth_request test) and systemd-analyze (the unit check)"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then apt_install nginx; fi
/usr/sbin/nginx -v
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
systemd-analyze --version | head -n1

step "Chromium and chromedriver (the dashboard's browser tests)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
chromium --version 2>/dev/null | head -n1 || echo "chromium missing: the dashboard browser tests will skip"

step "Kafka: cmake and the libcurl headers (librdkafka's build), and a broker (Tansu) on 127.0.0.1:9092"
command -v cmake >/dev/null 2>&1 || apt_install cmake
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || apt_install libcurl4-openssl-dev
source scripts/lib/kafka.sh
if ensure_kafka; then
  echo "Kafka tests use $PALISADE_TEST_KAFKA"
else
  echo "WARNING: no Kafka broker could be started; the Kafka tests that need one will say so and skip"
fi

step "Network: the IEEE OUI registry (ieee-data: device vendors) and libpcap headers (live capture, --features capture)"
[ -f /usr/share/ieee-data/oui.csv ] || apt_install ieee-data
[ -f /usr/include/pcap/pcap.h ] || apt_install libpcap-dev

step "SMTP relay for the e-mail channel's test (aiosmtpd in a venv, from PyPI)"
smtp_venv="$HOME/.cache/palisade/smtp-venv"
if ! "$smtp_venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  python3 -m venv "$smtp_venv" && "$smtp_venv/bin/pip" install -q aiosmtpd ||
    echo "WARNING: aiosmtpd could not be installed; the e-mail channel's relay test will say so and skip"
fi
command -v openssl >/dev/null 2>&1 || apt_install openssl
if "$smtp_venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  export PALISADE_TEST_SMTP_PYTHON="$smtp_venv/bin/python"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings (builds the workspace in $CARGO_TARGET_DIR; the first build takes minutes)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy with Kafka (--features kafka: librdkafka built with cmake on the first run)"
cargo clippy -p palisade-kafka -p palisade --features palisade/kafka --all-targets --locked -- -D warnings

step "cargo clippy with live capture (--features capture: links libpcap)"
cargo clippy -p palisade-flows -p palisade --features palisade/capture --all-targets --locked -- -D warnings

step "schemathesis: generated requests over every operation, as admin, no 5xx (a Python venv on first run)"
bash scripts/schemathesis.sh "${PALISADE_ST_EXAMPLES:-25}"

step "tests: doc tests, then every test with cargo-nextest (SQLite and PostgreSQL, real nginx)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo test --workspace --locked --doc
  cargo nextest run --workspace --locked --no-fail-fast
  step "Kafka tests (--features kafka, against the broker above)"
  cargo nextest run -p palisade-kafka -p palisade --features palisade/kafka --locked --no-fail-fast -E 'package(palisade-kafka) | test(kafka) | test(role)'
  step "Live capture tests (--features capture, on the loopback interface: needs root or CAP_NET_RAW)"
  cargo nextest run -p palisade-flows --features capture --locked --no-fail-fast -E 'test(capture)'
else
  cargo test --workspace --locked --no-fail-fast
  step "Kafka tests (--features kafka, against the broker above)"
  cargo test -p palisade-kafka -p palisade --features palisade/kafka --locked --no-fail-fast kafka
  step "Live capture tests (--features capture, on the loopback interface: needs root or CAP_NET_RAW)"
  cargo test -p palisade-flows --features capture --locked --no-fail-fast capture
fi
step "done"
