"""The account table, made once; each check sets the balances it starts from."""

import os

import psycopg
import pytest
from app.models import Base
from sqlalchemy import create_engine

PG_URL = os.environ.get("EVAL_PG_URL", "")


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()


def set_balance(account_id: int, balance: int) -> None:
    with psycopg.connect(PG_URL) as conn:
        conn.execute(
            "INSERT INTO account (id, balance) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET balance = %s",
            (account_id, balance, balance),
        )


def balance_of(account_id: int) -> int:
    with psycopg.connect(PG_URL) as conn:
        return conn.execute("SELECT balance FROM account WHERE id = %s", (account_id,)).fetchone()[0]
