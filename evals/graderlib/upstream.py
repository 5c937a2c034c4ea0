"""A loopback HTTP upstream for graders: fault injection plus a record of what it served.

Routes (GET):
``/json/{n}``          200 ``{"n": n}``
``/slow/{seconds}``    200 ``{"slept": seconds}`` after the delay (at most 10 s); notices a client that goes
``/status/{code}``     that status with ``{"status": code}``
``/hang``              never answers; returns when the client goes (or after 10 s)
``/drop``              closes the connection without answering
anything else          404

Every request is recorded as a :class:`Served` (path, start, end, client_gone) on ``upstream.requests``;
times are ``time.monotonic()`` values of this process, so a grader can compare them with its own clock.
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

MAX_SLEEP_S = 10.0
POLL_S = 0.01


class Served(NamedTuple):
    path: str
    start: float
    end: float | None  # None while in flight
    client_gone: bool  # the client closed the connection before the answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._connection(+1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connection(-1)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        index = self.server.owner._begin(self.path)
        gone = False
        try:
            gone = self._route()
        finally:
            self.server.owner._finish(index, gone)

    def _route(self) -> bool:
        path = self.path.split("?", 1)[0]
        if m := re.fullmatch(r"/json/(-?\d+)", path):
            self._reply(200, {"n": int(m[1])})
        elif m := re.fullmatch(r"/slow/(\d+(?:\.\d+)?)", path):
            seconds = min(float(m[1]), MAX_SLEEP_S)
            if self._wait_or_gone(seconds):
                return True
            self._reply(200, {"slept": seconds})
        elif (m := re.fullmatch(r"/status/(\d{3})", path)) and 200 <= int(m[1]) <= 599:
            self._reply(int(m[1]), {"status": int(m[1])})
        elif path == "/hang":
            return self._wait_or_gone(MAX_SLEEP_S) or self._close()
        elif path == "/drop":
            self._close()
        else:
            self._reply(404, {"detail": "not found"})
        return False

    def _wait_or_gone(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the client closed its end of the connection."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], min(POLL_S, left))
            if readable:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True
                if not data:
                    return True
                time.sleep(POLL_S)  # the client sent more (a pipelined request): keep waiting
        return False

    def _close(self) -> bool:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return False

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, owner: Upstream) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Upstream:
    """The server, in a daemon thread while open. ``url`` has no trailing slash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Served] = []
        self._open = 0
        self.connections_opened = 0  # TCP connections accepted so far (keep-alive reuse shows as fewer)
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="eval-upstream", daemon=True
        )  # a short poll interval: close() returns at once instead of after up to 0.5 s
        self._thread.start()

    # -- the record ---------------------------------------------------------------------------------

    def _begin(self, path: str) -> int:
        with self._lock:
            self._records.append(Served(path, time.monotonic(), None, False))
            return len(self._records) - 1

    def _finish(self, index: int, gone: bool) -> None:
        with self._lock:
            self._records[index] = self._records[index]._replace(end=time.monotonic(), client_gone=gone)

    def _connection(self, delta: int) -> None:
        with self._lock:
            self._open += delta
            self.connections_opened += max(delta, 0)

    def open_connections(self) -> int:
        """Client connections open right now (a pooled keep-alive connection counts until it is closed)."""
        with self._lock:
            return self._open

    def max_concurrent(self, prefix: str = "/") -> int:
        """The most requests under ``prefix`` that were in flight at the same moment."""
        events = []
        for r in self.served(prefix):
            events += [(r.start, 1), (r.end if r.end is not None else float("inf"), -1)]
        peak = now = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            now += step
            peak = max(peak, now)
        return peak

    @property
    def requests(self) -> list[Served]:
        """What was served so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    def served(self, prefix: str) -> list[Served]:
        """The requests whose path starts with ``prefix``."""
        return [r for r in self.requests if r.path.startswith(prefix)]

    def in_flight(self) -> int:
        """Requests started and not finished (answered, or noticed that the client went)."""
        return sum(1 for r in self.requests if r.end is None)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until nothing is in flight (True) or ``timeout`` passes (False). Do not call it from a
        thread whose event loop must keep running: use ``await asyncio.to_thread(upstream.wait_idle)``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.in_flight() == 0:
                return True
            time.sleep(POLL_S)
        return self.in_flight() == 0

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    # -- lifetime -----------------------------------------------------------------------------------

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
