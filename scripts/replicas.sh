#!/usr/bin/env bash
# Several `rolecraft serve` replicas on one PostgreSQL, behind nginx: scripts/replicas.sh start|stop
#
#   start  start PostgreSQL (scripts/postgres.sh) unless ROLECRAFT_DATABASE_URL names a database,
#          then $ROLECRAFT_REPLICAS (default 2) replicas on 127.0.0.1:$ROLECRAFT_LB_PORT+1, +2, ...,
#          each with its own home (its KV caches) under $ROLECRAFT_REPLICAS_DIR (default
#          /tmp/rolecraft-replicas), rate limits counted in the database and X-Rolecraft-Replica set
#          to replica-N; then nginx (Debian's, installed with apt-get if missing and we are root) on
#          127.0.0.1:$ROLECRAFT_LB_PORT (default 18780) from scripts/nginx/rolecraft.conf.template.
#          Prints the load balancer's URL once every replica answers /health through it.
#   stop   stop nginx and the replicas, and PostgreSQL if start started it.
#
# Other ROLECRAFT_* variables (n_threads, max_tokens, ...) reach every replica unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${ROLECRAFT_REPLICAS_DIR:-/tmp/rolecraft-replicas}"
LB_PORT="${ROLECRAFT_LB_PORT:-18780}"
COUNT="${ROLECRAFT_REPLICAS:-2}"
ROLECRAFT="${ROLECRAFT_BIN:-$ROOT/.venv/bin/rolecraft}"
PY="${ROLECRAFT_PYTHON:-$ROOT/.venv/bin/python}"
WAIT_S="${ROLECRAFT_REPLICAS_WAIT_S:-120}"

log() { echo "replicas.sh: $*" >&2; }

nginx_bin() {
    if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            log "nginx is not installed; run: sudo apt-get install -y nginx"
            exit 1
        fi
        log "installing Debian's nginx (apt-get)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
    fi
    command -v nginx || echo /usr/sbin/nginx
}

# Wait until GET $1 answers 200 (bounded by WAIT_S); $2 names what we wait for.
wait_for() {
    "$PY" - "$1" "$2" "$WAIT_S" <<'EOF'
import sys, time, urllib.request
url, what, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + limit
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"replicas.sh: {what} did not answer {url} within {limit:.0f} s")
    time.sleep(0.25)
EOF
}

database_url() {
    if [[ -n "${ROLECRAFT_DATABASE_URL:-}" ]]; then
        echo "$ROLECRAFT_DATABASE_URL"
    else
        touch "$RUN_DIR/started-postgres"
        "$ROOT/scripts/postgres.sh" url
    fi
}

start_replica() {
    local n=$1 url=$2 port=$((LB_PORT + $1))
    mkdir -p "$RUN_DIR/replica-$n"
    ROLECRAFT_HOME="$RUN_DIR/replica-$n" ROLECRAFT_DATABASE_URL="$url" ROLECRAFT_RATE_LIMIT_SHARED=true \
        ROLECRAFT_REPLICA_NAME="replica-$n" ROLECRAFT_HOST=127.0.0.1 ROLECRAFT_PORT="$port" \
        nohup "$ROLECRAFT" serve >"$RUN_DIR/replica-$n.log" 2>&1 &
    echo $! >"$RUN_DIR/replica-$n.pid"
    echo "        server 127.0.0.1:$port;" >>"$RUN_DIR/servers.conf"
}

start() {
    mkdir -p "$RUN_DIR"
    local url nginx n
    nginx=$(nginx_bin)
    url=$(database_url)
    # Migrate the database and install the sample characters once, before replicas race to do it.
    ROLECRAFT_HOME="$RUN_DIR/setup" ROLECRAFT_DATABASE_URL="$url" "$ROLECRAFT" characters list >/dev/null
    : >"$RUN_DIR/servers.conf"
    for n in $(seq 1 "$COUNT"); do start_replica "$n" "$url"; done
    for n in $(seq 1 "$COUNT"); do wait_for "http://127.0.0.1:$((LB_PORT + n))/health" "replica-$n"; done
    mkdir -p "$RUN_DIR/nginx"
    sed -e "s|@RUN_DIR@|$RUN_DIR/nginx|g" -e "s|@LISTEN@|127.0.0.1:$LB_PORT|g" \
        -e "/^@SERVERS@$/{r $RUN_DIR/servers.conf" -e "d}" \
        "$ROOT/scripts/nginx/rolecraft.conf.template" >"$RUN_DIR/nginx.conf"
    "$nginx" -q -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx.conf"
    wait_for "http://127.0.0.1:$LB_PORT/health" "nginx"
    log "$COUNT replicas behind nginx (logs in $RUN_DIR)"
    echo "http://127.0.0.1:$LB_PORT"
}

stop_pid() {
    local file=$1 pid
    [[ -f "$file" ]] || return 0
    pid=$(cat "$file")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop() {
    stop_pid "$RUN_DIR/nginx/nginx.pid"
    for file in "$RUN_DIR"/replica-*.pid; do stop_pid "$file"; done
    if [[ -f "$RUN_DIR/started-postgres" ]]; then
        "$ROOT/scripts/postgres.sh" stop
        rm -f "$RUN_DIR/started-postgres"
    fi
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
