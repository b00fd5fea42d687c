"""Sends a few lines to sluice with python-logging-loki (PyPI `python-logging-loki`).

What the client does (logging_loki 0.3.1, read from its source):
- `LokiHandler(url, tags, auth, version)`; version "1" posts Loki JSON to `url` as given (the full
  push URL), `requests.post(url, json=payload)`: Content-Type application/json, no compression,
  non-ASCII escaped as \\uXXXX by Python's json module.
- One HTTP request per log record, sent synchronously inside `emit()`; no batching.
- Labels: the handler's `tags`, plus `severity` = level name in lower case and `logger` = the
  logger's name, plus the record's `extra={"tags": {...}}` with names cleaned to [A-Za-z0-9_].
- Timestamp: `time.time()` at send time (not the record's creation time), in ns as a string.
- The line is the handler's formatted record (default Formatter: the message).
- No tenant option (no way to set X-Scope-OrgID), no structured metadata.
- Errors (any status other than 204) raise inside emit() and go to `handleError`, which by default
  only prints to stderr; this program records them and exits 1.

Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs).
"""

import json
import logging
import os
import sys
import time

from logging_loki import LokiHandler

ERRORS = []


class RecordingLokiHandler(LokiHandler):
    """LokiHandler whose reported errors make this program fail."""

    def handleError(self, record):  # noqa: N802 (logging's name)
        ERRORS.append(sys.exc_info()[1])
        super().handleError(record)


def main():
    url = os.environ["LOKI_URL"].rstrip("/") + "/loki/api/v1/push"
    t_start = time.time_ns()
    handler = RecordingLokiHandler(
        url=url,
        tags={"service_name": "py-logging-loki", "test_case": "python-logging-loki", "env": "ci"},
        version="1",
    )
    logger = logging.getLogger("sluice.clients.plain")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)

    logger.info("python-logging-loki: first line")
    logger.warning('python-logging-loki: unicode café ✓ and "quotes" \\ backslash')
    logger.error(
        "python-logging-loki: line with extra tags",
        extra={"tags": {"request-id": "r-42", "user.name": "ann"}},
    )
    handler.close()
    t_end = time.time_ns()

    with open(os.environ["MANIFEST"], "w", encoding="utf-8") as f:
        json.dump({"t_start_ns": t_start, "t_end_ns": t_end}, f)
    if ERRORS:
        for e in ERRORS:
            print(f"python-logging-loki reported an error: {e!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
