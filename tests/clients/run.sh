#!/usr/bin/env bash
# Compatibility tests with real third-party Loki clients (see tests/clients/README.md).
#
#   tests/clients/run.sh            (from any directory)
#
# Needs a ClickHouse-HTTP-compatible server at ${CLICKHOUSE_URL:-http://127.0.0.1:8123} (for
# example scripts/local-clickhouse.sh start); fails, never skips, when there is none.
# Installs the pinned clients itself (Python ones into .local/venv, Node ones into
# tests/clients/node/node_modules), builds sluice if needed, starts it on a free loopback port
# against a fresh database, runs every client program through a recording tap, checks ClickHouse
# with check.py, and always stops sluice and drops the database. The last line is
# `N passed, M failed`, one per client case; the exit status is non-zero if any failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

CASES=(python-logging-loki loki-logger-handler winston-loki-protobuf winston-loki-json
    pino-loki-worker pino-loki-direct otel-sdk-python rsyslog-omelasticsearch syslog-ng-http)

CLICKHOUSE_URL=${CLICKHOUSE_URL:-http://127.0.0.1:8123}
CLICKHOUSE_URL=${CLICKHOUSE_URL%/}
# Everything here talks to loopback: keep proxies out of the clients, curl and the checker.
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

log() { echo "[clients] $*" >&2; }

# The closing line, printed last by cleanup(). Until check.py has run, every case counts as
# failed: a set-up failure skips nothing.
SUMMARY="0 passed, ${#CASES[@]} failed"

fail_setup() {
    echo "[clients] FAILED: $*" >&2
    exit 1
}

ch() {  # ch SQL [database]: run a query over ClickHouse's HTTP interface
    curl -fsS --max-time 30 --data-binary "$1" "$CLICKHOUSE_URL/${2:+?database=$2}"
}

WORK=
DB=
SLUICE_PID=
TAP_PID=
KEEP_WORK=0

# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
source "$ROOT/scripts/lib/process.sh"

cleanup() {
    local rc=$?
    stop_pid "$TAP_PID"
    stop_pid "$SLUICE_PID"
    if [[ -n $DB ]]; then
        ch "DROP DATABASE IF EXISTS \`$DB\`" >/dev/null 2>&1 || log "could not drop database $DB"
    fi
    if [[ -n $WORK ]]; then
        if [[ $KEEP_WORK == 1 || $rc != 0 ]]; then
            log "files of this run (sluice log, tap records, client output): $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    echo "$SUMMARY"
    [[ $rc != 0 ]] || [[ $SUMMARY == *" 0 failed" ]] || rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. ClickHouse must be there -----------------------------------------------------------
if [[ $(curl -sS --max-time 5 "$CLICKHOUSE_URL/ping" 2>/dev/null || true) != Ok.* ]]; then
    fail_setup "no ClickHouse answers at $CLICKHOUSE_URL/ping. Start one (scripts/local-clickhouse.sh start, or tools/chdb_http/server.py) or point CLICKHOUSE_URL at one."
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-clients.XXXXXX")
DB="clients_$(date +%s)_$$_${RANDOM}"

# --- 2. Clients, installed from the registries (idempotent) ----------------------------------
# One installer at a time when several runs start together (the lock is released at exit).
mkdir -p "$ROOT/.local"
if command -v flock >/dev/null; then
    exec 9>"$ROOT/.local/clients-install.lock"
    flock 9
fi
VENV=$ROOT/.local/venv
PY=$VENV/bin/python
REQS=$HERE/requirements.txt
STAMP=$VENV/.clients-requirements.sha256
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [[ ! -x $PY || ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    log "installing $REQS into $VENV"
    [[ -x $PY ]] || python3 -m venv "$VENV" || fail_setup "cannot create $VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQS" ||
        fail_setup "pip install -r $REQS failed"
    echo "$want" >"$STAMP"
fi

NODE_DIR=$HERE/node
command -v node >/dev/null && command -v npm >/dev/null || fail_setup "node and npm are needed"
# npm ci when node_modules is missing, older than the lock file, or was not left by a finished
# `npm ci` of this very lock file (the stamp is written last).
NODE_STAMP=$NODE_DIR/node_modules/.sluice-npm-ci.sha256
lock_sum=$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)
if [[ ! -d $NODE_DIR/node_modules || $NODE_DIR/package-lock.json -nt $NODE_DIR/node_modules ||
    ! -f $NODE_STAMP || $(cat "$NODE_STAMP") != "$lock_sum" ]]; then
    log "npm ci in $NODE_DIR"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) ||
        fail_setup "npm ci failed in $NODE_DIR"
    echo "$lock_sum" >"$NODE_STAMP"
    touch "$NODE_DIR/node_modules"
fi

# Syslog daemons from Debian, unpacked under .local/debs/root and run from there: installing
# the packages would start them as this machine's syslog service. Their shared libraries are
# installed (plain libraries, nothing starts).
DEB_ROOT=$ROOT/.local/debs/root
DEB_PACKAGES=(rsyslog rsyslog-elasticsearch syslog-ng-core syslog-ng-mod-http)
DEB_LIBRARIES=(libestr0 libfastjson4 liblognorm5 libcurl4 libzstd1 libuuid1
    libglib2.0-0 libivykis0 libjson-c5 libnet1 libpcre3 libssl3 libwrap0 libcap2)
DEB_STAMP=$ROOT/.local/debs/.unpacked.sha256
apt_get() {  # apt-get as root (sudo when not root)
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get "$@"
}
# The libraries are checked on every run: a cached .local does not bring them to a new machine.
missing=()
for lib in "${DEB_LIBRARIES[@]}"; do
    dpkg -s "$lib" >/dev/null 2>&1 || missing+=("$lib")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt_get update -qq && apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
        fail_setup "apt-get install ${missing[*]} failed"
fi
want=$(printf '%s\n' "${DEB_PACKAGES[@]}" | sha256sum | cut -d' ' -f1)
if [[ ! -f $DEB_STAMP || $(cat "$DEB_STAMP") != "$want" ]]; then
    log "unpacking ${DEB_PACKAGES[*]} into $DEB_ROOT"
    rm -rf "$ROOT/.local/debs"
    mkdir -p "$ROOT/.local/debs/packages" "$DEB_ROOT"
    # `apt-get download` needs no root; run as root it would leave root-owned files here.
    (cd "$ROOT/.local/debs/packages" && { apt-get download "${DEB_PACKAGES[@]}" 2>/dev/null ||
        { apt_get update -qq && apt-get download "${DEB_PACKAGES[@]}"; }; }) ||
        fail_setup "apt-get download ${DEB_PACKAGES[*]} failed"
    for deb in "$ROOT"/.local/debs/packages/*.deb; do
        dpkg -x "$deb" "$DEB_ROOT" || fail_setup "dpkg -x $deb failed"
    done
    echo "$want" >"$DEB_STAMP"
fi

if command -v flock >/dev/null; then
    flock -u 9
    exec 9>&-
fi

# --- 3. sluice ---------------------------------------------------------------------------
log "cargo build -j2 -p sluice"
cargo build -j2 -p sluice || fail_setup "cargo build -j2 -p sluice failed"
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET == /* ]] || TARGET=$ROOT/$TARGET
BIN=$TARGET/debug/sluice
[[ -x $BIN ]] || fail_setup "no sluice binary at $BIN after the build"

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SLUICE_URL=http://127.0.0.1:$PORT
# sluice refuses unknown SLUICE_* variables: start it with exactly the ones below.
unset_sluice=()
while IFS= read -r name; do
    unset_sluice+=(-u "$name")
done < <(compgen -e | grep '^SLUICE_' || true)
log "starting sluice at $SLUICE_URL (database $DB)"
env "${unset_sluice[@]}" \
    SLUICE_LISTEN="127.0.0.1:$PORT" \
    SLUICE_CLICKHOUSE_URL="$CLICKHOUSE_URL" \
    SLUICE_CLICKHOUSE_DATABASE="$DB" \
    SLUICE_DATA_DIR="$WORK/data" \
    SLUICE_INGEST_BATCH_LINGER_MS=50 \
    SLUICE_LOG=warn \
    "$BIN" serve >"$WORK/sluice.log" 2>&1 &
SLUICE_PID=$!
ready=0
for _ in $(seq 1 120); do  # 60 s
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$SLUICE_URL/ready" || true) == 200 ]]; then
        ready=1
        break
    fi
    kill -0 "$SLUICE_PID" 2>/dev/null || break
    sleep 0.5
done
if [[ $ready != 1 ]]; then
    echo "---- sluice log ($WORK/sluice.log) ----" >&2
    cat "$WORK/sluice.log" >&2 || true
    echo "----" >&2
    if kill -0 "$SLUICE_PID" 2>/dev/null; then
        fail_setup "sluice did not report ready at $SLUICE_URL/ready within 60 s"
    fi
    fail_setup "sluice exited before it was ready"
fi

# --- 4. The tap between the clients and sluice -------------------------------------------------
"$PY" "$HERE/tap.py" --upstream "127.0.0.1:$PORT" --port-file "$WORK/tap.port" \
    --log "$WORK/tap.jsonl" 2>"$WORK/tap.stderr" &
TAP_PID=$!
for _ in $(seq 1 100); do
    [[ -s $WORK/tap.port ]] && break
    kill -0 "$TAP_PID" 2>/dev/null || break
    sleep 0.1
done
[[ -s $WORK/tap.port ]] || fail_setup "the tap did not start: $(cat "$WORK/tap.stderr")"
LOKI_URL=http://127.0.0.1:$(cat "$WORK/tap.port")

# --- 5. The client programs, one after the other ---------------------------------------------
run_case() {  # run_case NAME COMMAND...
    local name=$1 before after rc
    shift
    before=$(wc -l <"$WORK/tap.jsonl")
    set +e
    LOKI_URL=$LOKI_URL MANIFEST="$WORK/$name.manifest.json" \
        timeout 120 "$@" >"$WORK/$name.stdout" 2>"$WORK/$name.stderr"
    rc=$?
    set -e
    echo "$rc" >"$WORK/$name.rc"
    after=$(wc -l <"$WORK/tap.jsonl")
    sed -n "$((before + 1)),${after}p" "$WORK/tap.jsonl" >"$WORK/$name.tap.jsonl"
    log "ran $name: exit $rc, $((after - before)) requests"
}
run_case python-logging-loki "$PY" "$HERE/python-logging-loki.py"
run_case loki-logger-handler "$PY" "$HERE/loki-logger-handler.py"
run_case winston-loki-protobuf node "$HERE/winston-loki.js" protobuf
run_case winston-loki-json node "$HERE/winston-loki.js" json
run_case pino-loki-worker node "$HERE/pino-loki.js" worker
run_case pino-loki-direct node "$HERE/pino-loki.js" direct
run_case otel-sdk-python "$PY" "$HERE/otel-sdk.py"
export RSYSLOG_ROOT=$DEB_ROOT SYSLOG_NG_ROOT=$DEB_ROOT
run_case rsyslog-omelasticsearch "$PY" "$HERE/rsyslog.py"
run_case syslog-ng-http "$PY" "$HERE/syslog-ng.py"

# --- 6. What landed in ClickHouse ---------------------------------------------------------------
kill -0 "$SLUICE_PID" 2>/dev/null || log "sluice is no longer running (see its log below)"
# A 204 means durable in sluice's write-ahead log; the rows reach ClickHouse a linger later.
for _ in $(seq 1 300); do  # 60 s
    backlog=$(curl -s --max-time 2 "$SLUICE_URL/metrics" | awk '$1 == "sluice_wal_backlog_records" {print $2}' || true)
    [[ $backlog == 0 ]] && break
    kill -0 "$SLUICE_PID" 2>/dev/null || break
    sleep 0.2
done
[[ ${backlog:-} == 0 ]] || log "acknowledged requests still not in ClickHouse (backlog ${backlog:-unknown})"
set +e
"$PY" "$HERE/check.py" --clickhouse "$CLICKHOUSE_URL" --database "$DB" --work "$WORK" \
    "${CASES[@]}" >"$WORK/check.out"
rc=$?
set -e
# check.py's report without its closing line, which cleanup() prints last.
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/check.out" || true
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/check.out" | tail -n 1 || true)
if [[ -n $summary ]]; then
    SUMMARY=$summary
fi
if [[ $rc != 0 ]]; then
    KEEP_WORK=1
    if [[ -s $WORK/sluice.log ]]; then
        echo "---- sluice log (last 40 lines) ----" >&2
        tail -n 40 "$WORK/sluice.log" >&2
    fi
fi
exit "$rc"
