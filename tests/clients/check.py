#!/usr/bin/env python3
"""Checks what each real Loki client case left in ClickHouse (and on the wire).

    check.py --clickhouse URL --database DB --work DIR CASE...

For every CASE, DIR holds what tests/clients/run.sh collected while the client program ran:
  CASE.rc              the program's exit code
  CASE.stderr          its standard error
  CASE.manifest.json   what it reports that the checker cannot know (time window, pid, ...)
  CASE.tap.jsonl       the HTTP exchanges tap.py recorded between the client and sluice

A case passes when all of these hold:
  1. the program exited 0 (it exits non-zero when its client reports an error);
  2. wire: every request went to the case's endpoint (POST /loki/api/v1/push, or /otlp/v1/logs)
     and got its success status (204, or 200); content type, content encoding, tenant header and
     number of requests are what this client is known to send;
  3. logs: the rows labelled test_case=CASE (for OTLP, with test_case=CASE in their metadata:
     a resource attribute outside Loki's index labels) are exactly the expected ones (hard-coded below from
     the client's documented/read behaviour): Tenant, Body (byte for byte), ResourceAttributes
     (= the stream labels), LogAttributes (= structured metadata), ServiceName, SeverityText,
     SeverityNumber, TraceId, SpanId, and Timestamp exact where the client lets us set it, else inside the
     program's send window (and whole milliseconds where the client only has ms);
  4. sent == stored: the entries decoded from the request bodies (JSON, gzip, snappy protobuf,
     OTLP protobuf mapped as Loki documents it)
     are, as a multiset, exactly the stored rows (tenant, labels, timestamp, line, metadata);
  5. streams: one row per (tenant, label set) with Labels = the labels, FirstSeen/LastSeen =
     min/max entry timestamp, and the same StreamId as the stream's logs rows; distinct label
     sets have distinct StreamIds.

Prints PASS/FAIL per case with reasons, then `N passed, M failed`; exits 1 if any failed.
Standard library only.
"""

import argparse
import base64
import calendar
import gzip
import json
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# --------------------------------------------------------------------------------------------
# Matchers for values only known as a range.


class Window:
    """An integer timestamp (ns) inside [lo, hi], optionally a multiple of `step`."""

    def __init__(self, lo, hi, step=1):
        self.lo, self.hi, self.step = int(lo), int(hi), step

    def problem(self, value):
        if not isinstance(value, int):
            return f"{value!r} is not an integer"
        if not self.lo <= value <= self.hi:
            return f"{value} is outside the send window [{self.lo}, {self.hi}]"
        if value % self.step:
            return f"{value} is not a multiple of {self.step} (client has that precision only)"
        return None

    def __repr__(self):
        return f"<ns in [{self.lo}, {self.hi}] step {self.step}>"


class NsText:
    """A decimal string of epoch nanoseconds inside a window (a metadata value)."""

    def __init__(self, window):
        self.window = window

    def problem(self, value):
        if not isinstance(value, str) or not value.isdigit():
            return f"{value!r} is not a decimal string"
        return self.window.problem(int(value))

    def __repr__(self):
        return f"<decimal {self.window!r}>"


class MsIn:
    """An integer of epoch milliseconds inside a ns window (a JSON field of the line)."""

    def __init__(self, lo_ns, hi_ns):
        self.lo, self.hi = int(lo_ns) // 1_000_000, int(hi_ns) // 1_000_000

    def problem(self, value):
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{value!r} is not an integer"
        if not self.lo <= value <= self.hi:
            return f"{value} ms is outside the send window [{self.lo}, {self.hi}]"
        return None

    def __repr__(self):
        return f"<ms in [{self.lo}, {self.hi}]>"


def json_problems(actual, expected, path="$"):
    """Differences between a parsed JSON value and an expected one (matchers allowed); object
    key order counts."""
    if hasattr(expected, "problem"):
        p = expected.problem(actual)
        return [f"{path}: {p}"] if p else []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        if list(actual) != list(expected):
            return [f"{path}: keys {list(actual)} != expected {list(expected)}"]
        out = []
        for k in expected:
            out += json_problems(actual[k], expected[k], f"{path}.{k}")
        return out
    if type(actual) is not type(expected) or actual != expected:
        return [f"{path}: {actual!r} != expected {expected!r}"]
    return []


def bind(expected, actual):
    """`expected` with matchers replaced by the actual values they accepted."""
    if hasattr(expected, "problem"):
        return actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: bind(v, actual.get(k)) for k, v in expected.items()}
    return expected


class Row:
    """One expected `logs` row. `body` is a string, or `body_json` an ordered dict (matchers
    allowed) with `dumps` the client's serialiser; `ts` an int or a Window, or `ts_from_ms` the
    name of the body field holding epoch ms (then Timestamp = that * 1e6)."""

    def __init__(self, marker, labels, meta, service, severity, sevnum, ts=None, body=None,
                 body_json=None, dumps=None, ts_from_ms=None, trace_id="", span_id=""):
        # sluice adds `service_name` (the expected ServiceName) to streams that lack it, as
        # Loki's discover_service_name does.
        labels = {**labels, "service_name": labels.get("service_name") or service}
        self.marker, self.labels, self.meta = marker, labels, meta
        self.service, self.severity, self.sevnum = service, severity, sevnum
        self.ts, self.body, self.body_json, self.dumps = ts, body, body_json, dumps
        self.ts_from_ms = ts_from_ms
        self.trace_id, self.span_id = trace_id, span_id


class Expect:
    """What a case sends and stores. `path` and `status` are the endpoint and its success
    answer; `decode` reads a request body back into entries for the sent-vs-stored check;
    `probes` are the (method, path) of requests the client makes besides (a health check), each
    of which must be answered 200 and is not counted in `requests`."""

    def __init__(self, tenant, content_type, content_encoding, tenant_header, requests, rows,
                 path="/loki/api/v1/push", status=204, decode=None, probes=()):
        self.path, self.status, self.probes = path, status, set(probes)
        self.decode = decode or decode_push
        self.tenant = tenant
        self.content_type = content_type
        self.content_encoding = content_encoding  # None = header absent
        self.tenant_header = tenant_header  # None = header absent
        self.requests = requests  # exact count, or (min, max)
        self.rows = rows


def py_dumps(obj):
    return json.dumps(obj, ensure_ascii=False)


def js_dumps(obj):
    """JSON.stringify for the plain values used here (no floats, no control characters)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# What each client is expected to store. The values mirror the calls in the client programs.


def expect_python_logging_loki(m):
    win = Window(m["t_start_ns"], m["t_end_ns"])
    base = {
        "service_name": "py-logging-loki",
        "test_case": "python-logging-loki",
        "env": "ci",
        "logger": "sluice.clients.plain",
    }
    svc = "py-logging-loki"
    return Expect(
        tenant="fake",  # this client has no way to send X-Scope-OrgID
        content_type="application/json",
        content_encoding=None,
        tenant_header=None,
        requests=3,  # one request per record
        rows=[
            Row("first line", {**base, "severity": "info"}, {}, svc, "info", 9, ts=win,
                body="python-logging-loki: first line"),
            Row("unicode", {**base, "severity": "warning"}, {}, svc, "warning", 13, ts=win,
                body='python-logging-loki: unicode café ✓ and "quotes" \\ backslash'),
            Row("extra tags",
                {**base, "severity": "error", "request_id": "r-42", "user_name": "ann"},
                {}, svc, "error", 17, ts=win, body="python-logging-loki: line with extra tags"),
        ],
    )


def expect_loki_logger_handler(m):
    c1, c2, c3 = m["created"]
    labels = {"application": "py-loki-handler", "test_case": "loki-logger-handler"}
    # LogRecord attributes the client's formatter does not list end up in the line.
    probe = logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)
    task = {"taskName": None} if "taskName" in probe.__dict__ else {}

    def line(message, created, **extra):
        return {
            "message": message,
            "timestamp": float(created),
            "process": m["pid"],
            "thread": m["thread"],
            "function": "main",
            "module": "loki-logger-handler",
            "name": "sluice.clients.llh",
            **task,
            **extra,
        }

    svc = "py-loki-handler"
    return Expect(
        tenant="tenant-llh",
        content_type="application/json",
        content_encoding="gzip",
        tenant_header="tenant-llh",
        requests=1,  # everything queued goes out in the exit-time send
        rows=[
            Row("order created", {**labels, "region": "eu-west"},
                {"deployment": "blue", "level": "INFO", "trace_id": "4bf92f3577b34da6"},
                svc, "INFO", 9, ts=c1 * 10**9, dumps=py_dumps,
                body_json=line("loki-logger-handler: order created", c1,
                               order_id=42, region="eu-west")),
            Row("disk almost full", labels,
                {"deployment": "blue", "user_id": "12345", "op": "update", "level": "WARNING"},
                svc, "WARNING", 13, ts=c2 * 10**9, dumps=py_dumps,
                body_json=line('loki-logger-handler: disk almost full ✓ "q"', c2)),
            Row("debug detail", labels, {"deployment": "blue", "level": "DEBUG"},
                svc, "DEBUG", 5, ts=c3 * 10**9, dumps=py_dumps,
                body_json=line("loki-logger-handler: debug detail", c3, attempt=3)),
        ],
    )


def expect_winston_loki(mode):
    case = f"winston-loki-{mode}"

    def build(m):
        win = Window(m["t_start_ns"], m["t_end_ns"], step=1_000_000)
        f1, f2 = m["fixed_ms"]

        def labels(level, **more):
            return {"level": level, "app": "node-winston", "test_case": case, **more}

        def meta(d):
            return d if mode == "json" else {}  # the protobuf mode sends no metadata

        svc = "node-winston"
        return Expect(
            tenant=f"tenant-winston-{mode}",
            content_type="application/json" if mode == "json" else "application/x-protobuf",
            content_encoding=None,
            tenant_header=f"tenant-winston-{mode}",
            requests=(1, 4),  # batched every 0.2 s
            rows=[
                Row("first line", labels("info"), meta({"level": "info"}), svc, "info", 9,
                    ts=f1 * 1_000_000, body=f'{case}: first line {{"level":"info"}}'),
                Row("with meta", labels("warn"),
                    meta({"order": "7", "user": "ann", "level": "warn"}), svc, "warn", 13,
                    ts=f2 * 1_000_000,
                    body=f'{case}: with meta ✓ {{"order":7,"user":"ann","level":"warn"}}'),
                Row("extra labels", labels("error", component="billing"),
                    meta({"level": "error"}), svc, "error", 17, ts=win,
                    body=f'{case}: extra labels, time from the client {{"level":"error"}}'),
                Row("quoted", labels("debug"), meta({"level": "debug"}), svc, "debug", 5,
                    ts=win, body=f'{case}: "quoted" and \\ backslash {{"level":"debug"}}'),
            ],
        )

    return build


def expect_pino_loki(mode):
    case = f"pino-loki-{mode}"

    def build(m):
        host = socket.gethostname()
        pid = m["pid"]
        t = MsIn(m["t_start_ns"], m["t_end_ns"])

        def labels(level, **more):
            return {"level": level, "hostname": host, "service_name": "node-pino",
                    "test_case": case, **more}

        def line(level, msg, **fields):
            return {"level": level, "time": t, "pid": pid, **fields, "msg": f"{case}: {msg}"}

        svc = "node-pino"
        common = dict(dumps=js_dumps, ts_from_ms="time")
        return Expect(
            tenant=f"tenant-pino-{mode}",
            content_type="application/json",
            content_encoding=None,
            tenant_header=f"tenant-pino-{mode}",
            # worker: default batching (5 s) sends all at close; direct: batching off, one each
            requests=(1, 4) if mode == "worker" else 4,
            rows=[
                Row("first line", labels("info"), {}, svc, "info", 9,
                    body_json=line(30, "first line"), **common),
                Row("structured metadata", labels("warning"),
                    {"trace_id": "abc123", "attempt": "2", "ctx": '{"a":1}'},
                    svc, "warning", 13,
                    body_json=line(40, "with structured metadata",
                                   meta={"trace_id": "abc123", "attempt": 2, "ctx": {"a": 1}}),
                    **common),
                Row("component label", labels("error", component="billing"), {}, svc, "error",
                    17, body_json=line(50, "component label ✓", component="billing", order=7),
                    **common),
                Row("quoted", labels("debug"), {}, svc, "debug", 5,
                    body_json=line(20, '"quoted" and \\ backslash'), **common),
            ],
        )

    return build


def expect_otel_sdk(m):
    win = Window(m["t_start_ns"], m["t_end_ns"])
    svc = "otel-sdk-python"
    # Loki's default index labels among the resource attributes; the others are metadata.
    labels = {
        "service_name": svc,
        "service_namespace": "clients",
        "deployment_environment_name": "ci",
        "service_instance_id": m["instance_id"],
    }
    base = {
        "code_file_path": m["file"],
        "code_function_name": "main",
        "host_name": "ci-host",
        "observed_timestamp": NsText(win),
        "scope_name": "sluice.clients.otel",
        "telemetry_sdk_language": "python",
        "telemetry_sdk_name": "opentelemetry",
        "telemetry_sdk_version": m["sdk_version"],
        "test_case": "otel-sdk-python",
    }
    lines = m["lines"]

    def meta(line, number, text, **more):
        return {**base, "code_line_number": str(lines[line]), "severity_number": str(number),
                "severity_text": text, **more}

    return Expect(
        tenant="otel-team",
        content_type="application/x-protobuf",
        content_encoding="gzip",
        tenant_header="otel-team",
        requests=3,  # SimpleLogRecordProcessor: one export per record
        path="/otlp/v1/logs",
        status=200,
        decode=decode_otlp,
        rows=[
            Row("first line", labels, meta("first", 9, "INFO"), svc, "INFO", 9, ts=win,
                body="otel-sdk: first line"),
            # WARNING goes out as WARN; extra= fields are attributes, dots made underscores.
            Row("unicode", labels, meta("extra", 13, "WARN", attempt="3", order_id="42"), svc,
                "WARN", 13, ts=win, body="otel-sdk: unicode café ✓ with extra"),
            Row("inside a span", labels,
                meta("span", 17, "ERROR", flags=str(m["trace_flags"]), trace_id=m["trace_id"],
                     span_id=m["span_id"]),
                svc, "ERROR", 17, ts=win, body="otel-sdk: error inside a span",
                trace_id=m["trace_id"], span_id=m["span_id"]),
        ],
    )


SYSLOG_SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SYSLOG_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news")
# The normal forms of level words, as sluice's level detection (Loki's) writes them.
LEVEL_FORMS = {w: normal for words, normal in (
    (("trace", "trc"), "trace"), (("debug", "dbg"), "debug"),
    (("info", "inf", "information"), "info"), (("warn", "wrn", "warning"), "warn"),
    (("error", "err"), "error"), (("critical",), "critical"), (("fatal",), "fatal"),
) for w in words}


def level_problem(got, severity):
    """What is wrong with the `detected_level` sluice stored (levels are on by default), given
    the severity the client sent: every entry has one, and a sent level is normalised."""
    if not isinstance(got, str) or not got:
        return f"missing or empty: {got!r}"
    if severity:
        want = LEVEL_FORMS.get(severity.lower(), severity)
        if got != want:
            return f"{got!r} != {want!r} (from the severity {severity!r})"
    return None


# sluice's SeverityNumber of each syslog severity name (OpenTelemetry's numbers).
SEVERITY_NUMBERS = {"emerg": 21, "alert": 18, "crit": 18, "err": 17, "warning": 13, "notice": 10,
                    "info": 9, "debug": 5}


def syslog_rows(m, labels, meta):
    """The rows of the syslog daemon cases' records: `labels(record)` and `meta(record,
    facility, severity)` give what the daemon's template made of each."""
    rows = []
    for r in m["records"]:
        severity = SYSLOG_SEVERITIES[r["pri"] % 8]
        facility = SYSLOG_FACILITIES[r["pri"] // 8]
        ls = labels(r)
        rows.append(Row(r["text"], ls, meta(r, facility, severity),
                        ls.get("service") or "unknown_service", severity,
                        SEVERITY_NUMBERS[severity], ts=r["ts"], body=r["text"]))
    return rows


def expect_rsyslog(m):
    case = "rsyslog-omelasticsearch"
    # `_index` is the stream; nothing in it names a service.
    rows = syslog_rows(
        m, lambda r: {"_index": f"rsyslog-{r['program']}"},
        lambda r, facility, severity: {"host": r["host"], "program": r["program"],
                                       "facility": facility, "severity": severity,
                                       "test_case": case})
    return Expect(
        tenant="fake",
        content_type="application/json",
        content_encoding=None,
        tenant_header=None,
        requests=(1, len(rows)),  # one bulk request per batch rsyslog dequeues
        path="/insert/elasticsearch/_bulk",
        status=200,
        decode=decode_bulk,
        probes={("GET", "/insert/elasticsearch/_cat/health")},
        rows=rows,
    )


def expect_syslog_ng(m):
    case = "syslog-ng-http"
    fields = ("host", "service")
    rows = syslog_rows(
        m, lambda r: {"host": r["host"], "service": r["program"]},
        lambda r, facility, severity: {"facility": facility, "level": severity,
                                       "test_case": case})
    return Expect(
        tenant="syslog-team",
        content_type="application/x-ndjson",
        content_encoding=None,
        tenant_header="syslog-team",
        requests=(1, len(rows)),  # batch-lines(10), batch-timeout(200): usually one batch
        path="/insert/jsonline?_stream_fields=" + ",".join(fields),
        decode=jsonline_decoder(fields),
        rows=rows,
    )


CASES = {
    "otel-sdk-python": expect_otel_sdk,
    "syslog-ng-http": expect_syslog_ng,
    "rsyslog-omelasticsearch": expect_rsyslog,
    "python-logging-loki": expect_python_logging_loki,
    "loki-logger-handler": expect_loki_logger_handler,
    "winston-loki-protobuf": expect_winston_loki("protobuf"),
    "winston-loki-json": expect_winston_loki("json"),
    "pino-loki-worker": expect_pino_loki("worker"),
    "pino-loki-direct": expect_pino_loki("direct"),
}

# --------------------------------------------------------------------------------------------
# Wire decoding: snappy (block format), protobuf, Loki label strings.


def varint(b, i):
    shift = value = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        if c < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def snappy_decompress(b):
    n, i = varint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        if off == 0 or off > len(out):
            raise ValueError("bad snappy copy offset")
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError(f"snappy: {len(out)} bytes decoded, preamble says {n}")
    return bytes(out)


def proto_fields(b):
    """(field number, value) pairs of a protobuf message; LEN values as bytes."""
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            ln, i = varint(b, i)
            v = b[i:i + ln]
            if len(v) != ln:
                raise ValueError("truncated length-delimited field")
            i += ln
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        out.append((field, v))
    return out


# Loki's default_resource_attributes_as_index_labels.
OTLP_INDEX_LABELS = (
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name",
    "k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name",
    "k8s.cronjob.name", "k8s.job.name",
)


def otlp_name(key):
    """Loki's label name of an attribute: runs of other characters made one `_`."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", key)
    return "key_" + name if name[:1].isdigit() else name


def any_value_text(b):
    """The text of an OTLP AnyValue holding a string, a bool or an int."""
    for f, v in proto_fields(b):
        if f == 1:
            return v.decode("utf-8")
        if f == 2:
            return "true" if v else "false"
        if f == 3:
            return str(v - (1 << 64) if v >= 1 << 63 else v)
    return ""


def key_values(fields, number):
    """(key, text) of the KeyValue messages in field `number` of decoded `fields`."""
    out = []
    for f, v in fields:
        if f == number:
            kv = dict(proto_fields(v))
            out.append((kv.get(1, b"").decode("utf-8"), any_value_text(kv.get(2, b""))))
    return out


def decode_otlp(headers, body):
    """Entries of an OTLP protobuf export, mapped as Loki documents it (for string, bool and int
    attributes): list of (labels, ts_ns, line, metadata)."""
    h = {k.lower(): v for k, v in headers}
    if h.get("content-encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    entries = []
    for f, resource_logs in proto_fields(body):
        if f != 1:
            continue
        rl = proto_fields(resource_logs)
        attrs = [kv for f2, v in rl if f2 == 1 for kv in key_values(proto_fields(v), 1)]
        labels = {otlp_name(k): v for k, v in attrs if k in OTLP_INDEX_LABELS and v}
        resource_meta = {otlp_name(k): v for k, v in attrs if k not in OTLP_INDEX_LABELS}
        for f2, scope_logs in rl:
            if f2 != 2:
                continue
            sl = proto_fields(scope_logs)
            scope_meta = {}
            for f3, v in sl:
                if f3 == 1:
                    scope = proto_fields(v)
                    scope_meta.update({otlp_name(k): x for k, x in key_values(scope, 3)})
                    for f4, w in scope:
                        if f4 in (1, 2) and w:
                            scope_meta["scope_name" if f4 == 1 else "scope_version"] = w.decode()
            for f3, record in sl:
                if f3 != 2:
                    continue
                r = proto_fields(record)

                def get(n, default, r=r):
                    return next((v for f, v in r if f == n), default)

                time_ns = int.from_bytes(get(1, bytes(8)), "little")
                observed = int.from_bytes(get(11, bytes(8)), "little")
                meta = {otlp_name(k): v for k, v in key_values(r, 6)}
                if time_ns and observed:
                    meta["observed_timestamp"] = str(observed)
                if get(2, 0):
                    meta["severity_number"] = str(get(2, 0))
                if get(3, b""):
                    meta["severity_text"] = get(3, b"").decode("utf-8")
                flags = int.from_bytes(get(8, bytes(4)), "little")
                if flags:
                    meta["flags"] = str(flags)
                for n, name in ((9, "trace_id"), (10, "span_id")):
                    if any(get(n, b"")):
                        meta[name] = get(n, b"").hex()
                meta.update(resource_meta)
                meta.update(scope_meta)
                entries.append((labels, time_ns or observed, any_value_text(get(5, b"")), meta))
    return entries


def rfc3339_ns(text):
    """Nanoseconds since the epoch of an RFC 3339 time with any fraction and offset."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = int((m.group(2) or "0")[:9].ljust(9, "0"))
    zone = m.group(3)
    offset = 0 if zone == "Z" else int(zone[0] + "1") * (int(zone[1:3]) * 60 + int(zone[4:6]))
    return (whole - offset * 60) * 1_000_000_000 + frac


def flat_entry(doc, msg_field, time_field, stream_fields, labels):
    """The entry of a flat JSON document, mapped as sluice documents it for JSON lines and bulk:
    the line from `msg_field`, the time (RFC 3339) from `time_field`, the `stream_fields` added
    to `labels`, every other field metadata."""
    labels = {**labels, **{f: str(doc[f]) for f in stream_fields if doc.get(f)}}
    skip = (msg_field, time_field, *stream_fields)
    meta = {k: str(v) for k, v in doc.items() if k not in skip}
    return labels, rfc3339_ns(doc[time_field]), doc[msg_field], meta


def ndjson(body):
    return [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]


def decode_bulk(headers, body):
    """Entries of an Elasticsearch bulk body with flat documents: `_index` the stream, `message`
    the line, `@timestamp` the time."""
    lines = ndjson(body)
    entries = []
    for action, doc in zip(lines[::2], lines[1::2]):
        (op, meta), = action.items()
        if op not in ("index", "create"):
            raise ValueError(f"unexpected bulk action {action}")
        labels = {"_index": meta["_index"]} if meta.get("_index") else {}
        entries.append(flat_entry(doc, "message", "@timestamp", (), labels))
    return entries


def jsonline_decoder(stream_fields):
    """A decoder of `/insert/jsonline` bodies of flat documents sent with these
    `_stream_fields` and the default `message` and `timestamp` fields."""
    def decode(headers, body):
        return [flat_entry(doc, "message", "timestamp", stream_fields, {})
                for doc in ndjson(body)]
    return decode


GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "a": "\a", "b": "\b",
              "f": "\f", "v": "\v"}


def parse_label_string(s):
    """`{a="x", b="y"}` to a dict (Go escapes in values)."""
    s = s.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise ValueError(f"not a label string: {s!r}")
    i, n, out = 1, len(s) - 1, {}
    while True:
        while i < n and s[i] in " ,":
            i += 1
        if i >= n:
            return out
        j = s.index("=", i)
        name = s[i:j].strip()
        i = j + 1
        while s[i] == " ":
            i += 1
        if s[i] != '"':
            raise ValueError(f"label {name}: value not quoted in {s!r}")
        i += 1
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                val.append(GO_ESCAPES.get(s[i + 1], "\\" + s[i + 1]))
                i += 2
            else:
                val.append(s[i])
                i += 1
        i += 1
        out[name] = "".join(val)


def decode_push(headers, body):
    """Entries of a push body: list of (labels, ts_ns, line, metadata)."""
    h = {k.lower(): v for k, v in headers}
    if h.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
        body = gzip.decompress(body)
    ctype = h.get("content-type", "").split(";")[0].strip().lower()
    entries = []
    if ctype == "application/json":
        doc = json.loads(body)
        for stream in doc["streams"]:
            for v in stream["values"]:
                meta = v[2] if len(v) > 2 else {}
                entries.append((dict(stream["stream"]), int(v[0]), v[1], dict(meta)))
        return entries
    raw = snappy_decompress(body)
    for field, stream in proto_fields(raw):
        if field != 1:
            continue
        labels, ents = None, []
        for f, v in proto_fields(stream):
            if f == 1:
                labels = parse_label_string(v.decode("utf-8"))
            elif f == 2:
                ents.append(v)
        for e in ents:
            ts, line, meta = 0, "", {}
            for f, v in proto_fields(e):
                if f == 1:
                    secs = nanos = 0
                    for tf, tv in proto_fields(v):
                        if tf == 1:
                            secs = tv
                        elif tf == 2:
                            nanos = tv
                    ts = secs * 10**9 + nanos
                elif f == 2:
                    line = v.decode("utf-8")
                elif f == 3:
                    pair = dict(proto_fields(v))
                    meta[pair.get(1, b"").decode()] = pair.get(2, b"").decode()
            entries.append((labels, ts, line, meta))
    return entries


# --------------------------------------------------------------------------------------------
# ClickHouse


def ch_query(url, database, sql):
    q = urllib.parse.urlencode({"database": database})
    req = urllib.request.Request(f"{url.rstrip('/')}/?{q}", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"ClickHouse query failed ({e.code}): {e.read().decode(errors='replace')}"
                         f"\nquery: {sql}")
    except urllib.error.URLError as e:
        raise SystemExit(f"ClickHouse at {url} is not reachable: {e.reason}")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


LOGS_SQL = """
SELECT Tenant AS tenant, toString(StreamId) AS stream_id,
       toString(toUnixTimestamp64Nano(Timestamp)) AS ts, ServiceName AS service,
       SeverityText AS severity, SeverityNumber AS sevnum, Body AS body,
       ResourceAttributes AS labels, LogAttributes AS meta, TraceId AS trace_id,
       SpanId AS span_id
FROM logs FORMAT JSONEachRow
"""

STREAMS_SQL = """
SELECT Tenant AS tenant, toString(StreamId) AS stream_id, any(Labels) AS labels,
       uniqExact(toJSONString(Labels)) AS label_variants,
       toString(toUnixTimestamp64Nano(min(FirstSeen))) AS first_seen,
       toString(toUnixTimestamp64Nano(max(LastSeen))) AS last_seen
FROM streams GROUP BY Tenant, StreamId FORMAT JSONEachRow
"""

# --------------------------------------------------------------------------------------------
# Checks


def fmt_request(rec, limit=600):
    body = base64.b64decode(rec.get("request_body_b64", ""))
    hdrs = "; ".join(f"{k}: {v}" for k, v in rec.get("request_headers", []))
    return (f"{rec.get('method')} {rec.get('path')} [{hdrs}] body ({len(body)} bytes, base64) "
            f"{base64.b64encode(body[:limit]).decode()}{'…' if len(body) > limit else ''}"
            f" -> {rec.get('status')} {rec.get('response_body', '').strip()!r}")


def check_wire(exp, taps, problems):
    if any("parse_error" in t for t in taps):
        problems.append(f"tap could not parse the traffic: {[t for t in taps if 'parse_error' in t]}")
        taps = [t for t in taps if "parse_error" not in t]
    for t in [t for t in taps if (t["method"], t["path"]) in exp.probes]:
        if t["status"] != 200:
            problems.append(f"wire: probe got {t['status']}: {fmt_request(t)}")
    taps = [t for t in taps if (t["method"], t["path"]) not in exp.probes]
    n = len(taps)
    lo, hi = exp.requests if isinstance(exp.requests, tuple) else (exp.requests, exp.requests)
    if not lo <= n <= hi:
        problems.append(f"wire: {n} requests, expected {exp.requests}")
    for t in taps:
        h = {k.lower(): v for k, v in t["request_headers"]}
        where = f"wire: request {t['method']} {t['path']}"
        if t["status"] != exp.status:
            problems.append(f"{where} got {t['status']} (SLUICE REFUSED A CLIENT REQUEST): "
                            f"{fmt_request(t)}")
        if t["method"] != "POST" or t["path"] != exp.path:
            problems.append(f"{where}: expected POST {exp.path}")
        ctype = h.get("content-type", "").split(";")[0].strip().lower()
        if ctype != exp.content_type:
            problems.append(f"{where}: Content-Type {h.get('content-type')!r}, expected "
                            f"{exp.content_type!r}")
        if h.get("content-encoding") != exp.content_encoding:
            problems.append(f"{where}: Content-Encoding {h.get('content-encoding')!r}, expected "
                            f"{exp.content_encoding!r}")
        if h.get("x-scope-orgid") != exp.tenant_header:
            problems.append(f"{where}: X-Scope-OrgID {h.get('x-scope-orgid')!r}, expected "
                            f"{exp.tenant_header!r}")


# Loki's discover_service_name, as sluice applies it to streams without `service_name`.
SERVICE_LABELS = ("service", "app", "application", "name", "app_kubernetes_io_name", "container",
                  "container_name", "component", "workload", "job")


def with_service_name(labels):
    if labels.get("service_name"):
        return labels
    service = next((labels[n] for n in SERVICE_LABELS if labels.get(n)), "unknown_service")
    return {**labels, "service_name": service}


def row_key(tenant, labels, ts, body, meta):
    return (tenant, tuple(sorted(labels.items())), int(ts), body, tuple(sorted(meta.items())))


def check_sent_vs_stored(exp, taps, rows, problems):
    sent = []
    for t in taps:
        if ("parse_error" in t or not 200 <= t["status"] < 300
                or (t["method"], t["path"]) in exp.probes):
            continue
        h = {k.lower(): v for k, v in t["request_headers"]}
        tenant = h.get("x-scope-orgid", "fake")
        try:
            entries = exp.decode(t["request_headers"], base64.b64decode(t["request_body_b64"]))
        except Exception as e:  # noqa: BLE001 (report any decoding failure)
            problems.append(f"sent vs stored: cannot decode a request body ({e}): "
                            f"{fmt_request(t)}")
            return
        sent += [row_key(tenant, with_service_name(labels), *rest) for labels, *rest in entries]
    # The `detected_level` sluice adds is checked against the expectations (level_problem); here
    # it is left out unless the client sent one.
    sends_levels = any(dict(k[4]).get("detected_level") for k in sent)
    stored = [row_key(r["tenant"], r["labels"], r["ts"], r["body"],
                      {m: v for m, v in r["meta"].items()
                       if sends_levels or m != "detected_level"})
              for r in rows]
    only_sent = list(sent)
    only_stored = []
    for k in stored:
        if k in only_sent:
            only_sent.remove(k)
        else:
            only_stored.append(k)
    for k in only_sent:
        problems.append(f"sent vs stored: sent but not stored (or stored differently): {k}")
    for k in only_stored:
        problems.append(f"sent vs stored: stored but never sent like this: {k}")


def check_rows(exp, rows, problems):
    matched = {}
    for e in exp.rows:
        hits = [r for r in rows if e.marker in r["body"]]
        if len(hits) != 1:
            problems.append(f"logs: {len(hits)} rows contain {e.marker!r}, expected 1")
            continue
        r = hits[0]
        matched[id(r)] = e
        where = f"logs: row {e.marker!r}"
        ts = int(r["ts"])
        if e.body is not None and r["body"] != e.body:
            problems.append(f"{where}: Body {r['body']!r} != expected {e.body!r}")
        if e.body_json is not None:
            try:
                parsed = json.loads(r["body"])
            except ValueError as err:
                problems.append(f"{where}: Body is not JSON ({err}): {r['body']!r}")
                parsed = None
            if parsed is not None:
                diffs = json_problems(parsed, e.body_json)
                problems += [f"{where}: Body {d}" for d in diffs]
                if not diffs:
                    exact = e.dumps(bind(e.body_json, parsed))
                    if r["body"] != exact:
                        problems.append(f"{where}: Body {r['body']!r} != expected {exact!r}")
                if e.ts_from_ms and isinstance(parsed, dict):
                    want = parsed.get(e.ts_from_ms)
                    if not isinstance(want, int) or ts != want * 1_000_000:
                        problems.append(f"{where}: Timestamp {ts} != body field "
                                        f"{e.ts_from_ms}={want!r} ms * 1e6")
        if isinstance(e.ts, int) and ts != e.ts:
            problems.append(f"{where}: Timestamp {ts} != expected {e.ts}")
        if isinstance(e.ts, Window):
            p = e.ts.problem(ts)
            if p:
                problems.append(f"{where}: Timestamp {p}")
        if r["tenant"] != exp.tenant:
            problems.append(f"{where}: Tenant {r['tenant']!r} != expected {exp.tenant!r}")
        if r["labels"] != e.labels:
            problems.append(f"{where}: ResourceAttributes {r['labels']} != expected labels "
                            f"{e.labels}")
        meta = dict(r["meta"])
        if "detected_level" not in e.meta:
            p = level_problem(meta.pop("detected_level", None), e.severity)
            if p:
                problems.append(f"{where}: LogAttributes detected_level {p}")
        diffs = json_problems(dict(sorted(meta.items())), dict(sorted(e.meta.items())))
        if diffs:
            problems.append(f"{where}: LogAttributes {r['meta']} != expected metadata {e.meta}: "
                            f"{'; '.join(diffs)}")
        if (r["trace_id"], r["span_id"]) != (e.trace_id, e.span_id):
            problems.append(f"{where}: TraceId, SpanId {r['trace_id']!r}, {r['span_id']!r} != "
                            f"expected {e.trace_id!r}, {e.span_id!r}")
        if r["service"] != e.service:
            problems.append(f"{where}: ServiceName {r['service']!r} != expected {e.service!r}")
        if r["severity"] != e.severity:
            problems.append(f"{where}: SeverityText {r['severity']!r} != expected "
                            f"{e.severity!r}")
        if int(r["sevnum"]) != e.sevnum:
            problems.append(f"{where}: SeverityNumber {r['sevnum']} != expected {e.sevnum}")
    for r in rows:
        if id(r) not in matched:
            problems.append(f"logs: unexpected row {r}")


def check_streams(exp, rows, streams, problems):
    groups = {}
    for r in rows:
        key = (r["tenant"], tuple(sorted(r["labels"].items())))
        groups.setdefault(key, []).append(r)
    ids = {}
    for (tenant, labels), rs in groups.items():
        label_dict = dict(labels)
        where = f"streams: {tenant} {label_dict}"
        sids = {r["stream_id"] for r in rs}
        if len(sids) != 1:
            problems.append(f"{where}: logs rows of one label set carry StreamIds {sids}")
            continue
        sid = sids.pop()
        ids.setdefault(sid, []).append(label_dict)
        found = [s for s in streams if s["tenant"] == tenant and s["stream_id"] == sid]
        if len(found) != 1:
            problems.append(f"{where}: {len(found)} streams rows for StreamId {sid}, expected 1")
            continue
        s = found[0]
        if s["labels"] != label_dict:
            problems.append(f"{where}: Labels {s['labels']} != the stream's labels")
        if int(s["label_variants"]) != 1:
            problems.append(f"{where}: {s['label_variants']} different Labels maps stored")
        tss = [int(r["ts"]) for r in rs]
        if int(s["first_seen"]) != min(tss):
            problems.append(f"{where}: FirstSeen {s['first_seen']} != earliest entry {min(tss)}")
        if int(s["last_seen"]) != max(tss):
            problems.append(f"{where}: LastSeen {s['last_seen']} != latest entry {max(tss)}")
    for sid, label_sets in ids.items():
        if len(label_sets) > 1:
            problems.append(f"streams: StreamId {sid} shared by label sets {label_sets}")
    mine = {s for s in ids}
    case = exp.rows[0].labels.get("test_case") if exp.rows else None
    # Cases named in metadata only are covered by main's check for streams without rows.
    for s in streams:
        if case and s["labels"].get("test_case") == case and s["stream_id"] not in mine:
            problems.append(f"streams: unexpected streams row {s}")


def case_of(row):
    """The case a row belongs to: its `test_case` label, or (OTLP, where it is not an index
    label) its `test_case` metadata."""
    return row["labels"].get("test_case") or row["meta"].get("test_case")


def tail(path, n=25):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clickhouse", required=True)
    ap.add_argument("--database", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("cases", nargs="+")
    args = ap.parse_args()

    logs = ch_query(args.clickhouse, args.database, LOGS_SQL)
    streams = ch_query(args.clickhouse, args.database, STREAMS_SQL)
    passed = failed = 0
    for case in args.cases:
        problems = []
        base = os.path.join(args.work, case)
        try:
            rc = int(open(base + ".rc").read().strip())
        except (OSError, ValueError):
            rc = None
        if rc != 0:
            problems.append(f"the client program exited {rc}; its stderr ends with:")
            problems += ["    " + line for line in tail(base + ".stderr")]
        try:
            with open(base + ".manifest.json", encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            manifest = None
            problems.append(f"no manifest from the client program ({e})")
        taps = []
        try:
            with open(base + ".tap.jsonl", encoding="utf-8") as f:
                taps = [json.loads(line) for line in f if line.strip()]
        except OSError as e:
            problems.append(f"no tap record ({e})")
        rows = [r for r in logs if case_of(r) == case]
        if case not in CASES:
            problems.append("unknown case")
        elif manifest is not None:
            for k in ("t_start_ns", "t_end_ns"):
                manifest[k] = int(manifest[k])
            exp = CASES[case](manifest)
            check_wire(exp, taps, problems)
            check_rows(exp, rows, problems)
            check_sent_vs_stored(exp, taps, rows, problems)
            check_streams(exp, rows, streams, problems)
        if problems:
            failed += 1
            print(f"FAIL {case}")
            for p in problems:
                print(f"  - {p}")
        else:
            passed += 1
            print(f"PASS {case} ({len(rows)} rows, {len(taps)} requests)")
    used = {(r["tenant"], r["stream_id"]) for r in logs}
    unused = [s for s in streams if (s["tenant"], s["stream_id"]) not in used]
    if unused:
        failed += 1
        print(f"FAIL streams without logs rows: {len(unused)}, e.g. {unused[0]}")
    stray = [r for r in logs if case_of(r) not in args.cases]
    if stray:
        failed += 1
        print(f"FAIL stray rows: {len(stray)} logs rows belong to no case, e.g. {stray[0]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
