"""Tests for the dev ClickHouse HTTP server (server.py) over chDB.

Run from the repo root:
    .local/venv/bin/python -m unittest discover -s tools/chdb_http -v

Each test class starts the server as a subprocess on a free port (--port 0)
with a temporary data directory, and talks plain HTTP to it.
"""

import base64
import gzip
import http.client
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import zlib

import lz4.block
import lz4.frame
from clickhouse_cityhash.cityhash import CityHash128

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import server  # noqa: E402  (for the SQL scanner's unit tests)


# --- RowBinary helpers (written here independently of the server) ---

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_str(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def read_varint(buf, pos):
    shift = n = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def read_str(buf, pos):
    n, pos = read_varint(buf, pos)
    return buf[pos:pos + n], pos + n


def block(payload_raw, method=0x82):
    """One ClickHouse native compressed block, built by hand."""
    payload = lz4.block.compress(payload_raw, store_size=False) if method == 0x82 else payload_raw
    body = struct.pack("<BII", method, 9 + len(payload), len(payload_raw)) + payload
    h = CityHash128(body)
    return struct.pack("<QQ", h >> 64, h & (2**64 - 1)) + body


def unblock(data):
    """Decode a compress=1 response, checking every checksum."""
    out, pos = b"", 0
    while pos < len(data):
        method, size, raw = struct.unpack_from("<BII", data, pos + 16)
        body = data[pos + 16:pos + 16 + size]
        h = CityHash128(body)
        assert data[pos:pos + 16] == struct.pack("<QQ", h >> 64, h & (2**64 - 1)), "bad checksum"
        assert method == 0x82
        out += lz4.block.decompress(body[9:], uncompressed_size=raw)
        pos += 16 + size
    return out


class ServerProcess:
    """The server as a subprocess on a free loopback port."""

    def __init__(self, data_dir):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "server.py"), "--port", "0", "--data", data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))

    def stop(self):
        """SIGTERM; returns (exit code, rest of stdout)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, out

    def request(self, method, path="/", body=None, headers=None, params=None, chunked=False):
        if params:
            path += "?" + urllib.parse.urlencode(params)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            if chunked:
                conn.request(method, path, body=iter([body[i:i + 7] for i in range(0, len(body), 7)]),
                             headers=headers or {}, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def ok(self, sql, params=None, **kw):
        """POST a query that must succeed; returns the body."""
        body = sql.encode() if isinstance(sql, str) else sql
        status, out, hdrs = self.request("POST", body=body, params=params, **kw)
        if status != 200:
            raise AssertionError(f"{status}: {out.decode(errors='replace')}")
        return out


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.srv = ServerProcess(os.path.join(cls.tmp.name, "data"))

    @classmethod
    def tearDownClass(cls):
        code, out = cls.srv.stop()
        cls.tmp.cleanup()
        assert code == 0, f"server exited with {code}"
        assert "stopped" in out

    def assertError(self, resp, status, code, name):
        st, body, hdrs = resp
        text = body.decode()
        self.assertEqual(st, status, text)
        self.assertEqual(hdrs.get("x-clickhouse-exception-code"), str(code))
        self.assertRegex(text, rf"^Code: {code}\. DB::Exception: .+\. \({name}\) \(version 26\.9[^\n]*\)\n$")

    # --- basics ---

    def test_ping(self):
        for path in ("/", "/ping"):
            self.assertEqual(self.srv.request("GET", path)[:2], (200, b"Ok.\n"))
        st, body, hdrs = self.srv.request("HEAD", "/ping")
        self.assertEqual((st, body, hdrs["content-length"]), (200, b"", "4"))
        self.assertEqual(self.srv.request("GET", "/nope")[0], 404)

    def test_version(self):
        v = self.srv.ok("SELECT version()").decode().strip()
        self.assertTrue(v.startswith("26.9."), v)
        major, minor = map(int, v.split(".")[:2])
        self.assertGreaterEqual((major, minor), (23, 8))

    def test_query_in_url_and_body(self):
        self.assertEqual(self.srv.request("GET", params={"query": "SELECT 1+1"})[1], b"2\n")
        self.assertEqual(self.srv.request("POST", params={"query": "SELECT 2+1"})[1], b"3\n")
        self.assertEqual(self.srv.ok("SELECT 3+1"), b"4\n")
        # ?query= followed by the body, as ClickHouse concatenates them.
        self.assertEqual(self.srv.ok(" 5, 6", params={"query": "SELECT"}), b"5\t6\n")
        # Chunked request body carrying the query.
        self.assertEqual(self.srv.ok("SELECT 'chunked'", chunked=True), b"chunked\n")

    def test_formats_and_headers(self):
        st, body, hdrs = self.srv.request("POST", body=b"SELECT 1 AS a, 'x' AS b")
        self.assertEqual(body, b"1\tx\n")  # TabSeparated by default
        self.assertEqual(hdrs["x-clickhouse-format"], "TabSeparated")
        summary = json.loads(hdrs["x-clickhouse-summary"])
        self.assertEqual(summary["read_rows"], "1")
        self.assertIn("x-clickhouse-query-id", hdrs)
        st, body, hdrs = self.srv.request("POST", body=b"SELECT 1 AS a, 'x' AS b",
                                          params={"default_format": "JSONEachRow"})
        self.assertEqual(json.loads(body), {"a": 1, "b": "x"})
        self.assertEqual(hdrs["x-clickhouse-format"], "JSONEachRow")
        # A FORMAT clause wins over default_format.
        st, body, hdrs = self.srv.request("POST", body=b"SELECT 1 AS a FORMAT CSVWithNames",
                                          params={"default_format": "JSONEachRow"})
        self.assertEqual(body, b'"a"\n1\n')
        self.assertEqual(hdrs["x-clickhouse-format"], "CSVWithNames")
        # RowBinaryWithNamesAndTypes, as the clickhouse crate asks for.
        out = self.srv.ok("SELECT toUInt64(7) AS n, 'hi' AS s",
                          params={"default_format": "RowBinaryWithNamesAndTypes"})
        self.assertEqual(out, b"\x02\x01n\x01s\x06UInt64\x06String" + struct.pack("<Q", 7) + b"\x02hi")
        # query_id is echoed.
        hdrs = self.srv.request("POST", body=b"SELECT 1", params={"query_id": "q-42"})[2]
        self.assertEqual(hdrs["x-clickhouse-query-id"], "q-42")

    def test_database_param(self):
        self.srv.ok("CREATE DATABASE IF NOT EXISTS other")
        self.srv.ok("CREATE TABLE other.only_here (a UInt8) ENGINE = Memory")
        self.srv.ok("INSERT INTO other.only_here VALUES (5)")
        self.assertEqual(self.srv.ok("SELECT a FROM only_here", params={"database": "other"}), b"5\n")
        self.assertEqual(self.srv.ok("SELECT currentDatabase()", headers={"X-ClickHouse-Database": "other"}),
                         b"other\n")
        # The database does not stick to later requests.
        self.assertEqual(self.srv.ok("SELECT currentDatabase()"), b"default\n")
        self.assertError(self.srv.request("POST", body=b"SELECT 1", params={"database": "nope"}),
                         404, 81, "UNKNOWN_DATABASE")

    def test_query_parameters(self):
        out = self.srv.ok("SELECT {s:String}, {n:UInt64} + 1, {arr:Array(String)}",
                          params={"param_s": "a\\tb", "param_n": "41", "param_arr": "['x','y']"})
        self.assertEqual(out, b"a\\tb\t42\t['x','y']\n")
        self.assertError(self.srv.request("POST", body=b"SELECT {n:UInt8}", params={"param_n": "300x"}),
                         500, 457, "BAD_QUERY_PARAMETER")

    def test_settings_from_url(self):
        self.assertEqual(self.srv.ok("SELECT getSetting('max_execution_time')",
                                     params={"max_execution_time": "7"}), b"7\n")
        # Settings apply to that request only.
        self.assertEqual(self.srv.ok("SELECT getSetting('max_execution_time')"), b"0\n")
        self.assertEqual(self.srv.ok("SELECT getSetting('max_result_rows')",
                                     params={"max_result_rows": "3", "wait_end_of_query": "1",
                                             "session_id": "s1", "buffer_size": "10"}), b"3\n")
        self.assertError(self.srv.request("POST", body=b"SELECT 1", params={"no_such_setting": "1"}),
                         404, 115, "UNKNOWN_SETTING")
        # A setting the engine enforces.
        self.assertError(self.srv.request("POST", body=b"SELECT number FROM numbers(10)",
                                          params={"max_result_rows": "2", "result_overflow_mode": "throw"}),
                         500, 396, "TOO_MANY_ROWS_OR_BYTES")

    def test_get_is_readonly(self):
        self.srv.ok("CREATE TABLE ro (a UInt8) ENGINE = Memory")
        self.assertError(self.srv.request("GET", params={"query": "INSERT INTO ro VALUES (1)"}),
                         500, 164, "READONLY")
        self.srv.ok("INSERT INTO ro VALUES (1)")  # POST may write
        self.assertEqual(self.srv.request("GET", params={"query": "SELECT count() FROM ro"})[1], b"1\n")

    def test_errors(self):
        self.assertError(self.srv.request("POST", body=b"SELECT * FROM no_such_table"), 404, 60, "UNKNOWN_TABLE")
        self.assertError(self.srv.request("POST", body=b"SELEC 1"), 400, 62, "SYNTAX_ERROR")
        self.assertError(self.srv.request("POST", body=b"SELECT 1; SELECT 2"), 400, 62, "SYNTAX_ERROR")
        self.assertError(self.srv.request("POST", body=b""), 400, 62, "SYNTAX_ERROR")
        self.assertError(self.srv.request("POST", body=b"SELECT throwIf(1, 'boom')"), 500, 395,
                         "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO")
        st, body, _ = self.srv.request("POST", body=b"SELECT 1", params={"default_format": "NoSuchFormat"})
        self.assertEqual(st, 404)
        # No nested copies of the message.
        self.assertEqual(body.decode().count("Code: 73."), 1, body)
        # A trailing ';' and ';' inside strings are fine.
        self.assertEqual(self.srv.ok("SELECT 'a;b';"), b"a;b\n")

    def test_auth_accepted_not_checked(self):
        basic = "Basic " + base64.b64encode(b"someone:secret").decode()
        for headers, params in (({"Authorization": basic}, None),
                                ({"X-ClickHouse-User": "u", "X-ClickHouse-Key": "k"}, None),
                                ({}, {"user": "u", "password": "p"})):
            self.assertEqual(self.srv.ok("SELECT 1", headers=headers, params=params), b"1\n")

    # --- inserts ---

    def test_insert_text_formats_and_defaults(self):
        self.srv.ok("CREATE TABLE txt (a UInt64, s String, d String DEFAULT concat('d', toString(a))) "
                    "ENGINE = MergeTree ORDER BY a")
        q = "INSERT INTO txt (a, s) FORMAT "
        self.srv.ok(b'{"a":1,"s":"json"}\n', params={"query": q + "JSONEachRow"})
        self.srv.ok(b"2\ttsv\n", params={"query": q + "TabSeparated"})
        self.srv.ok(b'3,"csv"\n', params={"query": q + "CSV"})
        # Query and data both in the body, chunked.
        self.srv.ok(b'INSERT INTO txt (a, s) FORMAT JSONEachRow\n{"a":4,"s":"inline"}\n', chunked=True)
        # VALUES in the query, in the URL or in the body.
        self.srv.ok(b"(5, 'values')", params={"query": "INSERT INTO txt (a, s) VALUES"})
        self.srv.ok("INSERT INTO txt (a, s) VALUES (6, 'values2')")
        st, body, hdrs = self.srv.request("POST", body=b'{"a":7,"s":"s"}\n{"a":8,"s":"s"}\n',
                                          params={"query": q + "JSONEachRow"})
        self.assertEqual(json.loads(hdrs["x-clickhouse-summary"])["written_rows"], "2")
        self.assertEqual(self.srv.ok("SELECT a, s, d FROM txt ORDER BY a"),
                         b"1\tjson\td1\n2\ttsv\td2\n3\tcsv\td3\n4\tinline\td4\n5\tvalues\td5\n"
                         b"6\tvalues2\td6\n7\ts\td7\n8\ts\td8\n")
        # Malformed data is the engine's error.
        st, body, _ = self.srv.request("POST", body=b"not a number\tx\n", params={"query": q + "TabSeparated"})
        self.assertEqual(st, 400, body)
        self.assertRegex(body.decode(), r"^Code: \d+\. DB::Exception: ")

    def _types_table(self, name):
        self.srv.ok(f"""CREATE TABLE {name} (
            ts DateTime64(9),
            service LowCardinality(String),
            labels Map(LowCardinality(String), String),
            bytes SimpleAggregateFunction(sum, UInt64),
            n UInt64,
            note String DEFAULT concat('svc=', service)
        ) ENGINE = MergeTree ORDER BY (service, ts)""")

    def _rows(self):
        now = time.time_ns()
        return [(now, "api", [("env", "dev"), ("pod", "p-1")], 10, 1),
                (now + 1, "db", [], 2**63 + 5, 2**64 - 1),
                (now + 2, "api", [("k", "v\tw\n")], 0, 3)]

    @staticmethod
    def _encode(row):
        ts, service, labels, b, n = row
        return (struct.pack("<q", ts) + rb_str(service) + varint(len(labels))
                + b"".join(rb_str(k) + rb_str(v) for k, v in labels)
                + struct.pack("<Q", b) + struct.pack("<Q", n))

    def _check_roundtrip(self, table, rows):
        out = self.srv.ok(f"SELECT ts, service, labels, bytes, n FROM {table} ORDER BY ts",
                          params={"default_format": "RowBinaryWithNamesAndTypes"})
        pos = 0
        ncols, pos = read_varint(out, pos)
        header = []
        for _ in range(2 * ncols):
            s, pos = read_str(out, pos)
            header.append(s.decode())
        self.assertEqual(header, ["ts", "service", "labels", "bytes", "n", "DateTime64(9)",
                                  "LowCardinality(String)", "Map(LowCardinality(String), String)",
                                  "SimpleAggregateFunction(sum, UInt64)", "UInt64"])
        self.assertEqual(out[pos:], b"".join(self._encode(r) for r in sorted(rows)))
        notes = self.srv.ok(f"SELECT note FROM {table} ORDER BY ts").decode().split()
        self.assertEqual(notes, [f"svc={r[1]}" for r in sorted(rows)])

    def test_rowbinary_roundtrip(self):
        self._types_table("rb")
        rows = self._rows()
        data = b"".join(self._encode(r) for r in rows)
        self.srv.ok(data, params={"query": "INSERT INTO rb(`ts`,`service`,`labels`,`bytes`,`n`) FORMAT RowBinary"},
                    chunked=True)
        self._check_roundtrip("rb", rows)

    def test_rowbinary_inline_in_body(self):
        self._types_table("rb_inline")
        rows = self._rows()
        body = (b"INSERT INTO rb_inline (ts, service, labels, bytes, n) FORMAT RowBinary\n"
                + b"".join(self._encode(r) for r in rows))
        self.srv.ok(body)
        self._check_roundtrip("rb_inline", rows)

    def test_rowbinary_with_names_and_types_insert(self):
        # What the clickhouse crate sends when validation is on (its default).
        self._types_table("rbnt")
        rows = self._rows()
        names = ["ts", "service", "labels", "bytes", "n"]
        types = ["DateTime64(9)", "LowCardinality(String)", "Map(LowCardinality(String), String)",
                 "SimpleAggregateFunction(sum, UInt64)", "UInt64"]
        data = varint(5) + b"".join(map(rb_str, names + types)) + b"".join(self._encode(r) for r in rows)
        self.srv.ok(data, params={"query": "INSERT INTO rbnt(`ts`,`service`,`labels`,`bytes`,`n`) "
                                           "FORMAT RowBinaryWithNamesAndTypes"})
        self._check_roundtrip("rbnt", rows)

    def test_binary_data_that_looks_like_sql(self):
        # Data right after the format name must not be taken for more SQL.
        self.srv.ok("CREATE TABLE looks (s String) ENGINE = Memory")
        data = rb_str("abc; SELECT 1 FORMAT JSON") + rb_str("x")
        self.srv.ok(data, params={"query": "INSERT INTO looks FORMAT RowBinary"})
        self.assertEqual(self.srv.ok("SELECT s FROM looks"), b"abc; SELECT 1 FORMAT JSON\nx\n")

    def test_insert_deduplication_token(self):
        # Non-replicated MergeTree deduplicates only with non_replicated_deduplication_window
        # (as in ClickHouse itself).
        self.srv.ok("CREATE TABLE dedup (a UInt64) ENGINE = MergeTree ORDER BY a "
                    "SETTINGS non_replicated_deduplication_window = 100")
        q = {"query": "INSERT INTO dedup FORMAT JSONEachRow"}
        self.srv.ok(b'{"a":1}', params={**q, "insert_deduplication_token": "t1"})
        self.srv.ok(b'{"a":2}', params={**q, "insert_deduplication_token": "t1"})  # same token: dropped
        self.srv.ok(b'{"a":3}', params={**q, "insert_deduplication_token": "t2"})
        self.assertEqual(self.srv.ok("SELECT groupArray(a) FROM (SELECT a FROM dedup ORDER BY a)"), b"[1,3]\n")
        # Without the table setting there is no deduplication.
        self.srv.ok("CREATE TABLE nodedup (a UInt64) ENGINE = MergeTree ORDER BY a")
        for _ in range(2):
            self.srv.ok(b'{"a":1}', params={"query": "INSERT INTO nodedup FORMAT JSONEachRow",
                                            "insert_deduplication_token": "t1"})
        self.assertEqual(self.srv.ok("SELECT count() FROM nodedup"), b"2\n")

    def test_async_insert_settings(self):
        self.srv.ok("CREATE TABLE asy (a UInt64) ENGINE = MergeTree ORDER BY a")
        self.srv.ok(b'{"a":1}\n', params={"query": "INSERT INTO asy FORMAT JSONEachRow",
                                          "async_insert": "1", "wait_for_async_insert": "1"})
        self.assertEqual(self.srv.ok("SELECT count() FROM asy"), b"1\n")

    # --- native compressed-block framing ---

    def test_checksum_matches_clickhouse_rs_vector(self):
        # Reference block from the clickhouse crate's own LZ4 unit test.
        raw = bytes([1, 0, 2, 255, 255, 255, 255, 0, 1, 1, 1, 115, 6, 83, 116, 114, 105, 110, 103, 3, 97, 98, 99])
        expected = bytes([245, 5, 222, 235, 225, 158, 59, 108, 225, 31, 65, 215, 66, 66, 36, 92, 130, 34, 0, 0, 0,
                          23, 0, 0, 0, 240, 8, 1, 0, 2, 255, 255, 255, 255, 0, 1, 1, 1, 115, 6, 83, 116, 114, 105,
                          110, 103, 3, 97, 98, 99])
        self.assertEqual(block(raw), expected)
        self.assertEqual(server.compress_blocks(raw), expected)
        self.assertEqual(server.decompress_blocks(expected), raw)

    def test_decompress_request(self):
        self.srv.ok("CREATE TABLE lz (a UInt64, s String) ENGINE = MergeTree ORDER BY a")
        rows = b"".join(struct.pack("<Q", i) + rb_str(f"row{i}") for i in range(1000))
        # Several blocks, one of them stored uncompressed (method 0x02).
        body = block(rows[:5000]) + block(rows[5000:9000], method=0x02) + block(rows[9000:])
        self.srv.ok(body, params={"query": "INSERT INTO lz FORMAT RowBinary", "decompress": "1"}, chunked=True)
        self.assertEqual(self.srv.ok("SELECT count(), sum(a), max(s) FROM lz"), b"1000\t499500\trow999\n")
        # The query itself may be compressed too.
        self.assertEqual(self.srv.ok(block(b"SELECT 'from a block'"), params={"decompress": "1"}),
                         b"from a block\n")
        bad = bytearray(block(b"SELECT 1"))
        bad[3] ^= 0xFF
        self.assertError(self.srv.request("POST", body=bytes(bad), params={"decompress": "1"}),
                         500, 40, "CHECKSUM_DOESNT_MATCH")

    def test_compress_response(self):
        plain = self.srv.ok("SELECT number, toString(number) FROM numbers(300000)")
        self.assertGreater(len(plain), 1 << 20)  # more than one block
        packed = self.srv.ok("SELECT number, toString(number) FROM numbers(300000)", params={"compress": "1"})
        self.assertEqual(unblock(packed), plain)
        # Errors are framed too, as ClickHouse does once compression is on.
        st, body, hdrs = self.srv.request("POST", body=b"SELECT * FROM nowhere", params={"compress": "1"})
        self.assertEqual((st, hdrs["x-clickhouse-exception-code"]), (404, "60"))
        self.assertTrue(unblock(body).startswith(b"Code: 60. DB::Exception: "))

    # --- multipart/form-data (the clickhouse crate 0.15.3 sends query parameters so) ---

    @staticmethod
    def _multipart(fields, boundary="clickhouse-rs-boundary-abc123"):
        body = b""
        for name, value in fields:
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode()
                     + value.encode() + b"\r\n")
        body += f"--{boundary}--\r\n".encode()
        return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def test_multipart_query_and_params(self):
        body, headers = self._multipart([("query", "SELECT {s:String} AS s, {n:UInt64} * 2 AS n"),
                                         ("param_s", "multi\\tpart\\nline"), ("param_n", "21")])
        st, out, hdrs = self.srv.request("POST", body=body, headers=headers,
                                         params={"default_format": "JSONEachRow"})
        self.assertEqual(st, 200, out)
        self.assertEqual(json.loads(out), {"s": "multi\tpart\nline", "n": 42})
        # Settings may be form fields too, and errors come back as usual.
        body, headers = self._multipart([("query", "SELECT getSetting('max_threads')"), ("max_threads", "3")])
        self.assertEqual(self.srv.request("POST", body=body, headers=headers)[1], b"3\n")
        body, headers = self._multipart([("query", "SELECT {x:UInt8}")])
        self.assertError(self.srv.request("POST", body=body, headers=headers), 500, 456, "UNKNOWN_QUERY_PARAMETER")

    # --- HTTP Content-Encoding / Accept-Encoding ---

    def test_http_response_compression(self):
        sql = b"SELECT number, toString(number) FROM numbers(100000)"
        plain = self.srv.ok(sql)
        for method, decode in (("lz4", lz4.frame.decompress), ("gzip", gzip.decompress),
                               ("deflate", zlib.decompress)):
            st, body, hdrs = self.srv.request("POST", body=sql, headers={"Accept-Encoding": method})
            self.assertEqual((st, hdrs.get("content-encoding")), (200, method))
            self.assertLess(len(body), len(plain))
            self.assertEqual(decode(body), plain)
        # ClickHouse's preference order: lz4 before gzip.
        hdrs = self.srv.request("POST", body=b"SELECT 1", headers={"Accept-Encoding": "gzip, deflate, lz4"})[2]
        self.assertEqual(hdrs["content-encoding"], "lz4")
        # Off with enable_http_compression=0, and nothing we cannot make.
        for headers, params in (({"Accept-Encoding": "lz4"}, {"enable_http_compression": "0"}),
                                ({"Accept-Encoding": "zstd"}, None)):
            st, body, hdrs = self.srv.request("POST", body=b"SELECT 1", headers=headers, params=params)
            self.assertEqual((body, hdrs.get("content-encoding")), (b"1\n", None))
        # Errors are compressed too; the exception code is in the header.
        st, body, hdrs = self.srv.request("POST", body=b"SELECT * FROM nowhere", headers={"Accept-Encoding": "lz4"})
        self.assertEqual((st, hdrs["x-clickhouse-exception-code"]), (404, "60"))
        self.assertTrue(lz4.frame.decompress(body).startswith(b"Code: 60. DB::Exception: "))

    def test_http_request_content_encoding(self):
        self.srv.ok("CREATE TABLE enc (a UInt64) ENGINE = Memory")
        for i, (method, encode) in enumerate((("lz4", lz4.frame.compress), ("gzip", gzip.compress),
                                              ("deflate", zlib.compress))):
            data = "".join(f'{{"a":{i * 100 + j}}}\n' for j in range(100)).encode()
            self.srv.ok(encode(data), params={"query": "INSERT INTO enc FORMAT JSONEachRow"},
                        headers={"Content-Encoding": method})
        self.assertEqual(self.srv.ok("SELECT count(), sum(a) FROM enc"), b"300\t44850\n")
        # Both layers at once: HTTP gzip around native LZ4 blocks, answer compressed both ways.
        st, body, hdrs = self.srv.request(
            "POST", body=gzip.compress(block(b"SELECT count() FROM enc")),
            params={"decompress": "1", "compress": "1"},
            headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
        self.assertEqual(st, 200)
        self.assertEqual(unblock(gzip.decompress(body)), b"300\n")
        self.assertError(self.srv.request("POST", body=b"x", headers={"Content-Encoding": "br"}),
                         500, 89, "UNKNOWN_COMPRESSION_METHOD")

    # --- concurrency ---

    def test_concurrent_requests(self):
        self.srv.ok("CREATE TABLE conc (t UInt8, i UInt32) ENGINE = MergeTree ORDER BY (t, i)")
        errors = []

        def worker(t):
            try:
                for i in range(10):
                    self.srv.ok(f'{{"t":{t},"i":{i}}}'.encode(),
                                params={"query": "INSERT INTO conc FORMAT JSONEachRow"})
                    self.srv.ok(f"SELECT count() FROM conc WHERE t = {t}")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.srv.ok("SELECT count(), uniqExact(t, i) FROM conc"), b"80\t80\n")

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        try:
            for i in range(3):
                conn.request("POST", "/", body=f"SELECT {i}".encode())
                r = conn.getresponse()
                self.assertEqual(r.read(), f"{i}\n".encode())
            conn.request("POST", "/", body=b"SELECT * FROM missing_table")  # errors keep the connection
            self.assertEqual(conn.getresponse().read()[:9], b"Code: 60.")
            conn.request("POST", "/", body=b"SELECT 'still here'")
            self.assertEqual(conn.getresponse().read(), b"still here\n")
        finally:
            conn.close()


class PersistenceTest(unittest.TestCase):
    def test_data_survives_restart_and_sigterm_is_graceful(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data")
            srv = ServerProcess(data)
            srv.ok("CREATE TABLE kept (a UInt64, s LowCardinality(String)) ENGINE = MergeTree ORDER BY a")
            srv.ok(b'{"a":1,"s":"x"}\n{"a":2,"s":"y"}\n', params={"query": "INSERT INTO kept FORMAT JSONEachRow"})
            code, out = srv.stop()
            self.assertEqual(code, 0)
            self.assertIn("stopped", out)
            srv = ServerProcess(data)
            try:
                self.assertEqual(srv.ok("SELECT a, s FROM kept ORDER BY a"), b"1\tx\n2\ty\n")
            finally:
                self.assertEqual(srv.stop()[0], 0)


class ScannerTest(unittest.TestCase):
    """The few things the server reads out of SQL itself."""

    def st(self, sql):
        return server.Statement(sql)

    def test_kind_and_format(self):
        s = self.st("INSERT INTO t (a, `format`) SETTINGS x=1 FORMAT RowBinary")
        self.assertEqual((s.kind, s.format[0]), ("INSERT", "RowBinary"))
        self.assertEqual(s.format[1], len("INSERT INTO t (a, `format`) SETTINGS x=1 "))
        self.assertEqual(self.st("INSERT INTO format FORMAT CSV").format[0], "CSV")
        self.assertIsNone(self.st("INSERT INTO t VALUES ('FORMAT JSON')").format)
        self.assertIsNone(self.st("SELECT format FROM t").format)
        self.assertIsNone(self.st("SELECT 1 AS format").format)
        self.assertEqual(self.st("SELECT x AS format FORMAT JSON").format[0], "JSON")
        self.assertEqual(self.st("SELECT 'FORMAT CSV' -- FORMAT TSV\n FORMAT JSONEachRow;").format[0], "JSONEachRow")
        self.assertEqual(self.st("SELECT 1 FORMAT JSON SETTINGS max_threads = 1").format[0], "JSON")
        self.assertIsNone(self.st("  /* only a comment */ ").kind)

    def test_multi_statement(self):
        self.assertTrue(self.st("SELECT 1; SELECT 2").extra_statement)
        self.assertFalse(self.st("SELECT 1;").extra_statement)
        self.assertFalse(self.st("SELECT ';', \";\", `;` ;; ").extra_statement)
        self.assertFalse(self.st("SELECT 1; -- trailing comment").extra_statement)

    def test_inline_data_start(self):
        buf = b"INSERT INTO t FORMAT CSV \t\n\n1,2"
        self.assertEqual(buf[server.skip_to_inline_data(buf, buf.index(b"CSV") + 3):], b"\n1,2")

    def test_engine_error_text(self):
        e = server.error_from_engine(
            "Streaming insert finish failed: Code: 33. DB::Exception: Cannot read all data: (at row 1)\n"
            ": While executing BinaryRowInputFormat. (CANNOT_READ_ALL_DATA) (version 26.9.2.1)")
        self.assertEqual((e.code, e.name), (33, "CANNOT_READ_ALL_DATA"))
        self.assertTrue(e.message.endswith("While executing BinaryRowInputFormat"))
        e = server.error_from_engine("Code: 73. DB::Exception: Code: 73. DB::Exception: Unknown format Foo. "
                                     "(UNKNOWN_FORMAT) (version 26.9.2.1). (UNKNOWN_FORMAT)")
        self.assertEqual((e.code, e.name, e.message), (73, "UNKNOWN_FORMAT", "Unknown format Foo"))


if __name__ == "__main__":
    unittest.main()
