"""An OpenAI-compatible endpoint on loopback whose streamed answers wait until the test releases them.

It exists to hold a streaming slot open for as long as a test needs, which a real model cannot promise (it may
finish in a fraction of a second). Only the slot plumbing uses it; answers themselves are tested with llama.cpp.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Streamed as two sentences with the wait between them (answers are passed on a sentence at a time).
FIRST, REST = "Turn the blue lever three times clockwise [1]. ", "Then wait for the green light [1]."
ANSWER = FIRST + REST


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: object) -> None:  # quiet
        pass

    def _json(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "held", "object": "model", "owned_by": "test"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        with self.server.lock:
            self.server.requests += 1
        self.server.started.set()
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "held"}
        if not request.get("stream"):
            self.server.release.wait(60)
            message = {"role": "assistant", "content": ANSWER}
            usage = {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}
            self._json(
                {
                    **chunk,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def send(body: object) -> None:
            self.wfile.write(f"data: {json.dumps(body)}\n\n".encode())
            self.wfile.flush()

        if self.server.hold_first:
            self.server.release.wait(60)
        send({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": FIRST}}]})
        self.server.release.wait(60)
        send({**chunk, "choices": [{"index": 0, "delta": {"content": REST}, "finish_reason": None}]})
        send({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        send({**chunk, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hold_first: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.started = threading.Event()
        self.release = threading.Event()
        self.hold_first = hold_first
        self.lock = threading.Lock()
        self.requests = 0  # completions asked for so far


@contextmanager
def held_llm(hold_first: bool = False) -> Iterator[_Server]:
    """The server (``.started`` is set when a request arrives, ``.requests`` counts them; set ``.release`` to
    let answers finish) and its base URL as ``server.base_url``; stopped, and its port freed, on exit.
    ``hold_first``: streams wait before their first token too, not only after it."""
    server = _Server(hold_first)
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
