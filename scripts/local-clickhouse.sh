#!/usr/bin/env bash
# Manage the local dev ClickHouse: the real ClickHouse engine (chDB, PyPI
# `chdb-core`) behind a small ClickHouse-HTTP-compatible server
# (tools/chdb_http/server.py). For dev and tests only; loopback only, no auth.
#
#   scripts/local-clickhouse.sh start|stop|status
#
# Environment:
#   CLICKHOUSE_PORT  port on 127.0.0.1 (default 8123)
#   CLICKHOUSE_DATA  data directory (default .local/clickhouse, relative to the repo root)
#
# The first run creates .local/venv and installs tools/chdb_http/requirements.txt
# into it; later runs reinstall only when that file changes.
# Log: .local/clickhouse-PORT.log   pid: .local/clickhouse-PORT.pid (one server per port, so
# servers on different ports can run side by side and be stopped separately)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
source scripts/lib/process.sh

PORT=${CLICKHOUSE_PORT:-8123}
DATA=${CLICKHOUSE_DATA:-.local/clickhouse}
VENV=$ROOT/.local/venv
REQS=$ROOT/tools/chdb_http/requirements.txt
STAMP=$VENV/.requirements.sha256
PIDFILE=$ROOT/.local/clickhouse-$PORT.pid
LOG=$ROOT/.local/clickhouse-$PORT.log
URL=http://127.0.0.1:$PORT

mkdir -p "$ROOT/.local"

ensure_venv() {
    local want
    want=$(sha256sum "$REQS" | cut -d' ' -f1)
    if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
        return 0
    fi
    echo "installing $REQS into $VENV ..."
    if [[ ! -x $VENV/bin/python ]]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" >"$STAMP"
}

ping_ok() {
    [[ $(curl -fsS --max-time 2 "$URL/ping" 2>/dev/null) == "Ok." ]]
}

recorded_pid() {
    # The pid from the pid file, if that process is alive and is our server
    # (not some other process that got the same pid later).
    local pid
    [[ -f $PIDFILE ]] || return 1
    pid=$(cat "$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *tools/chdb_http/server.py* ]] || return 1
    echo "$pid"
}

cmd_start() {
    local pid
    if pid=$(recorded_pid) && ping_ok; then
        echo "ClickHouse (chDB) already running at $URL (pid $pid)"
        return 0
    fi
    if [[ -n ${pid:-} ]]; then
        echo "pid $pid from $PIDFILE is alive but $URL/ping does not answer; stopping it first"
        cmd_stop
    fi
    if ping_ok; then
        echo "something else already answers at $URL; set CLICKHOUSE_PORT to another port" >&2
        return 1
    fi
    ensure_venv
    mkdir -p "$DATA"
    echo "starting ClickHouse (chDB) at $URL, data in $DATA, log in $LOG"
    # nohup: the server keeps running after this script (and its terminal) exits.
    nohup "$VENV/bin/python" "$ROOT/tools/chdb_http/server.py" \
        --host 127.0.0.1 --port "$PORT" --data "$DATA" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    for _ in $(seq 1 120); do
        if ping_ok; then
            echo "ClickHouse (chDB) running at $URL (pid $pid)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.5
    done
    echo "ClickHouse (chDB) did not answer at $URL/ping; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    return 1
}

cmd_stop() {
    local pid
    if ! pid=$(recorded_pid); then
        rm -f "$PIDFILE"
        echo "ClickHouse (chDB) not running"
        return 0
    fi
    stop_pid "$pid"
    rm -f "$PIDFILE"
    echo "ClickHouse (chDB) stopped"
}

cmd_status() {
    local pid
    if pid=$(recorded_pid) && ping_ok; then
        echo "ClickHouse (chDB) running at $URL (pid $pid)"
        return 0
    fi
    echo "ClickHouse (chDB) not running ($URL)"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
