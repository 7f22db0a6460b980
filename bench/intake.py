#!/usr/bin/env python3
"""A local HTTP intake for the plugin output benchmarks (scripts/bench, scenario `plugins`):
answers every POST 200 with an OpenSearch Bulk API answer without errors
(`{"took":0,"errors":false,"items":[]}`), after reading the whole body, over HTTP/1.1 keep-alive,
one thread per connection (the router keeps idle connections in its pool).
It counts nothing itself: the router's `component_sent_events_total` is the delivered count.

    bench/intake.py PORT
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = b'{"took":0,"errors":false,"items":[]}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms a request), which would measure the kernel, not the router.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
