"""The FastAPI app template (skills/python-backend/assets) against a real PostgreSQL and a loopback upstream.

Each test loads the template fresh from its path, points DATABASE_URL at a new database and drives the app
in-process with TestClient; the last ones serve it with uvicorn in a subprocess. Warnings are errors.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import psycopg
import pytest
from conftest import SKILL_DIR
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fenceproof.postgres import Server
from fenceproof.upstream import Upstream

pytest_plugins = ["runtime_fixtures"]
pytestmark = pytest.mark.filterwarnings("error")

TEMPLATE = SKILL_DIR / "assets" / "fastapi-app-template.py"
PROBLEM = "application/problem+json"
# The same problem-details handlers, word for word, in the template and the Markdown that teaches them.
PROBLEM_COPIES = [
    TEMPLATE,
    SKILL_DIR / "rules" / "fastapi-errors.md",
    SKILL_DIR / "examples" / "orders-service.md",
]


def load_template() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_template", TEMPLATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def create_schema(module: ModuleType, url: str) -> None:
    """The template's dev-only create_schema(), on an engine of its own."""

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            await module.create_schema(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def connections_after_close(pg_server: Server, dbname: str) -> list[dict[str, Any]]:
    """Connections still open on ``dbname``; a closed backend takes a moment to leave, so wait up to 5 s."""
    deadline = time.monotonic() + 5
    while (rows := pg_server.connections(dbname)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return rows


def closed_port() -> socket.socket:
    """A loopback socket bound but not listening: connecting to its port is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dbname(pg_server: Server) -> Iterator[str]:
    """A fresh database, dropped afterwards (other runtime tests check the session server holds no leftovers)."""
    name = pg_server.create_database()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def app_module(
    pg_server: Server, upstream: Upstream, dbname: str, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    monkeypatch.setenv("DATABASE_URL", pg_server.async_url(dbname))
    monkeypatch.setenv("UPSTREAM_URL", upstream.url)
    return load_template()


def assert_problem(response: httpx2.Response, status: int, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["instance"] == path
    assert body["title"] and body["detail"]
    assert response.headers["x-request-id"]  # RequestIdMiddleware wraps every response, 500s too
    return body


def problem_handlers_code(path: Path) -> str:
    """The text from ``def problem(`` to the end of the ``PROBLEM_HANDLERS`` dict in ``path``."""
    text = path.read_text(encoding="utf-8")
    start = text.index("def problem(")
    end = text.index("\n}\n", text.index("PROBLEM_HANDLERS = {", start)) + 3
    return text[start:end]


def test_the_problem_handlers_are_one_piece_of_code() -> None:
    copies = {path.name: problem_handlers_code(path) for path in PROBLEM_COPIES}
    assert all("exc.headers" in code and "RequestValidationError" in code for code in copies.values())
    assert len(set(copies.values())) == 1, "the problem-details handlers differ: " + ", ".join(copies)


def test_crud_loads_orders_in_one_extra_query_and_commits(
    app_module: ModuleType, pg_server: Server, dbname: str
) -> None:
    create_schema(app_module, pg_server.async_url(dbname))
    statements: list[str] = []
    with TestClient(app_module.app) as client:
        engine: AsyncEngine = client.app_state["engine"]

        def count(conn: object, cursor: object, statement: str, *args: object) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        ids = []
        for n in range(3):
            created = client.post("/customers", json={"name": f"c{n}", "email": f"c{n}@example.com"})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        for customer_id, item in [(ids[0], "pen"), (ids[0], "ink"), (ids[1], "pad")]:
            ordered = client.post(f"/customers/{customer_id}/orders", json={"item": item})
            assert ordered.status_code == 201 and ordered.json()["item"] == item

        duplicate = client.post("/customers", json={"name": "again", "email": "c0@example.com"})
        assert assert_problem(duplicate, 409, "/customers")["detail"] == "conflicts with existing data"

        statements.clear()
        listed = client.get("/customers")
        assert listed.status_code == 200
        assert [(c["name"], [o["item"] for o in c["orders"]]) for c in listed.json()] == [
            ("c0", ["pen", "ink"]),
            ("c1", ["pad"]),
            ("c2", []),
        ]
        assert len(statements) == 2, statements  # 1 + N would be 4
        assert "customer_order" in statements[1] and "IN" in statements[1]

    assert connections_after_close(pg_server, dbname) == []
    with psycopg.connect(pg_server.conninfo(dbname)) as conn:  # committed; the 409 was rolled back
        assert conn.execute("SELECT count(*) FROM customer").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM customer_order").fetchone() == (3,)


def test_a_commit_that_fails_is_answered_409_not_201(
    app_module: ModuleType, pg_server: Server, dbname: str
) -> None:
    create_schema(app_module, pg_server.async_url(dbname))
    with psycopg.connect(pg_server.conninfo(dbname)) as conn:  # a deferred check: flush passes, COMMIT fails
        conn.execute("ALTER TABLE customer DROP CONSTRAINT customer_email_key")
        conn.execute("ALTER TABLE customer ADD UNIQUE (email) DEFERRABLE INITIALLY DEFERRED")
    with TestClient(app_module.app) as client:
        first = client.post("/customers", json={"name": "a", "email": "a@example.com"})
        assert first.status_code == 201
        second = client.post("/customers", json={"name": "b", "email": "a@example.com"})
        assert_problem(second, 409, "/customers")
    with psycopg.connect(pg_server.conninfo(dbname)) as conn:
        assert conn.execute("SELECT name FROM customer").fetchall() == [("a",)]


def test_an_exhausted_pool_is_answered_503_after_pool_timeout(
    app_module: ModuleType, pg_server: Server, dbname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_schema(app_module, pg_server.async_url(dbname))
    for name, value in {"POOL_SIZE": "1", "MAX_OVERFLOW": "0", "POOL_TIMEOUT": "0.2"}.items():
        monkeypatch.setenv(name, value)
    with TestClient(app_module.app) as client:
        engine: AsyncEngine = client.app_state["engine"]
        assert client.portal is not None
        held = client.portal.call(lambda: engine.connect().start())  # the pool's only connection, on its loop
        try:
            body = assert_problem(client.get("/customers"), 503, "/customers")
            assert body["detail"] == "database busy"
        finally:
            client.portal.call(held.close)
        assert client.get("/customers").json() == []
    assert connections_after_close(pg_server, dbname) == []


def test_errors_are_problem_details_with_the_request_id(
    app_module: ModuleType, pg_server: Server, dbname: str
) -> None:
    create_schema(app_module, pg_server.async_url(dbname))

    async def crash() -> None:
        raise RuntimeError("secret internals")

    app_module.api.get("/crash")(crash)
    with TestClient(app_module.app, raise_server_exceptions=False) as client:
        assert_problem(client.get("/no-such-route"), 404, "/no-such-route")
        missing = client.post("/customers/999/orders", json={"item": "pen"})
        assert assert_problem(missing, 404, "/customers/999/orders")["detail"] == "customer 999 not found"
        invalid = assert_problem(client.get("/customers", params={"limit": 0}), 422, "/customers")
        assert invalid["errors"][0]["loc"] == ["query", "limit"]
        not_allowed = client.delete("/customers")
        assert_problem(not_allowed, 405, "/customers")
        assert not_allowed.headers["allow"] == "POST"  # exc.headers kept; Starlette names the first route

        crashed = client.get("/crash", headers={"x-request-id": "trace-42"})
        body = assert_problem(crashed, 500, "/crash")
        assert body["detail"] == "internal error" and "secret" not in crashed.text
        assert crashed.headers["x-request-id"] == "trace-42"  # a well-formed incoming id is kept

        forged = client.get("/livez", headers={"x-request-id": "<script>alert(1)</script>"})
        assert forged.status_code == 200 and len(forged.headers["x-request-id"]) == 32
        assert client.get("/livez").headers["x-request-id"] != forged.headers["x-request-id"]
    assert connections_after_close(pg_server, dbname) == []


def test_liveness_is_the_process_and_readiness_the_database(
    app_module: ModuleType, pg_server: Server, dbname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(app_module.app) as client:
        for path in ("/livez", "/readyz"):
            probe = client.get(path)
            assert (probe.status_code, probe.json()) == (200, {"status": "ok"}), path
    assert connections_after_close(pg_server, dbname) == []

    missing_db = pg_server.new_name("missing")  # issued, never created
    monkeypatch.setenv("DATABASE_URL", pg_server.async_url(missing_db))
    with TestClient(app_module.app) as client:
        body = assert_problem(client.get("/readyz"), 503, "/readyz")
        assert body["detail"] == "database unavailable"
        assert client.get("/livez").status_code == 200  # a database outage restarts no replica


def test_fan_out_is_bounded_ordered_and_all_or_nothing(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight = {"now": 0, "peak": 0}

    class CountingClient(httpx2.AsyncClient):
        async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
            in_flight["now"] += 1
            in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
            try:
                return await super().send(request, **kwargs)
            finally:
                in_flight["now"] -= 1

    monkeypatch.setattr(httpx2, "AsyncClient", CountingClient)
    monkeypatch.setenv("FANOUT_CONCURRENCY", "3")
    ids = [7, 3, 11, 5, 2, 13, 17, 19, 23, 29, 31, 37]
    with TestClient(app_module.app) as client:
        response = client.get("/catalog", params={"ids": ids})
        assert response.status_code == 200, response.text
        assert response.json() == [{"id": n, "name": f"item-{n}"} for n in ids]
        assert in_flight == {"now": 0, "peak": 3}
        assert_problem(client.get("/catalog", params={"ids": list(range(51))}), 422, "/catalog")

    with closed_port() as sock:
        monkeypatch.setenv("UPSTREAM_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")
        with TestClient(app_module.app) as client:
            body = assert_problem(client.get("/catalog", params={"ids": [1, 2]}), 502, "/catalog")
            assert body["detail"] == "upstream unavailable"


@contextmanager
def served(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], httpx2.Client]]:
    """The template run as ``python app.py`` (warnings are errors) with ``env``; a client once /livez answers.
    Killed afterwards if it is still running."""
    port = free_port()
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
    command = [sys.executable, "-W", "error", str(TEMPLATE)]
    proc = subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=1.0) as http:
            deadline = time.monotonic() + 15
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    http.get("/livez")
                    break
                except httpx2.TransportError:
                    time.sleep(0.05)
            else:
                pytest.fail(f"the server did not answer /livez: {proc.communicate(timeout=5)}")
            yield proc, http
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop(proc: subprocess.Popen[str], timeout: float = 10) -> str:
    """SIGTERM, then what the server wrote to stderr; uvicorn re-raises the signal it caught, on purpose."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == -signal.SIGTERM, err
    assert "Application shutdown complete." in err and "Traceback" not in err, err
    return err


def test_serves_with_uvicorn_and_stops_cleanly_on_sigterm(
    pg_server: Server, upstream: Upstream, dbname: str
) -> None:
    env = {"DATABASE_URL": pg_server.async_url(dbname), "UPSTREAM_URL": upstream.url}
    with served(env) as (proc, http):
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
        assert len(ready.headers["x-request-id"]) == 32
        items = http.get("/catalog", params={"ids": [4, 2]})
        assert items.json() == [{"id": 4, "name": "item-4"}, {"id": 2, "name": "item-2"}]
        stop(proc)
    assert connections_after_close(pg_server, dbname) == []


def test_every_log_line_carries_its_request_id(pg_server: Server, upstream: Upstream, dbname: str) -> None:
    # Every item is a 404 under this base URL: the fan-out fails and the app logs a warning.
    env = {"DATABASE_URL": pg_server.async_url(dbname), "UPSTREAM_URL": f"{upstream.url}/missing"}
    with served(env) as (proc, http):
        failed = http.get("/catalog", params={"ids": [1]}, headers={"x-request-id": "trace-7"})
        assert failed.status_code == 502, failed.text
        err = stop(proc)
    assert "WARNING app [trace-7] upstream failed: HTTPStatusError" in err, err


def test_sigterm_cancels_what_still_runs_after_the_shutdown_timeout(pg_server: Server, dbname: str) -> None:
    """A request stuck on an upstream that never answers does not hold the shutdown past SHUTDOWN_TIMEOUT
    (uvicorn's default would wait for it forever, until the orchestrator's SIGKILL)."""
    with socket.socket() as silent:  # listening, never answering: connections are accepted by the kernel
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        env = {
            "DATABASE_URL": pg_server.async_url(dbname),
            "UPSTREAM_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "UPSTREAM_TIMEOUT": "60",
            "SHUTDOWN_TIMEOUT": "1",
        }
        with served(env) as (proc, http), ThreadPoolExecutor(1) as pool:
            stuck = pool.submit(http.get, "/catalog", params={"ids": [1]}, timeout=30)
            time.sleep(0.5)  # the request is in the upstream call now
            started = time.monotonic()
            err = stop(proc, timeout=15)
            elapsed = time.monotonic() - started
            with pytest.raises(httpx2.HTTPError):
                stuck.result().raise_for_status()
    assert elapsed < 5, f"shutdown took {elapsed:.1f} s with SHUTDOWN_TIMEOUT=1"
    assert "timeout graceful shutdown exceeded" in err, err
