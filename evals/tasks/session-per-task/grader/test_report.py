"""Grades app.report: the numbers, that the queries really run at once, and an order readable after commit."""

import asyncio
import time
from decimal import Decimal

import app.db
import psycopg
from app.report import record_sale, sales_report

WAITING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


async def disposed(coro):
    """Run one scenario, then close the app's pool (each test runs on its own event loop)."""
    try:
        return await coro
    finally:
        await app.db.engine.dispose()


def test_report_numbers():
    report = asyncio.run(disposed(sales_report()))
    got = (report.customers, report.orders, report.revenue, report.top_customer)
    assert got == (3, 5, Decimal("48.75"), "Bob"), f"sales_report() returned {report}"


def test_report_queries_run_at_the_same_time(pg_url):
    async def scenario() -> int:
        async with await psycopg.AsyncConnection.connect(pg_url) as locker:
            await locker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # every orders query waits
            report = asyncio.create_task(sales_report())
            peak, deadline = 0, time.monotonic() + 1.0
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as watcher:
                while time.monotonic() < deadline and peak < 3 and not report.done():
                    peak = max(peak, (await (await watcher.execute(WAITING)).fetchone())[0])
                    await asyncio.sleep(0.02)
            await locker.commit()  # release the lock
        await asyncio.wait_for(report, 5)
        return peak

    peak = asyncio.run(disposed(scenario()))
    assert peak >= 2, (
        f"with the orders table locked, {peak} report query waited at a time: they ran one by one"
    )


def test_recorded_sale_is_readable_and_committed(pg_url):
    async def scenario() -> tuple[object, ...]:
        order = await record_sale(2, Decimal("7.25"))
        return order.id, order.total, order.created_at

    try:
        order_id, total, created_at = asyncio.run(disposed(scenario()))
    except Exception as exc:
        raise AssertionError(
            f"reading the order record_sale() returned raised {type(exc).__name__}: {exc}"
        ) from exc
    assert total == Decimal("7.25") and created_at is not None, (
        f"record_sale returned total={total}, created_at={created_at}"
    )
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT total FROM orders WHERE id = %s", (order_id,)).fetchone()
    assert row == (Decimal("7.25"),), f"order {order_id} is not in the database after record_sale(): {row}"
