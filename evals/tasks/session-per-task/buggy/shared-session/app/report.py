"""Dashboard numbers."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from app.db import Session
from app.models import Customer, Order


@dataclass(frozen=True)
class SalesReport:
    customers: int
    orders: int
    revenue: Decimal
    top_customer: str | None


async def sales_report() -> SalesReport:
    top = (
        select(Customer.name)
        .join(Order, Order.customer_id == Customer.id)
        .group_by(Customer.id)
        .order_by(func.sum(Order.total).desc())
        .limit(1)
    )
    async with Session() as session:  # one session for all four concurrent queries
        customers, orders, revenue, top_customer = await asyncio.gather(
            session.scalar(select(func.count()).select_from(Customer)),
            session.scalar(select(func.count()).select_from(Order)),
            session.scalar(select(func.coalesce(func.sum(Order.total), 0))),
            session.scalar(top),
        )
    return SalesReport(customers, orders, Decimal(revenue), top_customer)


async def record_sale(customer_id: int, total: Decimal) -> Order:
    async with Session.begin() as session:
        order = Order(customer_id=customer_id, total=total)
        session.add(order)
    return order
