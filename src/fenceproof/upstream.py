"""A small HTTP server on loopback that client examples call instead of the internet.

``GET /items/{n}``       -> 200 ``{"id": n, "name": "item-n"}``
``GET /slow?seconds=x``  -> sleeps x seconds (at most 5), then 200 ``{"slept": x}``
``GET /status/{code}``   -> that status with ``{"status": code}``
anything else            -> 404 ``{"detail": "not found"}``
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

MAX_SLOW_S = 5.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real upstreams do; every reply has a Content-Length
    timeout = 30  # an idle keep-alive connection frees its thread after this

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        url = urlsplit(self.path)
        if m := re.fullmatch(r"/items/(-?\d+)", url.path):
            n = int(m[1])
            self._reply(200, {"id": n, "name": f"item-{n}"})
        elif url.path == "/slow":
            try:
                seconds = float(parse_qs(url.query).get("seconds", ["1"])[0])
            except ValueError:
                self._reply(400, {"detail": "seconds must be a number"})
                return
            seconds = min(max(seconds, 0.0), MAX_SLOW_S)
            time.sleep(seconds)
            self._reply(200, {"slept": seconds})
        elif (m := re.fullmatch(r"/status/(\d{3})", url.path)) and 200 <= int(m[1]) <= 599:
            self._reply(int(m[1]), {"status": int(m[1])})
        else:
            self._reply(404, {"detail": "not found"})

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = b"" if status in (204, 304) else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Fan-out examples open dozens of connections at once; the default backlog of 5 makes the rest wait for a
    # TCP retry (about 1 s each).
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up early (a read timeout, a dropped client) is normal here, not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Upstream:
    """The loopback server, running in a daemon thread while the context is open."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fenceproof-upstream", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
