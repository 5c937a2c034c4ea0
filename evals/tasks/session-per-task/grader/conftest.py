"""Schema and seed rows for the grade's database, made once with a sync engine of the grader's own."""

import os

import pytest
from app.models import Base
from sqlalchemy import create_engine, text

SEED = """
INSERT INTO customer (id, name) VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy');
INSERT INTO orders (customer_id, total) VALUES (1, 10.00), (1, 5.50), (2, 30.25), (2, 1.00), (3, 2.00);
SELECT setval(pg_get_serial_sequence('orders', 'id'), 100);
"""


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    engine = create_engine(os.environ["EVAL_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        Base.metadata.create_all(conn)
        conn.execute(text(SEED))
    engine.dispose()
