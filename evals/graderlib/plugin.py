"""The pytest plugin every grader runs with (``-p graderlib.plugin``): fixtures and the check report.

Fixtures: ``database_url``, ``pg_url``, ``solution_dir``, ``upstream``, ``statements``,
``server_connections``. The environment comes from ``fenceproof eval grade``: ``DATABASE_URL``
(postgresql+asyncpg://, the grade's own database), ``EVAL_PG_URL`` (postgresql://, the same database),
``EVAL_SOLUTION_DIR`` and ``EVAL_RESULTS`` (where the check lines are written, one JSON object a line).
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graderlib.pgproxy import PgProxy
from graderlib.postgres import Connections, Statements, libpq_params
from graderlib.upstream import Upstream


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run graders with `fenceproof eval grade`", pytrace=False)
    return value


@pytest.fixture
def database_url() -> str:
    """postgresql+asyncpg:// URL of the grade's database."""
    return _env("DATABASE_URL")


@pytest.fixture
def pg_url() -> str:
    """postgresql:// (libpq) URL of the same database, for psycopg setup and inspection."""
    return _env("EVAL_PG_URL")


@pytest.fixture
def solution_dir() -> Path:
    """The scratch copy of the solution being graded (also the working directory)."""
    return Path(_env("EVAL_SOLUTION_DIR"))


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A loopback HTTP upstream with fault routes and a record of what it served."""
    with Upstream() as server:
        yield server


@pytest.fixture
def statements(pg_url: str) -> Iterator[Statements]:
    """A counting proxy in front of the grade's database: give the app ``statements.url``."""
    params = libpq_params(pg_url)
    proxy = PgProxy(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    try:
        yield Statements(proxy, params)
    finally:
        proxy.close()


@pytest.fixture
def server_connections(pg_url: str) -> Connections:
    """``server_connections(within=0.0)``: client connections open on the grade's database (not ours);
    with ``within`` > 0 it waits up to that many seconds for them to go, and returns what is left."""
    return Connections(pg_url)


# -- the report: one line per test, with the assertion's own words ------------------------------------


def _message(excinfo: pytest.ExceptionInfo[BaseException], solution: str | None) -> str:
    error = excinfo.value
    if isinstance(error, AssertionError):
        text = str(error).split("\nassert ", 1)[0].strip() or "assertion failed"
    elif isinstance(error, pytest.fail.Exception):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}".strip()
        if solution:
            frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(solution)]
            if frames:
                text += f" (at {Path(frames[-1].filename).relative_to(solution)}:{frames[-1].lineno})"
    lines = text.splitlines() or ["(no message)"]
    first = lines[0] if len(lines) == 1 else " ".join(line.strip() for line in lines[:4])
    return first[:400]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    path = os.environ.get("EVAL_RESULTS")
    if not path:
        return
    if report.when != "call" and not report.failed:
        return
    entry: dict[str, Any] = {"test": item.name, "when": report.when, "outcome": report.outcome}
    if report.failed and call.excinfo is not None:
        entry["message"] = _message(call.excinfo, os.environ.get("EVAL_SOLUTION_DIR"))
        doc = getattr(getattr(item, "function", None), "__doc__", None)
        if doc:
            entry["doc"] = doc.strip().splitlines()[0]
    if report.skipped:
        entry["message"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped"
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    path = os.environ.get("EVAL_RESULTS")
    if path and report.failed:
        text = str(report.longrepr).strip().splitlines()
        tail = next((line for line in reversed(text) if line.startswith("E ")), text[-1] if text else "")
        entry = {
            "test": f"collect {report.nodeid}",
            "when": "collect",
            "outcome": "failed",
            "message": tail.lstrip("E ").strip()[:400],
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
