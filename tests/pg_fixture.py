"""One throwaway PostgreSQL cluster for the engine's end-to-end tests; import ``pg_url`` into a test module."""

from collections.abc import Iterator

import pytest

from fenceproof.postgres import open_server


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A DATABASE_URL for the cluster's maintenance database: the engine under test makes its own databases."""
    with open_server({}) as server:
        yield server.async_url("postgres")
