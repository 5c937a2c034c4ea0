"""The orders-api grader's setup: the schema (with a commit the grader can make fail) and a fresh app."""

import importlib
import sys
from typing import Any

import psycopg
import pytest

FAILING_TOTAL = "13.13"  # an order with this total passes INSERT and fails at COMMIT

SCHEMA = f"""
SET lock_timeout = '5s';
DROP TABLE IF EXISTS orders, customers CASCADE;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    total numeric(10, 2) NOT NULL
);
CREATE OR REPLACE FUNCTION eval_refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.total = {FAILING_TOTAL} THEN
        RAISE EXCEPTION 'commit refused by the grader (deferred constraint trigger)';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER orders_refuse_commit AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION eval_refuse_commit();
INSERT INTO customers (name) VALUES ('ada'), ('bob'), ('cy');
INSERT INTO orders (customer_id, total) VALUES (1, 10.50);
INSERT INTO orders (customer_id, total) SELECT 2, 1 + n / 100.0 FROM generate_series(1, 6) AS n;
"""
ADA, BOB, CY = 1, 2, 3  # 1 order, 6 orders, none
UNKNOWN = 999


@pytest.fixture
def db(pg_url: str, server_connections: Any) -> Any:
    """Fresh tables and rows; returns a function running one SQL query on the grade's database."""
    server_connections.terminate()  # whatever an earlier test's app left behind
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)

    def query(sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return conn.execute(sql, args).fetchall()

    return query


@pytest.fixture
def app(db: Any, statements: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The solver's app, imported afresh with DATABASE_URL pointing through the statement counter."""
    monkeypatch.setenv("DATABASE_URL", statements.url)
    for name in [n for n in sys.modules if n == "app" or n.startswith("app.")]:
        del sys.modules[name]
    return importlib.import_module("app.main").app
