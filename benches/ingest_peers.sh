#!/usr/bin/env bash
# Ingest throughput side by side: the same loadgen load against sluice (into the blackhole, and
# into the ClickHouse at CLICKHOUSE_URL), VictoriaLogs (its Loki push endpoint) and Loki (single
# binary, filesystem storage), one after the other in one run, on loopback.
#
#   benches/ingest_peers.sh [--seconds S] [--connections N] [--format F] [--sluice BIN]
#                           [--victorialogs BIN] [--loki BIN]
#
# Defaults: 20 s per case, 8 connections, loki-protobuf, 5,000 entries of 200 bytes per push, 10
# streams; each case capped at 2 GiB of lines. Formats are loadgen's: every system takes the Loki
# ones; VictoriaLogs also takes jsonline and otlp on its own endpoints, Loki also otlp. The peers
# are optional: give the path of a binary built from their public sources (none is fetched or
# built here). Prints one Markdown table row
# per case (the first: the blackhole alone, fed RowBinary inserts by loadgen, the ceiling of the
# second): acknowledged entries/s, ack latency p50 / p99, the server's CPU seconds per million
# entries (utime + stime from /proc, over the load only), and its peak RSS (VmHWM). Every case
# runs a fresh server with its own data directory, deleted afterwards. Needs
# `cargo build --release -p sluice -p sluice-benches`; `--sluice` measures another build of sluice
# (before/after figures). With CLICKHOUSE_URL unreachable, the ClickHouse case is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=20 CONNS=8 FORMAT=loki-protobuf VL_BIN= LOKI_BIN= SUT= MPATH=
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) SECS=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --format) FORMAT=$2; shift 2 ;;
        --sluice) SUT=$2; shift 2 ;;
        --victorialogs) VL_BIN=$2; shift 2 ;;
        --loki) LOKI_BIN=$2; shift 2 ;;
        *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
CLICKHOUSE_URL=${CLICKHOUSE_URL:-http://127.0.0.1:8123}
BIN=${SUT:-target/release/sluice} LOADGEN=target/release/loadgen HOLE=target/release/blackhole
for b in $BIN $LOADGEN $HOLE; do
    [[ -x $b ]] || { echo "build first: cargo build --release -p sluice -p sluice-benches" >&2; exit 1; }
done
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_ready() {  # wait_ready URL PID LOG
    for _ in $(seq 1 600); do
        [[ $(curl -s "$1" || true) == *ready* ]] && return 0
        kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; return 1; }
        sleep 0.2
    done
    echo "not ready after 120 s: $1" >&2
    tail -20 "$3" >&2
    return 1
}
start() {  # start LOG CMD...; sets PID
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
}
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# measure NAME URL PID [HELPER_PID]: drives URL, prints the row; a helper's CPU seconds over the
# same load (the blackhole's) are added to the last column.
measure() {
    local name=$1 url=$2 pid=$3 helper=${4:-} before after helper_before out extra=
    before=$(cpu_ticks "$pid")
    [[ -n $helper ]] && helper_before=$(cpu_ticks "$helper")
    out=$("$LOADGEN" --url "$url" --format "$FORMAT" ${MPATH:+--path "$MPATH"} \
        --entries-per-push 5000 --line-bytes 200 --streams 10 --connections "$CONNS" \
        --seconds "$SECS" --max-bytes $((2 << 30)) --json)
    after=$(cpu_ticks "$pid")
    if [[ -n $helper ]]; then
        extra="$(( $(cpu_ticks "$helper") - helper_before )) $(curl -s "http://127.0.0.1:$hole_port/blackhole/stats")"
    fi
    python3 - "$name" "$out" "$((after - before))" "$TICK" \
        "$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" "$extra" <<'EOF'
import json, sys
name, out, ticks, tick, hwm_kib, helper = sys.argv[1:7]
r = json.loads(out)
acked = sum(v for k, v in r["statuses"].items() if k.startswith("2")) * 5000
other = {k: v for k, v in r["statuses"].items() if not k.startswith("2")}
cpu = int(ticks) / int(tick)
per_m = cpu / (acked / 1e6) if acked else float("nan")
extra = ""
if helper:
    # The blackhole: rows it had taken when the load ended, and its own CPU per million rows.
    h_ticks, stats = helper.split(" ", 1)
    rows = json.loads(stats)["log_rows"]
    h_cpu = int(h_ticks) / int(tick)
    share = f" ({rows / acked:.0%})" if acked else ""
    extra = (f"; the blackhole had {rows:,} rows{share}, "
             f"{h_cpu / (rows / 1e6) if rows else float('nan'):.2f} CPU s per M rows")
print(f"| {name} | {r['entries_per_s']:,.0f} | {r['ack_ms']['p50']:.1f} / {r['ack_ms']['p99']:.1f} ms "
      f"| {per_m:.2f} | {int(hwm_kib) / 1024:,.0f} MiB | {acked:,} in {r['seconds']:.1f} s"
      f"{', refused ' + json.dumps(other) if other else ''}{extra} |")
EOF
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2 / 1048576) " GiB"}' /proc/meminfo), $(uname -r); $(date -u +%F); loadgen $FORMAT, 5000 x 200 B per push, $CONNS connections, $SECS s"
echo
echo "| system | entries/s acknowledged | ack p50 / p99 | CPU s per M entries | peak RSS | acknowledged |"
echo "|---|---|---|---|---|---|"

# 0. The blackhole alone, fed sluice's inserts (RowBinary, LZ4) by loadgen: the ceiling of the
#    sluice -> blackhole case.
hole_port=$(free_port)
start "$WORK/hole0.log" "$HOLE" --listen "127.0.0.1:$hole_port"
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$hole_port/ping" && break; sleep 0.1; done
FORMAT=clickhouse measure "blackhole alone (the ceiling)" "http://127.0.0.1:$hole_port" "$PID"
stop "$PID"

# 1. sluice into the blackhole: sluice alone.
hole_port=$(free_port) port=$(free_port)
start "$WORK/hole.log" "$HOLE" --listen "127.0.0.1:$hole_port"
HOLE_PID=$PID
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$hole_port/ping" && break; sleep 0.1; done
start "$WORK/sluice-hole.log" env -u SLUICE_CONFIG SLUICE_LISTEN="127.0.0.1:$port" \
    SLUICE_CLICKHOUSE_URL="http://127.0.0.1:$hole_port" SLUICE_DATA_DIR="$WORK/sluice-hole" \
    SLUICE_LOG=warn "$BIN" serve
wait_ready "http://127.0.0.1:$port/ready" "$PID" "$WORK/sluice-hole.log"
measure "sluice -> blackhole" "http://127.0.0.1:$port" "$PID" "$HOLE_PID"
stop "$PID"
stop "$HOLE_PID"
rm -rf "$WORK/sluice-hole"

# 2. sluice into ClickHouse (chDB's CPU is not counted: it is another process).
if curl -sf -o /dev/null "$CLICKHOUSE_URL/ping"; then
    port=$(free_port) db=bench_peers_$$
    start "$WORK/sluice-ch.log" env -u SLUICE_CONFIG SLUICE_LISTEN="127.0.0.1:$port" \
        SLUICE_CLICKHOUSE_URL="$CLICKHOUSE_URL" SLUICE_CLICKHOUSE_DATABASE="$db" \
        SLUICE_DATA_DIR="$WORK/sluice-ch" SLUICE_LOG=warn "$BIN" serve
    wait_ready "http://127.0.0.1:$port/ready" "$PID" "$WORK/sluice-ch.log"
    measure "sluice -> ClickHouse" "http://127.0.0.1:$port" "$PID"
    stop "$PID"
    curl -s --data-binary "DROP DATABASE IF EXISTS $db" "$CLICKHOUSE_URL/" >/dev/null || true
    rm -rf "$WORK/sluice-ch"
else
    echo "| sluice -> ClickHouse | (no ClickHouse at $CLICKHOUSE_URL) | | | | |"
fi

# The path a peer takes $FORMAT on (MPATH, empty for loadgen's default), or none.
peer_path() {
    case "$1/$FORMAT" in
        vl/loki-*) MPATH=/insert/loki/api/v1/push ;;
        vl/jsonline) MPATH="/insert/jsonline?_stream_fields=job,stream" ;;
        vl/otlp) MPATH=/insert/opentelemetry/v1/logs ;;
        loki/jsonline) return 1 ;;
        *) MPATH= ;;
    esac
}

# 3. VictoriaLogs, through its endpoint for the format (Loki push, JSON lines, OpenTelemetry).
if [[ -n $VL_BIN ]] && peer_path vl; then
    port=$(free_port)
    start "$WORK/vl.log" "$VL_BIN" -httpListenAddr="127.0.0.1:$port" \
        -storageDataPath="$WORK/vl" -retentionPeriod=100y -loggerLevel=WARN
    for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.2; done
    measure "VictoriaLogs" "http://127.0.0.1:$port" "$PID"
    stop "$PID"
    rm -rf "$WORK/vl"
fi

# 4. Loki, one process, filesystem storage, limits raised so that none refuses the load.
if [[ -n $LOKI_BIN ]] && ! peer_path loki; then
    echo "| Loki | (takes no $FORMAT) | | | | |"
elif [[ -n $LOKI_BIN ]]; then
    port=$(free_port) grpc=$(free_port)
    mkdir -p "$WORK/loki"
    cat >"$WORK/loki.yaml" <<EOF
auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $port
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: $grpc
  log_level: warn
  grpc_server_max_recv_msg_size: 104857600
common:
  instance_addr: 127.0.0.1
  path_prefix: $WORK/loki
  storage:
    filesystem:
      chunks_directory: $WORK/loki/chunks
      rules_directory: $WORK/loki/rules
  replication_factor: 1
  ring:
    kvstore:
      store: inmemory
schema_config:
  configs:
    - from: 2024-01-01
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
ingester:
  lifecycler:
    min_ready_duration: 0s
    final_sleep: 0s
limits_config:
  ingestion_rate_mb: 100000
  ingestion_burst_size_mb: 100000
  per_stream_rate_limit: 10GB
  per_stream_rate_limit_burst: 10GB
  reject_old_samples: false
analytics:
  reporting_enabled: false
EOF
    start "$WORK/loki.log" "$LOKI_BIN" -config.file="$WORK/loki.yaml"
    wait_ready "http://127.0.0.1:$port/ready" "$PID" "$WORK/loki.log"
    measure "Loki" "http://127.0.0.1:$port" "$PID"
    stop "$PID"
    rm -rf "$WORK/loki"
fi
