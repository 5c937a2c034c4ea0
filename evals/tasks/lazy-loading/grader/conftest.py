"""The author and book tables, rows added on demand, and a count of the statements the app's engine runs."""

import os

import app.db
import psycopg
import pytest
from app.models import Base
from sqlalchemy import create_engine, event

PG_URL = os.environ.get("EVAL_PG_URL", "")


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()


def authors(upto: int) -> None:
    """Authors 1..upto (names 'author 01'...); author k has k % 3 books, 'book k.1'..."""
    with psycopg.connect(PG_URL) as conn:
        conn.execute("TRUNCATE book, author")
        for k in range(1, upto + 1):
            conn.execute("INSERT INTO author (id, name) VALUES (%s, %s)", (k, f"author {k:02}"))
            for j in range(1, k % 3 + 1):
                conn.execute("INSERT INTO book (title, author_id) VALUES (%s, %s)", (f"book {k:02}.{j}", k))


class Counter:
    def __init__(self) -> None:
        self.count = 0
        event.listen(app.db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1


@pytest.fixture(scope="session")
def statements_run() -> Counter:
    return Counter()
