"""The grade's database as graders see it: who is connected, and the counting proxy's view."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from graderlib.pgproxy import PgProxy, Statement


def libpq_params(pg_url: str) -> dict[str, Any]:
    return dict(conninfo_to_dict(pg_url))


def _list_connections(pg_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state, application_name, query, client_port FROM pg_stat_activity"
            " WHERE datname = current_database() AND backend_type = 'client backend'"
            " AND pid <> pg_backend_pid() ORDER BY backend_start"
        ).fetchall()
    keys = ("pid", "state", "application_name", "query", "client_port")
    return [dict(zip(keys, row, strict=True)) for row in rows]


class Connections:
    """Callable: ``server_connections(within=0.0) -> list[dict]`` (pid, state, application_name, query)."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url

    def __call__(self, within: float = 0.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            found = _list_connections(self.pg_url)
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def terminate(self) -> int:
        """``pg_terminate_backend`` every other client of the grade's database; returns how many."""
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()"
            ).fetchall()
        return sum(1 for (ok,) in rows if ok)


class Statements:
    """What the app sent through the counting proxy. Give the app ``url`` (asyncpg) or ``pg_url`` (libpq)."""

    def __init__(self, proxy: PgProxy, params: dict[str, Any]) -> None:
        self._proxy = proxy
        auth = quote(str(params.get("user", "")), safe="")
        if params.get("password"):
            auth += ":" + quote(str(params["password"]), safe="")
        where = f"{auth}@127.0.0.1:{proxy.port}/{params.get('dbname', 'postgres')}"
        self.url = f"postgresql+asyncpg://{where}"
        self.pg_url = f"postgresql://{where}"
        self._connections = Connections(
            f"postgresql://{auth}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}"
            f"/{params.get('dbname', 'postgres')}"
        )

    @property
    def count(self) -> int:
        """Statements sent so far (simple Query messages plus extended-protocol Executes)."""
        return self._proxy.count

    @property
    def log(self) -> list[Statement]:
        return self._proxy.statements

    def since(self, mark: int) -> list[Statement]:
        return self._proxy.statements[mark:]

    def settle(self, quiet_s: float = 0.15, timeout: float = 5.0) -> int:
        """The count once nothing arrived for ``quiet_s`` seconds (work after the response included)."""
        return self._proxy.settle(quiet_s, timeout)

    @property
    def open_connections(self) -> int:
        """Connections the app holds open through the proxy right now."""
        return self._proxy.open_connections

    def kill_connections(self) -> int:
        """Terminate the app's server connections (every client of the grade's database but the grader)."""
        return self._connections.terminate()
