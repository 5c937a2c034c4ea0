"""The signup table, the app under a real uvicorn on 127.0.0.1 (in a thread), and polling helpers."""

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import pytest
import uvicorn
from app.models import Base
from sqlalchemy import create_engine

PG_URL = os.environ.get("EVAL_PG_URL", "")
T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()


@contextmanager
def serve(app: object, mail_url: str) -> Iterator[str]:
    """Run the ASGI app (lifespan included) under uvicorn on a free loopback port; yield its base URL.
    Leaving the block is a graceful shutdown (what SIGTERM does); it waits up to 10 s."""
    os.environ["MAIL_URL"] = mail_url
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_config=None, log_level="warning"
    )  # type: ignore[arg-type]
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


def welcome_sent(signup_id: int) -> bool | None:
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute("SELECT welcome_sent FROM signup WHERE id = %s", (signup_id,)).fetchone()
    return row[0] if row else None


def wait_for(check: Callable[[], T], seconds: float) -> T:
    """Call check() until it returns something truthy or ``seconds`` pass; return the last result."""
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found
