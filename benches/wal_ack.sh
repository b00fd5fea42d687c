#!/usr/bin/env bash
# Acknowledgement latency and throughput through the write-ahead log, end to end: a release
# sluice on loopback in front of the ClickHouse at CLICKHOUSE_URL (default the local one), driven
# by loadgen. One line per case: loadgen's summary, sluice's peak RSS and the fsync groups.
#
#   benches/wal_ack.sh [SECONDS]        (default 20 s per case)
#
# Cases, in one run so their ratios can be compared:
#   1. one sequential client (Promtail's pattern), fsync = group
#   2. 8 concurrent clients, fsync = group
#   3. 8 concurrent clients, fsync = off (what fsync costs)
# Each case runs a fresh sluice with its own data directory and database, both deleted after;
# each load is capped at 2 GiB of lines. Needs `cargo build --release -p sluice -p sluice-benches`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_CASE=${1:-20}
CLICKHOUSE_URL=${CLICKHOUSE_URL:-http://127.0.0.1:8123}
BIN=target/release/sluice
LOADGEN=target/release/loadgen
[[ -x $BIN && -x $LOADGEN ]] || { echo "build first: cargo build --release -p sluice -p sluice-benches" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

run_case() {  # run_case NAME FSYNC CONNECTIONS
    local name=$1 fsync=$2 conns=$3 port db
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    db=bench_wal_$$_${name//-/_}
    mkdir -p "$WORK/$name"
    env -u SLUICE_CONFIG SLUICE_LISTEN=127.0.0.1:$port SLUICE_CLICKHOUSE_URL="$CLICKHOUSE_URL" \
        SLUICE_CLICKHOUSE_DATABASE="$db" SLUICE_DATA_DIR="$WORK/$name" SLUICE_LOG=warn \
        SLUICE_INGEST_WAL_FSYNC="$fsync" "$BIN" serve >"$WORK/$name.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 150); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/ready" && break
        kill -0 "$PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.2
    done
    local out
    out=$("$LOADGEN" --url "http://127.0.0.1:$port" --format loki-protobuf --entries-per-push 1000 \
        --line-bytes 200 --connections "$conns" --seconds "$SECONDS_PER_CASE" --max-bytes $((2 << 30)))
    local metrics hwm
    metrics=$(curl -s "http://127.0.0.1:$port/metrics")
    hwm=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$PID/status")
    echo "$name (fsync=$fsync): $out; peak RSS $hwm;" \
        "appends $(awk '$1 == "sluice_wal_appends_total" {print $2}' <<<"$metrics")" \
        "in $(awk '$1 == "sluice_wal_groups_total" {print $2}' <<<"$metrics") fsync groups"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    curl -s --data-binary "DROP DATABASE IF EXISTS $db" "$CLICKHOUSE_URL/" >/dev/null || true
    rm -rf "${WORK:?}/$name"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2 / 1048576) " GiB"}' /proc/meminfo), $(uname -r); data dir on $(df -h "$WORK" | awk 'NR == 2 {print $1}')"
run_case sequential group 1
run_case concurrent8 group 8
run_case concurrent8-nofsync off 8
