"""Dashboard numbers."""

from dataclasses import dataclass
from decimal import Decimal

from app.models import Order


@dataclass(frozen=True)
class SalesReport:
    customers: int
    orders: int
    revenue: Decimal
    top_customer: str | None


async def sales_report() -> SalesReport:
    raise NotImplementedError


async def record_sale(customer_id: int, total: Decimal) -> Order:
    raise NotImplementedError
