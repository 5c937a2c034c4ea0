"""Session fixtures for the runtime tests: one real PostgreSQL server and one upstream for the whole session.

Test modules load this as a plugin (``pytest_plugins = ["runtime_fixtures"]``), so the fixtures are shared by
all of them rather than started once per module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fenceproof.forkserver import Forkserver
from fenceproof.postgres import Server, open_server
from fenceproof.upstream import Upstream


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The run's server: DATABASE_URL's if set, else a throwaway local cluster."""
    with open_server(os.environ) as server:
        yield server


@pytest.fixture(scope="session")
def template(pg_server: Server) -> str:
    return pg_server.create_template()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="session")
def forkserver() -> Iterator[Forkserver]:
    with Forkserver() as server:
        yield server
