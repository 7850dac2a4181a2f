#!/usr/bin/env bash
# A throwaway PostgreSQL for the store and server tests: scripts/postgres.sh start|stop|url|reset
#
#   start  install Debian's postgresql if missing, initialise a cluster in $ROLECRAFT_PG_DIR
#          (default /tmp/rolecraft-pg), start it on 127.0.0.1:$ROLECRAFT_PG_PORT (default 55432),
#          create the database, and print its SQLAlchemy URL
#   url    the same as start, printing only the URL (so `$(scripts/postgres.sh url)` just works)
#   reset  drop and recreate the database (a clean slate for a test run), then print the URL
#   stop   stop the cluster (its files stay for the next start)
#
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user.
# Authentication is `trust` on loopback only: this cluster is for tests, never for data.
set -euo pipefail

PG_DIR="${ROLECRAFT_PG_DIR:-/tmp/rolecraft-pg}"
PG_PORT="${ROLECRAFT_PG_PORT:-55432}"
PG_DB="${ROLECRAFT_PG_DB:-rolecraft_test}"
PG_USER="rolecraft"
DATA="$PG_DIR/data"

log() { echo "postgres.sh: $*" >&2; }

pg_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$found" ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            log "PostgreSQL is not installed; run: sudo apt-get install -y postgresql"
            exit 1
        fi
        log "installing Debian's postgresql (apt-get)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    echo "$found"
}

# Run a PostgreSQL program as the cluster's owner (the postgres system user when we are root).
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgresql+psycopg://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB"; }

psql_admin() { as_owner "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

init_cluster() {
    [[ -f "$DATA/PG_VERSION" ]] && return
    log "initialising a cluster in $DATA"
    mkdir -p "$PG_DIR"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR"
    as_owner "$BIN/initdb" -D "$DATA" -U "$PG_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
}

start() {
    init_cluster
    if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR -c max_connections=200" start >/dev/null
        log "started on 127.0.0.1:$PG_PORT (log: $PG_DIR/server.log)"
    fi
    if [[ -z $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
        psql_admin -c "CREATE DATABASE $PG_DB"
    fi
}

stop() {
    [[ -f "$DATA/PG_VERSION" ]] || return 0
    if as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        log "stopped"
    fi
}

BIN=$(pg_bin)
case "${1:-}" in
    start | url) start; url ;;
    reset) start; psql_admin -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB"; url ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop|url|reset" >&2; exit 2 ;;
esac
