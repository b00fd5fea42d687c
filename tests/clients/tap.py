#!/usr/bin/env python3
"""A transparent TCP relay in front of sluice that records every HTTP/1.x exchange.

Clients connect to the tap; it copies bytes unchanged in both directions (so chunked bodies,
keep-alive and `Expect: 100-continue` reach sluice exactly as the client sent them) and parses
the two byte streams on the side. Each completed request/response pair is appended to the log as
one JSON line, written *before* the response's last bytes are passed on to the client, so once a
client has seen its answer the record is on disk.

    tap.py --upstream 127.0.0.1:PORT --port-file FILE --log FILE

Standard library only. Loopback only.
"""

import argparse
import base64
import json
import os
import socket
import sys
import threading
import time

LOG_LOCK = threading.Lock()


class ParseError(Exception):
    pass


class HttpStream:
    """Incremental parser of one direction of an HTTP/1.x connection."""

    def __init__(self, is_request, on_message, pending_methods=None):
        self.is_request = is_request
        self.on_message = on_message
        self.pending_methods = pending_methods  # responses: methods of requests awaiting answers
        self.buf = bytearray()
        self.state = "head"
        self.head = None
        self.body = bytearray()
        self.remaining = 0
        self.chunked = False
        self.broken = None

    def feed(self, data):
        if self.broken:
            return
        self.buf += data
        try:
            while self._step():
                pass
        except ParseError as e:
            self.broken = str(e)

    def eof(self):
        if self.state == "until_close" and not self.broken:
            self.body += self.buf
            self.buf.clear()
            self._done()

    def _step(self):
        if self.state == "head":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 1 << 20:
                    raise ParseError("header section over 1 MiB")
                return False
            raw = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            lines = raw.split("\r\n")
            start = lines[0].split(" ", 2)
            headers = []
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise ParseError(f"bad header line {line!r}")
                headers.append([name.strip(), value.strip()])
            self.head = {"start": start, "headers": headers}
            self.body = bytearray()
            lower = {k.lower(): v for k, v in headers}
            te = lower.get("transfer-encoding", "").lower()
            self.chunked = "chunked" in te
            if self.is_request:
                if self.chunked:
                    self.state = "chunk_size"
                else:
                    self.remaining = int(lower.get("content-length", "0"))
                    self.state = "body"
            else:
                status = int(start[1])
                method = self.pending_methods[0] if self.pending_methods else "GET"
                if 100 <= status < 200:
                    self.head["interim"] = True
                    self._done()
                    return True
                if status in (204, 304) or method == "HEAD":
                    self.remaining = 0
                    self.state = "body"
                elif self.chunked:
                    self.state = "chunk_size"
                elif "content-length" in lower:
                    self.remaining = int(lower["content-length"])
                    self.state = "body"
                else:
                    self.state = "until_close"
                    return False
            return True
        if self.state == "body":
            take = min(self.remaining, len(self.buf))
            self.body += self.buf[:take]
            del self.buf[:take]
            self.remaining -= take
            if self.remaining == 0:
                self._done()
                return True
            return False
        if self.state == "chunk_size":
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            size = int(bytes(self.buf[:end]).split(b";")[0].strip(), 16)
            del self.buf[: end + 2]
            if size == 0:
                self.state = "trailers"
            else:
                self.remaining = size
                self.state = "chunk_data"
            return True
        if self.state == "chunk_data":
            take = min(self.remaining, len(self.buf))
            self.body += self.buf[:take]
            del self.buf[:take]
            self.remaining -= take
            if self.remaining == 0:
                self.state = "chunk_crlf"
                return True
            return False
        if self.state == "chunk_crlf":
            if len(self.buf) < 2:
                return False
            if self.buf[:2] != b"\r\n":
                raise ParseError("chunk not followed by CRLF")
            del self.buf[:2]
            self.state = "chunk_size"
            return True
        if self.state == "trailers":
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            del self.buf[: end + 2]
            if end == 0:
                self._done()
            return True
        return False

    def _done(self):
        head, body = self.head, bytes(self.body)
        self.state = "head"
        self.head = None
        self.body = bytearray()
        self.on_message(head, body)


class Connection:
    def __init__(self, client, upstream_addr, log_path):
        self.client = client
        self.upstream = socket.create_connection(upstream_addr)
        self.log_path = log_path
        self.requests = []  # requests awaiting their response, oldest first
        self.methods = []
        self.lock = threading.Lock()
        self.req_parser = HttpStream(True, self._on_request)
        self.resp_parser = HttpStream(False, self._on_response, self.methods)

    def _on_request(self, head, body):
        with self.lock:
            self.requests.append((time.time_ns(), head, body))
            self.methods.append(head["start"][0])

    def _on_response(self, head, body):
        if head.get("interim"):
            return
        with self.lock:
            if not self.requests:
                return
            t_req, req, req_body = self.requests.pop(0)
            self.methods.pop(0)
        start = req["start"]
        record = {
            "t_request_ns": t_req,
            "t_response_ns": time.time_ns(),
            "method": start[0],
            "path": start[1] if len(start) > 1 else "",
            "request_headers": req["headers"],
            "request_body_b64": base64.b64encode(req_body).decode(),
            "request_chunked": any(
                k.lower() == "transfer-encoding" and "chunked" in v.lower()
                for k, v in req["headers"]
            ),
            "status": int(head["start"][1]),
            "response_headers": head["headers"],
            "response_body": body[:4096].decode("utf-8", "replace"),
        }
        line = json.dumps(record) + "\n"
        with LOG_LOCK:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line)

    def pump(self, src, dst, parser):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    parser.eof()
                    break
                parser.feed(data)  # may log a completed exchange before the client sees it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def run(self):
        a = threading.Thread(
            target=self.pump, args=(self.client, self.upstream, self.req_parser), daemon=True
        )
        b = threading.Thread(
            target=self.pump, args=(self.upstream, self.client, self.resp_parser), daemon=True
        )
        a.start()
        b.start()
        a.join()
        b.join()
        for s in (self.client, self.upstream):
            try:
                s.close()
            except OSError:
                pass
        for p in (self.req_parser, self.resp_parser):
            if p.broken:
                with LOG_LOCK:
                    with open(self.log_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"parse_error": p.broken}) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    upstream = (host, int(port))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    open(args.log, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.replace(tmp, args.port_file)
    while True:
        client, _ = srv.accept()
        try:
            conn = Connection(client, upstream, args.log)
        except OSError as e:
            print(f"tap: cannot reach upstream {args.upstream}: {e}", file=sys.stderr)
            client.close()
            continue
        threading.Thread(target=conn.run, daemon=True).start()


if __name__ == "__main__":
    main()
