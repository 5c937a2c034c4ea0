"""Orders service with SQLAlchemy Core, a module engine disposed at shutdown, and a transactional dependency
whose scope is the endpoint function (it commits before the response is sent)."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, condecimal
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Numeric, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

metadata = MetaData()
customers = Table("customers", metadata, Column("id", Integer, primary_key=True), Column("name", Text))
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id")),
    Column("total", Numeric(10, 2)),
)

engine = create_async_engine(os.environ["DATABASE_URL"], pool_size=3, max_overflow=2, pool_timeout=5)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.exception_handler(HTTPException)
async def problem_details(request: Request, error: HTTPException) -> JSONResponse:
    body = {"title": str(error.detail), "status": error.status_code}
    return JSONResponse(body, status_code=error.status_code, media_type="application/problem+json")


@app.exception_handler(RequestValidationError)
async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    body = {"title": "invalid request", "status": 422, "errors": error.errors()}
    return JSONResponse(body, status_code=422, media_type="application/problem+json")


async def transaction() -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as conn:  # commits when the endpoint returned, rolls back when it raised
        yield conn


# scope="function": the exit code runs before the response is sent, so a failed COMMIT is a 500.
Tx = Annotated[AsyncConnection, Depends(transaction, scope="function")]


class OrderRequest(BaseModel):
    customer_id: int
    total: condecimal(max_digits=10, decimal_places=2)  # type: ignore[valid-type]


@app.post("/orders", status_code=201)
async def create_order(order: OrderRequest, conn: Tx) -> dict[str, object]:
    if (await conn.scalar(select(customers.c.id).where(customers.c.id == order.customer_id))) is None:
        raise HTTPException(404, f"no customer {order.customer_id}")
    row = (
        await conn.execute(
            insert(orders)
            .values(customer_id=order.customer_id, total=order.total)
            .returning(orders.c.id, orders.c.customer_id, orders.c.total)
        )
    ).one()
    return {"id": row.id, "customer_id": row.customer_id, "total": float(row.total)}


@app.get("/customers/{customer_id}/orders")
async def customer_orders(customer_id: int, conn: Tx) -> list[dict[str, object]]:
    if (await conn.scalar(select(customers.c.id).where(customers.c.id == customer_id))) is None:
        raise HTTPException(404, f"no customer {customer_id}")
    rows = await conn.execute(
        select(orders.c.id, orders.c.total).where(orders.c.customer_id == customer_id).order_by(orders.c.id)
    )
    return [{"id": r.id, "total": str(r.total)} for r in rows]
