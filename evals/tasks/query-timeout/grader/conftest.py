"""The product table; the app under uvicorn in a thread, reaching PostgreSQL through a loopback TCP relay
that the grader can cut (what the server sees when the app's process is killed: its sockets close, and no
cancel request ever comes)."""

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import uvicorn
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine

PG_URL = os.environ.get("EVAL_PG_URL", "")


class Relay:
    """127.0.0.1:<port> -> PostgreSQL; ``cut()`` closes every socket at once."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            server.settimeout(None)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        try:
            self.listener.shutdown(
                socket.SHUT_RDWR
            )  # wakes the thread blocked in accept(); close alone does not
        except OSError:
            pass
        self.listener.close()
        for s in list(self.sockets):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    params = conninfo_to_dict(PG_URL)
    relay = Relay(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    # the app reads DATABASE_URL when it is imported (or when its lifespan starts): point it at the relay
    user, db = params.get("user", "postgres"), params.get("dbname")
    password = f":{params['password']}" if params.get("password") else ""
    os.environ["DATABASE_URL"] = f"postgresql+asyncpg://{user}{password}@127.0.0.1:{relay.port}/{db}"
    yield relay
    relay.cut()


@pytest.fixture(scope="module")
def app_url(relay: Relay) -> Iterator[str]:
    from app.main import app
    from app.models import Base

    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()
    with psycopg.connect(PG_URL) as conn:
        conn.execute("INSERT INTO product (id, name) SELECT g, 'item ' || g FROM generate_series(1, 30) g")
    with serve(app) as url:
        yield url


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Run the ASGI app (lifespan included) under uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="critical")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="eval-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start (lifespan failed?)"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def waiting_on_lock(watcher: psycopg.Connection, locker_pid: int) -> list[int]:
    """pids of the backends (not the locker) that wait for a lock on the grade's database."""
    rows = watcher.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND pid <> %s AND pid <> pg_backend_pid()",
        (locker_pid,),
    ).fetchall()
    return [pid for (pid,) in rows]


def poll(check, seconds: float):
    """Call check() until it returns something falsy or ``seconds`` pass; return the last result."""
    deadline = time.monotonic() + seconds
    while (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found
