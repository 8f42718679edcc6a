"""A real HTTP server on 127.0.0.1 for crawler tests: scripted replies per path and a log of every request."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ragline.ray_local import free_port


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    delay: float = 0.0  # seconds before answering
    content_length: bool = True  # False: stream the body and close, as a server that does not know its size
    repeated: list[tuple[str, str]] = field(default_factory=list)  # header lines sent as they are, names repeating


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    at: float


Route = Reply | Callable[[Request], Reply]


def html(title: str, *links: str, extra: str = "") -> str:
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!doctype html><html><head><title>{title}</title>{extra}</head>"
        f"<body><main><h1>{title}</h1><p>Text of {title}.</p><ul>{anchors}</ul></main></body></html>"
    )


def sequence(*replies: Reply) -> Callable[[Request], Reply]:
    """Answers each request with the next reply, repeating the last one."""
    calls = [0]

    def route(_req: Request) -> Reply:
        calls[0] += 1
        return replies[min(calls[0], len(replies)) - 1]

    return route


class SiteServer:
    """``with SiteServer(routes) as site:`` serves ``routes`` (path -> Reply) at ``site.base``; 404 elsewhere."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.log]

    def requests(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic())
                with site._lock:
                    site.log.append(req)
                route = site.routes.get(self.path.split("?", 1)[0])
                reply = Reply(404, "not found") if route is None else route if isinstance(route, Reply) else route(req)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                etag = reply.headers.get("ETag")
                status = (
                    304 if reply.status == 200 and etag and req.headers.get("if-none-match") == etag else reply.status
                )
                try:
                    self.send_response(status)
                    for k, v in [*reply.headers.items(), *reply.repeated]:
                        self.send_header(k, v.replace("{base}", site.base))
                    if status == 304:
                        self.end_headers()
                        return
                    if reply.content_length:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the crawler hung up (timeout, too big)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class StaticServer:
    """``python -m http.server`` on 127.0.0.1 serving ``root``; its stderr is the request log."""

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root, self.log_path = root, log_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> StaticServer:
        self._log = self.log_path.open("wb")
        cmd = [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(self.port), "-d", str(self.root)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"http.server did not start on port {self.port}")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._log.close()

    def requests(self) -> list[tuple[str, int]]:
        """(path, status) of every GET served so far, in order."""
        pattern = re.compile(r'"GET (\S+) HTTP/1\.[01]" (\d{3})')
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [(m.group(1), int(m.group(2))) for m in pattern.finditer(text)]
