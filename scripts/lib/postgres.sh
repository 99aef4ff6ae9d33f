# shellcheck shell=bash
# ensure_postgres: a PostgreSQL server on 127.0.0.1:5432 with a `test` database the
# tests can reach; exports PALISADE_TEST_DATABASE_URL. Installs (Debian) and starts the
# server when needed. Respects a PALISADE_TEST_DATABASE_URL already set.

pg_try() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [ -n "${PALISADE_TEST_DATABASE_URL:-}" ] && pg_try "$PALISADE_TEST_DATABASE_URL"; then
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq postgresql postgresql-client >/dev/null
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    if [ -z "$version" ]; then
      echo "no PostgreSQL cluster found under /etc/postgresql" >&2
      return 1
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  # Trust auth (this machine's set-up) or a password we set as the postgres superuser.
  local url="postgres://postgres@127.0.0.1:5432/test"
  if ! pg_try "postgres://postgres@127.0.0.1:5432/postgres"; then
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'palisade-test'\"" >/dev/null
    url="postgres://postgres:palisade-test@127.0.0.1:5432/test"
  fi
  local admin="${url%/test}/postgres"
  if ! pg_try "$url"; then
    psql "$admin" -qc 'CREATE DATABASE test' >/dev/null
  fi
  pg_try "$url" || { echo "cannot reach $url" >&2; return 1; }
  export PALISADE_TEST_DATABASE_URL="$url"
}
