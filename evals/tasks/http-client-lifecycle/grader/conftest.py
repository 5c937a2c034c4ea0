"""A counting TCP relay in front of the grader's upstream (PRICES_URL points at it), the app imported with
its warnings recorded, and a real uvicorn on 127.0.0.1 in a thread."""

import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
import uvicorn


class Relay:
    """127.0.0.1:<port> -> ``target``; counts the connections it accepted and those still open."""

    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.accepted = 0
        self.open = 0
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                assert self.target is not None
                server = socket.create_connection(self.target, timeout=5)
            except (OSError, AssertionError):
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._pair, args=(client, server), daemon=True).start()

    def _pair(self, client: socket.socket, server: socket.socket) -> None:
        back = threading.Thread(target=self._pump, args=(server, client), daemon=True)
        back.start()
        self._pump(client, server)
        back.join(15)
        with self._lock:
            self.open -= 1

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

    def open_after(self, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        while self.open and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.open


RELAY = Relay()
os.environ["PRICES_URL"] = RELAY.url  # read by the app at import or at startup


@pytest.fixture(scope="session")
def imported() -> tuple[ModuleType, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import app.main as module
    return module, caught


@pytest.fixture
def relay(upstream) -> Relay:
    RELAY.target = ("127.0.0.1", int(upstream.url.rsplit(":", 1)[1]))
    RELAY.accepted = 0
    return RELAY


def deprecations(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning) or w.category.__name__ == "FastAPIDeprecationWarning"
    ]


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Run the ASGI app (lifespan included) under uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", ws="none", log_level="critical")  # type: ignore[arg-type]
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
        thread.join(10)
