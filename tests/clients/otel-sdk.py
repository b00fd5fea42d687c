"""Sends logs to sluice's OTLP endpoint with the OpenTelemetry Python SDK (PyPI `opentelemetry-sdk`
and `opentelemetry-exporter-otlp-proto-http`), through the standard `logging` module.

What the client does (opentelemetry-sdk 1.45, read from its source):
- `OTLPLogExporter(endpoint=...)` posts protobuf `ExportLogsServiceRequest`s to the URL as given,
  `Content-Type: application/x-protobuf`, `Content-Encoding: gzip` with `Compression.Gzip`, plus
  the `headers` given (here `X-Scope-OrgID`). Success is any 2xx; the body is not read.
- `SimpleLogRecordProcessor` exports each record as it is emitted: one request per record.
- `LoggingHandler` maps a `logging.LogRecord`: the body is the formatted message;
  `severity_text` is the level name, but `WARN` for `WARNING` and `FATAL` for `CRITICAL`;
  `severity_number` from the level number (INFO 9, WARNING 13, ERROR 17); `time_unix_nano`
  from `record.created`, `observed_time_unix_nano` at emit; attributes: every non-standard
  attribute of the record (`extra=`), `code.file.path`, `code.function.name`, `code.line.number`;
  the trace context of the current span, if any. The scope is the Python logger's name.
- `Resource.create` adds `telemetry.sdk.language`, `telemetry.sdk.name`, `telemetry.sdk.version`.
- Export failures are logged and counted by the processor, not raised: this program wraps the
  exporter to record each result, and exits 1 if any export failed.

Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs).
"""

import json
import logging
import os
import sys
import time
import warnings

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.version import __version__ as SDK_VERSION

RESULTS = []


class RecordingExporter(OTLPLogExporter):
    """The SDK's exporter, with every export's result kept."""

    def export(self, batch):
        result = super().export(batch)
        RESULTS.append(result)
        return result


def main():
    url = os.environ["LOKI_URL"].rstrip("/") + "/otlp/v1/logs"
    resource = Resource.create(
        {
            "service.name": "otel-sdk-python",
            "service.namespace": "clients",
            "deployment.environment.name": "ci",
            "host.name": "ci-host",
            "test_case": "otel-sdk-python",
        }
    )
    exporter = RecordingExporter(
        endpoint=url, headers={"X-Scope-OrgID": "otel-team"}, compression=Compression.Gzip
    )
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with warnings.catch_warnings():
        # The SDK's handler is deprecated in favour of opentelemetry-instrumentation-logging,
        # which wraps the same mapping; it is still the documented way to bridge `logging`.
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger("sluice.clients.otel")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("sluice.clients")

    t_start = time.time_ns()
    lines = {}
    lines["first"] = sys._getframe().f_lineno + 1
    logger.info("otel-sdk: first line")
    lines["extra"] = sys._getframe().f_lineno + 1
    logger.warning("otel-sdk: unicode café ✓ with extra", extra={"order.id": "42", "attempt": 3})
    with tracer.start_as_current_span("checkout") as span:
        ctx = span.get_span_context()
        lines["span"] = sys._getframe().f_lineno + 1
        logger.error("otel-sdk: error inside a span")
    provider.shutdown()
    t_end = time.time_ns()

    with open(os.environ["MANIFEST"], "w", encoding="utf-8") as f:
        json.dump(
            {
                "t_start_ns": t_start,
                "t_end_ns": t_end,
                "file": os.path.abspath(__file__),
                "lines": lines,
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "trace_flags": int(ctx.trace_flags),
                "sdk_version": SDK_VERSION,
                # Resource.create adds a random one per process; Loki's list makes it a label.
                "instance_id": resource.attributes["service.instance.id"],
            },
            f,
        )
    failed = [r for r in RESULTS if getattr(r, "name", r) != "SUCCESS"]
    if failed or len(RESULTS) != 3:
        print(f"exports: {RESULTS}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
