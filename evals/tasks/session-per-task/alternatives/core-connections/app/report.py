"""Dashboard numbers with Core: one pooled connection per concurrent query; refresh before returning."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from app.db import Session, engine
from app.models import Order


@dataclass(frozen=True)
class SalesReport:
    customers: int
    orders: int
    revenue: Decimal
    top_customer: str | None


QUERIES = [
    "SELECT count(*) FROM customer",
    "SELECT count(*) FROM orders",
    "SELECT coalesce(sum(total), 0) FROM orders",
    "SELECT c.name FROM customer c JOIN orders o ON o.customer_id = c.id"
    " GROUP BY c.id ORDER BY sum(o.total) DESC LIMIT 1",
]


async def _scalar(sql: str) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql))


async def sales_report() -> SalesReport:
    customers, orders, revenue, top = await asyncio.gather(*(_scalar(sql) for sql in QUERIES))
    return SalesReport(customers, orders, Decimal(revenue), top)


async def record_sale(customer_id: int, total: Decimal) -> Order:
    async with Session() as session:
        order = Order(customer_id=customer_id, total=total)
        session.add(order)
        await session.commit()
        await session.refresh(order)  # load the expired attributes while the session can still await
    return order
