"""The job table, made once; each check refills it."""

import os

import psycopg
import pytest
from app.models import Base
from sqlalchemy import create_engine


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    engine = create_engine(os.environ["EVAL_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()


def fill(count: int) -> None:
    with psycopg.connect(os.environ["EVAL_PG_URL"]) as conn:
        conn.execute("TRUNCATE job")
        conn.execute(
            "INSERT INTO job (id, payload, status) SELECT g, 'payload ' || g, 'pending' FROM generate_series(1, %s) g",
            (count,),
        )


def statuses() -> dict[str, int]:
    with psycopg.connect(os.environ["EVAL_PG_URL"]) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM job GROUP BY status").fetchall())
