"""upstream-proxy: statuses, the 1 s timeout, at most 10 in flight over reused connections, clean restarts."""

import time
from concurrent.futures import ThreadPoolExecutor

from starlette.testclient import TestClient


def _client(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def _wait_closed(upstream, within: float = 3.0) -> int:
    deadline = time.monotonic() + within
    while upstream.open_connections() and time.monotonic() < deadline:
        time.sleep(0.02)
    return upstream.open_connections()


def test_statuses_pass_through_or_become_502(app, upstream):
    with _client(app) as client:
        got = {
            path: client.get(f"/inventory/{path}") for path in ("json/5", "status/404", "status/503", "drop")
        }
    ok = got["json/5"]
    assert ok.status_code == 200 and ok.json() == {"n": 5}, (
        f"GET /inventory/json/5 answered {ok.status_code}: {ok.text[:200]}"
    )
    assert got["status/404"].status_code == 404, f"an upstream 404 became {got['status/404'].status_code}"
    assert got["status/503"].status_code == 502, f"an upstream 503 became {got['status/503'].status_code}"
    assert got["drop"].status_code == 502, f"a dropped upstream connection became {got['drop'].status_code}"


def test_no_answer_in_a_second_is_a_504_and_the_call_is_abandoned(app, upstream):
    with _client(app) as client:
        t0 = time.monotonic()
        hung = client.get("/inventory/hang")
        elapsed = time.monotonic() - t0
        quick = client.get("/inventory/slow/0.2")
        upstream.wait_idle(3.0)
    assert hung.status_code == 504, f"GET /inventory/hang answered {hung.status_code} after {elapsed:.1f} s"
    assert 0.8 <= elapsed < 4.0, f"the 504 came after {elapsed:.1f} s, not after about 1 s"
    assert quick.status_code == 200, (
        f"an upstream answering in 0.2 s gave {quick.status_code}: {quick.text[:120]}"
    )
    hangs = upstream.served("/hang")
    assert hangs and hangs[0].client_gone, (
        "after the 504 the request to the upstream was still waiting for it"
    )


def test_at_most_10_in_flight_over_reused_connections(app, upstream):
    with _client(app) as client:
        client.get("/inventory/json/0")  # open the pool
        before = upstream.connections_opened

        def get(i: int) -> int:
            return client.get(f"/inventory/slow/0.15?i={i}").status_code

        with ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(get, range(24)))
        opened = upstream.connections_opened - before + 1
        again = [client.get(f"/inventory/json/{i}").status_code for i in range(5)]
        reopened = upstream.connections_opened - before + 1 - opened
    peak = upstream.max_concurrent("/slow/")
    assert peak <= 10, f"{peak} requests were in flight to the upstream at once (at most 10 allowed)"
    assert opened <= 10, f"24 requests opened {opened} connections to the upstream (a new one per call?)"
    assert codes == [200] * 24, f"24 concurrent requests answered {sorted(codes)}"
    assert again == [200] * 5 and reopened == 0, (
        f"5 sequential calls after that opened {reopened} more connections: the idle ones were not reused"
    )


def test_restarts_leave_nothing_open(app, upstream):
    for run in (1, 2):
        with _client(app) as client:
            response = client.get("/inventory/json/1")
            assert response.status_code == 200, (
                f"GET /inventory/json/1 in the app's start number {run} answered {response.status_code}:"
                f" {response.text[:200]}"
            )
        left = _wait_closed(upstream)
        assert left == 0, f"{left} connection(s) to the upstream still open after stop number {run}"
