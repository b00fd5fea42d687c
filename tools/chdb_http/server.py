#!/usr/bin/env python3
"""A small ClickHouse-HTTP-compatible server over chDB, for development and tests.

What this is
------------
The SQL engine behind this server is the real ClickHouse engine: chDB
(PyPI ``chdb-core``), which is ClickHouse compiled as an in-process library.
Parsing, planning, storage (MergeTree and friends), input and output formats,
query parameters, settings, deduplication and error messages all come from
ClickHouse itself. Only the HTTP framing is ours: reading the request, picking
the query and the data out of it, (de)compressing bodies, and writing the
response and its headers.

It is meant for dev and tests only, and listens on loopback only (it refuses
to bind anything else). There is NO authentication: HTTP Basic auth, the
``X-ClickHouse-User``/``X-ClickHouse-Key`` headers and the ``user``/``password``
URL parameters are accepted and ignored. Do not expose it.

What it speaks (the subset of ClickHouse's HTTP interface that the Rust
``clickhouse`` crate 0.15 and curl-style tests use):

* ``GET /``, ``GET /ping`` (and ``HEAD``) answer ``Ok.\\n``.
* The query is in the POST body, or in ``?query=`` (GET or POST), or in a
  ``query`` field of a multipart/form-data body (the clickhouse crate 0.15.3
  sends queries with ``param_*`` that way). When ``?query=`` is given, the
  body is appended to it, as ClickHouse does; for an ``INSERT ... FORMAT X``
  the body is the data. Chunked request bodies work.
* URL (or form) parameters: ``database`` (or header ``X-ClickHouse-Database``),
  ``default_format`` (or header ``X-ClickHouse-Format``; ClickHouse's default
  is TabSeparated), ``param_<name>`` (bound natively by the engine),
  ``query_id`` (echoed), ``compress``/``decompress``. Every other parameter is
  a ClickHouse setting and is applied to the query's session with ``SET``,
  exactly like ClickHouse treats it (an unknown one is an UNKNOWN_SETTING
  error). Transport-only parameters that ClickHouse itself does not treat as
  settings are ignored: see ``IGNORED_PARAMS``.
* ``GET`` queries run with ``readonly=2``, as in ClickHouse.
* Inserts stream the body into ClickHouse's own input format parser
  (``Connection.send_insert``), so every input format works (RowBinary,
  RowBinaryWithNamesAndTypes, JSONEachRow, TabSeparated, CSV, Native, ...) and
  columns that are not listed get their DEFAULT expressions.
* Settings are the engine's: e.g. ``insert_deduplication_token`` really
  deduplicates, with ClickHouse's own rule that a non-replicated MergeTree
  does so only when the table has ``non_replicated_deduplication_window > 0``
  (tested); ``async_insert``/``wait_for_async_insert`` work too.
* Compression, both ways, as ClickHouse does it:
  - ``decompress=1``: the body is ClickHouse's native compressed-block framing
    (CityHash128 checksum, method byte, sizes, LZ4 or uncompressed block); the
    clickhouse crate sends inserts so with ``Compression::Lz4``.
    ``compress=1``: the response is sent in that framing.
  - HTTP ``Content-Encoding`` of the request body: lz4 (LZ4 frame), gzip,
    deflate. ``Accept-Encoding``: the response is compressed with lz4, gzip or
    deflate when ``enable_http_compression`` is on (ClickHouse's default since
    25.10); the clickhouse crate 0.15.3 asks for ``lz4`` this way.
* Errors look like ClickHouse's: an HTTP status chosen as ClickHouse chooses
  it (400/404/500/...), the body ``Code: N. DB::Exception: <message>. (NAME)
  (version V)`` and the header ``X-ClickHouse-Exception-Code: N``.
* Data persists in the data directory across restarts. SIGTERM/SIGINT stop
  the server gracefully (the query under way finishes first).

Known differences from a real server (all in the framing, none in the engine):

* ``session_id`` is accepted but there are no HTTP sessions: every request
  gets a fresh engine session, so ``SET``, ``USE`` and temporary tables do not
  carry over to the next request.
* Queries run one at a time (one engine, one lock); results are buffered in
  memory and sent whole (no progress headers, no mid-stream exceptions).
* Compression methods: zstd, br, xz, bz2 and snappy (HTTP) and ZSTD native
  blocks are not implemented (refused with an error for requests; for
  responses another accepted method, or none, is used).
* Multipart file parts (external tables) are not supported.
* Query text must be UTF-8 (the data of an ``INSERT ... FORMAT`` may be any
  bytes); ``param_*`` values are not supported on ``INSERT ... FORMAT``.
* Roles, quotas and users do not exist in chDB; ``role`` is ignored.

Usage: ``server.py --host 127.0.0.1 --port 8123 --data .local/clickhouse``.
``--port 0`` picks a free port; the first line on stdout is always
``listening on http://HOST:PORT``.
"""

import argparse
import gzip
import ipaddress
import json
import os
import re
import signal
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import chdb
import lz4.block
import lz4.frame
from clickhouse_cityhash.cityhash import CityHash128

# URL parameters that ClickHouse's HTTP handler consumes itself instead of
# treating them as settings (HTTPHandler's reserved_param_names, plus "role"),
# and which mean nothing here or are handled elsewhere:
# - compress/decompress: handled (native block framing).
# - query, database, default_format, param_*: handled.
# - query_id: echoed in X-ClickHouse-Query-Id (chDB takes no query id).
# - user, password, quota_key: accepted, NOT checked (no auth on this dev server).
# - buffer_size, wait_end_of_query: transport only; we always buffer the whole
#   result before answering, i.e. we always behave as wait_end_of_query=1.
# - session_id, session_timeout, session_check, close_session: no HTTP sessions.
# - stacktrace, client_protocol_version, role: meaningless for chDB.
IGNORED_PARAMS = {
    "compress", "decompress", "user", "password", "quota_key", "query_id",
    "stacktrace", "buffer_size", "wait_end_of_query", "session_id",
    "session_timeout", "session_check", "client_protocol_version",
    "close_session", "role",
}
HANDLED_PARAMS = {"query", "database", "default_format"}

# How ClickHouse maps exception names to HTTP statuses
# (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp); everything else is 500.
HTTP_STATUS_BY_NAME = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE "
        "ACCESS_DENIED".split(), 403),
    **dict.fromkeys(
        "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT "
        "CANNOT_PARSE_ESCAPE_SEQUENCE CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE "
        "CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING "
        "CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 CANNOT_PARSE_INPUT_ASSERTION_FAILED "
        "CANNOT_PARSE_UUID DUPLICATE_COLUMN ILLEGAL_COLUMN UNKNOWN_ELEMENT_IN_AST "
        "UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST "
        "UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH "
        "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE".split(), 400),
    **dict.fromkeys(
        "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE "
        "UNKNOWN_DATABASE UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING "
        "UNKNOWN_AGGREGATE_FUNCTION UNKNOWN_FORMAT UNKNOWN_DATABASE_ENGINE "
        "UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE".split(), 404),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

# Native compressed-block framing (ClickHouse's CompressedReadBuffer/WriteBuffer):
# [16 bytes CityHash128 v1.0.2 of the rest] [1 byte method]
# [u32 LE size of header + payload] [u32 LE uncompressed size] [payload]
METHOD_NONE, METHOD_LZ4 = 0x02, 0x82  # (0x90 = ZSTD: not supported here)
BLOCK_HEADER = struct.Struct("<BII")
MAX_BLOCK = 1 << 20  # ClickHouse compresses its output in 1 MiB blocks.


class ClickHouseError(Exception):
    """An error to report the way ClickHouse does: code, NAME and message."""

    def __init__(self, code, name, message):
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


# --------------------------------------------------------------------------
# Compressed-block framing
# --------------------------------------------------------------------------

def _checksum(data):
    # ClickHouse stores the two 64-bit halves of CityHash128 (v1.0.2) as
    # (low, high) little-endian words; clickhouse_cityhash returns them packed
    # into one int with the first word in the high bits.
    h = CityHash128(data)
    return struct.pack("<QQ", h >> 64, h & 0xFFFFFFFFFFFFFFFF)


def compress_blocks(data):
    """Frame `data` as LZ4 compressed blocks of at most 1 MiB each."""
    out = bytearray()
    for i in range(0, len(data), MAX_BLOCK):
        chunk = data[i:i + MAX_BLOCK]
        payload = lz4.block.compress(chunk, store_size=False)
        block = BLOCK_HEADER.pack(METHOD_LZ4, BLOCK_HEADER.size + len(payload), len(chunk)) + payload
        out += _checksum(block) + block
    return bytes(out)


def decompress_blocks(data):
    """Decode a body sent with decompress=1 (as the clickhouse crate's LZ4 mode does)."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        if len(data) - pos < 16 + BLOCK_HEADER.size:
            raise ClickHouseError(271, "CANNOT_DECOMPRESS", "Cannot decompress: truncated block header")
        method, size, raw_size = BLOCK_HEADER.unpack_from(data, pos + 16)
        block = data[pos + 16:pos + 16 + size]
        if size < BLOCK_HEADER.size or len(block) != size:
            raise ClickHouseError(271, "CANNOT_DECOMPRESS", "Cannot decompress: truncated block")
        if _checksum(block) != data[pos:pos + 16]:
            raise ClickHouseError(40, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data")
        payload = block[BLOCK_HEADER.size:]
        if method == METHOD_LZ4:
            try:
                chunk = lz4.block.decompress(payload, uncompressed_size=raw_size)
            except lz4.block.LZ4BlockError as e:
                raise ClickHouseError(271, "CANNOT_DECOMPRESS", f"Cannot decompress LZ4 block: {e}")
        elif method == METHOD_NONE:
            chunk = payload
        else:
            raise ClickHouseError(89, "UNKNOWN_COMPRESSION_METHOD",
                                  f"Unknown compression method {method:#04x} (this dev server does LZ4 and NONE only)")
        if len(chunk) != raw_size:
            raise ClickHouseError(271, "CANNOT_DECOMPRESS", "Cannot decompress: size mismatch")
        out += chunk
        pos += 16 + size
    return bytes(out)


# HTTP-level compression (Content-Encoding / Accept-Encoding). For responses,
# ClickHouse prefers zstd, br, lz4, snappy, gzip, deflate, ...; we offer lz4 (LZ4 frame
# format, what the clickhouse crate 0.15.3 asks for), gzip and deflate (zlib).
HTTP_ENCODERS = {
    "lz4": lz4.frame.compress,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}
HTTP_DECODERS = {
    "lz4": lz4.frame.decompress,
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
}


def parse_multipart(body, content_type):
    """The fields of a multipart/form-data body, as [(name, value)].

    ClickHouse reads plain form fields like URL parameters; parts with a
    filename are external tables, which this dev server does not support."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ClickHouseError(36, "BAD_ARGUMENTS", "multipart/form-data without a boundary")
    delimiter = b"--" + m.group(1).encode()
    fields = []
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):  # the closing delimiter
            break
        head, _, value = part.partition(b"\r\n\r\n")
        if value.endswith(b"\r\n"):
            value = value[:-2]
        disposition = re.search(rb"content-disposition:([^\r\n]*)", head, re.IGNORECASE)
        name = disposition and re.search(rb'\bname="([^"]*)"', disposition.group(1))
        if not name:
            raise ClickHouseError(36, "BAD_ARGUMENTS", "multipart/form-data part without a name")
        if re.search(rb"\bfilename=", disposition.group(1)):
            raise ClickHouseError(48, "NOT_IMPLEMENTED",
                                  "External data (multipart file parts) is not supported by this dev server")
        fields.append((name.group(1).decode(), value.decode("utf-8")))
    return fields


# --------------------------------------------------------------------------
# A tiny SQL scanner: just enough to find the statement kind, a FORMAT clause
# and a second statement, skipping strings, quoted names and comments. The
# engine parses the SQL; this only decides where the query ends and data begins.
# --------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _tokens(sql):
    """Yield (kind, text, start, end, depth) for tokens outside strings and comments.

    `sql` is a str in which every character stands for one byte (latin-1), so
    positions are byte offsets into the request.
    """
    i, n, depth = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in " \t\n\r\f\v":
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                elif sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote
                        j += 2
                    else:
                        break
                else:
                    j += 1
            yield ("quoted", sql[i:j + 1], i, min(j + 1, n), depth)
            i = j + 1
        elif _WORD.match(sql, i):
            m = _WORD.match(sql, i)
            yield ("word", m.group(0), i, m.end(), depth)
            i = m.end()
        else:
            if c in "([{":
                depth += 1
            yield ("punct", c, i, i + 1, depth)
            if c in ")]}":
                depth -= 1
            i += 1


class Statement:
    """What the scanner learned about one request's SQL."""

    # Words after which `FORMAT` is a name (a table or column called format),
    # not the FORMAT clause.
    NOT_BEFORE_FORMAT = {"AS", "INTO", "TABLE", "FUNCTION", "."}

    def __init__(self, sql):
        self.kind = None           # first keyword, upper case (SELECT, INSERT, ...); None if empty
        self.format = None         # (name, start of FORMAT keyword, end of name)
        self.extra_statement = False
        toks = _tokens(sql)
        seen = []  # top-level tokens of the first statement
        for tok in toks:
            kind, text, start, end, depth = tok
            if self.kind is None:
                self.kind = text.upper() if kind == "word" else ""
            if kind == "punct" and text == ";" and depth == 0:
                # Anything but more ';' after a ';' is a second statement.
                self.extra_statement = any(rest[1] != ";" for rest in toks)
                break
            if depth == 0 and (kind != "punct" or text == "."):
                seen.append(tok)
            if self.kind == "INSERT":
                if kind == "word" and depth == 0 and text.upper() in ("VALUES", "SELECT", "WITH"):
                    return  # VALUES data or a SELECT: the engine takes the text whole
                if self._format_at(seen, len(seen) - 2):
                    self.format = self._format_tuple(seen, len(seen) - 2)
                    return  # what follows is data, not SQL
        # Other statements: the output FORMAT clause comes last (maybe before SETTINGS).
        for i in range(len(seen) - 2, -1, -1):
            after = seen[i + 2][1].upper() if i + 2 < len(seen) else None
            if self._format_at(seen, i) and after in (None, "SETTINGS"):
                self.format = self._format_tuple(seen, i)
                break

    def _format_at(self, seen, i):
        return (i >= 0 and i + 1 < len(seen) and seen[i][0] == "word" and seen[i][1].upper() == "FORMAT"
                and seen[i + 1][0] in ("word", "quoted")
                and (i == 0 or seen[i - 1][1].upper() not in self.NOT_BEFORE_FORMAT))

    @staticmethod
    def _format_tuple(seen, i):
        name = seen[i + 1][1]
        return (name.strip("`\"") if seen[i + 1][0] == "quoted" else name, seen[i][2], seen[i + 1][3])


def skip_to_inline_data(buf, pos):
    """Where inline INSERT data starts after `FORMAT Name` (ClickHouse's rule:
    skip spaces and tabs, then at most one line break)."""
    while pos < len(buf) and buf[pos:pos + 1] in (b" ", b"\t", b"\f"):
        pos += 1
    if buf[pos:pos + 1] == b"\r":
        pos += 1
    if buf[pos:pos + 1] == b"\n":
        pos += 1
    return pos


def quote_ident(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def content_type_for(fmt):
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f.startswith(("rowbinary", "native", "parquet", "arrow", "orc", "avro", "protobuf", "msgpack")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------

_CODE_RE = re.compile(r"Code: (\d+)\. DB::Exception: ")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")
_TAIL_RE = re.compile(r"(?:[.\s]*\((?:[A-Z][A-Z0-9_]+|version [^()]*(?:\([^()]*\))?)\))+[.\s]*$")


def error_from_engine(text):
    """Turn a chDB exception text into a ClickHouseError.

    chDB raises e.g. "Code: 60. DB::Exception: Unknown table ... (UNKNOWN_TABLE)",
    sometimes wrapped ("Streaming insert finish failed: Code: ...") or nested
    ("Code: 73. DB::Exception: Code: 73. DB::Exception: ..."). We keep the code,
    the innermost message and the NAME, and rebuild it as ClickHouse prints it.
    """
    m = _CODE_RE.search(text)
    if not m:
        return ClickHouseError(1001, "STD_EXCEPTION", text.strip() or "unknown error")
    code = int(m.group(1))
    message = text[m.end():]
    while _CODE_RE.match(message):  # nested copies of the same exception
        message = message[_CODE_RE.match(message).end():]
    names = _NAME_RE.findall(message)
    name = names[-1] if names else "UNKNOWN_EXCEPTION"
    message = _TAIL_RE.sub("", message).strip()
    return ClickHouseError(code, name, message)


class Engine:
    """One chDB engine for the whole process; requests take turns with a lock.

    A master connection is held open for the server's lifetime (the engine
    shuts down when its last connection closes). Each request gets its own
    short-lived connection, i.e. its own ClickHouse session, so the database,
    settings and readonly mode of one request never leak into the next.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        os.makedirs(self.path, exist_ok=True)
        self.lock = threading.Lock()
        self.closed = False
        self.master = chdb.connect(self.path)
        self.version = self.master.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        # ClickHouse's own default (1 since 25.10), for response compression.
        self.http_compression_default = self.master.query(
            "SELECT getSetting('enable_http_compression')", "TabSeparated").bytes().decode().strip()

    def close(self):
        with self.lock:  # waits for the query under way
            if not self.closed:
                self.closed = True
                self.master.close()

    def run(self, sql, data, fmt, database, settings, params, readonly):
        """Execute one statement. Returns (output bytes, summary dict).

        sql: bytes of the statement (for an INSERT ... FORMAT: without the FORMAT
        clause); data: bytes for send_insert, or None to run `sql` as a query.
        """
        try:
            text = sql.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ClickHouseError(36, "BAD_ARGUMENTS",
                                  f"Query is not valid UTF-8 (this dev server needs UTF-8 query text): {e}")
        with self.lock:
            if self.closed:
                raise ClickHouseError(210, "NETWORK_ERROR", "Server is shutting down")
            conn = chdb.connect(self.path)
            try:
                return self._run(conn, text, data, fmt, database, settings, params, readonly)
            except ClickHouseError:
                raise
            except Exception as e:  # ChdbError / RuntimeError carry ClickHouse's text
                raise error_from_engine(str(e)) from None
            finally:
                conn.close()

    def _run(self, conn, text, data, fmt, database, settings, params, readonly):
        if database:
            conn.query(f"USE {quote_ident(database)}", "TabSeparated")
        for name, value in settings:
            if not _WORD.fullmatch(name):
                raise ClickHouseError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
            conn.query(f"SET {name} = {quote_literal(value)}", "TabSeparated")
        if readonly:
            conn.query("SET readonly = 2", "TabSeparated")
        started = time.monotonic_ns()
        if data is not None:
            with conn.send_insert(text, fmt) as ins:
                for i in range(0, len(data), MAX_BLOCK):
                    ins.append(data[i:i + MAX_BLOCK])
                res = ins.finish()
            summary = {"read_rows": res.rows_written, "read_bytes": len(data),
                       "written_rows": res.rows_written, "written_bytes": res.bytes_written,
                       "total_rows_to_read": 0, "result_rows": res.rows_written,
                       "result_bytes": res.bytes_written}
            out = b""
        else:
            res = conn.query(text, fmt, params=params)
            out = res.bytes()
            summary = {"read_rows": res.rows_read(), "read_bytes": res.bytes_read(),
                       "written_rows": res.rows_written(), "written_bytes": res.bytes_written(),
                       "total_rows_to_read": res.rows_read(), "result_bytes": len(out)}
        summary["elapsed_ns"] = time.monotonic_ns() - started
        return out, {k: str(v) for k, v in summary.items()}


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as hyper's pool expects
    server_version = "chdb-http"
    engine: Engine = None  # set in main()

    # --- plumbing ---

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline(65537)  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        # Goes to stderr, i.e. the log file. The URL may carry a password.
        line = re.sub(r"(password=)[^&\s]*", r"\1***", fmt % args)
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {line}\n")

    # --- methods ---

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except (ValueError, ConnectionError) as e:
            self.close_connection = True
            self._send(400, f"Bad request body: {e}\n".encode())
            return
        params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        names = {k for k, _ in params}
        if url.path in ("/ping", "/replicas_status") or (url.path == "/" and self.command in ("GET", "HEAD") and "query" not in names):
            self._send(200, b"Ok.\n", [("Content-Type", "text/html; charset=UTF-8")])
            return
        if url.path != "/":
            self._send(404, f"There is no handle {url.path}\n".encode(), [("Content-Type", "text/plain; charset=UTF-8")])
            return
        query_id = dict(params).get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        headers = [("X-ClickHouse-Query-Id", query_id), ("X-ClickHouse-Server-Display-Name", "chdb-http")]
        try:
            params, body = self._decode_request(params, body)
            status, (out, extra) = 200, self._query(dict(params), params, body)
            headers += extra
        except Exception as e:  # noqa: BLE001 - every failure is answered ClickHouse-style
            if not isinstance(e, ClickHouseError):
                self.log_error("unexpected error: %r", e)
                e = ClickHouseError(1001, "STD_EXCEPTION", f"{type(e).__name__}: {e}")
            status = HTTP_STATUS_BY_NAME.get(e.name, 500)
            out = (f"Code: {e.code}. DB::Exception: {e.message}. ({e.name}) "
                   f"(version {self.engine.version} (chdb-core))\n").encode()
            headers += [("Content-Type", "text/plain; charset=UTF-8"),
                        ("X-ClickHouse-Exception-Code", str(e.code))]
        # Errors too go through both compressions, as ClickHouse does once its
        # output stream is set up: first native blocks (compress=1), then HTTP
        # Content-Encoding (Accept-Encoding + enable_http_compression).
        args = dict(params)
        if args.get("compress", "0") not in ("0", "", "false"):
            out = compress_blocks(out)
        encoding = self._response_encoding(args)
        if encoding:
            out = HTTP_ENCODERS[encoding](out)
            headers.append(("Content-Encoding", encoding))
        self._send(status, out, headers)

    def _decode_request(self, params, body):
        """Undo the request's Content-Encoding, and take the query and its
        parameters out of a multipart/form-data body (the clickhouse crate
        0.15.3 sends `query` and `param_*` that way). Returns (params, body)."""
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            if encoding not in HTTP_DECODERS:
                raise ClickHouseError(89, "UNKNOWN_COMPRESSION_METHOD",
                                      f"Content-Encoding '{encoding}' is not supported by this dev server "
                                      f"(it does {', '.join(HTTP_DECODERS)})")
            try:
                body = HTTP_DECODERS[encoding](body)
            except Exception as e:  # noqa: BLE001 - any decoder error
                raise ClickHouseError(271, "CANNOT_DECOMPRESS", f"Cannot decode {encoding} request body: {e}")
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            # Form fields are parameters like the URL's (query, param_*, settings).
            return params + parse_multipart(body, content_type), b""
        return params, body

    def _response_encoding(self, args):
        """HTTP response compression: as in ClickHouse, only when the client
        asks (Accept-Encoding) and enable_http_compression is on (the default
        since 25.10). Preference order as ClickHouse's, among what we have."""
        enabled = args.get("enable_http_compression", self.engine.http_compression_default)
        if enabled.lower() in ("0", "false", ""):
            return None
        accepted = self.headers.get("Accept-Encoding", "").lower()
        for method in HTTP_ENCODERS:
            if method in accepted:
                return method
        return None

    def _query(self, args, params, body):
        """Run the request's statement. Returns (output, extra headers)."""
        if args.get("decompress", "0") not in ("0", "", "false"):
            body = decompress_blocks(body)

        # The query: ?query= followed by the body, as ClickHouse concatenates
        # them. If ?query= is a whole `INSERT ... FORMAT X`, the body is its data
        # (scan the query alone: binary data could look like more of the name).
        head = args["query"].encode("utf-8") if "query" in args else b""
        st = Statement(head.decode("latin-1")) if head else None
        if st and st.kind == "INSERT" and st.format:
            sql, data = head, body
        else:
            sql, data = head + body, None
            st = Statement(sql.decode("latin-1"))
        if st.kind is None:
            raise ClickHouseError(62, "SYNTAX_ERROR", "Empty query")
        if st.extra_statement:
            raise ClickHouseError(62, "SYNTAX_ERROR", "Multi-statements are not allowed")

        database = self.headers.get("X-ClickHouse-Database") or args.get("database")
        default_format = self.headers.get("X-ClickHouse-Format") or args.get("default_format") or "TabSeparated"
        query_params = {k[len("param_"):]: v for k, v in params if k.startswith("param_")}
        settings = [(k, v) for k, v in params
                    if k and k not in IGNORED_PARAMS and k not in HANDLED_PARAMS and not k.startswith("param_")]
        readonly = self.command in ("GET", "HEAD") and "readonly" not in args

        if st.kind == "INSERT" and st.format:
            # INSERT ... FORMAT X: stream the data into the engine's input format.
            fmt, fmt_start, fmt_end = st.format
            if data is None:  # data inline in the body, after the FORMAT clause
                data = sql[skip_to_inline_data(sql, fmt_end):]
            out, summary = self.engine.run(sql[:fmt_start], data, fmt, database, settings,
                                           query_params, readonly)
            extra = []
        else:
            out_fmt = st.format[0] if st.format and st.kind != "INSERT" else default_format
            out, summary = self.engine.run(sql, None, default_format, database, settings,
                                           query_params, readonly)
            extra = [("X-ClickHouse-Format", out_fmt), ("Content-Type", content_type_for(out_fmt))]
        extra.append(("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":"))))
        return out, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--data", default=".local/clickhouse", help="data directory (created if missing)")
    a = ap.parse_args()

    host_ip = "127.0.0.1" if a.host == "localhost" else a.host
    try:
        loopback = ipaddress.IPv4Address(host_ip).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"refusing to listen on {a.host}: this dev server has no auth and is for "
                 "loopback only (an IPv4 127.x.y.z address or localhost)")

    try:
        server = ThreadingHTTPServer((host_ip, a.port), Handler)
    except OSError as e:
        sys.exit(f"cannot listen on {host_ip}:{a.port}: {e}")
    server.daemon_threads = True
    Handler.engine = Engine(a.data)  # connections wait in the backlog meanwhile

    def stop(signum, _frame):
        # shutdown() waits for serve_forever() to return, so not from its thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port} (ClickHouse {Handler.engine.version} via chDB, "
          f"data in {Handler.engine.path})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        Handler.engine.close()  # after the query under way, if any
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
