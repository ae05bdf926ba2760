#!/usr/bin/env python3
"""A tiny streaming upstream for the 100 MB SSE test of `make bench`.

Every POST is answered 200 `text/event-stream`, chunked: ~1 KB OpenAI chat-completion chunk
events up to `x-bench-stream-bytes` bytes (default 100 MiB), then a usage-bearing event and
`data: [DONE]`. Usage: sse_upstream.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_BYTES = 100 * 1024 * 1024


def event(obj):
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def chunk_event(text):
    return event({"id": "chatcmpl-big", "object": "chat.completion.chunk", "created": 1700000000,
                  "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_bench",
                  "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
                  "usage": None})


EVENT = chunk_event("lorem ipsum " * 75)  # ~1.1 KB
BLOCK = EVENT * (65536 // len(EVENT))  # ~64 KB per write
TAIL = (event({"id": "chatcmpl-big", "object": "chat.completion.chunk", "created": 1700000000,
               "model": "gpt-4o-2024-08-06", "choices": [],
               "usage": {"prompt_tokens": 27, "completion_tokens": 25000000, "total_tokens": 25000027,
                         "prompt_tokens_details": {"cached_tokens": 0},
                         "completion_tokens_details": {"reasoning_tokens": 0}}})
        + b"data: [DONE]\n\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        total = int(self.headers.get("x-bench-stream-bytes") or DEFAULT_BYTES)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        sent = 0
        head = b"%x\r\n" % len(BLOCK)
        while sent < total:
            self.wfile.write(head + BLOCK + b"\r\n")
            sent += len(BLOCK)
        self.wfile.write(b"%x\r\n" % len(TAIL) + TAIL + b"\r\n0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
