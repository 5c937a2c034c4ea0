"""orders-api: create, 404s as problem+json, a failing commit, statements per listing, concurrency, shutdown."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from conftest import ADA, BOB, CY, FAILING_TOTAL, UNKNOWN
from starlette.testclient import TestClient


def _client(app):
    return TestClient(app, raise_server_exceptions=False)


def _is_problem(response) -> bool:
    return response.headers.get("content-type", "").startswith("application/problem+json")


def _orders_of(db, customer: int) -> int:
    return db("SELECT count(*) FROM orders WHERE customer_id = %s", customer)[0][0]


def test_create_order_answers_201_after_the_commit(app, db):
    with _client(app) as client:
        response = client.post("/orders", json={"customer_id": CY, "total": 12.5})
        assert response.status_code == 201, (
            f"POST /orders answered {response.status_code}: {response.text[:200]}"
        )
        body = response.json()
        assert set(body) >= {"id", "customer_id", "total"}, f"POST /orders answered {body!r}"
        assert body["customer_id"] == CY and Decimal(str(body["total"])) == Decimal("12.50"), (
            f"POST /orders answered {body!r} for customer {CY}, total 12.5"
        )
        saved = db("SELECT customer_id, total FROM orders WHERE id = %s", body["id"])
        assert saved == [(CY, Decimal("12.50"))], f"order {body['id']} in the database: {saved!r}"


def test_unknown_customer_is_a_problem_404_and_writes_nothing(app, db):
    before = db("SELECT count(*) FROM orders")[0][0]
    with _client(app) as client:
        response = client.post("/orders", json={"customer_id": UNKNOWN, "total": 5})
        listing = client.get(f"/customers/{UNKNOWN}/orders")
    after = db("SELECT count(*) FROM orders")[0][0]
    assert response.status_code == 404 and _is_problem(response), (
        f"POST /orders for an unknown customer answered {response.status_code}"
        f" {response.headers.get('content-type')}: {response.text[:200]}"
    )
    assert after == before, f"an order for an unknown customer was written ({before} -> {after} orders)"
    assert listing.status_code == 404 and _is_problem(listing), (
        f"GET /customers/{UNKNOWN}/orders answered {listing.status_code}"
        f" {listing.headers.get('content-type')}: {listing.text[:200]}"
    )


def test_a_failing_commit_is_never_a_2xx(app, db):
    with _client(app) as client:
        failed = client.post("/orders", json={"customer_id": ADA, "total": float(FAILING_TOTAL)})
        written = db("SELECT count(*) FROM orders WHERE total = %s", Decimal(FAILING_TOTAL))[0][0]
        assert not 200 <= failed.status_code < 300, (
            f"the commit failed, yet POST /orders answered {failed.status_code}: {failed.text[:200]}"
            f" (orders saved: {written})"
        )
        assert failed.status_code >= 500 or failed.status_code == 409, (
            f"the commit failed and POST /orders answered {failed.status_code}, not a 5xx or 409"
        )
        again = client.post("/orders", json={"customer_id": ADA, "total": 7})
        assert again.status_code == 201, (
            f"after a failed commit the next POST /orders answered {again.status_code}: {again.text[:200]}"
        )


def test_listing_takes_the_same_statements_for_any_number_of_orders(app, statements):
    counts: dict[int, int] = {}
    sent: dict[int, list[str]] = {}
    with _client(app) as client:
        for customer in (CY, ADA, BOB):
            best = None
            for _ in range(1 if customer == CY else 2):  # CY warms up; the smaller of two for the others
                mark = statements.settle(quiet_s=0.05)
                response = client.get(f"/customers/{customer}/orders")
                assert response.status_code == 200, (
                    f"GET /customers/{customer}/orders answered {response.status_code}: {response.text[:200]}"
                )
                spent = statements.settle(quiet_s=0.05) - mark
                if best is None or spent < best:
                    best, sent[customer] = (
                        spent,
                        [" ".join(x.sql.split())[:70] for x in statements.since(mark)],
                    )
            counts[customer] = best
            body = response.json()
            if customer == BOB:
                totals = sorted(Decimal(str(o["total"])) for o in body)
                want = [Decimal("1") + Decimal(n) / 100 for n in range(1, 7)]
                assert totals == want and all(set(o) >= {"id", "total"} for o in body), (
                    f"GET /customers/{BOB}/orders answered {body!r}, expected 6 orders with totals 1.01..1.06"
                )
            if customer == ADA:
                assert [Decimal(str(o["total"])) for o in body] == [Decimal("10.50")], (
                    f"GET /customers/{ADA}/orders answered {body!r}, expected one order of 10.50"
                )
    extra = Counter(sent[BOB]) - Counter(sent[ADA])
    repeated = ", ".join(f"{n} x {sql!r}" for sql, n in extra.most_common(2))
    assert counts[ADA] == counts[BOB], (
        f"the statement count grows with the number of orders: {counts[ADA]} statements for 1 order,"
        f" {counts[BOB]} for 6 orders (extra: {repeated or 'none'})"
    )


def test_concurrent_orders_all_succeed(app, db):
    with _client(app) as client:

        def post(i: int):
            return client.post("/orders", json={"customer_id": CY, "total": 100 + i})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(post, range(16)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 16, f"16 concurrent POST /orders answered {codes}: {responses[0].text[:120]}"
    assert _orders_of(db, CY) == 16, f"16 orders answered 201, {_orders_of(db, CY)} are in the database"


def test_no_connection_is_left_open_after_shutdown(app, server_connections, statements):
    with _client(app) as client:
        for customer in (ADA, BOB):
            client.get(f"/customers/{customer}/orders")
        client.post("/orders", json={"customer_id": ADA, "total": 3})
        during = len(server_connections())
    left = server_connections(within=3.0)
    assert during > 0, "the app never connected to the database"
    assert not left, (
        f"{len(left)} connection(s) of the app still open on the server after the lifespan ended"
        f" (states: {', '.join(sorted(str(c['state']) for c in left))})"
    )


def test_a_second_start_in_the_same_process_works(app):
    for start in (
        1,
        2,
    ):  # each TestClient runs the app on an event loop of its own, as a restart or a test does
        with _client(app) as client:
            response = client.get(f"/customers/{BOB}/orders")
        assert response.status_code == 200, (
            f"after start number {start} in the same process, GET /customers/{BOB}/orders answered"
            f" {response.status_code}: {response.text[:200]}"
        )
