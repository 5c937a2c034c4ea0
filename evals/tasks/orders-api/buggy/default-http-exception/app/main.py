"""Orders service: SQLAlchemy 2.1 async, one engine made and disposed in lifespan, commit in the endpoint."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import ForeignKey, Numeric, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class NotFound(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_async_engine(
        os.environ["DATABASE_URL"], pool_size=5, max_overflow=5, pool_timeout=5, pool_pre_ping=True
    )
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.exception_handler(NotFound)
async def not_found(request: Request, error: NotFound) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, status_code=404)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


class OrderIn(BaseModel):
    customer_id: int
    total: Decimal


class OrderOut(BaseModel):
    id: int
    customer_id: int
    total: Decimal


class OrderLine(BaseModel):
    id: int
    total: Decimal


@app.post("/orders", status_code=201)
async def create_order(body: OrderIn, session: SessionDep) -> OrderOut:
    if await session.get(Customer, body.customer_id) is None:
        raise NotFound(f"customer {body.customer_id} does not exist")
    order = Order(customer_id=body.customer_id, total=body.total)
    session.add(order)
    await session.commit()  # before the response: a failed commit is a 500, not a 201
    return OrderOut(id=order.id, customer_id=order.customer_id, total=order.total)


@app.get("/customers/{customer_id}/orders")
async def customer_orders(customer_id: int, session: SessionDep) -> list[OrderLine]:
    if await session.get(Customer, customer_id) is None:
        raise NotFound(f"customer {customer_id} does not exist")
    rows = await session.execute(
        select(Order.id, Order.total).where(Order.customer_id == customer_id).order_by(Order.id)
    )
    return [OrderLine(id=row.id, total=row.total) for row in rows]
