"""Each check starts from an empty public schema; Alembic is driven through its command API (as the CLI)."""

import os
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory


@pytest.fixture(autouse=True)
def empty_schema() -> None:
    with psycopg.connect(os.environ["EVAL_PG_URL"], autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def alembic_config(solution_dir: Path) -> Config:
    return Config(str(solution_dir / "alembic.ini"))


@pytest.fixture
def head(alembic_config: Config) -> str:
    heads = ScriptDirectory.from_config(alembic_config).get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {heads}"
    return heads[0]


def columns(pg_url: str, table: str) -> dict[str, tuple[str, int | None, str]]:
    """{column: (data_type, character_maximum_length, is_nullable)} of a table in public."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable"
            " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        ).fetchall()
    return {name: (kind, length, nullable) for name, kind, length, nullable in rows}
