"""Sends syslog messages through a real syslog-ng (Debian's `syslog-ng-core` 3.38 with
`syslog-ng-mod-http`) to sluice's JSON lines endpoint with the `http()` destination.

What the client does (syslog-ng 3.38, modules/http, read from its source and seen on the wire):
- Each message is rendered with the `body()` template; a batch (`batch-lines`, flushed after
  `batch-timeout` ms) is the bodies joined by `delimiter()`, posted to `url()` as given, with the
  `headers()` given.
- Any 2xx answer counts the batch's messages as `written` in the destination's statistics;
  other answers are retried or dropped by `response-action()`.

This program writes a syslog-ng configuration (a `syslog()` TCP source on a free loopback port,
an `http()` destination posting `format-json` lines with the tenant header, a control socket),
starts syslog-ng in the foreground, sends the messages of `syslog_daemon.records` over TCP, waits
until `syslog-ng-ctl stats` counts every message written, and stops syslog-ng. It exits 1 unless
every message was written.

Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs),
SYSLOG_NG_ROOT (where Debian's packages were unpacked: usr/sbin/syslog-ng and its modules).
"""

import os
import subprocess
import sys
import time

import syslog_daemon

CASE = "syslog-ng-http"
TENANT = "syslog-team"

CONFIG = """\
@version: {version}
options {{ frac-digits(6); keep-hostname(yes); stats-level(1); }};
source s_tcp {{ syslog(ip("127.0.0.1") port({port}) transport("tcp")); }};
destination d_sluice {{
  http(url("{url}")
       method("POST")
       headers("Content-Type: application/x-ndjson", "X-Scope-OrgID: {tenant}")
       body("$(format-json message=$MESSAGE timestamp=$ISODATE host=$HOST service=$PROGRAM
               level=$LEVEL facility=$FACILITY test_case={case})")
       delimiter("\\n")
       batch-lines(10)
       batch-timeout(200));
}};
log {{ source(s_tcp); destination(d_sluice); }};
"""


def counter(ctl, env, name):
    """The http destination's statistics counter `name` (0 until it is there)."""
    out = subprocess.run([ctl[0], "stats", f"--control={ctl[1]}"], capture_output=True,
                         text=True, env=env, timeout=5).stdout
    for line in out.splitlines():
        fields = line.split(";")
        if len(fields) == 6 and fields[0] == "dst.http" and fields[4] == name:
            return int(fields[5])
    return 0


def main():
    root = os.environ["SYSLOG_NG_ROOT"]
    manifest = os.environ["MANIFEST"]
    work = syslog_daemon.workdir(manifest, "syslog-ng")
    port = syslog_daemon.free_port()
    url = os.environ["LOKI_URL"].rstrip("/") + "/insert/jsonline?_stream_fields=host,service"
    # The unpacked binary finds its own library and modules only when told where they are.
    env = {**os.environ, "LD_LIBRARY_PATH": os.path.join(root, "usr/lib/syslog-ng")}
    daemon = os.path.join(root, "usr/sbin/syslog-ng")
    version = subprocess.run([daemon, "--version"], capture_output=True, text=True, env=env,
                             check=True, timeout=10).stdout.split()[2].strip("()")
    modules = syslog_daemon.one_dir(os.path.join(root, "usr/lib/syslog-ng/[0-9]*"))
    config = os.path.join(work, "syslog-ng.conf")
    with open(config, "w", encoding="utf-8") as f:
        f.write(CONFIG.format(version=".".join(version.split(".")[:2]), port=port, url=url,
                              tenant=TENANT, case=CASE))
    ctl = (os.path.join(root, "usr/sbin/syslog-ng-ctl"), os.path.join(work, "control"))
    sent = syslog_daemon.records("syslog-ng")
    t_start = time.time_ns()
    problems = syslog_daemon.run(
        [daemon, "-F", "--no-caps", "-f", config,
         f"--module-path={modules}",
         f"--persist-file={os.path.join(work, 'persist')}",
         f"--pidfile={os.path.join(work, 'syslog-ng.pid')}", f"--control={ctl[1]}"],
        port, os.path.join(work, "syslog-ng.out"),
        lambda: counter(ctl, env, "written"), sent, env=env)
    t_end = time.time_ns()
    return syslog_daemon.finish(manifest, t_start, t_end, version, sent, problems)


if __name__ == "__main__":
    sys.exit(main())
