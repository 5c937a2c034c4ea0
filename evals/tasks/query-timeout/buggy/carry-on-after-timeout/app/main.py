"""The product search API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app.db import Session, engine
from app.models import Product, SearchLog


class ProductOut(BaseModel):
    id: int
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/search")
async def search(q: str) -> list[ProductOut]:
    async with Session() as session:
        try:
            rows = await session.scalars(
                select(Product).where(Product.name.ilike(f"%{q}%")).order_by(Product.id).limit(20)
            )
            products: list[ProductOut] | None = [ProductOut(id=p.id, name=p.name) for p in rows]
        except DBAPIError:
            products = None  # timed out: still record the search below, in the same transaction
        session.add(SearchLog(q=q, timed_out=products is None))
        await session.commit()
    if products is None:
        raise HTTPException(503, "search timed out, retry later")
    return products
