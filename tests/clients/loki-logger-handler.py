"""Sends a few lines to sluice with loki-logger-handler (PyPI `loki-logger-handler`).

What the client does (loki_logger_handler 1.1.2, read from its source):
- `LokiLoggerHandler(url, labels, label_keys, auth, additional_headers, message_in_json_format,
  timeout, compressed, ..., enable_structured_loki_metadata, loki_metadata, loki_metadata_keys)`
  posts Loki JSON to `url` as given (the full push URL): Content-Type application/json and, by
  default (`compressed=True`), the body gzip-compressed with `Content-Encoding: gzip`.
- Records are queued; a daemon thread sends the queue every `timeout` seconds (default 10), and
  an `atexit` hook sends what is left when the interpreter exits. All queued records go in one
  request, grouped into streams by their label *values*. There is no public flush.
- The line is `json.dumps(dict, ensure_ascii=False)` of: message, timestamp (record.created as a
  float), process, thread, function, module, name, level (the level name), then every extra
  attribute of the record (Python >= 3.12 adds `taskName`); keys listed in `loki_metadata_keys`
  move from the line to structured metadata.
- Entry timestamp: `str(int(record.created * 1e9))`.
- Labels: `labels`, plus each key of `label_keys` found in the record's extras.
- Structured metadata (only with `enable_structured_loki_metadata=True`): `loki_metadata` (every
  line), `extra={"loki_metadata": {...}}` (that line), `loki_metadata_keys`; values become `str()`.
- Tenant: any header through `additional_headers`, here `X-Scope-OrgID`.
- Errors: a failed request sets `handler.error = True` (and prints only with
  `enable_self_errors=True`). This program checks that flag after the client's exit-time send and
  exits 1 when it is set.

To know the exact timestamps, a logging filter (the standard way to amend records) sets each
record's creation time to a whole second just before the handler sees it.

Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs).
"""

import atexit
import json
import logging
import os
import sys
import threading
import time

STATE = {"handler": None, "manifest": None}


def check_at_exit():
    """Runs after the client's own atexit send (atexit hooks run last-registered first)."""
    handler = STATE["handler"]
    manifest = STATE["manifest"]
    if handler is None or manifest is None:
        return
    manifest["t_end_ns"] = time.time_ns()
    with open(os.environ["MANIFEST"], "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    if handler.error:
        print("loki-logger-handler reported an error (handler.error is set)", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)


# Registered before the handler exists, so it runs after the handler's exit-time send.
atexit.register(check_at_exit)

from loki_logger_handler.loki_logger_handler import LokiLoggerHandler  # noqa: E402


class FixedCreated(logging.Filter):
    """Sets record.created to the next planned whole second."""

    def __init__(self, times):
        super().__init__()
        self.times = list(times)

    def filter(self, record):
        record.created = float(self.times.pop(0))
        record.msecs = 0.0
        return True


def main():
    url = os.environ["LOKI_URL"].rstrip("/") + "/loki/api/v1/push"
    t_start = time.time_ns()
    base = int(time.time()) - 120  # recent, whole seconds, distinct
    created = [base + 1, base + 2, base + 3]
    handler = LokiLoggerHandler(
        url=url,
        labels={"application": "py-loki-handler", "test_case": "loki-logger-handler"},
        label_keys=["region"],
        additional_headers={"X-Scope-OrgID": "tenant-llh"},
        timeout=3600,  # the background thread never fires: everything goes in the exit-time send
        enable_structured_loki_metadata=True,
        loki_metadata={"deployment": "blue"},
        loki_metadata_keys=["level", "trace_id"],
        enable_self_errors=True,
    )
    STATE["handler"] = handler
    logger = logging.getLogger("sluice.clients.llh")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addFilter(FixedCreated(created))
    logger.addHandler(handler)

    logger.info(
        "loki-logger-handler: order created",
        extra={"order_id": 42, "trace_id": "4bf92f3577b34da6", "region": "eu-west"},
    )
    logger.warning(
        "loki-logger-handler: disk almost full ✓ \"q\"",
        extra={"loki_metadata": {"user_id": 12345, "op": "update"}},
    )
    logger.debug("loki-logger-handler: debug detail", extra={"attempt": 3})

    STATE["manifest"] = {
        "t_start_ns": t_start,
        "created": created,
        "pid": os.getpid(),
        "thread": threading.get_ident(),
    }
    return 0  # the client sends at interpreter exit; check_at_exit() judges the outcome


if __name__ == "__main__":
    sys.exit(main())
