#!/usr/bin/env bash
# A real PostgreSQL server on 127.0.0.1:5432 for the Optuna tests on a shared study
# (tests/test_optuna.py): Debian's `postgresql`, no systemd. It holds a database
# `mnistx_test` owned by the user `mnistx` (password `mnistx`):
#   postgresql://mnistx:mnistx@127.0.0.1:5432/mnistx_test
#
#   .ci/postgres.sh start     install the package if missing, start the server, make the db
#   .ci/postgres.sh stop      stop the server
# Needs root (apt, the postgres user).
set -euo pipefail

install() {
  command -v pg_ctlcluster >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
    && return
  { apt-get install -y -q postgresql \
    || { apt-get update -q && apt-get install -y -q postgresql; }; } >/dev/null
}

version() { ls /usr/lib/postgresql | sort -V | tail -n 1; }

psql_as_postgres() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }

start() {
  install
  local v
  v=$(version)
  pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$v main" || pg_createcluster "$v" main >/dev/null
  if ! pg_lsclusters -h | grep -q "^$v main .* online"; then
    pg_ctlcluster "$v" main start
  fi
  for _ in $(seq 30); do
    psql_as_postgres -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 1
  done
  if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'mnistx'")" != 1 ]; then
    psql_as_postgres -c "CREATE ROLE mnistx LOGIN PASSWORD 'mnistx'"
  fi
  if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'mnistx_test'")" != 1 ]; then
    psql_as_postgres -c "CREATE DATABASE mnistx_test OWNER mnistx"
  fi
  echo "postgres: postgresql://mnistx:mnistx@127.0.0.1:5432/mnistx_test"
}

stop() {
  local v
  v=$(version 2>/dev/null) || return 0
  pg_ctlcluster "$v" main stop 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
