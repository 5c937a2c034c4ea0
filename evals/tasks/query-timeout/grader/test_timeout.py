"""Grades the search timeout: 503 within the budget, a healthy app after, and no query outliving the app."""

import threading
import time

import httpx2
import psycopg
from conftest import PG_URL, poll, waiting_on_lock


def test_stuck_search_answers_503_within_the_budget(app_url):
    with psycopg.connect(PG_URL) as locker:
        locker.execute("LOCK TABLE product IN ACCESS EXCLUSIVE MODE")  # the query gets stuck
        start = time.monotonic()
        try:
            response = httpx2.get(f"{app_url}/search", params={"q": "item"}, timeout=3)
        except httpx2.TimeoutException:
            raise AssertionError("GET /search had no answer after 3 s while the database was stuck") from None
        took = time.monotonic() - start
        with psycopg.connect(PG_URL, autocommit=True) as watcher:
            left = poll(lambda: waiting_on_lock(watcher, locker.info.backend_pid), 1.0)
    assert response.status_code == 503, f"a stuck search answered {response.status_code} after {took:.1f} s"
    assert took < 2.5, f"a stuck search took {took:.1f} s to answer 503 (budget about 1 s)"
    assert not left, f"1 s after the 503 the search was still waiting on the database (backend pids {left})"
    with psycopg.connect(PG_URL) as conn:
        logged = conn.execute("SELECT count(*) FROM search_log WHERE q = 'item' AND timed_out").fetchone()[0]
    assert logged == 1, f"the stuck search was recorded {logged} times in search_log as timed out"


def test_search_works_after_a_timeout(app_url):
    response = httpx2.get(f"{app_url}/search", params={"q": "item 2"}, timeout=5)
    names = [row.get("name") for row in response.json()] if response.status_code == 200 else response.text
    assert response.status_code == 200 and "item 2" in names, (
        f"GET /search answered {response.status_code}: {names}"
    )


def test_query_of_a_killed_process_stops_on_the_server(app_url, relay):
    def search() -> None:
        try:
            httpx2.get(f"{app_url}/search", params={"q": "item"}, timeout=5)
        except httpx2.HTTPError:
            pass  # the process is killed under it

    with psycopg.connect(PG_URL) as locker, psycopg.connect(PG_URL, autocommit=True) as watcher:
        locker.execute("LOCK TABLE product IN ACCESS EXCLUSIVE MODE")
        threading.Thread(target=search, daemon=True).start()
        stuck = not poll(lambda: not waiting_on_lock(watcher, locker.info.backend_pid), 3.0)
        assert stuck, "the search never reached the database"
        relay.cut()  # the process is killed: its sockets close, no cancel request is sent
        left = poll(lambda: waiting_on_lock(watcher, locker.info.backend_pid), 2.0)
    assert not left, (
        f"2 s after the app process was gone its query was still running on the server (pids {left})"
    )
