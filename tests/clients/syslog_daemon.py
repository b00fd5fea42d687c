"""What the syslog daemon cases share: the messages they send, sending them as RFC 5424 over TCP,
and running a daemon in the foreground until its own counters say everything was delivered.

Both daemons come from Debian packages unpacked (not installed) by run.sh; see README.md.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time


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


def records(tag):
    """Four messages from two programs on two hosts, with microsecond timestamps (what both
    daemons keep) a little in the past, in three UTC offsets:
    (facility * 8 + severity, host, program, time ns, UTC offset in minutes, message)."""
    base = (time.time_ns() - 5_000_000_000) // 1000 * 1000
    return [
        (14, "web-1", "billing", base, 0, f"{tag}: first line"),
        (11, "web-1", "billing", base + 1_500_000, 60,
         f'{tag}: error with "quotes", a backslash \\ and unicode café ✓'),
        (15, "web-2", "auth", base + 2_000_001_000, -330, f"{tag}: debug line from auth"),
        (12, "web-2", "auth", base + 3_000_000_000, 0, f"{tag}: warning [with brackets]"),
    ]


def send(port, messages):
    """`messages` as RFC 5424 over one TCP connection, octet-counted (RFC 6587)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sender:
        for pri, host, program, ns, offset, text in messages:
            frame = f"<{pri}>1 {rfc3339(ns, offset)} {host} {program} 4242 - - {text}".encode()
            sender.sendall(str(len(frame)).encode() + b" " + frame)


def run(argv, port, output, delivered, expected, env=None):
    """Starts the daemon `argv` (its output to `output`), waits until it listens on `port`,
    sends `expected` messages, and waits up to 30 s for `delivered()` to reach their number;
    then stops it with SIGTERM. `delivered` is read only while the daemon runs. Returns the
    problems seen."""
    problems = []
    count = 0
    # `timeout` ends a hung program with SIGTERM: exit through `finally`, which stops the daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with open(output, "w") as out:
        daemon = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{argv[0]} did not listen on {port} "
                                     f"(exit {daemon.poll()}); see {output}")
                time.sleep(0.1)
        send(port, expected)
        deadline = time.monotonic() + 30
        while daemon.poll() is None:
            count = delivered()
            if count >= len(expected) or time.monotonic() > deadline:
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
            problems.append(f"{argv[0]} did not stop within 20 s of SIGTERM")
    if count != len(expected):
        problems.append(f"the daemon counted {count} messages delivered, expected "
                        f"{len(expected)}; see {output}")
    return problems


def finish(manifest_path, t_start, t_end, version, sent, problems):
    """Writes the manifest, prints the problems; the program's exit status."""
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump({
            "t_start_ns": t_start,
            "t_end_ns": t_end,
            "version": version,
            "records": [{"pri": pri, "host": host, "program": program, "ts": ns, "text": text}
                        for pri, host, program, ns, _, text in sent],
        }, f)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def one_dir(pattern):
    """The one directory matching the glob `pattern` (a module directory whose name holds the
    architecture or the version), or exit naming the pattern."""
    found = sorted(d for d in glob.glob(pattern) if os.path.isdir(d))
    if not found:
        raise SystemExit(f"nothing matches {pattern}: are the Debian packages unpacked?")
    return found[-1]


def workdir(manifest_path, name):
    work = os.path.join(os.path.dirname(manifest_path), name)
    os.makedirs(work, exist_ok=True)
    return work
