"""The product search API."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import select

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
    try:
        async with asyncio.timeout(1.0), Session() as session:
            rows = await session.scalars(
                select(Product).where(Product.name.ilike(f"%{q}%")).order_by(Product.id).limit(20)
            )
            products = [ProductOut(id=p.id, name=p.name) for p in rows]
    except TimeoutError:
        async with Session.begin() as session:
            session.add(SearchLog(q=q, timed_out=True))
        raise HTTPException(503, "search timed out, retry later") from None
    async with Session.begin() as session:
        session.add(SearchLog(q=q))
    return products
