#!/usr/bin/env python3
"""An OTLP/HTTP sink for load tests: answers every POST (/v1/traces, /v1/metrics)
with 200 and counts what it got; prints its URL first, the totals when stopped."""

import http.server
import signal
import sys

totals = {"requests": 0, "bytes": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        totals["requests"] += 1
        totals["bytes"] += length
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    print(f"otlp sink on http://127.0.0.1:{server.server_address[1]}", flush=True)

    def stop(*_):
        print(f"otlp sink got {totals['requests']} exports, {totals['bytes']} bytes", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
