"""Helpers for the runtime tests: fake blocks and direct looks at the server."""

from __future__ import annotations

from pathlib import Path

import psycopg

from fenceproof.models import Block
from fenceproof.postgres import Server

DOC_REL = "skills/python-backend/rules/example.md"


def block(line: int, code: str, lang: str = "python", **attrs: str) -> Block:
    """A block of the fake document ``DOC_REL`` whose opening fence is at ``line``."""
    return Block(
        path=Path("/nonexistent") / DOC_REL, rel=DOC_REL, line=line, lang=lang, code=code, attrs=attrs
    )


def superuser_conninfo(server: Server, dbname: str = "postgres") -> str:
    """Direct access for tests that set up or inspect what the engine must not touch (not through the API)."""
    return psycopg.conninfo.make_conninfo(**{**server.params, "dbname": dbname})


def database_names(server: Server) -> set[str]:
    with psycopg.connect(superuser_conninfo(server), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
