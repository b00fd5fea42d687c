#!/usr/bin/env bash
# A Grafana dashboard on "last 6 hours", refreshed every 10 s: the same metric query with a
# window that slides 10 s per refresh, while new entries keep arriving. Prints, per refresh, the
# latency and the ClickHouse requests it cost (X-Sluice-ClickHouse-Requests). Runs sluice binary
# BIN on PORT against the local ClickHouse (database bench_refresh_NAME, dropped after), after
# pushing 20,000 entries spread over the last 6 hours.
#
#   benches/cache_refresh.sh BIN NAME PORT [REFRESHES]     (default 7 refreshes, 10 s apart)
#
# Extra sluice settings come from the environment (e.g. SLUICE_QUERY_CACHE_MAX_BYTES=0).
# Needs python3.
set -euo pipefail
BIN=$1 NAME=$2 PORT=$3 N=${4:-7}
D=$(mktemp -d)
SLUICE_LISTEN=127.0.0.1:$PORT SLUICE_CLICKHOUSE_DATABASE=bench_refresh_$NAME SLUICE_DATA_DIR=$D SLUICE_LOG=warn "$BIN" serve > $D/log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf $D; curl -s --data-binary "DROP DATABASE IF EXISTS bench_refresh_$NAME" http://127.0.0.1:8123/ >/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$PORT/ready && break; sleep 0.2; done
echo "== $NAME"
python3 - "$PORT" "$N" <<'PY'
import json, sys, time, random, urllib.request, urllib.parse
port, refreshes = int(sys.argv[1]), int(sys.argv[2])
base = "http://127.0.0.1:%d" % port
rng = random.Random(1)

def push(entries):
    streams = {}
    for ts, app in entries:
        streams.setdefault(app, []).append([str(ts), "GET /api status=200 level=info"])
    body = {"streams": [{"stream": {"job": "refresh", "app": a}, "values": sorted(v)} for a, v in streams.items()]}
    req = urllib.request.Request(base + "/loki/api/v1/push", json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 204

def settle():
    for _ in range(100):
        m = urllib.request.urlopen(base + "/metrics").read().decode()
        b = [l.split()[1] for l in m.splitlines() if l.startswith("sluice_wal_backlog_records ")]
        if not b or b[0] == "0":
            return
        time.sleep(0.2)

now = time.time_ns()
for batch in range(20):
    push([(now - rng.randrange(6 * 3600 * 10**9), rng.choice("abcde")) for _ in range(1000)])
settle()
q = 'sum by (app) (rate({job="refresh"}[1m]))'
costs, lats = [], []
for i in range(refreshes):
    if i:
        time.sleep(10)
        # New entries at the live edge since the last refresh.
        t = time.time_ns()
        push([(t - rng.randrange(10 * 10**9), rng.choice("abcde")) for _ in range(200)])
        settle()
    end = time.time_ns()
    params = urllib.parse.urlencode({"query": q, "start": end - 6 * 3600 * 10**9, "end": end, "step": "20"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + "/loki/api/v1/query_range?" + params) as r:
        body = json.load(r)
        n = int(r.headers.get("x-sluice-clickhouse-requests", "-1"))
    ms = (time.perf_counter() - t0) * 1000
    points = sum(len(s["values"]) for s in body["data"]["result"])
    print("refresh %d: %.1f ms, %s ClickHouse requests, %d points" % (i, ms, n if n >= 0 else "(not counted by this build)", points))
    if i:
        costs.append(n); lats.append(ms)
lats.sort()
print("after the first: median %.1f ms, max %.1f ms, ClickHouse requests per refresh %s" % (lats[len(lats) // 2], lats[-1], sorted(set(costs))))
PY
