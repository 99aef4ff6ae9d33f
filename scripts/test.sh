#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine or a warm one: makes sure
# PostgreSQL runs (installing it if needed), then format check, clippy with -D warnings,
# and every test against SQLite and PostgreSQL. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL"
source scripts/lib/postgres.sh
ensure_postgres
echo "tests use ${PALISADE_TEST_DATABASE_URL//:*@/:***@}"

step "nginx (for the auth_request test)"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq nginx >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
fi
/usr/sbin/nginx -v

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "schemathesis: generated requests over every operation, as admin, no 5xx"
bash scripts/schemathesis.sh "${PALISADE_ST_EXAMPLES:-25}"

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo test --workspace --locked --doc
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
