#!/usr/bin/env python3
"""Compare sluice's LogQL answers with Loki's over the same pushed data.

Pushes one deterministic, seeded dataset to both servers with Loki's JSON push
API, waits until both see all of it, runs every query of a corpus against both
and compares the normalised answers. Standard library only.

    python3 benches/loki_compare/compare.py \
        --sluice http://127.0.0.1:3100 --loki http://127.0.0.1:3101

Exit status: 0 when every query is OK or BOTH-ERROR, 1 when any is DIFF or
ERROR-ONE-SIDE, 2 on a setup failure (push refused, data already there, ...).
See README.md beside this file for the corpus syntax and what is compared.
"""

import argparse
import json
import math
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

NS = 1_000_000_000
MINUTE_NS = 60 * NS
HERE = os.path.dirname(os.path.abspath(__file__))

# --------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------

# Stream definitions: labels, line kind, relative weight, share of entries
# that carry structured metadata. service_name is always explicit (both
# systems would otherwise derive one).
STREAMS = [
    ({"service_name": "api", "app": "api", "env": "prod", "level": "info"}, "logfmt", 5, 0.3),
    ({"service_name": "api", "app": "api", "env": "prod", "level": "error"}, "logfmt", 2, 0.5),
    ({"service_name": "api", "app": "api", "env": "staging"}, "logfmt", 3, 0.0),
    ({"service_name": "checkout", "app": "checkout", "env": "prod"}, "json", 4, 0.4),
    ({"service_name": "checkout", "app": "checkout", "env": "staging", "level": "warn"}, "json", 2, 0.0),
    ({"service_name": "nginx", "app": "web", "env": "prod"}, "access", 5, 0.0),
    ({"service_name": "worker", "app": "worker", "env": "prod", "region": "eu"}, "worker", 3, 0.2),
    ({"service_name": "auth", "app": "auth", "env": "dev"}, "mixed", 2, 0.3),
]

# Seed-independent pools, so the corpus can name concrete values.
TRACE_IDS = ["4bf92f3577b34da6a3ce929d0e0e%04x" % i for i in range(40)]
USERS = ["alice", "bob", "carol", "dave", "erin", ""]
PATHS = ["/api/users", "/api/orders", "/api/items/42", "/api/admin/users", "/health", "/login"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
ACCESS_IPS = (["10.0.0.%d" % i for i in (1, 7, 23, 200)] + ["10.1.2.3", "10.20.30.40"]
              + ["192.168.1.%d" % i for i in (5, 50, 99, 150, 250)]
              + ["172.16.4.2", "8.8.8.8", "2001:db8::1", "2001:db8::ff"])
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "Go-http-client/1.1", "kube-probe/1.29"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def status_for(rng, level):
    if level == "error":
        return rng.choice([500, 502, 503, 504])
    if level == "warn":
        return rng.choice([400, 404, 404, 429])
    return rng.choice([200, 200, 200, 201, 204, 301])


def duration_str(rng):
    r = rng.random()
    if r < 0.15:
        return "%dus" % rng.randint(50, 999)
    if r < 0.80:
        return "%dms" % rng.randint(1, 999)
    if r < 0.97:
        return "%.1fs" % rng.uniform(1, 5)
    return "1m%ds" % rng.randint(1, 30)


def bytes_str(rng):
    r = rng.random()
    if r < 0.25:
        return "%dB" % rng.randint(10, 1023)
    if r < 0.70:
        return "%.1fKB" % rng.uniform(0.5, 999)
    if r < 0.85:
        return "%dKiB" % rng.randint(1, 64)
    return "%.1fMB" % rng.uniform(1, 5)


def logfmt_line(rng, stream_level):
    level = stream_level or rng.choice(["info", "info", "info", "warn", "error", "debug"])
    method = rng.choice(METHODS)
    path = rng.choice(PATHS)
    status = status_for(rng, level)
    if level == "error":
        msg = rng.choice(["upstream timeout", "connection refused", "internal error while handling request"])
    elif level == "warn":
        msg = rng.choice(["slow request", "rate limited", "client error"])
    else:
        msg = "%s %s done" % (method, path)
    user = rng.choice(USERS)
    line = 'level=%s msg="%s" method=%s path=%s status=%d latency=%s bytes=%s user=%s' % (
        level, msg, method, path, status, duration_str(rng), bytes_str(rng), user)
    r = rng.random()
    if r < 0.02:
        line += " retry"                      # bare key
    elif r < 0.03:
        line += ' note="unterminated'         # broken quoting
    elif r < 0.04:
        line += " status=299"                 # duplicate key
    elif r < 0.05:
        line = line.replace("level=", "LEVEL=", 1)  # case of keys
    return line


def json_line(rng, stream_level):
    level = stream_level or rng.choice(["info", "info", "info", "warn", "error"])
    obj = {
        "level": level,
        "status": status_for(rng, level),
        "path": rng.choice(PATHS),
        "method": rng.choice(METHODS),
        "latency_ms": round(rng.uniform(0.5, 500), 2) if rng.random() < 0.8 else rng.randint(1, 900),
        "user": {"id": rng.randint(1, 9), "name": rng.choice(USERS[:5])},
        "msg": rng.choice(["order placed", "payment accepted", "cart \"updated\"",
                           "caf\u00e9 \u2615 served", "payment failed: card declined"]),
    }
    r = rng.random()
    if r < 0.3:
        obj["tags"] = rng.sample(["a", "b", "c", "promo"], 2)
    if r > 0.7:
        obj["cart"] = {"items": rng.randint(1, 12), "total": round(rng.uniform(1, 300), 2),
                       "coupon": None if rng.random() < 0.5 else "SAVE10"}
    if rng.random() < 0.1:
        obj["ok"] = rng.random() < 0.5
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def access_line(rng, ts):
    t = time.gmtime(ts // NS)
    stamp = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year,
                                                    t.tm_hour, t.tm_min, t.tm_sec)
    method = rng.choice(METHODS)
    path = rng.choice(PATHS + ["/index.html", "/static/app.js"])
    status = rng.choice([200] * 6 + [301, 304, 404, 500, 503])
    return '%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s"' % (
        rng.choice(ACCESS_IPS), stamp, method, path, status, rng.randint(0, 90000), rng.choice(AGENTS))


def worker_line(rng):
    job = rng.randint(1000, 9999)
    r = rng.random()
    if r < 0.45:
        return "\x1b[32mINFO\x1b[0m job %d finished in %s" % (job, duration_str(rng))
    if r < 0.60:
        return "\x1b[33mWARN\x1b[0m job %d retrying after Timeout" % job
    if r < 0.75:
        return "\x1b[31mERROR\x1b[0m job %d failed: connection refused to 10.1.2.3:5432" % job
    if r < 0.90:
        return "processing batch %d of %d error count %d" % (rng.randint(1, 50), 50, rng.randint(0, 3))
    return "heartbeat ok from %s" % rng.choice(["10.0.0.7", "192.168.1.50", "worker-eu-1"])


def mixed_line(rng):
    r = rng.random()
    if r < 0.4:
        return json.dumps({"level": rng.choice(["info", "warn"]), "event": "login",
                           "user": {"id": rng.randint(1, 5), "name": rng.choice(USERS[:5])},
                           "ok": rng.random() < 0.8, "latency_ms": rng.randint(1, 300)},
                          separators=(",", ":"))
    if r < 0.75:
        return "level=%s event=login_failed user=%s ip=10.0.3.%d attempts=%d" % (
            rng.choice(["warn", "error"]), rng.choice(USERS[:5]), rng.randint(1, 9), rng.randint(1, 5))
    if r < 0.9:
        return 'panic: unexpected end of input {"user": {"id": %d' % rng.randint(1, 5)
    return "session %08x expired for user=%s" % (rng.getrandbits(32), rng.choice(USERS[:5]))


def generate_dataset(seed, anchor_ns, total):
    """Return (streams, first_ts, last_ts). streams: list of (labels, [(ts, line, sm|None)])."""
    rng = random.Random(seed)
    start = anchor_ns - 20 * MINUTE_NS
    end = anchor_ns - 1 * MINUTE_NS
    # a pool of timestamps shared by several streams (equal across streams)
    shared = [rng.randrange(start, end) for _ in range(max(10, total // 20))]
    wsum = sum(s[2] for s in STREAMS)
    out = []
    for labels, kind, weight, sm_share in STREAMS:
        n = round(total * weight / wsum)
        ts_set = set()
        for ts in rng.sample(shared, min(len(shared), n // 8)):
            ts_set.add(ts)
        while len(ts_set) < n:
            ts_set.add(rng.randrange(start, end))
        entries = []
        for ts in sorted(ts_set):
            if kind == "logfmt":
                line = logfmt_line(rng, labels.get("level"))
            elif kind == "json":
                line = json_line(rng, labels.get("level"))
            elif kind == "access":
                line = access_line(rng, ts)
            elif kind == "worker":
                line = worker_line(rng)
            else:
                line = mixed_line(rng)
            sm = None
            if rng.random() < sm_share:
                sm = {"trace_id": rng.choice(TRACE_IDS)}
            entries.append((ts, line, sm))
        out.append((dict(labels), entries))
    all_ts = [e[0] for _, es in out for e in es]
    return out, min(all_ts), max(all_ts)


def push_batches(streams, batch_size):
    """Yield push bodies of about batch_size entries, in global time order."""
    flat = []
    for si, (labels, entries) in enumerate(streams):
        for e in entries:
            flat.append((e[0], si, e))
    flat.sort(key=lambda x: (x[0], x[1]))
    for i in range(0, len(flat), batch_size):
        by_stream = {}
        for _, si, (ts, line, sm) in flat[i:i + batch_size]:
            v = [str(ts), line] if sm is None else [str(ts), line, sm]
            by_stream.setdefault(si, []).append(v)
        yield {"streams": [{"stream": streams[si][0], "values": vals}
                           for si, vals in sorted(by_stream.items())]}


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class Answer:
    def __init__(self, code, text, body, elapsed):
        self.code = code      # HTTP status, 0 when there was no answer
        self.text = text      # raw body text
        self.body = body      # parsed JSON or None
        self.elapsed = elapsed

    def ok(self):
        return 200 <= self.code < 300

    def client_error(self):
        return 400 <= self.code < 500

    def message(self):
        if isinstance(self.body, dict) and "error" in self.body:
            return str(self.body.get("error"))
        return self.text.strip()[:300]


def http(method, url, headers=None, data=None, timeout=60.0):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            code, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        code, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return Answer(0, "no answer: %s" % e, None, time.monotonic() - t0)
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    return Answer(code, text, body, time.monotonic() - t0)


def get(base, path, params, headers):
    qs = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return http("GET", base.rstrip("/") + path + "?" + qs, headers)


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

KNOWN_TAGS = {"both", "limit", "error", "range-only", "instant-only", "instant", "order"}


class Query:
    def __init__(self, text, tags, lineno):
        self.text = text
        self.tags = tags
        self.lineno = lineno
        self.is_log = is_log_query(text)


def strip_strings(q):
    return re.sub(r'"(?:\\.|[^"\\])*"|`[^`]*`', '""', q)


def is_log_query(q):
    """A log query starts with its stream selector; every metric query starts
    with a function, an aggregation, a literal or a parenthesis."""
    return strip_strings(q).lstrip().startswith("{")


def load_corpus(path):
    queries = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            tags = {}
            m = re.match(r"^\[([^\]]*)\]\s*(.*)$", line)
            if m:
                for t in m.group(1).split(","):
                    t = t.strip()
                    if not t:
                        continue
                    k, _, v = t.partition("=")
                    if k not in KNOWN_TAGS:
                        raise SystemExit("%s:%d: unknown tag %r" % (path, n, k))
                    tags[k] = v or True
                line = m.group(2)
            queries.append(Query(line, tags, n))
    return queries


# --------------------------------------------------------------------------
# Normalisation and comparison
# --------------------------------------------------------------------------

def labels_key(d):
    return tuple(sorted((str(k), str(v)) for k, v in (d or {}).items()))


def fmt_labels(key):
    return "{" + ", ".join('%s="%s"' % kv for kv in key) + "}"


def norm_categories(x):
    if not isinstance(x, dict):
        return (("?", repr(x)),)
    return tuple(sorted((k, labels_key(v)) for k, v in x.items() if v))


def ts_key(t):
    """Matrix/vector sample time (float seconds, or a string) -> integer ms."""
    return int(round(float(t) * 1000))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def close(a, b):
    a, b = num(a), num(b)
    if not isinstance(a, float) or not isinstance(b, float):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) or abs(a - b) <= 1e-12


def short(s, n=140):
    s = s if isinstance(s, str) else repr(s)
    s = s.encode("unicode_escape").decode("ascii") if any(ord(c) < 32 for c in s) else s
    return s if len(s) <= n else s[:n - 3] + "..."


class Diff:
    def __init__(self):
        self.items = []   # (kind, text); kind "order" marks grouping/ordering-only findings

    def add(self, kind, text):
        self.items.append((kind, text))

    def __bool__(self):
        return bool(self.items)

    def only_order(self):
        return all(k == "order" for k, _ in self.items)


def label_delta(ka, kb):
    """What differs between two entry keys (labels, ts, line, categories) with equal ts+line."""
    out = []

    def delta(name, a, b):
        a, b = dict(a), dict(b)
        parts = []
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                parts.append("%s: sluice %s loki %s" % (
                    k, "-" if k not in a else '"%s"' % short(a[k], 40), "-" if k not in b else '"%s"' % short(b[k], 40)))
        if parts:
            out.append("%s {%s}" % (name, "; ".join(parts[:6]) + ("; ..." if len(parts) > 6 else "")))

    delta("labels", ka[0], kb[0])
    ca, cb = dict(ka[3]), dict(kb[3])
    for c in sorted(set(ca) | set(cb)):
        delta(c, ca.get(c, ()), cb.get(c, ()))
    return " ".join(out) or "(same)"


def compare_streams(a, b, d, categorized, limit_hint, direction, maxshow):
    """a = sluice result, b = loki result (lists of {stream, values})."""
    def parse(result):
        entries = Counter()
        groups = Counter()
        bad = []
        for s in result if isinstance(result, list) else []:
            lk = labels_key(s.get("stream"))
            vals = []
            for v in s.get("values") or []:
                cat = norm_categories(v[2]) if len(v) > 2 else ()
                if not categorized and len(v) > 2:
                    bad.append(v)
                e = (str(v[0]), v[1], cat)
                vals.append(e)
                entries[(lk,) + e] += 1
            groups[(lk, tuple(vals))] += 1
        return entries, groups, bad

    ea, ga, bad_a = parse(a)
    eb, gb, _ = parse(b)
    if bad_a:
        d.add("entries", "sluice sent a third value element without categorize-labels: %s" % short(json.dumps(bad_a[0])))

    # With a limit that truncates the answer, entries at the cut-off timestamp
    # may legitimately differ (ties across streams): compare those by count only.
    na, nb = sum(ea.values()), sum(eb.values())
    if limit_hint and na == nb == limit_hint:
        def cut(entries):
            tss = [int(k[1]) for k in entries]
            return min(tss) if direction == "backward" else max(tss)
        edge = cut(eb)
        if cut(ea) == edge:
            ea = Counter({k: n for k, n in ea.items() if int(k[1]) != edge})
            eb = Counter({k: n for k, n in eb.items() if int(k[1]) != edge})
            ga = gb = None  # grouping would include the tie, skip it

    only_a = ea - eb
    only_b = eb - ea
    if only_a or only_b:
        # entries with the same (timestamp, line) on both sides differ only in labels/metadata
        pa = {}
        for k in sorted(only_a):
            pa.setdefault((k[1], k[2]), k)
        pb = {}
        for k in sorted(only_b):
            pb.setdefault((k[1], k[2]), k)
        paired = sorted(set(pa) & set(pb))
        d.add("entries", "entries: %d vs %d (sluice vs loki); only in sluice %d, only in loki %d; "
              "of these %d have the same timestamp+line but other labels/metadata"
              % (na, nb, sum(only_a.values()), sum(only_b.values()), len(paired)))
        for p in paired[:maxshow]:
            d.add("entries", "  ~ %s %s: %s" % (p[0], short(p[1], 70), label_delta(pa[p], pb[p])))
        for tag, side, mine, other in (("+sluice", only_a, pa, pb), ("-loki  ", only_b, pb, pa)):
            rest = [k for k in sorted(side) if (k[1], k[2]) not in other]
            for k in rest[:maxshow]:
                lk, ts, line, cat = k
                extra = " " + short(repr(cat), 100) if cat else ""
                d.add("entries", "  %s %s %s %s%s" % (tag, short(fmt_labels(lk), 100), ts, short(line, 110), extra))
        return
    if ga is None:
        return
    if ga != gb:
        ka = Counter(k[0] for k in ga.elements())
        kb = Counter(k[0] for k in gb.elements())
        if ka != kb:
            d.add("order", "stream grouping differs: %d vs %d streams (sluice vs loki)" % (sum(ka.values()), sum(kb.values())))
            for k in sorted(set(ka) ^ set(kb))[:maxshow]:
                d.add("order", "  %s %s" % ("+sluice" if k in ka else "-loki  ", short(fmt_labels(k), 120)))
            for k in sorted(x for x in set(ka) & set(kb) if ka[x] != kb[x])[:maxshow]:
                d.add("order", "  %s appears %d vs %d times" % (short(fmt_labels(k), 120), ka[k], kb[k]))
        else:
            ma = {k[0]: k[1] for k in ga}
            mb = {k[0]: k[1] for k in gb}
            diffs = [k for k in sorted(ma) if ma[k] != mb.get(k)]
            ties = all([e[0] for e in ma[k]] == [e[0] for e in mb[k]] for k in diffs)
            d.add("order", "order of values differs in %d stream(s)%s" % (
                len(diffs), "; only among entries with equal timestamps" if ties else ""))
            for k in diffs[:maxshow]:
                va, vb = ma[k], mb[k]
                i = next(i for i in range(min(len(va), len(vb)) + 1)
                         if i >= len(va) or i >= len(vb) or va[i] != vb[i])
                d.add("order", "  %s at #%d: sluice %s %s | loki %s %s" % (
                    short(fmt_labels(k), 80), i,
                    va[i][0] if i < len(va) else "-", short(va[i][1], 50) if i < len(va) else "",
                    vb[i][0] if i < len(vb) else "-", short(vb[i][1], 50) if i < len(vb) else ""))


def compare_matrix(a, b, d, maxshow):
    def parse(result):
        series, dup = {}, []
        for s in result if isinstance(result, list) else []:
            k = labels_key(s.get("metric"))
            if k in series:
                dup.append(k)
            series[k] = {ts_key(p[0]): p[1] for p in s.get("values") or []}
        return series, dup
    sa, dupa = parse(a)
    sb, dupb = parse(b)
    for who, dup in (("sluice", dupa), ("loki", dupb)):
        if dup:
            d.add("series", "%s repeats series %s" % (who, short(fmt_labels(dup[0]))))
    _series_diff(sa, sb, d, maxshow)
    for k in sorted(set(sa) & set(sb)):
        pa, pb = sa[k], sb[k]
        if set(pa) != set(pb):
            oa, ob = sorted(set(pa) - set(pb)), sorted(set(pb) - set(pa))
            d.add("points", "%s: %d vs %d points; only in sluice at %s; only in loki at %s" % (
                short(fmt_labels(k), 90), len(pa), len(pb), _times(oa), _times(ob)))
        bad = [t for t in sorted(set(pa) & set(pb)) if not close(pa[t], pb[t])]
        if bad:
            d.add("values", "%s: %d value(s) differ, e.g. %s" % (
                short(fmt_labels(k), 90), len(bad),
                "; ".join("@%s sluice %s loki %s" % (_t(t), pa[t], pb[t]) for t in bad[:3])))


def compare_vector(a, b, d, maxshow, check_order):
    def parse(result):
        series, order = {}, []
        for s in result if isinstance(result, list) else []:
            k = labels_key(s.get("metric"))
            v = s.get("value") or [0, None]
            series[k] = (ts_key(v[0]), v[1])
            order.append(k)
        return series, order
    sa, oa = parse(a)
    sb, ob = parse(b)
    _series_diff(sa, sb, d, maxshow)
    bad = [k for k in sorted(set(sa) & set(sb))
           if sa[k][0] != sb[k][0] or not close(sa[k][1], sb[k][1])]
    if bad:
        d.add("values", "%d sample(s) differ, e.g. %s" % (len(bad), "; ".join(
            "%s sluice %s@%s loki %s@%s" % (short(fmt_labels(k), 70), sa[k][1], _t(sa[k][0]), sb[k][1], _t(sb[k][0]))
            for k in bad[:3])))
    if check_order and not d and oa != ob:
        d.add("order", "sample order differs: sluice %s | loki %s" % (
            short(" ".join(fmt_labels(k) for k in oa), 160), short(" ".join(fmt_labels(k) for k in ob), 160)))


def _t(ms):
    return ("%.3f" % (ms / 1000)).rstrip("0").rstrip(".")


def _times(ts):
    if not ts:
        return "-"
    return ",".join(_t(t) for t in ts[:4]) + (",..." if len(ts) > 4 else "")


def _series_diff(sa, sb, d, maxshow):
    oa, ob = sorted(set(sa) - set(sb)), sorted(set(sb) - set(sa))
    if oa or ob:
        d.add("series", "series: %d vs %d (sluice vs loki); only in sluice %d, only in loki %d" % (
            len(sa), len(sb), len(oa), len(ob)))
        for k in oa[:maxshow]:
            d.add("series", "  +sluice %s" % short(fmt_labels(k), 150))
        for k in ob[:maxshow]:
            d.add("series", "  -loki   %s" % short(fmt_labels(k), 150))


def compare_success(sa, lo, categorized, limit_hint, direction, check_order, maxshow):
    d = Diff()
    ba, bb = sa.body, lo.body
    if not isinstance(ba, dict):
        d.add("shape", "sluice body is not a JSON object: %s" % short(sa.text, 200))
        return d
    if ba.get("status") != bb.get("status"):
        d.add("shape", "status %r vs %r" % (ba.get("status"), bb.get("status")))
    da, db = ba.get("data") or {}, bb.get("data") or {}
    ta, tb = da.get("resultType"), db.get("resultType")
    if ta != tb:
        d.add("shape", "resultType %r vs %r (sluice vs loki)" % (ta, tb))
        return d
    if categorized and da.get("encodingFlags") != db.get("encodingFlags"):
        d.add("shape", "encodingFlags %r vs %r" % (da.get("encodingFlags"), db.get("encodingFlags")))
    ra, rb = da.get("result"), db.get("result")
    if tb == "streams":
        compare_streams(ra, rb, d, categorized, limit_hint, direction, maxshow)
    elif tb == "matrix":
        compare_matrix(ra, rb, d, maxshow)
    elif tb == "vector":
        compare_vector(ra, rb, d, maxshow, check_order)
    elif tb == "scalar":
        if not (isinstance(ra, list) and len(ra) == 2 and ts_key(ra[0]) == ts_key(rb[0]) and close(ra[1], rb[1])):
            d.add("values", "scalar %s vs %s" % (json.dumps(ra), json.dumps(rb)))
    elif ra != rb:
        d.add("values", "result %s vs %s" % (short(json.dumps(ra), 120), short(json.dumps(rb), 120)))
    return d


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------

RANK = {"OK": 0, "BOTH-ERROR": 1, "DIFF": 2, "ERROR-ONE-SIDE": 3}


def classify(sa, lo, query, variant, ctx):
    """Return (status, [detail lines], diff-kind)."""
    if sa.ok() and lo.ok():
        if query.tags.get("error"):
            return "DIFF", ["corpus expects 400 from both, both answered %d/%d" % (sa.code, lo.code)], "expect"
        d = compare_success(sa, lo, variant["categorized"], variant.get("limit"), variant.get("direction"),
                            variant.get("order"), ctx.maxshow)
        if not d:
            return "OK", [], None
        kind = "order" if d.only_order() else d.items[0][0]
        return "DIFF", [t for _, t in d.items], kind
    if sa.client_error() and lo.client_error():
        lines = ["sluice %d: %s" % (sa.code, short(sa.message(), 220)),
                 "loki   %d: %s" % (lo.code, short(lo.message(), 220))]
        return "BOTH-ERROR", lines, None
    if not sa.ok() and not lo.ok():
        return "DIFF", ["both failed but not both 4xx: sluice %d: %s | loki %d: %s" % (
            sa.code, short(sa.message(), 160), lo.code, short(lo.message(), 160))], "status"
    lines = []
    for who, a in (("sluice", sa), ("loki  ", lo)):
        lines.append("%s %d: %s" % (who, a.code, short(a.message(), 220) if not a.ok() else "success"))
    return "ERROR-ONE-SIDE", lines, "status"


def variants_for(q, ctx):
    out = []
    if q.is_log:
        dirs = ["backward", "forward"] if q.tags.get("both") else ["backward"]
        limit = int(q.tags["limit"]) if q.tags.get("limit") not in (None, True) else ctx.limit
        for direction in dirs:
            for cat in (False, True):
                params = {"query": q.text, "start": str(ctx.log_start), "end": str(ctx.log_end),
                          "limit": str(limit), "direction": direction}
                name = "range/%s%s" % ("bwd" if direction == "backward" else "fwd", "/cat" if cat else "")
                out.append({"name": name,
                            "path": "/loki/api/v1/query_range", "params": params, "categorized": cat,
                            "limit": limit if limit < ctx.limit else None, "direction": direction})
        if q.tags.get("instant"):
            out.append({"name": "instant", "path": "/loki/api/v1/query", "categorized": False,
                        "params": {"query": q.text, "time": str(ctx.instant_time), "limit": str(limit)}})
    else:
        order = bool(q.tags.get("order")) or bool(re.search(r"\bsort(_desc)?\s*\(", strip_strings(q.text)))
        if not q.tags.get("instant-only"):
            out.append({"name": "range", "path": "/loki/api/v1/query_range", "categorized": False,
                        "params": {"query": q.text, "start": str(ctx.metric_start), "end": str(ctx.metric_end),
                                   "step": ctx.step}})
            # As Grafana's relative ranges are: neither edge on the step grid. Loki's query
            # frontend rounds start down and end up to the step; so must sluice.
            out.append({"name": "range/unaligned", "path": "/loki/api/v1/query_range", "categorized": False,
                        "params": {"query": q.text, "start": str(ctx.metric_start + 17_250_000_000),
                                   "end": str(ctx.metric_end - 2_500_000_000), "step": ctx.step}})
        if not q.tags.get("range-only"):
            out.append({"name": "instant", "path": "/loki/api/v1/query", "categorized": False, "order": order,
                        "params": {"query": q.text, "time": str(ctx.instant_time)}})
    return out


def count_query(base, headers, at_ns, rng="30m"):
    a = get(base, "/loki/api/v1/query",
            {"query": 'sum(count_over_time({service_name=~".+"}[%s]))' % rng, "time": str(at_ns)}, headers)
    if not a.ok():
        return None, a
    try:
        res = a.body["data"]["result"]
        return (int(float(res[0]["value"][1])) if res else 0), a
    except (KeyError, IndexError, TypeError, ValueError):
        return None, a


def result_size(a):
    """A short description of how big an answer is, e.g. '412e/9s' (entries/streams)."""
    if not a.ok() or not isinstance(a.body, dict):
        return "err"
    data = a.body.get("data") or {}
    res, t = data.get("result"), data.get("resultType")
    try:
        if t == "streams":
            return "%de/%ds" % (sum(len(s.get("values") or []) for s in res), len(res))
        if t == "matrix":
            return "%dp/%ds" % (sum(len(s.get("values") or []) for s in res), len(res))
        if t == "vector":
            return "%dv" % len(res)
        if t == "scalar":
            return "scalar"
    except (TypeError, AttributeError):
        pass
    return "?"


def strip_stats(body):
    if isinstance(body, dict):
        body = dict(body)
        if isinstance(body.get("data"), dict):
            body["data"] = {k: v for k, v in body["data"].items() if k != "stats"}
    return body


# --------------------------------------------------------------------------
# Logs Drilldown's resource requests (not LogQL queries)
# --------------------------------------------------------------------------

def iso_ms(ns):
    """Drilldown's own resource calls send ISO-8601 UTC times with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // NS)) + ".%03dZ" % (ns % NS // 1_000_000)


def _detected_labels(body):
    return {d["label"]: d["cardinality"] for d in body.get("detectedLabels") or []}


def _detected_fields(body):
    return {f["label"]: (f["type"], sorted(f.get("parsers") or []), f["cardinality"], f.get("jsonPath"))
            for f in body.get("fields") or []}


def _values(body):
    return sorted(body.get("values") or [])


def _volume(body):
    return {labels_key(r["metric"]): r["value"][1] for r in body["data"]["result"]}


def _limits(body):
    # sluice has no OTLP attribute config or volume series limit to report.
    keys = set(body.get("limits", {})) - {"otlp_config", "volume_max_series"}
    return sorted(keys) + ["pattern_ingester_enabled" in body, "version" in body]


def resource_requests(ctx):
    """(name, path, params, normalise): what Drilldown asks besides LogQL, on the dataset."""
    iso = {"start": iso_ms(ctx.log_start), "end": iso_ms(ctx.log_end)}
    api_expr = '{service_name="api"}     | json  | logfmt | drop __error__, __error_details__  '
    checkout_expr = '{service_name="checkout"}     | json  | logfmt | drop __error__, __error_details__  '
    return [
        ("service list volume", "/loki/api/v1/index/volume",
         dict(iso, limit="5000", query="{service_name=~`.+`}"), _volume),
        ("service search volume", "/loki/api/v1/index/volume",
         dict(iso, limit="5000", query="{service_name=~`(?i).*CHECK.*`}"), _volume),
        ("query stats of api", "/loki/api/v1/index/stats",
         {"start": str(ctx.log_start), "end": str(ctx.log_end), "query": '{service_name="api"}'},
         lambda b: {k: b.get(k) for k in ("streams", "entries", "bytes")}),
        ("detected labels, all services", "/loki/api/v1/detected_labels",
         dict(iso, query=""), _detected_labels),
        ("detected labels of api", "/loki/api/v1/detected_labels",
         dict(iso, query='{service_name="api"}'), _detected_labels),
        ("detected fields of api", "/loki/api/v1/detected_fields",
         dict(iso, query=api_expr), _detected_fields),
        ("detected fields of checkout", "/loki/api/v1/detected_fields",
         dict(iso, query=checkout_expr), _detected_fields),
        ("values of api's method", "/loki/api/v1/detected_field/method/values",
         dict(iso, limit="1000", query=api_expr), _values),
        ("values of detected_level", "/loki/api/v1/detected_field/detected_level/values",
         dict(iso, limit="1000", query='{service_name="auth"}'), _values),
        ("drilldown limits (keys)", "/loki/api/v1/drilldown-limits", {}, _limits),
        # Mined differently (see docs/api.md): shown side by side, not compared.
        ("patterns of api", "/loki/api/v1/patterns",
         dict(iso, query='{service_name="api"}', step="1m"), None),
        ("patterns of worker", "/loki/api/v1/patterns",
         dict(iso, query='{service_name="worker"}', step="1m"), None),
    ]


def _top_patterns(body, n=6):
    totals = Counter()
    for p in (body or {}).get("data") or []:
        totals[p["pattern"]] += sum(s[1] for s in p["samples"])
    return "%d patterns, %d lines: " % (len(totals), sum(totals.values())) + "; ".join(
        "%d %s" % (c, t) for t, c in totals.most_common(n))


def compare_resources(args, headers, ctx, same):
    """Compares each resource request; returns the number that differ."""
    bad = 0
    for name, path, params, norm in resource_requests(ctx):
        if args.only and not re.search(args.only, name):
            continue
        lo = get(args.loki, path, params, headers)
        sa = lo if same else get(args.sluice, path, params, headers)
        if not (sa.ok() and lo.ok()):
            status = "BOTH-ERROR" if not sa.ok() and not lo.ok() else "ERROR-ONE-SIDE"
            print("%-14s %-30s sluice %d %s | loki %d %s" % (
                status, name, sa.code, short(sa.message(), 80), lo.code, short(lo.message(), 80)))
            bad += status != "BOTH-ERROR"
            continue
        if norm is None:
            print("%-14s %-30s" % ("SHOWN", name))
            print("        sluice: " + short(_top_patterns(sa.body), 600))
            print("        loki:   " + short(_top_patterns(lo.body), 600))
            continue
        a, b = norm(sa.body), norm(lo.body)
        if a == b:
            print("%-14s %-30s %s" % ("OK", name, short(json.dumps(b), 100)))
            continue
        bad += 1
        print("%-14s %-30s" % ("DIFF", name))
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                if a.get(k) != b.get(k):
                    print("        %s: sluice %s | loki %s" % (k, json.dumps(a.get(k)), json.dumps(b.get(k))))
        else:
            print("        sluice %s\n        loki   %s" % (short(json.dumps(a), 300), short(json.dumps(b), 300)))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sluice", default="http://127.0.0.1:3100", help="sluice base URL")
    ap.add_argument("--loki", default="http://127.0.0.1:3101", help="Loki base URL (the reference)")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries.txt"), help="corpus file")
    ap.add_argument("--seed", type=int, default=None, help="dataset seed (default: current time)")
    ap.add_argument("--tenant", default=None, help="X-Scope-OrgID (default compare-<seed>)")
    ap.add_argument("--anchor", type=int, default=None,
                    help="dataset anchor in Unix ns (default now); data spans anchor-20m .. anchor-1m")
    ap.add_argument("--entries", type=int, default=3000, help="dataset size (default 3000)")
    ap.add_argument("--batch", type=int, default=500, help="entries per push (default 500)")
    ap.add_argument("--step", default="60s", help="step of metric query_range (default 60s)")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for both to see all data")
    ap.add_argument("--only", default=None, help="run only queries matching this regex")
    ap.add_argument("--verbose", action="store_true", help="dump both bodies of differing queries")
    ap.add_argument("--show", type=int, default=3, help="differing items shown per difference (default 3)")
    ap.add_argument("--push-once", action="store_true",
                    help="push to --loki only (self-test: both URLs are the same server); automatic when equal")
    ap.add_argument("--no-push", action="store_true",
                    help="push nothing (data of an earlier run with the same --seed and --anchor is there)")
    ap.add_argument("--allow-existing", action="store_true",
                    help="push even when the servers already hold data in the dataset's time window")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else int(time.time())
    anchor = args.anchor if args.anchor is not None else time.time_ns()
    tenant = args.tenant or "compare-%d" % seed
    headers = {"X-Scope-OrgID": tenant}
    same = args.push_once or args.sluice.rstrip("/") == args.loki.rstrip("/")

    queries = load_corpus(args.queries)
    if args.only:
        rx = re.compile(args.only)
        queries = [q for q in queries if rx.search(q.text)]

    streams, first_ts, last_ts = generate_dataset(seed, anchor, args.entries)
    total = sum(len(e) for _, e in streams)

    class Ctx:
        pass
    ctx = Ctx()
    ctx.maxshow = args.show
    ctx.limit = 5000
    ctx.step = args.step
    ctx.metric_start = first_ts // MINUTE_NS * MINUTE_NS
    ctx.metric_end = last_ts // MINUTE_NS * MINUTE_NS + MINUTE_NS
    ctx.instant_time = ctx.metric_end
    ctx.log_start = ctx.metric_start
    ctx.log_end = ctx.metric_end

    print("seed %d  anchor %d  tenant %s  entries %d in %d streams" % (seed, anchor, tenant, total, len(streams)))
    print("data %d .. %d; log range [%d, %d); metric range %d..%d step %s; instant at %d" % (
        first_ts, last_ts, ctx.log_start, ctx.log_end, ctx.metric_start, ctx.metric_end, ctx.step, ctx.instant_time))
    print("rerun these queries on the same data: --seed %d --anchor %d --no-push" % (seed, anchor))
    targets = [("loki", args.loki)] if same else [("sluice", args.sluice), ("loki", args.loki)]
    if same:
        print("sluice and loki are the same server: pushing once (self-test)")

    # 1. nothing there yet in our window (the instrument Loki ignores X-Scope-OrgID)
    if not args.no_push and not args.allow_existing:
        for who, base in targets:
            n, a = count_query(base, headers, ctx.instant_time, "1h")
            if n is None:
                print("%s: count query failed: %d %s" % (who, a.code, short(a.message(), 300)))
                return 2
            if n:
                print("%s already holds %d entries in the hour before %d for tenant %s; start it fresh "
                      "(Loki: /work/loki-tools/start.sh --fresh), wait an hour, or pass --allow-existing"
                      % (who, n, ctx.instant_time, tenant))
                return 2

    # 2. push
    if not args.no_push:
        t0 = time.monotonic()
        body_headers = dict(headers, **{"Content-Type": "application/json"})
        for who, base in targets:
            for i, body in enumerate(push_batches(streams, args.batch)):
                a = http("POST", base.rstrip("/") + "/loki/api/v1/push", body_headers,
                         json.dumps(body, ensure_ascii=False).encode("utf-8"))
                if a.code != 204:
                    print("%s: push batch %d answered %d: %s" % (who, i, a.code, short(a.message(), 300)))
                    return 2
        print("pushed %d entries to %s in %.1fs" % (total, " and ".join(w for w, _ in targets), time.monotonic() - t0))

    # 3. wait until both see everything
    deadline = time.monotonic() + args.wait
    while True:
        counts = {}
        for who, base in targets:
            counts[who], _ = count_query(base, headers, ctx.instant_time)
        if all(c == total for c in counts.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print("visible entries: %s (expected %d)" % (", ".join("%s %s" % kv for kv in counts.items()), total))
    if not all(c == total for c in counts.values()):
        print("WARNING: not every entry is visible after %.0fs; comparing anyway" % args.wait)

    # 4./5./6. run and compare
    results = []
    variant_counts = Counter()
    qtype_counts = Counter()
    diff_kinds = Counter()
    for q in queries:
        worst, details, size = "OK", [], None
        for v in variants_for(q, ctx):
            lo = get(args.loki, v["path"], v["params"],
                     dict(headers, **({"X-Loki-Response-Encoding-Flags": "categorize-labels"} if v["categorized"] else {})))
            if same:
                sa = get(args.loki, v["path"], v["params"],
                         dict(headers, **({"X-Loki-Response-Encoding-Flags": "categorize-labels"} if v["categorized"] else {})))
            else:
                sa = get(args.sluice, v["path"], v["params"],
                         dict(headers, **({"X-Loki-Response-Encoding-Flags": "categorize-labels"} if v["categorized"] else {})))
            status, lines, kind = classify(sa, lo, q, v, ctx)
            if size is None or size == "err":
                size = result_size(lo)
            variant_counts[(("log " if q.is_log else "metric ") + v["name"].split("/")[0], status)] += 1
            if kind:
                diff_kinds[kind] += 1
            if RANK[status] > RANK[worst]:
                worst = status
            if status != "OK":
                details.append((v["name"], status, lines, sa, lo))
        results.append((q, worst))
        qtype_counts[("log" if q.is_log else "metric", worst)] += 1
        print("%-14s %-6s %-11s %s" % (worst, "log" if q.is_log else "metric", size, q.text))
        shown_errors = set()
        for name, status, lines, sa, lo in details:
            if status == "BOTH-ERROR":
                key = tuple(lines)
                if key in shown_errors:
                    continue  # the same two messages for another variant
                shown_errors.add(key)
            print("    [%s] %s" % (name, status))
            for ln in lines:
                print("        " + ln)
            if args.verbose and status != "BOTH-ERROR":
                print("        sluice body: " + json.dumps(strip_stats(sa.body)) if sa.body is not None
                      else "        sluice body: " + sa.text)
                print("        loki body:   " + json.dumps(strip_stats(lo.body)) if lo.body is not None
                      else "        loki body:   " + lo.text)
        sys.stdout.flush()

    # summary
    print()
    print("summary (%d queries)" % len(results))
    cols = ["OK", "BOTH-ERROR", "DIFF", "ERROR-ONE-SIDE"]
    print("  %-16s %s" % ("", " ".join("%14s" % c for c in cols)))
    for label, keyf in (("log queries", "log"), ("metric queries", "metric")):
        print("  %-16s %s" % (label, " ".join("%14d" % qtype_counts[(keyf, c)] for c in cols)))
    print("  %-16s %s" % ("all queries", " ".join("%14d" % sum(qtype_counts[(t, c)] for t in ("log", "metric"))
                                                    for c in cols)))
    print("  requests:")
    for vk in sorted({k for k, _ in variant_counts}):
        print("  %-16s %s" % ("  " + vk, " ".join("%14d" % variant_counts[(vk, c)] for c in cols)))
    if diff_kinds:
        print("  differences by kind: " + ", ".join("%s %d" % kv for kv in sorted(diff_kinds.items())))
    bad = sum(1 for _, w in results if w in ("DIFF", "ERROR-ONE-SIDE"))
    print()
    print("Logs Drilldown resource requests (ISO times, as the app sends them):")
    bad += compare_resources(args, headers, ctx, same)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
