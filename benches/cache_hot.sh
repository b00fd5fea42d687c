#!/usr/bin/env bash
# A repeated closed-range metric query with unaligned edges, as a Grafana panel sends it, through
# the results cache: one cold request, one more (with the ClickHouse requests it cost), then
# `wrk -t2 -c8 -d10s`; then the same for a log query over that range (limit 100). Runs sluice binary BIN on PORT against the local ClickHouse (database
# bench_cache_NAME, dropped after), after pushing 10,000 entries 30-150 minutes old.
#
#   benches/cache_hot.sh BIN NAME PORT      e.g. benches/cache_hot.sh target/release/sluice after 3302
#
# The cache backend is the default unless SLUICE_QUERY_CACHE_BACKEND says otherwise.
# Needs wrk (Debian package) and python3.
set -euo pipefail
BIN=$1 NAME=$2 PORT=$3
D=$(mktemp -d)
SLUICE_LISTEN=127.0.0.1:$PORT SLUICE_CLICKHOUSE_DATABASE=bench_cache_$NAME SLUICE_DATA_DIR=$D SLUICE_LOG=warn "$BIN" serve > $D/log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf $D; curl -s --data-binary "DROP DATABASE IF EXISTS bench_cache_$NAME" http://127.0.0.1:8123/ >/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$PORT/ready && break; sleep 0.2; done
NOW=$(date +%s)
python3 - "$PORT" "$NOW" <<'PY'
import json, sys, urllib.request, random
port, now = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(1)
for batch in range(10):
    streams = {}
    for i in range(1000):
        app = rng.choice(["a", "b", "c"])
        ts = (now - 150*60 + rng.randrange(120*60)) * 10**9 + batch*1000 + i
        streams.setdefault(app, []).append([str(ts), "line %d %d level=info" % (batch, i)])
    body = {"streams": [{"stream": {"marker": "m", "app": a}, "values": sorted(v)} for a, v in streams.items()]}
    req = urllib.request.Request("http://127.0.0.1:%d/loki/api/v1/push" % port, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 204
PY
# wait for the backlog to reach ClickHouse (the gauge exists only in the WAL build)
for _ in $(seq 1 100); do
  b=$(curl -s http://127.0.0.1:$PORT/metrics | awk '$1=="sluice_wal_backlog_records"{print $2}')
  [[ -z $b || $b == 0 ]] && break; sleep 0.2; done
sleep 2
START=$(( (NOW - 150*60 + 13) ))
END=$(( (NOW - 30*60 - 7) ))
Q='sum%20by%20(app)%20(count_over_time(%7Bmarker%3D%22m%22%7D%5B5m%5D))'
URL="http://127.0.0.1:$PORT/loki/api/v1/query_range?query=$Q&start=$START&end=$END&step=60"
echo "== $NAME"
curl -s -o ${OUT:-/tmp}/cache_hot_$NAME.json -D ${OUT:-/tmp}/cache_hot_$NAME.headers -w "cold: %{time_total}s\n" "$URL"
curl -s -o /dev/null -D - -w "second: %{time_total}s\n" "$URL" | grep -i "x-sluice-clickhouse\|second"
python3 -c "import json;d=json.load(open('${OUT:-/tmp}/cache_hot_$NAME.json'));r=d['data']['result'];print('series',len(r),'points',sum(len(s['values']) for s in r),'total',sum(float(v[1]) for s in r for v in s['values']))"
wrk -t2 -c8 -d10s --latency "$URL" | grep -E "Requests/sec|Latency|50%|99%"
# The same closed range as a log query (Grafana's Explore: the newest 100 lines), from log extents.
LQ='%7Bmarker%3D%22m%22%7D'
LURL="http://127.0.0.1:$PORT/loki/api/v1/query_range?query=$LQ&start=$START&end=$END&limit=100"
echo "-- log query"
curl -s -o /dev/null -w "cold: %{time_total}s\n" "$LURL"
curl -s -o /dev/null -D - -w "second: %{time_total}s\n" "$LURL" | grep -i "x-sluice-clickhouse\|second"
wrk -t2 -c8 -d10s --latency "$LURL" | grep -E "Requests/sec|Latency|50%|99%"
# The results cache's own counters over the whole run (the backend is SLUICE_QUERY_CACHE_BACKEND).
curl -s http://127.0.0.1:$PORT/metrics | awk '/^sluice_cache_(hits|misses)_total/ {print}
  $1=="sluice_query_requests_without_clickhouse_total" {print}' 
