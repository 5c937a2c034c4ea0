"""One throwaway PostgreSQL cluster for the engine's end-to-end tests; import ``pg_url`` into a test module."""

from collections.abc import Iterator

import pytest

from fenceproof.postgres import open_server


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A DATABASE_URL for a database of a throwaway cluster; the engine under test makes its own beside it."""
    with open_server({}) as server:
        yield server.async_url(server.create_database())
