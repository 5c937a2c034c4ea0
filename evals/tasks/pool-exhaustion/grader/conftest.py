"""The item table, a real uvicorn on 127.0.0.1 in a thread, and a count of the app's server connections."""

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import uvicorn
from app.models import Base
from sqlalchemy import create_engine


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    engine = create_engine(os.environ["EVAL_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()
    with psycopg.connect(os.environ["EVAL_PG_URL"]) as conn:
        conn.execute("INSERT INTO item (id, name) SELECT g, 'item ' || g FROM generate_series(1, 20) g")


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Run the ASGI app (lifespan included) under uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="critical")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="eval-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start (lifespan failed?)"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def app_connections(conn: psycopg.Connection, *ours: int) -> int:
    """Client connections on the grade's database, other than this one and the grader's ``ours``."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
        (list(ours),),
    ).fetchone()
    return int(row[0]) if row else 0
