"""The catalog service: a frozen dataclass of settings (environment over .env), objects on app.state."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from dotenv import dotenv_values
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.models import Item


@dataclass(frozen=True)
class Config:
    database_url: str
    pool_size: int

    @classmethod
    def load(cls) -> "Config":
        values = {**dotenv_values(".env"), **os.environ}
        if not values.get("DATABASE_URL"):
            raise RuntimeError("DATABASE_URL is not set (environment or .env)")
        return cls(str(values["DATABASE_URL"]), int(values.get("POOL_SIZE") or 5))


class ItemOut(BaseModel):
    id: int
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    config = Config.load()
    app.state.engine = create_async_engine(config.database_url, pool_size=config.pool_size)
    app.state.sessions = async_sessionmaker(app.state.engine, expire_on_commit=False)
    try:
        yield
    finally:
        await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/health", response_model=None)
async def health(request: Request) -> dict[str, str] | JSONResponse:
    try:
        async with asyncio.timeout(2), request.app.state.engine.connect() as conn:
            await conn.scalar(text("SELECT 1"))
    except Exception:
        return JSONResponse({"database": "unavailable"}, 503)
    return {"database": "ok"}


@app.get("/items/{item_id}", response_model=None)
async def get_item(item_id: int, request: Request) -> ItemOut | JSONResponse:
    async with request.app.state.sessions() as session:
        item = await session.get(Item, item_id)
    if item is None:
        return JSONResponse({"detail": "no such item"}, 404)
    return ItemOut(id=item.id, name=item.name)
