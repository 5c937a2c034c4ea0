"""The product search API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
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
    async with Session() as session:
        rows = await session.scalars(
            select(Product).where(Product.name.ilike(f"%{q}%")).order_by(Product.id).limit(20)
        )
        products = [ProductOut(id=p.id, name=p.name) for p in rows]
        session.add(SearchLog(q=q))
        await session.commit()
    return products
