"""Sends syslog messages through a real rsyslogd (Debian's `rsyslog` 8.2302 with
`rsyslog-elasticsearch`) to sluice's Elasticsearch bulk endpoint with `omelasticsearch`.

What the client does (rsyslog 8.2302, plugins/omelasticsearch/omelasticsearch.c, read from its
source):
- The base URL is the `server` as given (no port is added when it has one), then `/`; the
  health check is `GET <base>_cat/health`; a batch is
  `POST <base>_bulk` with `Content-Type: application/json; charset=utf-8` and no tenant header.
- With `bulkmode="on"` a batch is one NDJSON body: `{"index":{"_index":"<index>","_type":...}}`
  then the document rendered by the template, per message.
- The answer is read. With `retryFailures="on"`, `"errors":false` counts every item as
  `response.success`; otherwise (and always without it) each item's status is looked at, and
  failures are counted (`response.bad`, ...) and written to the `errorfile`.
- In this version the health check is made only after a failed request.

This program writes an rsyslog configuration (an `imtcp` input on a free loopback port, a JSON
template, `dynSearchIndex` so that each program name is its own index, `impstats` to a file),
starts rsyslogd in the foreground, sends RFC 5424 messages with known timestamps over TCP
(octet-counted framing), waits until rsyslog's own counters say every message was accepted by
sluice, and stops rsyslogd. It exits 1 if any message failed or went missing.

Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs),
RSYSLOG_ROOT (where Debian's packages were unpacked: usr/sbin/rsyslogd and its modules).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

CASE = "rsyslog-omelasticsearch"

CONFIG = """\
global(workDirectory="{work}/spool")
main_queue(queue.timeoutShutdown="10000")
module(load="impstats" interval="1" format="json" log.syslog="off" log.file="{work}/stats.json")
module(load="imtcp")
module(load="omelasticsearch")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="index" type="string" string="rsyslog-%programname%")
template(name="document" type="list" option.jsonf="on") {{
  property(outname="message" name="msg" format="jsonf")
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  constant(outname="test_case" value="{case}" format="jsonf")
}}
action(type="omelasticsearch" server="{server}" template="document"
       searchIndex="index" dynSearchIndex="on" bulkmode="on" retryFailures="on"
       errorfile="{work}/es-errors.json")
"""


def rfc3339(ns, offset_minutes):
    """`ns` since the epoch as RFC 3339 with microseconds in the given UTC offset."""
    secs, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(secs + offset_minutes * 60)
    sign = "-" if offset_minutes < 0 else "+"
    zone = "Z" if offset_minutes == 0 else "%s%02d:%02d" % (sign, *divmod(abs(offset_minutes), 60))
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%06d" % (frac // 1000) + zone


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counters(stats_path):
    """omelasticsearch's counters from the last impstats line that has them."""
    found = {}
    try:
        with open(stats_path, encoding="utf-8") as f:
            for line in f:
                start = line.find("{")
                if start < 0:
                    continue
                try:
                    record = json.loads(line[start:])
                except ValueError:
                    continue
                if record.get("name") == "omelasticsearch":
                    found = record
    except OSError:
        pass
    return found


def main():
    root = os.environ["RSYSLOG_ROOT"]
    manifest_path = os.environ["MANIFEST"]
    work = os.path.join(os.path.dirname(manifest_path), "rsyslog")
    os.makedirs(os.path.join(work, "spool"), exist_ok=True)
    port = free_port()
    config = os.path.join(work, "rsyslog.conf")
    with open(config, "w", encoding="utf-8") as f:
        f.write(CONFIG.format(work=work, port=port, case=CASE,
                              server=os.environ["LOKI_URL"].rstrip("/") + "/insert/elasticsearch"))
    version = subprocess.run([os.path.join(root, "usr/sbin/rsyslogd"), "-v"], capture_output=True,
                             text=True, check=True).stdout.split()[1]

    # Microsecond timestamps (rsyslog keeps microseconds), a little in the past.
    base = (time.time_ns() - 5_000_000_000) // 1000 * 1000
    records = [
        # (facility*8 + severity, host, program, time ns, UTC offset in minutes, message)
        (14, "web-1", "billing", base, 0, "rsyslog: first line"),
        (11, "web-1", "billing", base + 1_500_000, 60,
         'rsyslog: error with "quotes", a backslash \\ and unicode café ✓'),
        (15, "web-2", "auth", base + 2_000_001_000, -330, "rsyslog: debug line from auth"),
        (12, "web-2", "auth", base + 3_000_000_000, 0, "rsyslog: warning [with brackets]"),
    ]
    t_start = time.time_ns()
    daemon = subprocess.Popen(
        [os.path.join(root, "usr/sbin/rsyslogd"), "-n", "-f", config,
         "-i", os.path.join(work, "rsyslogd.pid"),
         "-M", os.path.join(root, "usr/lib/x86_64-linux-gnu/rsyslog")],
        stdout=open(os.path.join(work, "rsyslogd.out"), "w"), stderr=subprocess.STDOUT)
    problems = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sender = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"rsyslogd did not listen on {port} (exit {daemon.poll()})")
                time.sleep(0.1)
        with sender:
            for pri, host, program, ns, offset, text in records:
                frame = f"<{pri}>1 {rfc3339(ns, offset)} {host} {program} 4242 - - {text}"
                data = frame.encode()
                sender.sendall(str(len(data)).encode() + b" " + data)
        # Every message accepted by sluice, by rsyslog's own count.
        deadline = time.monotonic() + 30
        while counters(os.path.join(work, "stats.json")).get("response.success", 0) < len(records):
            if daemon.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
            problems.append("rsyslogd did not stop within 20 s of SIGTERM")
    t_end = time.time_ns()

    stats = counters(os.path.join(work, "stats.json"))
    if stats.get("response.success") != len(records):
        problems.append(f"omelasticsearch counted {stats.get('response.success')} successes, "
                        f"expected {len(records)}: {stats}")
    failed = {k: v for k, v in stats.items()
              if (k.startswith("failed.") or k.startswith("response.")) and k != "response.success"
              and v}
    if failed:
        problems.append(f"omelasticsearch counted failures: {failed}")
    errors = os.path.join(work, "es-errors.json")
    if os.path.exists(errors) and os.path.getsize(errors):
        problems.append(f"omelasticsearch wrote to its errorfile: {open(errors).read()[:2000]}")

    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump({
            "t_start_ns": t_start,
            "t_end_ns": t_end,
            "rsyslog_version": version,
            "records": [{"pri": pri, "host": host, "program": program, "ts": ns, "text": text}
                        for pri, host, program, ns, _, text in records],
        }, f)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
