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
starts rsyslogd in the foreground, sends the messages of `syslog_daemon.records` over TCP, waits
until rsyslog's own counters say every message was accepted by sluice, and stops rsyslogd. It
exits 1 if any message failed or went missing.

Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs),
RSYSLOG_ROOT (where Debian's packages were unpacked: usr/sbin/rsyslogd and its modules).
"""

import json
import os
import subprocess
import sys
import time

import syslog_daemon

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


def counters(stats_path):
    """omelasticsearch's counters from the last impstats line that has them."""
    found = {}
    try:
        with open(stats_path, encoding="utf-8") as f:
            for line in f:
                start = line.find("{")
                try:
                    record = json.loads(line[start:]) if start >= 0 else {}
                except ValueError:
                    continue
                if record.get("name") == "omelasticsearch":
                    found = record
    except OSError:
        pass
    return found


def main():
    root = os.environ["RSYSLOG_ROOT"]
    manifest = os.environ["MANIFEST"]
    work = syslog_daemon.workdir(manifest, "rsyslog")
    os.makedirs(os.path.join(work, "spool"), exist_ok=True)
    port = syslog_daemon.free_port()
    config = os.path.join(work, "rsyslog.conf")
    with open(config, "w", encoding="utf-8") as f:
        f.write(CONFIG.format(work=work, port=port, case=CASE,
                              server=os.environ["LOKI_URL"].rstrip("/") + "/insert/elasticsearch"))
    rsyslogd = os.path.join(root, "usr/sbin/rsyslogd")
    version = subprocess.run([rsyslogd, "-v"], capture_output=True, text=True, check=True,
                             timeout=10).stdout.split()[1]
    stats = os.path.join(work, "stats.json")
    sent = syslog_daemon.records("rsyslog")
    t_start = time.time_ns()
    problems = syslog_daemon.run(
        [rsyslogd, "-n", "-f", config, "-i", os.path.join(work, "rsyslogd.pid"),
         "-M", syslog_daemon.one_dir(os.path.join(root, "usr/lib/*/rsyslog"))],
        port, os.path.join(work, "rsyslogd.out"),
        lambda: counters(stats).get("response.success", 0), sent)
    t_end = time.time_ns()

    failed = {k: v for k, v in counters(stats).items()
              if (k.startswith("failed.") or k.startswith("response.")) and k != "response.success"
              and v}
    if failed:
        problems.append(f"omelasticsearch counted failures: {failed}")
    errors = os.path.join(work, "es-errors.json")
    if os.path.exists(errors) and os.path.getsize(errors):
        problems.append(f"omelasticsearch wrote to its errorfile: {open(errors).read()[:2000]}")
    return syslog_daemon.finish(manifest, t_start, t_end, version, sent, problems)


if __name__ == "__main__":
    sys.exit(main())
