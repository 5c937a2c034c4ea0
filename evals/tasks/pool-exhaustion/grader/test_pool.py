"""Grades the pool: the fleet budget, fast 503s when it is exhausted, and recovery from dropped connections."""

import asyncio
import os
import time

import httpx2
import psycopg
import pytest
from app.main import app
from conftest import app_connections, serve

BURST, LOCKED_S, BUDGET = 12, 1.5, 7  # (100 - 3 - 10) // (3 replicas x 4 workers) = 7 per process


@pytest.fixture(scope="module")
def burst() -> dict[str, object]:
    """12 concurrent GET /items/1 while the item table is locked (a stalled database) for 1.5 s."""
    with serve(app) as url, psycopg.connect(os.environ["EVAL_PG_URL"]) as locker:
        watcher = psycopg.connect(os.environ["EVAL_PG_URL"], autocommit=True)
        locker.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
        ours = (locker.info.backend_pid, watcher.info.backend_pid)

        async def scenario() -> dict[str, object]:
            answers: list[tuple[int, float]] = []
            start = time.monotonic()
            async with httpx2.AsyncClient(base_url=url, timeout=10.0) as client:

                async def one() -> None:
                    response = await client.get("/items/1")
                    answers.append((response.status_code, time.monotonic() - start))

                calls = [asyncio.create_task(one()) for _ in range(BURST)]
                peak = 0
                while time.monotonic() - start < LOCKED_S:
                    peak = max(peak, await asyncio.to_thread(app_connections, watcher, *ours))
                    await asyncio.sleep(0.05)
                locker.commit()  # the database recovers
                released = time.monotonic() - start
                await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 8)
            return {"peak": peak, "answers": sorted(answers, key=lambda a: a[1]), "released": released}

        try:
            return asyncio.run(scenario())
        finally:
            watcher.close()


def test_pool_fits_the_fleet_budget(burst):
    assert burst["peak"] <= BUDGET, (
        f"one process held {burst['peak']} connections at once; 3 replicas x 4 workers leave {BUDGET} each"
    )
    assert burst["peak"] >= 4, (
        f"{BURST} concurrent requests got only {burst['peak']} connections; the budget allows {BUDGET}"
    )


def test_exhausted_pool_answers_503_quickly(burst):
    answers, released = burst["answers"], burst["released"]
    early = [status for status, at in answers if at < released]
    assert 503 in early, (
        f"{BURST} requests with the database stalled for {LOCKED_S} s: none got 503 before it recovered"
        f" (answers {[status for status, _ in answers]})"
    )
    others = {status for status, _ in answers} - {200, 503}
    assert not others, f"requests were answered {sorted(others)} (expected 200 or 503): {answers}"


def test_request_after_a_failover_works(server_connections):
    with serve(app) as url, httpx2.Client(base_url=url, timeout=10.0) as client:
        first = client.get("/items/2")
        killed = server_connections.terminate()  # the database restarts: every pooled connection is dead
        after = client.get("/items/2")
    assert first.status_code == 200, f"GET /items/2 answered {first.status_code}: {first.text}"
    assert after.status_code == 200, (
        f"after the server dropped the app's {killed} connection(s), GET /items/2 answered {after.status_code}"
    )
