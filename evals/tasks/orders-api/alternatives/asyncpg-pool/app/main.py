"""Orders service on a bare asyncpg pool: created in lifespan, closed at shutdown; explicit transactions."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel


def _dsn() -> str:
    # DATABASE_URL is written for SQLAlchemy (postgresql+asyncpg://); asyncpg wants postgresql://
    return os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(_dsn(), min_size=1, max_size=10, command_timeout=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


def problem(status: int, detail: str) -> Response:
    body = {"type": "about:blank", "title": "Not Found" if status == 404 else "Error", "status": status}
    return JSONResponse({**body, "detail": detail}, status_code=status, media_type="application/problem+json")


class NewOrder(BaseModel):
    customer_id: int
    total: Decimal


@app.post("/orders", status_code=201)
async def create_order(order: NewOrder, request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        async with conn.transaction():  # COMMIT happens when this block exits, before we answer
            if await conn.fetchval("SELECT 1 FROM customers WHERE id = $1", order.customer_id) is None:
                return problem(404, f"customer {order.customer_id} does not exist")
            row = await conn.fetchrow(
                "INSERT INTO orders (customer_id, total) VALUES ($1, $2) RETURNING id, customer_id, total",
                order.customer_id,
                order.total,
            )
    return JSONResponse({"id": row["id"], "customer_id": row["customer_id"], "total": str(row["total"])}, 201)


@app.get("/customers/{customer_id}/orders")
async def customer_orders(customer_id: int, request: Request) -> Response:
    rows = await request.app.state.pool.fetch(
        "SELECT c.id AS customer, o.id, o.total FROM customers c"
        " LEFT JOIN orders o ON o.customer_id = c.id WHERE c.id = $1 ORDER BY o.id",
        customer_id,
    )
    if not rows:
        return problem(404, f"customer {customer_id} does not exist")
    return JSONResponse([{"id": r["id"], "total": str(r["total"])} for r in rows if r["id"] is not None])
