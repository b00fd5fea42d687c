#!/usr/bin/env python3
"""Query latency of sluice against a real Loki on the same data, in the same run.

    python3 benches/loki_compare/latency.py --sluice http://127.0.0.1:3100 --loki http://127.0.0.1:3101

1. Generates a deterministic dataset (``--seed``) of ``--entries`` entries (default 200,000)
   timestamped between 55 and 2 minutes before ``--anchor`` (default now), in 20 streams
   ``{service_name="svc-0".."svc-4", env="prod"|"staging", pod=...}``; lines of about 120 bytes,
   60 % logfmt, 30 % JSON, 10 % plain text (some with the word "timeout").
2. Pushes it to both servers with Loki's JSON push API (``POST /loki/api/v1/push``, batches of
   ``--batch`` entries, no gzip) and times the push per server. That is one client pushing JSON
   one batch at a time: it is not an ingest benchmark.
3. Waits until ``sum(count_over_time({service_name=~".+"}[1h]))`` at the end of the window equals
   the number of entries on both (up to ``--wait`` seconds).
4. Runs every query of QUERIES with ``query_range`` over the whole window (start and end on whole
   minutes; ``step=60s`` for metric queries, ``limit=1000`` for log queries): one warm-up on each
   server, then ``--runs`` timed runs alternating sluice, loki, sluice, loki, ... Reports the median
   and p90 wall time (client side, request sent to body read) per server and the ratio
   loki/sluice of the medians (above 1: sluice is faster), and whether the two answers agree.
5. Prints a markdown table and the machine facts.

Python 3 standard library only. Exit status 0 when every query ran on both servers, 1 when any
query failed or the answers disagree, 2 when the set-up fails.
"""

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

NS = 1_000_000_000
MINUTE = 60 * NS

QUERIES = [
    # (query, kind) - kind "log" or "metric"
    ('{service_name="svc-1"}', "log"),
    ('{service_name="svc-1"} |= "timeout"', "log"),
    ('{service_name=~"svc-.*"} | logfmt | status >= 500', "log"),
    ('{service_name="svc-2"} | json | latency_ms > 500', "log"),
    ('{service_name=~".+"} |~ "status=5[0-9]{2}"', "log"),
    ('sum by (service_name) (count_over_time({service_name=~".+"}[1m]))', "metric"),
    ('sum by (level) (count_over_time({service_name=~".+"} | drop __error__ [1m]))', "metric"),
    ('sum(rate({service_name="svc-0"} |= "timeout" [5m]))', "metric"),
    ('sum by (service_name) (rate({service_name=~".+"} | logfmt | __error__="" [5m]))', "metric"),
    ('quantile_over_time(0.99, {service_name="svc-3"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (env)',
     "metric"),
    ('topk(3, sum by (pod) (bytes_over_time({service_name=~".+"}[5m])))', "metric"),
    ('sum by (status) (count_over_time({service_name="svc-4"} | json | __error__="" [5m]))', "metric"),
]


# --------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------

SERVICES = ["svc-%d" % i for i in range(5)]
ENVS = ["prod", "staging"]
PATHS = ["/api/v1/orders", "/api/v1/users", "/api/v1/cart", "/api/v1/search", "/healthz",
         "/api/v2/payments", "/api/v2/inventory", "/static/app.js", "/login", "/logout"]
MSGS = ["request completed", "request failed", "cache miss", "upstream slow",
        "user authenticated", "payment accepted", "retrying request", "bad gateway"]
UPSTREAMS = ["db-0", "db-1", "redis-main", "payments-gw", "search-7", "auth-2"]


def make_streams(rng):
    streams = []
    for svc in SERVICES:
        for env in ENVS:
            for _ in range(2):
                pod = "%s-%s-%05x-%s" % (svc, env[:4], rng.randrange(16 ** 5),
                                         "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)))
                streams.append({"service_name": svc, "env": env, "pod": pod})
    return streams  # 5 services x 2 envs x 2 pods = 20


def status_and_level(rng):
    r = rng.random()
    if r < 0.80:
        status = 200
    elif r < 0.86:
        status = rng.choice([201, 204, 301, 304])
    elif r < 0.93:
        status = rng.choice([400, 401, 403, 404])
    else:
        status = rng.choice([500, 502, 503, 504])
    if status >= 500:
        level = "error"
    elif status >= 400:
        level = "warn"
    else:
        level = "debug" if rng.random() < 0.1 else "info"
    return status, level


def latency_ms(rng):
    # log-normal around ~40 ms with a long tail (a few % above 500 ms)
    return max(1, min(30000, int(rng.lognormvariate(3.7, 1.1))))


def hexid(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def logfmt_line(rng):
    status, level = status_and_level(rng)
    return 'level=%s msg="%s" status=%d latency=%dms path=%s/%d method=%s trace=%s' % (
        level, rng.choice(MSGS), status, latency_ms(rng), rng.choice(PATHS), rng.randrange(10000),
        rng.choice(["GET", "GET", "GET", "POST", "PUT", "DELETE"]), hexid(rng, 16))


def json_line(rng):
    status, level = status_and_level(rng)
    return json.dumps({"level": level, "status": status, "latency_ms": latency_ms(rng),
                       "path": "%s/%d" % (rng.choice(PATHS), rng.randrange(10000)),
                       "msg": rng.choice(MSGS), "trace": hexid(rng, 12)}, separators=(",", ":"))


def plain_line(rng):
    up = rng.choice(UPSTREAMS)
    if rng.random() < 0.4:
        return "WARN upstream %s: timeout after %ds waiting for response (attempt %d/5) request_id=%s" % (
            up, rng.choice([5, 10, 30, 60]), rng.randint(1, 5), hexid(rng, 16))
    return "INFO connection pool to %s: %d active, %d idle, %d waiting; gc pause %.1fms worker=%s" % (
        up, rng.randrange(64), rng.randrange(32), rng.randrange(8), rng.random() * 20, hexid(rng, 10))


def make_dataset(seed, n, anchor_ns):
    """Return (streams, entries, first_ts, last_ts); entries = [(ts, stream_index, line)] sorted by
    (ts, stream). Timestamps are in [anchor-55m, anchor-2m], distinct within a stream."""
    rng = random.Random(seed)
    streams = make_streams(rng)
    lo, hi = anchor_ns - 55 * MINUTE, anchor_ns - 2 * MINUTE
    # a little uneven: some streams busier than others
    weights = [0.5 + rng.random() for _ in streams]
    per_stream = [[] for _ in streams]
    for si in rng.choices(range(len(streams)), weights=weights, k=n):
        per_stream[si].append(rng.randint(lo, hi))
    entries = []
    for si, tss in enumerate(per_stream):
        tss.sort()
        prev = None
        for ts in tss:
            if prev is not None and ts <= prev:
                ts = prev + 1  # never two equal timestamps within a stream
            prev = ts
            r = rng.random()
            line = logfmt_line(rng) if r < 0.6 else json_line(rng) if r < 0.9 else plain_line(rng)
            entries.append((ts, si, line))
    entries.sort(key=lambda e: (e[0], e[1]))
    return streams, entries, entries[0][0], entries[-1][0]


def push_bodies(streams, entries, batch):
    """Encoded JSON push bodies of `batch` entries each, in global time order."""
    out = []
    for i in range(0, len(entries), batch):
        by_stream = {}
        for ts, si, line in entries[i:i + batch]:
            by_stream.setdefault(si, []).append([str(ts), line])
        body = {"streams": [{"stream": streams[si], "values": vals} for si, vals in sorted(by_stream.items())]}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def http(method, url, headers, data=None, timeout=300.0):
    """(status, raw body bytes, seconds); status 0 when there was no answer."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            code, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        code, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, ("no answer: %s" % e).encode(), time.perf_counter() - t0
    return code, raw, time.perf_counter() - t0


def get(base, path, params, headers, timeout=300.0):
    qs = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return http("GET", base.rstrip("/") + path + "?" + qs, headers, timeout=timeout)


def parse(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def count_entries(base, headers, at_ns):
    code, raw, _ = get(base, "/loki/api/v1/query",
                       {"query": 'sum(count_over_time({service_name=~".+"}[1h]))', "time": str(at_ns)},
                       headers, timeout=60)
    body = parse(raw)
    if code != 200 or not isinstance(body, dict):
        return None, "HTTP %d %s" % (code, raw[:200].decode("utf-8", "replace"))
    res = body.get("data", {}).get("result") or []
    return (int(float(res[0]["value"][1])) if res else 0), None


# --------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------

def summarise(code, raw):
    """(ok, size text, normalised content or error text)."""
    body = parse(raw)
    if code != 200 or not isinstance(body, dict) or body.get("status") != "success":
        msg = body.get("error") if isinstance(body, dict) and "error" in body else raw[:200].decode("utf-8", "replace")
        return False, "HTTP %d" % code, str(msg).strip()
    data = body.get("data") or {}
    t, res = data.get("resultType"), data.get("result") or []
    if t == "streams":
        content = sorted((tuple(sorted((s.get("stream") or {}).items())), v[0], v[1])
                         for s in res for v in (s.get("values") or []))
        return True, "%d entries / %d streams" % (len(content), len(res)), ("streams", len(res), content)
    if t == "matrix":
        series = {tuple(sorted((s.get("metric") or {}).items())): [(p[0], p[1]) for p in s.get("values") or []]
                  for s in res}
        npts = sum(len(v) for v in series.values())
        return True, "%d points / %d series" % (npts, len(series)), ("matrix", len(res), series)
    return True, t or "?", (t, len(res), res)


def close(a, b):
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return abs(x - y) <= max(1e-9 * max(abs(x), abs(y)), 1e-12)


def compare(s, l):
    """Compare two successful answers: 'yes', 'yes (counts; ...)' or 'NO: ...'."""
    kind_s, nser_s, cs = s
    kind_l, nser_l, cl = l
    if kind_s != kind_l:
        return "NO: result type %s vs %s" % (kind_s, kind_l)
    if kind_s == "streams":
        if nser_s != nser_l or len(cs) != len(cl):
            return "NO: sluice %d entries / %d streams, loki %d / %d" % (len(cs), nser_s, len(cl), nser_l)
        if cs != cl:
            same_tl = sorted(x[1:] for x in cs) == sorted(x[1:] for x in cl)
            return "yes (counts; %s)" % ("same entries, other stream labels" if same_tl else "other entries")
        return "yes"
    if kind_s == "matrix":
        npts_s, npts_l = sum(len(v) for v in cs.values()), sum(len(v) for v in cl.values())
        if nser_s != nser_l or npts_s != npts_l:
            return "NO: sluice %d points / %d series, loki %d / %d" % (npts_s, nser_s, npts_l, nser_l)
        if set(cs) != set(cl):
            return "yes (counts; other series labels)"
        for k in cs:
            ps, pl = cs[k], cl[k]
            if [p[0] for p in ps] != [p[0] for p in pl]:
                return "yes (counts; other timestamps)"
            if not all(close(a[1], b[1]) for a, b in zip(ps, pl)):
                return "yes (counts; other values)"
        return "yes"
    return "yes" if nser_s == nser_l else "NO: %d vs %d results" % (nser_s, nser_l)


def quantile(xs, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    i = int(math.floor(pos))
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (pos - i)


# --------------------------------------------------------------------------
# Machine facts
# --------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def nproc():
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(os.cpu_count())


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return "?"


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def git_head():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        r = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"], capture_output=True,
                           text=True, check=True)
        return r.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def buildinfo(base, headers):
    code, raw, _ = get(base, "/loki/api/v1/status/buildinfo", {}, headers, timeout=10)
    body = parse(raw)
    if code == 200 and isinstance(body, dict):
        return " ".join(str(body.get(k)) for k in ("version", "revision") if body.get(k))
    return "n/a (HTTP %d)" % code


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sluice", required=True, help="sluice base URL, e.g. http://127.0.0.1:3100")
    ap.add_argument("--loki", required=True, help="Loki base URL, e.g. http://127.0.0.1:3101")
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=7, help="timed runs per query and server (after one warm-up)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--anchor", type=int, default=None,
                    help="Unix ns that stands for 'now' (default: now); with --no-push, the anchor of the push")
    ap.add_argument("--batch", type=int, default=5000, help="entries per push request")
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the data to be queryable")
    ap.add_argument("--tenant", default=None, help="X-Scope-OrgID (default latency-<seed>; Loki without auth ignores it)")
    ap.add_argument("--no-push", action="store_true", help="query data pushed by an earlier run (same --seed/--anchor)")
    ap.add_argument("--allow-existing", action="store_true", help="push even if the window already holds data")
    ap.add_argument("--only", default=None, help="run only queries containing this substring")
    ap.add_argument("--json", default=None, help="also write every timing to this file")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # keep stdout and the stderr progress lines in order

    anchor = args.anchor if args.anchor is not None else time.time_ns()
    headers = {"X-Scope-OrgID": args.tenant or "latency-%d" % args.seed}
    systems = [("sluice", args.sluice), ("loki", args.loki)]

    facts = {
        "nproc": nproc(), "uname -m": platform.machine(), "cpu": cpu_model(), "memory": mem_total(),
        "python": platform.python_version(), "sluice git": git_head(),
        "sluice buildinfo": buildinfo(args.sluice, headers), "loki buildinfo": buildinfo(args.loki, headers),
        "load average before": loadavg(),
    }
    print("# sluice vs Loki query latency\n")
    print("rerun the queries on this data: `--seed %d --anchor %d --entries %d --no-push`\n"
          % (args.seed, anchor, args.entries))

    t0 = time.perf_counter()
    streams, entries, first_ts, last_ts = make_dataset(args.seed, args.entries, anchor)
    start = first_ts // MINUTE * MINUTE
    end = (last_ts // MINUTE + 1) * MINUTE  # > last_ts: the end of a log query is exclusive
    bodies = push_bodies(streams, entries, args.batch)
    nbytes = sum(len(e[2]) for e in entries)
    print("dataset: %d entries, %d streams, %.1f MB of lines (mean %.0f B/line), %d push bodies of <= %d entries "
          "(%.1f MB of JSON), generated in %.1f s" % (
              len(entries), len(streams), nbytes / 1e6, nbytes / len(entries), len(bodies), args.batch,
              sum(map(len, bodies)) / 1e6, time.perf_counter() - t0))
    print("window: start=%d end=%d (%s .. %s UTC, %d min)\n" % (
        start, end, time.strftime("%H:%M", time.gmtime(start / NS)), time.strftime("%H:%M", time.gmtime(end / NS)),
        (end - start) // MINUTE))

    # --- push -------------------------------------------------------------
    push_rate = {}
    if not args.no_push:
        for name, base in systems:
            n, err = count_entries(base, headers, end)
            if n is None:
                print("%s: cannot count existing entries: %s" % (name, err))
                return 2
            if n and not args.allow_existing:
                print("%s already holds %d entries in the window; start it fresh (or --allow-existing)" % (name, n))
                return 2
        ph = dict(headers, **{"Content-Type": "application/json"})
        for name, base in systems:
            t0 = time.perf_counter()
            for i, b in enumerate(bodies):
                code, raw, _ = http("POST", base.rstrip("/") + "/loki/api/v1/push", ph, data=b)
                if code != 204:
                    print("%s: push %d answered HTTP %d: %s" % (name, i, code, raw[:300].decode("utf-8", "replace")))
                    return 2
            dt = time.perf_counter() - t0
            push_rate[name] = (dt, len(entries) / dt)
            print("push %-6s %6.2f s  %8.0f entries/s" % (name, dt, len(entries) / dt))
        print("(one client, sequential JSON push requests of %d entries, no gzip: not an ingest benchmark)\n"
              % args.batch)

    # --- wait until everything is queryable --------------------------------
    t0 = time.perf_counter()
    counts = {}
    while True:
        for name, base in systems:
            counts[name] = count_entries(base, headers, end)[0]
        if all(c == len(entries) for c in counts.values()):
            break
        if time.perf_counter() - t0 > args.wait:
            print("after %.0f s the count is %s, expected %d on both" % (args.wait, counts, len(entries)))
            return 2
        time.sleep(0.5)
    print("all %d entries queryable on both after %.1f s\n" % (len(entries), time.perf_counter() - t0))

    # --- queries ----------------------------------------------------------
    facts["load average before queries"] = loadavg()
    rows, raw_timings, bad = [], [], False
    for q, kind in QUERIES:
        if args.only and args.only not in q:
            continue
        params = {"query": q, "start": str(start), "end": str(end)}
        if kind == "log":
            params.update(limit="1000", direction="backward")
        else:
            params["step"] = "60s"
        times = {"sluice": [], "loki": []}
        first = {}
        errors = {}
        for r in range(args.runs + 1):  # run 0 is the warm-up
            for name, base in systems:
                code, raw, dt = get(base, "/loki/api/v1/query_range", params, headers)
                ok, size, content = summarise(code, raw)
                if r == 0:
                    first[name] = (ok, size, content)
                if not ok:
                    errors.setdefault(name, "%s: %s" % (size, content))
                elif r > 0:
                    times[name].append(dt * 1000)
        (ok_s, size_s, c_s), (ok_l, size_l, c_l) = first["sluice"], first["loki"]
        if ok_s and ok_l:
            agree = compare(c_s, c_l)
        elif not ok_s and not ok_l:
            agree = "both failed"
        else:
            agree = "NO: %s failed" % ("sluice" if not ok_s else "loki")
        if errors or agree.startswith("NO") or agree == "both failed":
            bad = True

        def stat(name):
            ts = times[name]
            if not ts:
                return None, None
            return statistics.median(ts), quantile(ts, 0.9)

        ms, ps = stat("sluice")
        ml, pl = stat("loki")
        ratio = (ml / ms) if ms and ml else None
        rows.append((q, kind, ms, ps, ml, pl, ratio, agree, size_s, size_l, errors))
        raw_timings.append({"query": q, "kind": kind, "sluice_ms": times["sluice"], "loki_ms": times["loki"],
                            "sluice_size": size_s, "loki_size": size_l, "agree": agree, "errors": errors})
        print("  %-8s sluice %s / loki %s  %s" % (
            "%.0f/%.0f" % (ms, ml) if ms and ml else "-", size_s, size_l, q), file=sys.stderr)
    facts["load average after"] = loadavg()

    # --- report -----------------------------------------------------------
    f = lambda x: "-" if x is None else ("%.0f" % x if x >= 100 else "%.1f" % x)  # noqa: E731
    print("%d timed runs per query and server after one warm-up, alternating sluice/loki; wall time in ms "
          "on the client; ratio = loki median / sluice median (above 1: sluice faster). Log queries: "
          "`limit=1000`, backward; metric queries: `step=60s`; all `query_range` over the whole window.\n"
          % args.runs)
    print("| query | sluice median | sluice p90 | loki median | loki p90 | loki/sluice | answers agree |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for q, kind, ms, ps, ml, pl, ratio, agree, size_s, size_l, errors in rows:
        note = agree
        if agree == "yes":
            note = "yes (%s)" % size_l
        print("| `%s` | %s | %s | %s | %s | %s | %s |" % (
            q.replace("|", "\\|"), f(ms), f(ps), f(ml), f(pl), "-" if ratio is None else "%.2f" % ratio,
            note.replace("|", "\\|")))
    if any(r[10] for r in rows):
        print("\nerrors:")
        for q, *_, errors in rows:
            for name, e in errors.items():
                print("- `%s` %s: %s" % (q, name, e))
    print("\nmachine:\n")
    for k, v in facts.items():
        print("- %s: %s" % (k, v))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"facts": facts, "push": push_rate, "entries": len(entries), "start": start, "end": end,
                       "seed": args.seed, "anchor": anchor, "queries": raw_timings}, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
