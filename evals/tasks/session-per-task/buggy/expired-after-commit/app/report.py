"""Dashboard numbers."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select

from app.db import Session
from app.models import Customer, Order


@dataclass(frozen=True)
class SalesReport:
    customers: int
    orders: int
    revenue: Decimal
    top_customer: str | None


async def _scalar(statement: Select[Any]) -> Any:
    async with Session() as session:
        return await session.scalar(statement)


async def sales_report() -> SalesReport:
    top = (
        select(Customer.name)
        .join(Order, Order.customer_id == Customer.id)
        .group_by(Customer.id)
        .order_by(func.sum(Order.total).desc())
        .limit(1)
    )
    async with asyncio.TaskGroup() as tg:
        customers = tg.create_task(_scalar(select(func.count()).select_from(Customer)))
        orders = tg.create_task(_scalar(select(func.count()).select_from(Order)))
        revenue = tg.create_task(_scalar(select(func.coalesce(func.sum(Order.total), 0))))
        top_customer = tg.create_task(_scalar(top))
    return SalesReport(customers.result(), orders.result(), Decimal(revenue.result()), top_customer.result())


async def record_sale(customer_id: int, total: Decimal) -> Order:
    async with Session() as session:
        order = Order(customer_id=customer_id, total=total)
        session.add(order)
        await session.commit()  # expire_on_commit=True (the default) expires every attribute here
    return order
