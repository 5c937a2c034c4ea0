"""Plain sync tests: TestClient runs the lifespan on its own loop; psycopg cleans the table."""

import os
from collections.abc import Iterator

import psycopg
import pytest
from app.main import app
from fastapi.testclient import TestClient

LIBPQ_URL = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
def db() -> Iterator[psycopg.Connection]:
    with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
        conn.execute("DELETE FROM items")
        yield conn


@pytest.fixture
def client(db: psycopg.Connection) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client
