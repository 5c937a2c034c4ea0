"""request-id: the header on every response (500s too), the id on every record, the access line, concurrency."""

import asyncio
import re

import httpx2
from starlette.testclient import TestClient


def _client(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def _ids(records) -> list[object]:
    return [getattr(r, "request_id", "<missing>") for r in records]


def test_a_new_id_on_the_response_and_on_every_record(app, logs):
    with _client(app) as client:
        response = client.get("/orders/7", headers={"X-User": "alice"})
    assert response.status_code == 200, (
        f"GET /orders/7 answered {response.status_code}: {response.text[:200]}"
    )
    rid = response.headers.get("x-request-id")
    assert rid and re.fullmatch(r"[A-Za-z0-9-]{1,64}", rid), f"GET /orders/7 answered X-Request-ID {rid!r}"
    records = logs.of("app.orders")
    assert len(records) == 2 and _ids(records) == [rid, rid], (
        f"the endpoint's 2 log records carry request_id {_ids(records)}, the response {rid!r}"
    )


def test_a_sane_client_id_is_reused_and_a_bad_one_replaced(app, logs):
    with _client(app) as client:
        kept = client.get("/orders/1", headers={"X-Request-ID": "abc-123"})
        bad = client.get("/orders/2", headers={"X-Request-ID": "x" * 65})
        odd = client.get("/orders/3", headers={"X-Request-ID": "a b;c"})
    assert kept.headers.get("x-request-id") == "abc-123", (
        f"the client sent X-Request-ID abc-123 and got back {kept.headers.get('x-request-id')!r}"
    )
    for response, sent in ((bad, "65 x's"), (odd, "'a b;c'")):
        got = response.headers.get("x-request-id", "")
        assert re.fullmatch(r"[A-Za-z0-9-]{1,64}", got), f"the client sent {sent} and got back {got!r}"
    assert _ids(logs.of("app.orders"))[:2] == ["abc-123", "abc-123"], (
        f"records of the request with id abc-123 carry {_ids(logs.of('app.orders'))[:2]}"
    )


def test_a_crash_is_a_500_with_the_id_and_an_access_line(app, logs):
    with _client(app) as client:
        response = client.get("/crash", headers={"X-Request-ID": "crash-1", "X-User": "bob"})
    assert response.status_code == 500, f"GET /crash answered {response.status_code}"
    assert response.headers.get("x-request-id") == "crash-1", (
        f"the 500 of GET /crash has X-Request-ID {response.headers.get('x-request-id')!r}, not 'crash-1'"
        f" (headers: {', '.join(response.headers)})"
    )
    warned = logs.of("app.orders")
    assert _ids(warned) == ["crash-1"], (
        f"the record logged before the crash carries request_id {_ids(warned)}"
    )
    access = [r.getMessage() for r in logs.of("app.access")]
    assert access == ["GET /crash 500 bob"], f"the access lines of the crash: {access}"
    assert _ids(logs.of("app.access")) == ["crash-1"], (
        f"the crash's access line carries request_id {_ids(logs.of('app.access'))}"
    )


def test_the_access_line_names_the_user_the_endpoint_set(app, logs):
    with _client(app) as client:
        client.get("/orders/7", headers={"X-User": "alice", "X-Request-ID": "r-1"})
        client.get("/orders/8", headers={"X-Request-ID": "r-2"})
    records = logs.of("app.access")
    lines = [r.getMessage() for r in records]
    assert lines == ["GET /orders/7 200 alice", "GET /orders/8 200 -"], f"the access lines were {lines}"
    assert _ids(records) == ["r-1", "r-2"], f"the access lines carry request_id {_ids(records)}"


def test_concurrent_requests_keep_their_own_ids(app, logs):
    async def main() -> list[tuple[int, str]]:
        # One event loop, 16 requests started together: every one is inside the app before any finishes.
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:

            async def get(i: int) -> tuple[int, str]:
                headers = {"X-Request-ID": f"req-{i}", "X-User": f"u{i}"}
                response = await client.get(f"/orders/{i}", headers=headers)
                return i, response.headers.get("x-request-id", "")

            return list(await asyncio.gather(*(get(i) for i in range(16))))

    answered = asyncio.run(main())
    wrong = [f"/orders/{i} got {rid!r}" for i, rid in answered if rid != f"req-{i}"]
    assert not wrong, f"responses with another request's id: {'; '.join(wrong[:4])}"
    mixed = [
        f"'{r.getMessage()}' has {getattr(r, 'request_id', None)!r}"
        for r in logs.of("app.orders")
        if getattr(r, "request_id", None) != f"req-{r.args[0]}"
    ]
    assert not mixed, f"{len(mixed)} of 32 records carry another request's id: {'; '.join(mixed[:3])}"
    access = sorted(r.getMessage() for r in logs.of("app.access"))
    want = sorted(f"GET /orders/{i} 200 u{i}" for i in range(16))
    assert access == want, (
        f"access lines under concurrency: {access[:4]}... (expected one per request with its user)"
    )
