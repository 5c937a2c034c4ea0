"""The item API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.db import Session, engine
from app.models import Item


class ItemOut(BaseModel):
    id: int
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await engine.dispose()


async def pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "database busy, retry later"}, 503, headers={"Retry-After": "1"})


app = FastAPI(lifespan=lifespan, exception_handlers={PoolTimeoutError: pool_exhausted})


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> ItemOut:
    async with Session() as session:
        item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return ItemOut(id=item.id, name=item.name)
