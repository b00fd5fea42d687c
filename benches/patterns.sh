#!/usr/bin/env bash
# Logs Drilldown's patterns tab over a day of a busy service: pushes ENTRIES lines (default
# 1,000,000) of one service, spread over the last 24 hours in four streams and drawn from
# sixteen line shapes (logfmt, JSON, plain text) with variable fields, then times, each REPEAT
# times (default 3), side by side:
#   - GET /loki/api/v1/patterns over the 24 hours, step 5m (Drilldown's request);
#   - the same range as a metric query, sum(count_over_time({...}[5m])) (a scan of the rows
#     without reading the lines: the floor);
#   - sum by (detected_level) (count_over_time({...} |> "<top pattern>" [5m])), what Drilldown
#     asks when a pattern is included.
# Runs sluice binary BIN on PORT against the local ClickHouse (database bench_patterns, dropped
# after); its write-ahead log lives in a temporary directory, removed after.
#
#   benches/patterns.sh BIN PORT [ENTRIES] [REPEAT]   e.g. benches/patterns.sh target/release/sluice 3302
#
# Needs curl and python3.
set -euo pipefail
BIN=$1 PORT=$2 ENTRIES=${3:-1000000} REPEAT=${4:-3}
CH=${CLICKHOUSE_URL:-http://127.0.0.1:8123}
D=$(mktemp -d)
SLUICE_LISTEN=127.0.0.1:$PORT SLUICE_CLICKHOUSE_DATABASE=bench_patterns SLUICE_DATA_DIR=$D \
    SLUICE_LOG=warn SLUICE_QUERY_TIMEOUT_SECS=300 "$BIN" serve >"$D/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"; curl -s --data-binary "DROP DATABASE IF EXISTS bench_patterns" "$CH/" >/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/ready" && break; sleep 0.2; done
NOW=$(date +%s)
echo "pushing $ENTRIES entries over 24 h"
python3 - "$PORT" "$NOW" "$ENTRIES" <<'PY'
import json, random, sys, urllib.request
port, now, entries = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
paths = ["/api/cart", "/api/items", "/login", "/api/orders", "/health", "/api/users"]
users = ["ann", "bob", "carol", "dave", "erin"]
def line(k):
    r = rng.randrange
    return [
        lambda: f'level=info msg="{rng.choice(["GET", "POST"])} {rng.choice(paths)} done" status=200 latency={r(900)}ms user={rng.choice(users)}',
        lambda: f'level=info msg="{rng.choice(["GET", "PUT"])} {rng.choice(paths)}/{r(10000)} done" status={rng.choice([200, 201, 204])} latency={r(900)}ms',
        lambda: f'level=warn msg="slow request" path={rng.choice(paths)} latency={r(9)}.{r(9)}s',
        lambda: f'level=error msg="upstream timeout" upstream=10.0.{r(4)}.{r(255)}:8080 attempt={r(5)}',
        lambda: f'level=debug msg="cache lookup" key=item:{r(100000)} hit={rng.choice(["true", "false"])}',
        lambda: json.dumps({"level": "info", "msg": "order placed", "order_id": r(10**6), "amount": r(10000) / 100}),
        lambda: json.dumps({"level": "error", "msg": "payment declined", "code": rng.choice(["insufficient_funds", "expired"]), "order_id": r(10**6)}),
        lambda: json.dumps({"level": "info", "msg": "user signed in", "user": rng.choice(users), "ip": f"192.168.{r(255)}.{r(255)}"}),
        lambda: f"connection from 10.1.{r(255)}.{r(255)} accepted",
        lambda: f"connection from 10.1.{r(255)}.{r(255)} closed after {r(3600)} s",
        lambda: f"GC pause {r(200)} ms, heap {r(4096)} MB",
        lambda: f"worker {r(16)} picked job {r(10**7)} from queue {rng.choice(['default', 'mail', 'export'])}",
        lambda: f"job {r(10**7)} finished in {r(60000)} ms with {r(1000)} rows",
        lambda: f"WARN disk usage at {r(100)}% on /dev/sd{rng.choice('abc')}",
        lambda: f"ERROR failed to send email to {rng.choice(users)}@example.com: timeout",
        lambda: f"{rng.choice(users)} downloaded report-{r(1000)}.pdf ({r(5000)} KB)",
    ][k]()
weights = [30, 20, 4, 2, 10, 8, 2, 5, 6, 6, 2, 5, 5, 1, 1, 2]
start = (now - 24 * 3600) * 10**9
step = 24 * 3600 * 10**9 // entries
batch = 20000
for b in range(0, entries, batch):
    streams = {}
    for i in range(b, min(entries, b + batch)):
        pod = i % 4
        k = rng.choices(range(16), weights)[0]
        streams.setdefault(pod, []).append([str(start + i * step), line(k)])
    body = {"streams": [{"stream": {"service_name": "busy", "pod": f"busy-{p}"}, "values": v}
                        for p, v in streams.items()]}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/loki/api/v1/push",
                                 json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 204
PY
# Wait until ClickHouse has every entry.
for _ in $(seq 1 300); do
    n=$(curl -s --data-binary "SELECT count() FROM bench_patterns.logs" "$CH/")
    [[ $n == "$ENTRIES" ]] && break
    sleep 1
done
echo "stored: $(curl -s --data-binary "SELECT count(), formatReadableSize(sum(length(Body))) FROM bench_patterns.logs" "$CH/")"
START=$(( (NOW - 24 * 3600) * 1000000000 ))
END=$(( NOW * 1000000000 ))
BASE="http://127.0.0.1:$PORT/loki/api/v1"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
SEL='{service_name="busy"}'
PAT_URL="$BASE/patterns?query=$(enc "$SEL")&start=$START&end=$END&step=5m"
curl -s "$PAT_URL" >"$D/patterns.json"
python3 - "$D/patterns.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
totals = {}
for p in d:
    totals[p["pattern"]] = totals.get(p["pattern"], 0) + sum(s[1] for s in p["samples"])
print(f"patterns: {len(totals)} ({len(d)} with their levels); the top five:")
for t, n in sorted(totals.items(), key=lambda x: -x[1])[:5]:
    print(f"  {n:>8}  {t}")
PY
TOP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][0]["pattern"])' "$D/patterns.json")
ESC=${TOP//\\/\\\\}
ESC=${ESC//\"/\\\"}
COUNT_URL="$BASE/query_range?query=$(enc "sum(count_over_time($SEL[5m]))")&start=$START&end=$END&step=300"
FILTER_URL="$BASE/query_range?query=$(enc "sum by (detected_level) (count_over_time($SEL |> \"$ESC\" [5m]))")&start=$START&end=$END&step=300"
for round in $(seq 1 "$REPEAT"); do
    for name in patterns count filter; do
        case $name in
            patterns) url=$PAT_URL ;;
            count) url=$COUNT_URL ;;
            filter) url=$FILTER_URL ;;
        esac
        # Cache-Control: no-cache keeps the results cache out of the timing.
        t=$(curl -s -o /dev/null -H 'Cache-Control: no-cache' -w '%{http_code} %{time_total}' "$url")
        echo "round $round $name: $t s"
    done
done
