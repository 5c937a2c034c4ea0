"""Fresh imports of the app (its module state may hold an engine), warnings recorded, the item table, and a
loopback TCP relay to PostgreSQL that the grader can cut (the database becomes unreachable)."""

import importlib
import os
import socket
import sys
import threading
import warnings
from types import ModuleType

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine

PG_URL = os.environ.get("EVAL_PG_URL", "")


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    sys.path.insert(0, os.getcwd())
    from app.models import Base

    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()
    with psycopg.connect(PG_URL) as conn:
        conn.execute("INSERT INTO item (id, name) VALUES (1, 'lamp')")


def fresh_app(caught: list[warnings.WarningMessage] | None = None) -> ModuleType:
    """Import app.main anew (module-level state included), recording the warnings it emits."""
    for name in [n for n in sys.modules if n == "app" or n.startswith("app.")]:
        del sys.modules[name]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        module = importlib.import_module("app.main")
    if caught is not None:
        caught.extend(seen)
    return module


def deprecations(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        f"{w.category.__name__}: {str(w.message).split('. ')[0]}"
        for w in caught
        if issubclass(w.category, DeprecationWarning) or w.category.__name__ == "FastAPIDeprecationWarning"
    ]


class Relay:
    """127.0.0.1:<port> -> PostgreSQL; ``cut()`` closes the listener and every connection."""

    def __init__(self) -> None:
        params = conninfo_to_dict(PG_URL)
        self.target = (str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        password = f":{params['password']}" if params.get("password") else ""
        where = f"{params.get('user', 'postgres')}{password}@127.0.0.1:{self.listener.getsockname()[1]}"
        self.url = f"postgresql+asyncpg://{where}/{params.get('dbname')}"
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
