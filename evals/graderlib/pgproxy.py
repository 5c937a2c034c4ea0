"""A loopback TCP proxy in front of PostgreSQL that counts the statements a client sends.

It reads the frontend side of the wire protocol: a simple ``Query`` ('Q') message is one statement, and so
is each extended-protocol ``Execute`` ('E'), whatever the driver (asyncpg, psycopg) and whether it cached
the prepared statement or not. SSL and GSS encryption requests are refused by the proxy itself, so the
stream stays readable (drivers with the default ``sslmode=prefer`` carry on in plain text).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import NamedTuple

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class Statement(NamedTuple):
    at: float  # time.monotonic()
    kind: str  # "query" (simple protocol) or "execute" (extended protocol)
    sql: str  # the Query's text, or for an Execute the SQL its portal was bound to


class PgProxy:
    """Listens on 127.0.0.1:<port>, forwards to ``(host, port)``, records statements."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._lock = threading.Lock()
        self._statements: list[Statement] = []
        self._open = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="eval-pgproxy", daemon=True).start()

    # -- the record ---------------------------------------------------------------------------------

    @property
    def statements(self) -> list[Statement]:
        with self._lock:
            return list(self._statements)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._statements)

    @property
    def open_connections(self) -> int:
        """Client connections currently open through the proxy."""
        with self._lock:
            return self._open

    def settle(self, quiet_s: float = 0.15, timeout: float = 5.0) -> int:
        """Wait until no statement arrived for ``quiet_s`` (or ``timeout``) and return the count."""
        deadline = time.monotonic() + timeout
        last = self.count
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now = self.count
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                break
        return last

    # -- plumbing -----------------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        host, port = self.target
        if host.startswith("/"):  # a Unix socket directory, as libpq names it
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.settimeout(10)
            server.connect(f"{host}/.s.PGSQL.{port}")
        else:
            server = socket.create_connection((host, port), timeout=10)
        server.settimeout(None)
        return server

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = self._connect()
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                if sock.family != socket.AF_UNIX:  # small protocol messages: no Nagle/delayed-ACK stalls
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open += 1
                self._pairs.append((client, server))
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downstream, args=(client, server), daemon=True).start()

    def _downstream(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := server.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        prepared: dict[bytes, str] = {}  # statement name -> SQL (from Parse)
        portals: dict[bytes, str] = {}  # portal name -> SQL (from Bind)
        try:
            # Startup phase: untyped messages (length, code, ...).
            while True:
                head = _read(client, 8)
                length, code = struct.unpack("!ii", head)
                body = _read(client, length - 8)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    client.sendall(b"N")
                    continue
                server.sendall(head + body)
                break
            while True:
                head = _read(client, 5)
                kind = head[:1]
                (length,) = struct.unpack("!i", head[1:])
                body = _read(client, length - 4)
                if kind == b"Q":
                    self._record("query", body.rstrip(b"\0").decode(errors="replace"))
                elif kind == b"P":  # Parse: statement name, SQL, ...
                    name, sql = body.split(b"\0", 2)[:2]
                    prepared[name] = sql.decode(errors="replace")
                elif kind == b"B":  # Bind: portal name, statement name, ...
                    portal, name = body.split(b"\0", 2)[:2]
                    portals[portal] = prepared.get(name, "?")
                elif kind == b"E":  # Execute: portal name, row limit
                    self._record("execute", portals.get(body.split(b"\0", 1)[0], "?"))
                server.sendall(head + body)
                if kind == b"X":
                    break
        except (OSError, ValueError, struct.error):
            pass
        finally:
            _shut(server)
            _shut(client)
            with self._lock:
                self._open -= 1
                if (client, server) in self._pairs:
                    self._pairs.remove((client, server))

    def _record(self, kind: str, sql: str) -> None:
        with self._lock:
            self._statements.append(Statement(time.monotonic(), kind, sql))

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for client, server in pairs:
            _shut(client)
            _shut(server)


def _read(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n > 0:
        data = sock.recv(n)
        if not data:
            raise OSError("connection closed")
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
