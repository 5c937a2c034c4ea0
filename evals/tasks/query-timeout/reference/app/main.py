"""The product search API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app.db import Session, engine
from app.models import Product


class ProductOut(BaseModel):
    id: int
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await engine.dispose()


QUERY_CANCELED = "57014"  # statement_timeout (or a cancel request) stopped the statement


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == QUERY_CANCELED:
        return JSONResponse({"detail": "search timed out, retry later"}, 503, headers={"Retry-After": "1"})
    return JSONResponse({"detail": "database error"}, 500)


app = FastAPI(lifespan=lifespan, exception_handlers={DBAPIError: database_error})


@app.get("/search")
async def search(q: str) -> list[ProductOut]:
    async with Session() as session:
        rows = await session.scalars(
            select(Product).where(Product.name.ilike(f"%{q}%")).order_by(Product.id).limit(20)
        )
        return [ProductOut(id=p.id, name=p.name) for p in rows]
